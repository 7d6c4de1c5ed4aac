"""RegressionEval and ``vlmscope diff`` over runs of real ResNet checkpoints on real digits,
and its statistics against reference implementations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import vlmscope
from tests.digits import (
    DIGIT_LABELS,
    digit_model,
    digit_pipeline,
    digits_dataset,
    predictions,
)
from tests.helpers import query
from vlmscope.cli import main
from vlmscope.regression import mcnemar_exact_p, paired_bootstrap_interval
from vlmscope.regression import stats as regression_stats

scipy_stats = pytest.importorskip("scipy.stats")

HELD_OUT = 200


@pytest.mark.parametrize("seed", range(8))
def test_mcnemar_p_value_equals_the_exact_binomial_test(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(25):
        broken, fixed = (int(x) for x in rng.integers(0, [30, 30] if seed < 4 else [5000, 5000]))
        expected = scipy_stats.binomtest(min(broken, fixed), broken + fixed, 0.5).pvalue \
            if broken + fixed else 1.0
        assert mcnemar_exact_p(broken, fixed) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def _reference_bootstrap(base: np.ndarray, candidate: np.ndarray, resamples: int,
                         seed: int) -> tuple[float, float]:
    """The textbook paired bootstrap: resample row indices, take the mean difference."""
    rng = np.random.default_rng(seed)
    differences = candidate - base
    means = [differences[rng.integers(0, len(differences), len(differences))].mean()
             for _ in range(resamples)]
    low, high = np.quantile(means, [0.025, 0.975])
    return float(low), float(high)


@pytest.mark.parametrize(("kind", "seed"), [("pass_fail", 0), ("pass_fail", 1),
                                            ("scores", 2), ("scores", 3)])
def test_paired_bootstrap_interval_matches_the_index_resampling_bootstrap(
        kind: str, seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(seed)
    n = 400
    if kind == "pass_fail":
        base = (rng.random(n) < 0.7).astype(float)
        candidate = np.where(rng.random(n) < 0.15, 1.0 - base, base)
    else:
        base = rng.beta(2, 2, n)
        candidate = np.clip(base + rng.normal(-0.03, 0.1, n), 0, 1)
    reference = _reference_bootstrap(base, candidate, 4000, seed + 100)
    grouped = paired_bootstrap_interval(base, candidate, resamples=4000, seed=seed)
    assert grouped.mean == pytest.approx(float(np.mean(candidate - base)), abs=1e-12)
    width = reference[1] - reference[0]
    assert grouped.low == pytest.approx(reference[0], abs=0.08 * width)
    assert grouped.high == pytest.approx(reference[1], abs=0.08 * width)
    assert paired_bootstrap_interval(base, candidate, resamples=4000, seed=seed) == grouped
    monkeypatch.setattr(regression_stats, "MULTINOMIAL_MAX_VALUES", 0)
    by_index = paired_bootstrap_interval(base, candidate, resamples=4000, seed=seed)
    assert by_index.low == pytest.approx(reference[0], abs=0.08 * width)
    assert by_index.high == pytest.approx(reference[1], abs=0.08 * width)


def test_bootstrap_rejects_bad_settings_and_gives_none_for_no_rows() -> None:
    assert paired_bootstrap_interval([], []) is None
    with pytest.raises(ValueError, match="confidence"):
        paired_bootstrap_interval([1.0], [0.0], confidence=1.5)
    with pytest.raises(ValueError, match="paired"):
        paired_bootstrap_interval([1.0, 0.0], [0.0])


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Five runs in one store: the early checkpoint twice, the checkpoint a few training
    steps later, the early one with every fourth answer spoiled, and the early one over a
    smaller cohort."""
    db = tmp_path_factory.mktemp("diff") / "store.duckdb"
    vlmscope.configure(db=db)
    early, late = digit_model(0), digit_model(1)
    dataset = digits_dataset("held-out", stop=1200 + HELD_OUT)
    early_pipeline = digit_pipeline(early)
    try:
        dataset.run(early_pipeline, name="early", batch_size=50, progress=False)
        dataset.run(early_pipeline, name="early-again", batch_size=50, progress=False)
        dataset.run(digit_pipeline(late), name="late", batch_size=50, progress=False)
        early_pipeline = digit_pipeline(early)

        def spoiled(rows):
            answers = early_pipeline(rows)
            return [DIGIT_LABELS[(int(a) + 1) % 10] if int(row.id[1:]) % 4 == 0 else a
                    for row, a in zip(rows, answers, strict=True)]

        dataset.run(spoiled, name="degraded", batch_size=50, progress=False)
        digits_dataset("smaller", stop=1200 + 100).run(early_pipeline, name="smaller-run",
                                                       batch_size=50, progress=False)
    finally:
        vlmscope.shutdown()
    return {"db": db, "dataset": dataset, "early": predictions(early, dataset),
            "late": predictions(late, dataset)}


