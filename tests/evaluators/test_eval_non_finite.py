"""Non-finite numbers (NaN and infinite encoder scores, answers like "1e400", rules that score
NaN) never break a run: every evaluator stores strict JSON metadata (DuckDB writes a NaN as
``NaN``, which no strict JSON reader accepts), ``evaluate_rows`` does not raise into the
caller, and a NaN score is not evidence that the encoder read a label."""

from __future__ import annotations

import math

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pytest

from vlmscope.collectors.schema import migrate
from vlmscope.evaluators import (
    CaptionHallucination,
    ClassificationReport,
    CustomEvaluation,
    FailureAttribution,
    GroundTruthMatch,
    ImageInstructionAdherence,
    MultiLabelReport,
    run_evaluations,
)
from vlmscope.evaluators.base import PIPELINE_ROW_SCHEMA, RowEvaluator

NAN, INF = float("nan"), float("inf")
LABELS = ["cat", "dog", "bird"]
NUMBERS = ["1e400", "-1e999", "9" * 400, "nan", "inf", "Infinity", "3", "2.5e3", "1,000"]
SCORES = [NAN, INF, -INF, 0.9, 0.1, 0.5, None]
INSTRUCTIONS = ["how many cats are there?", "is there a dog?", "what animals are shown?",
                "which animal is this?", "describe the image", None]


def nasty_rows(seed: int, n: int) -> list[dict]:
    """Rows whose numbers are anything a float can be, beside ordinary ones."""
    rng = np.random.default_rng(seed)

    def pick(values: list):
        return values[int(rng.integers(len(values)))]

    rows = []
    for i in range(n):
        k = int(rng.integers(0, 4))
        labels = [str(x) for x in rng.permutation(LABELS)[:k]] or None
        rows.append({
            "row_id": str(i), "trace_id": "t", "span_id": f"s{i}",
            "output": pick(NUMBERS + LABELS + ["a cat and a dog", "yes", "no"]),
            "expected": pick(NUMBERS + LABELS + ["yes", "no", None]),
            "instruction": pick(INSTRUCTIONS),
            "objects": [str(x) for x in rng.permutation(LABELS)[:int(rng.integers(0, 3))]]
            or None,
            "top_k_labels": labels,
            "top_k_scores": None if labels is None else [pick(SCORES) for _ in labels],
            "encoder_multi_label": bool(rng.integers(2)),
            "encoder_entropy": pick([NAN, INF, 0.3, None]),
            "cohort": pick(["a", "b"]), "checkpoint_sha256": pick(["c1", "c2"]),
        })
    return rows


ROW_EVALUATORS = [
    *(GroundTruthMatch(mode=mode, k=2) for mode in ("normalized", "numeric", "top_k")),
    CaptionHallucination(), ImageInstructionAdherence(), FailureAttribution(),
    FailureAttribution(classes=LABELS),
    CustomEvaluation("nan_sql", sql="CASE WHEN length(output) > 5 THEN 'nan'::DOUBLE "
                                    "WHEN length(output) > 3 THEN 'inf'::DOUBLE ELSE 0.75 END"),
    CustomEvaluation("nan_fn", fn=lambda row: NAN if len(row["output"] or "") > 5
                     else -INF if len(row["output"] or "") > 3 else 0.25),
]


def stored(rows: list[dict], evaluators: list) -> tuple[duckdb.DuckDBPyConnection, object]:
    con = duckdb.connect()
    migrate(con)
    con.register("given", pa.Table.from_pylist(rows, schema=PIPELINE_ROW_SCHEMA))
    con.execute("CREATE TABLE rows AS SELECT * FROM given")
    run = run_evaluations(con, evaluators, source="rows")
    return con, run


@pytest.mark.parametrize("evaluator", ROW_EVALUATORS, ids=lambda e: f"{e.name}-{e.config()}")
def test_non_finite_numbers_give_strict_json_and_the_same_verdicts_row_by_row(
        evaluator: RowEvaluator) -> None:
    rows = nasty_rows(seed=7, n=120)
    con, _ = stored(rows, [evaluator])
    kept = {row_id: rest for row_id, *rest in con.execute(
        "SELECT row_id, score, passed, label, explanation, metadata FROM evaluations"
    ).fetchall()}
    assert kept, "no row was judged"
    for row_id, (score, _, _, _, metadata) in kept.items():
        assert score is None or math.isfinite(score), (row_id, score)
        orjson.loads(metadata or "{}")  # strict JSON: NaN and Infinity are not JSON
    together = evaluator.evaluate_rows(rows)
    for row, result in zip(rows, together, strict=True):
        if result.score is None:
            assert row["row_id"] not in kept
            continue
        score, passed, label, explanation, metadata = kept[row["row_id"]]
        assert (result.score, result.passed, result.label, result.reason) == (
            score, passed, label, explanation)
        assert result.metadata == orjson.loads(metadata or "{}")


def _labelled(rows: list[dict]) -> list[dict]:
    """The rows with an expected class, so that the reports score them."""
    return [{**row, "expected": row["expected"] if row["expected"] in LABELS else "cat"}
            for row in rows]


