"""FailureAttribution: the rule table, unattributable rows, the oracle swap, summaries, and one
implementation for rows and batches."""

from __future__ import annotations

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pytest

from vlmscope.collectors.schema import migrate
from vlmscope.evaluators import FailureAttribution, run_evaluations
from vlmscope.evaluators.base import PIPELINE_ROW_SCHEMA

BLAME = FailureAttribution()


@pytest.mark.parametrize(("answer", "expected", "top_k", "blame", "reason"), [
    ("seven", "seven", ["one", "seven"], "correct",
     "answer names the expected 'seven'; encoder top-1 'one'"),
    ("one", "seven", ["seven", "one"], "language_head",
     "encoder says 'seven' (right), LLM says 'one'"),
    ("one", "seven", ["one", "two"], "encoder",
     "encoder says 'one', expected 'seven'; the LLM followed it"),
    ("two", "seven", ["one", "two"], "both",
     "encoder says 'one', LLM says 'two', expected 'seven'"),
])
def test_each_rule_of_the_table_gives_its_blame_and_says_why(answer: str, expected: str,
                                                             top_k: list[str], blame: str,
                                                             reason: str) -> None:
    result = BLAME.evaluate(output=answer, expected=expected, encoder_top_k=top_k)
    assert result.label == blame and result.reason == reason
    assert result.passed is (blame == "correct") and result.score == float(blame == "correct")


def test_answers_are_read_as_labels_through_normalisation_aliases_and_mentions() -> None:
    assert BLAME.evaluate(output="The Seven.", expected="seven",
                          encoder_top_k=["seven"]).label == "correct"
    assert BLAME.evaluate(output="a kitten", expected="cat",
                          encoder_top_k=["dog"]).label == "correct"
    said = BLAME.evaluate(output="I think it is a one, not a seven", expected="seven",
                          encoder_top_k=["seven", "one"])
    assert said.label == "language_head" and said.metadata["answer_label"] == "one"


def test_a_near_miss_says_where_the_expected_label_was_in_the_top_k() -> None:
    result = BLAME.evaluate(output="one", expected="seven",
                            encoder_top_k=["one", "two", "seven"])
    assert result.label == "encoder"
    assert result.metadata["expected_rank"] == 3 and result.metadata["near_miss"] is True
    assert result.reason.endswith("expected is rank 3 of the encoder's top-k (near miss)")
    assert BLAME.evaluate(output="one", expected="seven",
                          encoder_top_k=["one", "two"]).metadata["near_miss"] is False


@pytest.mark.parametrize(("answer", "top_k", "reason"), [
    ("one", None, "no encoder record for this row; the answer 'one', expected 'seven'"),
    ("banana", ["seven", "one"],
     "the answer 'banana' names no known label; expected 'seven', encoder top-1 'seven'"),
    ("seven or one", ["one"], "the answer 'seven or one' names several labels ['one', "
                              "'seven']; expected 'seven', encoder top-1 'one'"),
    ("", ["one"], "the answer is empty; expected 'seven', encoder top-1 'one'"),
    (None, ["one"], "the answer is empty; expected 'seven', encoder top-1 'one'"),
])
def test_rows_that_cannot_be_blamed_are_unattributable_with_the_reason(
        answer: str | None, top_k: list[str] | None, reason: str) -> None:
    result = BLAME.evaluate(output=answer, expected="seven", encoder_top_k=top_k)
    assert result.label == "unattributable" and result.reason == reason


def test_rows_without_an_expected_label_are_skipped() -> None:
    result = BLAME.evaluate(output="one", expected=None, encoder_top_k=["one"])
    assert (result.score, result.label, result.reason) == (
        None, "skipped", "skipped: no expected label")


def test_extra_labels_and_synonyms_let_answers_name_labels_the_run_never_saw() -> None:
    assert BLAME.evaluate(output="two", expected="seven",
                          encoder_top_k=["seven"]).label == "unattributable"
    labelled = FailureAttribution(labels=["two"], synonyms={"deuce": "two"})
    assert labelled.evaluate(output="deuce", expected="seven",
                             encoder_top_k=["seven"]).label == "language_head"


@pytest.mark.parametrize(("top_k", "oracle_answer", "rule", "blame", "verdict"), [
    (["one"], "seven", "encoder", "encoder", "confirmed"),
    (["one"], "one", "encoder", "both", "revised"),
    (["seven"], "one", "language_head", "language_head", "confirmed"),
    (["seven"], "seven", "language_head", "language_head", "not_reproduced"),
    (["one"], "seven", "both", "encoder", "revised"),
])
def test_the_oracle_swap_confirms_or_revises_the_blame(top_k: list[str], oracle_answer: str,
                                                       rule: str, blame: str,
                                                       verdict: str) -> None:
    asked: list[tuple[str, str | None]] = []

    def head(label: str, instruction: str | None) -> str:
        asked.append((label, instruction))
        return oracle_answer

    answer = "two" if rule == "both" else "one"
    result = FailureAttribution(labels=["one", "two"], head=head).evaluate(
        output=answer, expected="seven", encoder_top_k=top_k, instruction="which digit?")
    assert asked == [("seven", "which digit?")]
    assert result.metadata["rule_blame"] == rule and result.label == blame
    assert result.metadata["oracle"] == verdict
    assert result.metadata["oracle_answer"] == oracle_answer