def diff(capsys: pytest.CaptureFixture[str], runs: dict, *args: str) -> tuple[int, str, str]:
    status = main(["diff", "--db", str(runs["db"]), *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_the_diff_of_two_checkpoints_finds_exactly_the_rows_whose_verdict_changed(
        runs: dict, capsys) -> None:
    status, out, _ = diff(capsys, runs, "--base", "early", "--candidate", "late",
                          "--format", "json", "--changed-rows", "1000")
    report = json.loads(out)
    truth = {row.id: row.expected for row in runs["dataset"]}
    fixed = sorted(r for r in truth if runs["early"][r] != truth[r] == runs["late"][r])
    broken = sorted(r for r in truth if runs["early"][r] == truth[r] != runs["late"][r])
    assert fixed or broken
    (match,) = [e for e in report["evaluators"] if e["evaluator"] == "ground_truth_match"]
    assert match["transitions"]["fixed"] == len(fixed)
    assert match["transitions"]["broken"] == len(broken)
    assert match["judged_rows"] == HELD_OUT
    listed = {t: sorted(c["row_id"] for c in report["changed_rows"] if c["transition"] == t)
              for t in ("fixed", "broken")}
    assert listed == {"fixed": fixed, "broken": broken}
    assert match["pass_rate_delta"] == pytest.approx((len(fixed) - len(broken)) / HELD_OUT)
    low, high = match["pass_rate_ci"]
    assert low <= match["pass_rate_delta"] <= high
    assert match["mcnemar_p"] == pytest.approx(
        scipy_stats.binomtest(min(len(fixed), len(broken)), len(fixed) + len(broken)).pvalue)
    accuracy_late = sum(runs["late"][r] == truth[r] for r in truth) / HELD_OUT
    assert match["candidate_pass_rate"] == pytest.approx(accuracy_late)
    per_class = {c["class"]: c for c in report["per_class"]
                 if c["evaluator"] == "ground_truth_match"}
    assert sum(c["rows"] for c in per_class.values()) == HELD_OUT
    blame = {b["blame"]: b for b in report["blame"]["labels"]}
    # The answer is the encoder's top-1, so every failure is the encoder's.
    assert set(blame) == {"encoder"}
    assert blame["encoder"]["candidate"] == HELD_OUT - round(accuracy_late * HELD_OUT)
    assert status == (1 if report["regressed"] else 0)


def test_the_same_checkpoint_twice_gives_no_transition_and_no_regression(runs: dict,
                                                                          capsys) -> None:
    status, out, _ = diff(capsys, runs, "--base", "early", "--candidate", "early-again",
                          "--format", "json")
    report = json.loads(out)
    (match,) = report["evaluators"]
    assert status == 0 and report["verdict"] == "no significant regression"
    assert match["transitions"]["fixed"] == match["transitions"]["broken"] == 0
    assert match["pass_rate_delta"] == 0 and match["pass_rate_ci"] == [0.0, 0.0]
    assert match["mcnemar_p"] == 1.0 and report["changed_rows"] == []


def test_an_injected_degradation_is_flagged_as_a_regression_and_exits_one(runs: dict,
                                                                          capsys) -> None:
    status, out, _ = diff(capsys, runs, "--base", "early", "--candidate", "degraded",
                          "--max-drop", "0.01", "--alpha", "0.05")
    assert status == 1
    assert "verdict: regression (ground_truth_match)" in out
    (match,) = json.loads(diff(capsys, runs, "--base", "early", "--candidate", "degraded",
                               "--format", "json")[1])["evaluators"]
    spoiled = [(runs["early"][f"d{i}"], DIGIT_LABELS[(int(runs["early"][f"d{i}"]) + 1) % 10],
                runs["dataset"].row(f"d{i}").expected) for i in range(1200, 1200 + HELD_OUT, 4)]
    assert match["transitions"]["broken"] == sum(before == truth for before, _, truth in spoiled)
    assert match["transitions"]["fixed"] == sum(after == truth for _, after, truth in spoiled)
    assert match["mcnemar_p"] < 1e-6 and match["pass_rate_ci"][1] < 0
    status, _, _ = diff(capsys, runs, "--base", "early", "--candidate", "degraded",
                        "--max-drop", "0.5")
    assert status == 0  # a drop smaller than the tolerated one passes the gate


def test_the_report_is_byte_identical_across_invocations(runs: dict, capsys) -> None:
    for fmt in ("json", "table"):
        first = diff(capsys, runs, "--base", "early", "--candidate", "late", "--format", fmt)
        second = diff(capsys, runs, "--base", "early", "--candidate", "late", "--format", fmt)
        assert first[1] == second[1] and first[0] == second[0]


def test_runs_over_different_cohorts_are_an_error_unless_the_intersection_is_asked_for(
        runs: dict, capsys) -> None:
    status, _, err = diff(capsys, runs, "--base", "early", "--candidate", "smaller-run")
    assert status == 2
    assert "are not over the same rows: 100 only in base (e.g. d1300, d1301" in err
    assert "--intersect" in err
    status, out, _ = diff(capsys, runs, "--base", "early", "--candidate", "smaller-run",
                          "--intersect", "--format", "json")
    report = json.loads(out)
    assert status == 0 and report["rows"] == {"compared_rows": 100, "only_in_base": 100}
    assert report["evaluators"][0]["transitions"]["still_passing"] + report["evaluators"][0][
        "transitions"]["still_failing"] == 100


def test_the_per_row_diff_lands_in_parquet_with_both_reasons(runs: dict, capsys,
                                                             tmp_path: Path) -> None:
    target = tmp_path / "diff.parquet"
    status, _, _ = diff(capsys, runs, "--base", "early", "--candidate", "degraded",
                        "--per-row", str(target))
    rows = query(runs["db"], f"SELECT row_id, transition, base_reason, candidate_reason "
                             f"FROM read_parquet('{target}') ORDER BY row_id")
    assert status == 1 and len(rows) == HELD_OUT
    assert all(r[2] and r[3] for r in rows)
    assert {r[1] for r in rows} <= {"broken", "fixed", "still_passing", "still_failing"}
    assert "broken" in {r[1] for r in rows}


@pytest.mark.parametrize(("args", "message"), [
    (["--base", "nope", "--candidate", "early"], "no run named 'nope' in the store; runs"),
    (["--base", "early", "--candidate", "late", "--alpha", "2"], "alpha must be in (0, 1)"),
])
def test_unknown_runs_and_bad_thresholds_are_usage_errors(runs: dict, capsys, args,
                                                          message) -> None:
    status, _, err = diff(capsys, runs, *args)
    assert status == 2 and message in err


def test_blame_shift_comes_from_failure_attribution_when_both_runs_have_it(
        traced: Path, capsys) -> None:
    from vlmscope.evaluators import EVALUATORS, GroundTruthMatch

    if "failure_attribution" not in EVALUATORS:
        pytest.skip("FailureAttribution is not in this checkout")
    model = digit_model(0)
    pipeline = digit_pipeline(model)

    def always_seven(row):
        pipeline(row)  # the encoder reads the image; the answer ignores it
        return "7"

    for name, answer in (("right", pipeline), ("always-seven", always_seven)):
        dataset = digits_dataset("blamed", stop=1200 + 30)
        dataset.add_evaluation(GroundTruthMatch()).add_evaluation("failure_attribution")
        dataset.run(answer, name=name, progress=False)
    vlmscope.shutdown()
    status = main(["diff", "--db", str(traced), "--base", "right", "--candidate",
                   "always-seven", "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert report["blame"]["source"] == "failure_attribution"
    stored = dict(query(traced, "SELECT e.label, count(*) FROM evaluations e "
                                "JOIN dataset_runs r ON r.eval_run_id = e.run_id "
                                "WHERE r.run_name = 'always-seven' AND e.label <> 'correct' "
                                "AND e.evaluator = 'failure_attribution' GROUP BY 1"))
    assert {b["blame"]: b["candidate"] for b in report["blame"]["labels"]
            if b["candidate"]} == stored
    # Answering "7" whatever the encoder read moves the blame to the language head.
    shift = {b["blame"]: b["shift"] for b in report["blame"]["labels"]}
    assert shift["language_head"] > 0
    assert status == 1


def _broken_runs(tmp_path: Path) -> Path:
    """Two runs of one cohort through a pipeline that raises on every row."""
    db = tmp_path / "broken.duckdb"
    vlmscope.configure(db=db)

    def raises(rows):
        raise RuntimeError("the pipeline is broken")

    try:
        dataset = digits_dataset("broken", stop=1200 + 40)
        dataset.run(raises, name="broken-a", batch_size=20, progress=False)
        dataset.run(raises, name="broken-b", batch_size=20, progress=False)
    finally:
        vlmscope.shutdown()
    return db


def test_a_gate_over_runs_whose_every_row_failed_fails(tmp_path: Path, capsys) -> None:
    db = _broken_runs(tmp_path)
    status = main(["diff", "--db", str(db), "--base", "broken-a", "--candidate", "broken-b",
                   "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert status == 1 and report["verdict"] == "gate failed"
    assert [c for c in report["failed_checks"] if "40 failed rows" in c] and len(
        report["failed_checks"]) == 2  # one for each run
    assert main(["diff", "--db", str(db), "--base", "broken-a", "--candidate", "broken-b"]) == 1
    assert "verdict: gate failed" in capsys.readouterr().out
    # Only when the user tolerates that many failed rows does the gate let them pass.
    assert main(["diff", "--db", str(db), "--base", "broken-a", "--candidate", "broken-b",
                 "--max-failed", "40"]) == 0


def test_failed_rows_beyond_max_failed_fail_the_gate_in_the_text_verdict(runs: dict,
                                                                         capsys) -> None:
    query_failed = query(runs["db"], "SELECT failed_rows FROM dataset_runs "
                                     "WHERE run_name = 'early'")
    assert query_failed == [(0,)]
    status, out, _ = diff(capsys, runs, "--base", "early", "--candidate", "early-again")
    assert status == 0 and "gate:" not in out


def test_a_self_diff_has_equal_blame_columns_and_no_change(runs: dict, capsys) -> None:
    status, out, _ = diff(capsys, runs, "--base", "early", "--candidate", "early",
                          "--format", "json")
    report = json.loads(out)
    assert status == 0
    for stats in report["evaluators"]:
        transitions = stats["transitions"]
        assert transitions["fixed"] == transitions["broken"] == 0
    labels = report["blame"]["labels"]
    assert labels and all(b["base"] == b["candidate"] and b["shift"] == 0 for b in labels)
    assert sum(b["base"] for b in labels) > 0


def test_eval_filters_naming_nothing_are_errors(runs: dict, capsys) -> None:
    for flag, value in (("--cohort", "no-such-cohort"), ("--checkpoint", "ffffffffffff")):
        assert main(["eval", "--db", str(runs["db"]), flag, value]) == 2
        assert f"no rows with {flag} {value!r}" in capsys.readouterr().err


def test_a_gate_over_zero_judged_rows_never_passes(tmp_path: Path, capsys) -> None:
    db = _broken_runs(tmp_path)
    from vlmscope.collectors.store import write_connection

    with write_connection(db) as con:  # the candidate's verdicts are gone
        con.execute("DELETE FROM evaluations WHERE run_id = (SELECT eval_run_id "
                    "FROM dataset_runs WHERE run_name = 'broken-b')")
    status = main(["diff", "--db", str(db), "--base", "broken-a", "--candidate", "broken-b",
                   "--max-failed", "40", "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert status == 1 and report["verdict"] == "gate failed"
    assert report["failed_checks"] == ["no row was judged by an evaluator both runs share"]