def _walk_non_finite(value, path: str = "") -> list[str]:
    if isinstance(value, float) and not math.isfinite(value):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _walk_non_finite(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _walk_non_finite(v, f"{path}[{i}]")]
    return []


def test_calibration_leaves_out_a_top1_score_a_float32_cannot_hold_and_nothing_else() -> None:
    rows = _labelled(nasty_rows(seed=11, n=300))
    for i, row in enumerate(rows[:40]):  # beyond float32, which the bins round to
        if row["top_k_scores"]:
            row["top_k_scores"][0] = 1e300 if i % 2 else -1e39
    calibrated = [row for row in rows if row["top_k_scores"] and row["top_k_scores"][0]
                  is not None and math.isfinite(row["top_k_scores"][0])
                  and abs(row["top_k_scores"][0]) < 3.4e38]
    assert 0 < len(calibrated) < len([r for r in rows if r["top_k_labels"]])
    con, run = stored(rows, [ClassificationReport()])
    report = run.summaries["classification_report"]
    assert _walk_non_finite(report) == []
    orjson.loads(con.execute("SELECT summary FROM eval_runs").fetchall()[0][0])
    # Only the finite scores are binned: the calibration equals that of those rows alone ...
    _, alone = stored(calibrated, [ClassificationReport()])
    for key in ("ece", "mce"):
        assert report[key] == pytest.approx(alone.summaries["classification_report"][key])
    # ... while every row with a top-1 label counts in the accuracy.
    assert report["rows"] == sum(1 for r in rows if r["top_k_labels"])


def test_a_nan_label_score_ranks_as_a_label_not_ranked_in_the_multilabel_report() -> None:
    rows = _labelled(nasty_rows(seed=5, n=300))
    assert any(s is not None and math.isnan(s) for r in rows for s in r["top_k_scores"] or [])
    zeroed = [{**row, "top_k_scores": None if row["top_k_scores"] is None else
               [0.0 if s is not None and math.isnan(s) else s for s in row["top_k_scores"]]}
              for row in rows]
    con, run = stored(rows, [MultiLabelReport(classes=LABELS)])
    _, same = stored(zeroed, [MultiLabelReport(classes=LABELS)])
    report = run.summaries["multilabel_report"]
    assert _walk_non_finite(report) == []
    assert report == same.summaries["multilabel_report"]
    assert report["judged"] > 100
    orjson.loads(con.execute("SELECT summary FROM eval_runs").fetchall()[0][0])


def test_a_nan_score_is_not_read_and_an_infinite_one_is() -> None:
    attribution = FailureAttribution()
    nan_first = attribution.evaluate(output="dog", expected="dog", encoder_top_k=["cat", "dog"],
                                     encoder_scores=[NAN, 0.9],
                                     instruction="what animals are shown?")
    assert nan_first.metadata["encoder_reading"] == ["dog"]
    assert nan_first.label == "correct"
    infinite = attribution.evaluate(output="cat dog", expected="cat dog",
                                    encoder_top_k=["cat", "dog"], encoder_scores=[INF, 0.9],
                                    instruction="what animals are shown?")
    assert infinite.metadata["encoder_reading"] == ["cat", "dog"]
    # The stored column reads by the same rule.
    con = duckdb.connect()
    migrate(con)
    from vlmscope.collectors.spec import ENCODER_READING_THRESHOLD, encoder_reading_sql
    rule = encoder_reading_sql("l", "s", "true", f"{ENCODER_READING_THRESHOLD}::DOUBLE")
    ((reading,),) = con.execute(
        f"SELECT {rule} FROM (SELECT ['cat', 'dog', 'bird'] AS l, "
        "['nan'::DOUBLE, 'inf'::DOUBLE, '-inf'::DOUBLE] AS s)").fetchall()
    assert reading == ["dog"]


def test_a_number_too_large_for_a_double_is_no_number() -> None:
    match = GroundTruthMatch(mode="numeric")
    for answer in ("1e400", "-1e999", "9" * 400):
        result = match.evaluate(output=answer, expected="3")
        assert result.label == "mismatch"
        assert "no number in the answer" in result.reason
        assert result.metadata["answer"] is None
    assert match.evaluate(output="1e300", expected="1e300").label == "match"
    skipped = match.evaluate(output="3", expected="1e400")
    assert skipped.score is None and "number" in skipped.reason


def test_a_rule_that_scores_nan_or_infinity_skips_the_row_and_says_so() -> None:
    for value in (NAN, INF, -INF):
        for rule in (CustomEvaluation("r", fn=lambda row, v=value: v),
                     CustomEvaluation("r", sql=f"'{value}'::DOUBLE")):
            result = rule.evaluate_row({"output": "x"})
            assert result.score is None and result.label == "skipped"
            assert "not a finite number" in result.reason, result.reason
    con, run = stored(nasty_rows(seed=3, n=40), [
        CustomEvaluation("r", fn=lambda row: NAN if row["row_id"] < "2" else 0.75)])
    summary = run.summaries["r"]
    assert summary["judged"] + summary["skipped"] == 40 and summary["skipped"] > 0
    assert summary["mean_score"] == 0.75
    assert set(summary["skipped_reasons"]) == {"the rule gave a score that is not a finite "
                                               "number (nan)"}
