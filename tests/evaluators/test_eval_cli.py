"""``vlmscope eval`` over a store written by the real tracing SDK."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import duckdb
import pytest

import vlmscope
from vlmscope.cli import main

LABELS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@pytest.fixture(scope="module")
def traced_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 rows through an instrumented ResNet-18 and a manual LLM span; two rows have no
    expected label, one answer is NULL; the answer repeats the encoder's top-1 label."""
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    db = tmp_path_factory.mktemp("eval") / "store.duckdb"
    torch.manual_seed(0)
    encoder = torchvision.models.resnet18(weights=None, num_classes=10).eval()
    vlmscope.configure(db=db)
    hooks = vlmscope.instrument_encoder(encoder, labels=LABELS, top_k=5)
    try:
        for i in range(12):
            expected = None if i in (3, 7) else LABELS[i % 10]
            with vlmscope.trace_row(f"row-{i}", expected=expected, cohort=f"c{i % 2}"):
                with torch.no_grad():
                    top1 = LABELS[int(encoder(torch.rand(1, 3, 32, 32)).argmax())]
                with vlmscope.llm_span(model="head", instruction="which digit?") as span:
                    if i != 5:
                        span.set_output(f"The {top1}.")
    finally:
        hooks.uninstrument()
        vlmscope.shutdown()
    return db


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["eval", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_eval_json_summary_carries_the_promised_metrics(traced_store: Path, capsys) -> None:
    status, out, _ = run_cli(capsys, "--db", str(traced_store), "--format", "json")
    summary = json.loads(out)
    assert status == 0
    for key in ("rows", "skipped", "top1", "top5", "macro_f1", "ece", "answer_accuracy"):
        assert key in summary
    assert summary["rows"] == 10 and summary["skipped"] == 2
    assert summary["skipped_reasons"] == {"no expected label": 2}
    for per_class in summary["per_class"].values():
        assert set(per_class) >= {"precision", "recall", "f1", "support"}
    with duckdb.connect(str(traced_store), read_only=True) as con:
        top1 = con.execute("SELECT avg((top_k_labels[1] = expected)::INT) FROM pipeline_rows "
                           "WHERE expected IS NOT NULL").fetchall()[0][0]
        # The head repeats the encoder, except on the row whose answer is NULL.
        answered = con.execute("SELECT count(*) FILTER (WHERE output IS NOT NULL "
                               "AND top_k_labels[1] = expected) FROM pipeline_rows "
                               "WHERE expected IS NOT NULL").fetchall()[0][0]
    assert summary["top1"] == pytest.approx(top1)
    assert summary["answer_accuracy"] == pytest.approx(answered / 10)


def test_evaluation_rows_join_back_to_pipeline_rows_by_row_and_span_id(traced_store: Path,
                                                                       capsys) -> None:
    status, out, _ = run_cli(capsys, "--db", str(traced_store), "--format", "json")
    run_id = json.loads(out)["run_id"]
    with duckdb.connect(str(traced_store), read_only=True) as con:
        joined = con.execute(
            "SELECT e.row_id, e.label, e.explanation, e.annotator_kind FROM evaluations e "
            "JOIN pipeline_rows p ON p.row_id = e.row_id AND p.llm_span_id = e.span_id "
            "WHERE e.run_id = ? ORDER BY e.row_id", [run_id]).fetchall()
        runs = con.execute("SELECT evaluator, cohort, len(checkpoints), summary->>'$.rows' "
                           "FROM eval_runs WHERE run_id = ? ORDER BY evaluator",
                           [run_id]).fetchall()
    assert status == 0 and len(joined) == 10
    assert {row[3] for row in joined} == {"CODE"}
    row5 = next(row for row in joined if row[0] == "row-5")
    assert row5[1] == "no_answer"
    assert row5[2].startswith("no answer: the output is NULL; expected 'five'; encoder top-1")
    assert runs == [("classification_report", None, 1, "10"),
                    ("ground_truth_match", None, 1, None)]


def test_table_output_reports_skips_and_worst_classes_first(traced_store: Path,
                                                            capsys) -> None:
    status, out, _ = run_cli(capsys, "--db", str(traced_store), "--by", "cohort")
    assert status == 0
    assert "2 rows had no expected label" in out
    assert "Classes, worst first" in out
    assert "slice cohort=c0" in out and "slice cohort=c1" in out


def test_a_cohort_filter_keeps_only_that_cohort(traced_store: Path, capsys) -> None:
    _, out, _ = run_cli(capsys, "--db", str(traced_store), "--cohort", "c0", "--format",
                        "json")
    summary = json.loads(out)
    assert summary["rows"] + summary["skipped"] == 6 and summary["cohort"] == "c0"


def test_an_unmet_threshold_exits_one_and_a_met_one_exits_zero(traced_store: Path,
                                                                capsys) -> None:
    status, out, _ = run_cli(capsys, "--db", str(traced_store), "--fail-under",
                             "top1=1.01,top5=0")
    assert status == 1 and "FAIL top1" in out and "ok   top5" in out
    status, _, _ = run_cli(capsys, "--db", str(traced_store), "--fail-under", "top5=0")
    assert status == 0


def test_a_checkpoint_that_matches_nothing_is_an_error_not_a_pass(traced_store: Path,
                                                                  capsys) -> None:
    status, _, err = run_cli(capsys, "--db", str(traced_store), "--checkpoint", "ffff",
                             "--fail-under", "top1=0.1")
    assert status == 2 and "no rows with --checkpoint 'ffff'" in err


@pytest.mark.parametrize(("args", "message"), [
    (["--evaluators", "vibes"], "unknown evaluator(s) vibes; valid: ground_truth_match"),
    (["--fail-under", "accuracy=0.9"], "names no metric; use NAME=VALUE with NAME one of top1"),
    (["--by", "colour"], "lacks the column(s) colour; its columns are row_id"),
])
def test_bad_names_are_usage_errors_listing_what_is_valid(traced_store: Path, capsys,
                                                          args, message) -> None:
    status, _, err = run_cli(capsys, "--db", str(traced_store), *args)
    assert status == 2 and message in err


def test_a_missing_store_is_a_usage_error(tmp_path: Path, capsys) -> None:
    status, _, err = run_cli(capsys, "--db", str(tmp_path / "none.duckdb"))
    assert status == 2 and "no vlmscope store" in err


def test_list_names_every_evaluator_with_a_description(capsys) -> None:
    status, out, _ = run_cli(capsys, "--list")
    assert status == 0
    assert out.startswith("ground_truth_match") and "\nclassification_report  encoder" in out


def test_classes_restrict_the_report_to_rows_that_ask_for_a_class(traced_store: Path,
                                                                    capsys) -> None:
    status, out, _ = run_cli(capsys, "--db", str(traced_store), "--format", "json",
                             "--classes", "zero,one,two,three")
    summary = json.loads(out)
    # Expected answers: zero one two - four five six - eight nine zero one (two NULL).
    assert status == 0 and summary["rows"] == 5
    assert summary["skipped_reasons"] == {"no expected label": 2,
                                          "an expected label outside the classes": 5}
    assert set(summary["per_class"]) <= set(LABELS)
    with duckdb.connect(str(traced_store), read_only=True) as con:
        ranked = {label for (label,) in con.execute(
            "SELECT DISTINCT unnest(top_k_labels) FROM pipeline_rows").fetchall()}
        expected = [e for (e,) in con.execute(
            "SELECT expected FROM pipeline_rows WHERE expected IS NOT NULL").fetchall()]
    status, out, _ = run_cli(capsys, "--db", str(traced_store), "--format", "json",
                             "--classes-from-encoder")
    summary = json.loads(out)
    assert status == 0 and summary["rows"] == sum(e in ranked for e in expected)


@pytest.mark.parametrize("evaluator", ["ground_truth_match", "classification_report",
                                       "multilabel_report", "caption_hallucination",
                                       "failure_attribution", "instruction_adherence",
                                       "custom"])
def test_every_evaluator_runs_on_a_filtered_cohort(traced_store: Path, capsys,
                                                   evaluator: str) -> None:
    """A cohort filter selects only the columns the evaluators read: each must name every
    column its SQL uses (a custom rule may read any)."""
    extra = ["--custom", "short=length(output) <= 20"] if evaluator == "custom" else []
    status, out, err = run_cli(capsys, "--db", str(traced_store), "--evaluators", evaluator,
                               "--cohort", "c1", "--format", "json", *extra)
    assert status == 0, err
    summary = json.loads(out)
    assert summary["cohort"] == "c1"


def test_without_an_encoder_record_the_encoder_metrics_are_not_measured_not_zero(
        tmp_path: Path, capsys) -> None:
    """Rows whose answers were traced with no encoder (an LLM-only pipeline): the encoder's
    F1 averages are unmeasured, as its top-1 is, so no table shows a 0 and no gate on them
    passes, even at 0 (a gate must not pass on missing data)."""
    db = tmp_path / "llm_only.duckdb"
    vlmscope.configure(db=db)
    for i in range(6):
        with vlmscope.trace_row(f"r{i}", expected="cat"):
            with vlmscope.llm_span(model="head", instruction="what animal?") as span:
                span.set_output("cat" if i else "dog")
    vlmscope.shutdown()
    status, out, _ = run_cli(capsys, "--db", str(db), "--format", "json")
    summary = json.loads(out)
    assert status == 0 and summary["rows"] == 0 and summary["answer_accuracy"] == 5 / 6
    assert summary["macro_f1"] is None and summary["top1"] is None
    assert all(v is None for mode in summary["averages"].values() for v in mode.values())
    status, out, _ = run_cli(capsys, "--db", str(db))
    assert "macro_f1" not in out and "answer_accuracy" in out
    assert "6 rows had no encoder top-k\n  (these counts are the encoder's" in out
    for metric in ("macro_f1", "micro_f1", "weighted_f1"):
        status, out, _ = run_cli(capsys, "--db", str(db), "--fail-under", f"{metric}=0")
        assert status == 1 and f"FAIL {metric}" in out, out


def test_llm_calls_outside_any_row_are_named_with_what_makes_them_rows(
        tmp_path: Path, capsys) -> None:
    """An app traced by an LLM instrumentor alone (here GenAI spans of a plain OTel tracer)
    has LLM calls but no rows: eval says how many are left unscored and what to add, also
    beside rows that are scored; a call inside a row's trace is not counted."""
    from opentelemetry import trace

    from vlmscope import conventions as cv

    db = tmp_path / "calls.duckdb"
    vlmscope.configure(db=db)
    tracer = trace.get_tracer("my-agent")
    for i in range(3):
        with tracer.start_as_current_span("chat m", attributes={
                cv.GEN_AI_OPERATION_NAME: "chat", cv.GEN_AI_REQUEST_MODEL: "m",
                cv.GEN_AI_INPUT_MESSAGES: '[{"role": "user", "parts": [{"type": "text", '
                                          '"content": "what animal?"}]}]',
                cv.GEN_AI_OUTPUT_MESSAGES: f'[{{"role": "assistant", "parts": [{{"type": '
                                           f'"text", "content": "cat {i}"}}]}}]'}):
            pass
    with vlmscope.trace_row("r1", expected="cat"), vlmscope.llm_span(
            model="head", instruction="what animal?") as span:
        span.set_output("cat")
    # asked per image inside a batch: the first call in no row (counted), the second in
    # trace_row(row_id), that row's (not counted)
    with vlmscope.trace_batch(["b1", "b2"], expected=["cat", "dog"]):
        for row_id in ("b1", "b2"):
            with contextlib.ExitStack() as stack:
                if row_id == "b2":
                    stack.enter_context(vlmscope.trace_row(row_id))
                with tracer.start_as_current_span("chat m", attributes={
                        cv.GEN_AI_OPERATION_NAME: "chat", cv.GEN_AI_REQUEST_MODEL: "m"}):
                    pass
    vlmscope.shutdown()
    status, out, _ = run_cli(capsys, "--db", str(db), "--format", "json")
    summary = json.loads(out)
    assert status == 0 and summary["answer_accuracy"] == 1 / 3
    (warning,) = [w for w in summary["warnings"] if "LLM calls" in w]
    assert warning.startswith("4 LLM calls in this store belong to no pipeline row")
    assert "vlmscope.trace_row(" in warning and "inside a batch" in warning


def test_rows_whose_answers_were_hidden_are_counted_each_also_in_a_batch(
        tmp_path: Path, capsys, monkeypatch) -> None:
    """A batched head's answers, hidden (``VLMSCOPE_HIDE_OUTPUTS``): every row of the batch
    is counted as having no answer, not only the first (each row has its own record of the
    one call)."""
    monkeypatch.setenv("VLMSCOPE_HIDE_OUTPUTS", "1")
    db = tmp_path / "hidden.duckdb"
    vlmscope.configure(db=db)
    with vlmscope.trace_batch(["b1", "b2", "b3"], expected=["cat", "dog", "fox"]), \
            vlmscope.llm_span("head", instruction=["what animal?"] * 3) as llm:
        llm.set_output(["cat", "dog", "fox"])
    vlmscope.shutdown()
    status, out, _ = run_cli(capsys, "--db", str(db), "--format", "json")
    (warning,) = [w for w in json.loads(out)["warnings"] if "have no answer" in w]
    assert warning.startswith("3 rows have no answer although their LLM call succeeded")
    assert "outputs are hidden" in warning