def test_the_oracle_is_not_asked_about_correct_rows() -> None:
    def head(label: str, instruction: str | None) -> str:
        raise AssertionError("a correct row needs no oracle")

    assert FailureAttribution(head=head).evaluate(
        output="seven", expected="seven", encoder_top_k=["seven"]).label == "correct"


def store_with(rows: list[dict]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    migrate(con)
    con.register("rows_arrow", pa.Table.from_pylist(rows, schema=PIPELINE_ROW_SCHEMA))
    con.execute("CREATE TABLE rows AS SELECT * FROM rows_arrow")
    return con


CASES = [
    # (answer, expected, top-k, cohort, checkpoint)
    ("seven", "seven", ["seven", "one"], "a", "c1"),
    ("one", "seven", ["seven", "one"], "a", "c1"),
    ("one", "seven", ["one", "seven"], "a", "c1"),
    ("two", "seven", ["one", "seven"], "b", "c1"),
    ("one", "seven", ["one", "two"], "b", "c2"),
    ("banana", "seven", ["seven"], "b", "c2"),
    ("The Seven", "seven", None, "b", "c2"),
    ("one", None, ["one"], "b", "c2"),
    ("one", "seven", ["seven", "one"], "a", "c1"),
]


def test_per_row_and_batch_blames_agree_and_the_summary_counts_them() -> None:
    # The per-row call knows only its own labels; given the run's, it judges alike.
    blame = FailureAttribution(labels=["one", "two", "seven"])
    rows = [{"row_id": f"r{i}", "trace_id": "t", "span_id": f"s{i}", "llm_span_id": f"l{i}",
             "output": a, "expected": e, "top_k_labels": k, "cohort": c,
             "checkpoint_sha256": ck, "instruction": "which digit?"}
            for i, (a, e, k, c, ck) in enumerate(CASES)]
    con = store_with(rows)
    run = run_evaluations(con, [blame], source="rows")
    stored = {r[0]: r[1:] for r in con.execute(
        "SELECT row_id, span_id, score, label, explanation, metadata FROM evaluations "
        "WHERE run_id = ?", [run.run_id]).fetchall()}
    for i, (answer, expected, top_k, _, _) in enumerate(CASES):
        single = blame.evaluate(output=answer, expected=expected, encoder_top_k=top_k)
        if expected is None:
            assert f"r{i}" not in stored
            continue
        span, score, label, explanation, metadata = stored[f"r{i}"]
        assert span == f"l{i}"
        assert (score, label, explanation) == (single.score, single.label, single.reason)
        assert orjson.loads(metadata) == single.metadata
    summary = run.summaries["failure_attribution"]
    assert summary["blame_counts"] == {"correct": 2, "encoder": 2, "language_head": 2,
                                       "both": 1, "unattributable": 1}
    assert summary["failing"] == 6
    assert summary["blame_encoder"] == pytest.approx(2 / 6)
    assert summary["blame_language_head"] == pytest.approx(2 / 6)
    assert summary["blame_both"] == pytest.approx(1 / 6)
    assert summary["skipped_reasons"] == {"no expected label": 1}
    # Rows where both sides read a label: all but "banana" and the row without an encoder.
    assert summary["disagreement_rate"] == pytest.approx(3 / 6)
    slices = {(p["cohort"], p["checkpoint_sha256"]): p for p in summary["by_cohort_checkpoint"]}
    assert slices[("a", "c1")] == {
        "cohort": "a", "checkpoint_sha256": "c1", "rows": 4, "failing": 3, "encoder": 1,
        "language_head": 2, "both": 0, "unattributable": 0, "blame_encoder": 1 / 3,
        "blame_language_head": 2 / 3, "blame_both": 0.0, "blame_unattributable": 0.0}
    assert slices[("b", "c2")]["unattributable"] == 1


def test_the_answer_can_name_any_label_of_the_run() -> None:
    # "two" is nobody's expected label or top-k in this row, but another row's.
    con = store_with([
        {"row_id": "a", "trace_id": "t", "output": "two", "expected": "seven",
         "top_k_labels": ["seven"]},
        {"row_id": "b", "trace_id": "t", "output": "two", "expected": "two",
         "top_k_labels": ["two"]}])
    run = run_evaluations(con, [BLAME], source="rows")
    labels = dict(con.execute("SELECT row_id, label FROM evaluations WHERE run_id = ?",
                              [run.run_id]).fetchall())
    assert labels == {"a": "language_head", "b": "correct"}


def test_bad_settings_fail_when_the_evaluator_is_made() -> None:
    with pytest.raises(ValueError, match="unknown alias table"):
        FailureAttribution(aliases=["klingon"])
    with pytest.raises(TypeError, match="head must be a callable"):
        FailureAttribution(head="gpt")  # type: ignore[arg-type]


def test_a_linear_probe_on_stored_embeddings_reads_rows_without_top_k() -> None:
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(0)
    centres = {"cat": np.eye(8)[0] * 5, "dog": np.eye(8)[1] * 5, "bird": np.eye(8)[2] * 5}
    names = list(centres)
    rows, vectors = [], []
    for i in range(60):
        expected = names[i % 3]
        seen = "dog" if i == 0 else expected  # row 0: the embedding looks like a dog
        answer = names[(i + 1) % 3] if i % 10 == 5 else seen
        rows.append({"row_id": f"r{i}", "trace_id": "t", "span_id": f"s{i}",
                     "output": answer, "expected": expected})
        vectors.append((f"r{i}", (centres[seen] + rng.normal(0, 0.3, 8)).tolist()))
    con = store_with(rows)
    con.executemany("INSERT INTO embeddings (trace_id, span_id, record_index, row_id, "
                    "dimension, vector) VALUES ('t', 'e', 0, ?, 8, ?)", vectors)
    plain = run_evaluations(con, [BLAME], source="rows").summaries["failure_attribution"]
    assert plain["blame_counts"]["unattributable"] == 7 and plain["failing"] == 7
    run = run_evaluations(con, [FailureAttribution(linear_probe=True)], source="rows")
    summary = run.summaries["failure_attribution"]
    probe = summary["linear_probe"]
    assert (probe["rows"], probe["folds"], probe["used_for_rows"]) == (60, 5, 60)
    assert probe["accuracy"] == pytest.approx(59 / 60)  # row 0 reads as a dog
    labels = dict(con.execute("SELECT row_id, label FROM evaluations WHERE run_id = ?",
                              [run.run_id]).fetchall())
    assert labels["r0"] == "encoder"
    assert {labels[f"r{i}"] for i in range(5, 60, 10)} == {"language_head"}
    assert summary["blame_counts"] == {"correct": 53, "encoder": 1, "language_head": 6,
                                       "both": 0, "unattributable": 0}


def test_a_linear_probe_without_embeddings_says_why_it_was_skipped() -> None:
    con = store_with([{"row_id": "r", "trace_id": "t", "output": "cat", "expected": "cat"}])
    summary = run_evaluations(con, [FailureAttribution(linear_probe=True)],
                              source="rows").summaries["failure_attribution"]
    assert summary["linear_probe"]["skipped"] == (
        "no row has both an embedding and an expected label")
    assert summary["blame_counts"]["correct"] == 1


def test_with_known_classes_an_expected_answer_that_is_no_class_is_unattributable() -> None:
    blame = FailureAttribution(classes=["zero", "one", "two", "three"])
    count = blame.evaluate(output="3", expected="2", encoder_top_k=["two", "one"])
    assert count.label == "unattributable"
    assert "'2' is not one of the classes" in count.reason
    probe = blame.evaluate(output="no", expected="yes", encoder_top_k=["three", "one"])
    assert probe.label == "unattributable"
    # classifications are still blamed as the rule table says
    assert blame.evaluate(output="one", expected="two",
                          encoder_top_k=["one", "two"]).label == "encoder"
    assert blame.evaluate(output="one", expected="two",
                          encoder_top_k=["two", "one"]).label == "language_head"
    # without classes=, expected answers are labels, so "2" vs the reading "two" is blamed
    assert FailureAttribution().evaluate(output="two", expected="2",
                                         encoder_top_k=["two"]).label == "encoder"
    assert blame.evaluate(output="two", expected="2",
                          encoder_top_k=["two"]).label == "unattributable"


def test_a_right_answer_that_is_no_class_is_correct_not_unattributable() -> None:
    blame = FailureAttribution(classes=["zero", "one", "two"])
    assert blame.evaluate(output="2", expected="2", encoder_top_k=["one"]).label == "correct"
    assert blame.evaluate(output="Yes.", expected="yes", encoder_top_k=["one"]).passed


def test_vlmscope_eval_classes_flag_keeps_counts_out_of_the_blame(traced) -> None:
    import vlmscope
    from vlmscope.cli import main

    from .conftest import query

    for row_id, expected, answer in (("count", "2", "two"), ("name", "two", "one")):
        with vlmscope.trace_row(row_id, expected=expected):
            with vlmscope.encoder_span("enc") as enc:
                enc.record(top_k_labels=[["one", "two"]], top_k_scores=[[0.6, 0.3]])
            with vlmscope.llm_span(model="head", instruction="q") as span:
                span.set_output(answer)
    vlmscope.shutdown()
    db = str(traced)
    assert main(["eval", "--db", db, "--evaluators", "failure_attribution", "--classes",
                 "zero,one,two,three"]) == 0
    assert main(["eval", "--db", db, "--evaluators", "failure_attribution"]) == 0
    labels = query(traced, "SELECT e.row_id, e.label FROM evaluations e JOIN eval_runs r "
                           "USING (run_id) ORDER BY r.created_at, e.row_id")
    assert labels == [("count", "unattributable"), ("name", "encoder"),
                      ("count", "both"), ("name", "encoder")]
