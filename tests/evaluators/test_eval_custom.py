"""CustomEvaluation (SQL and Python rules) and ``vlmscope eval`` with the new evaluators."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from vlmscope.cli import main
from vlmscope.collectors import facts
from vlmscope.collectors.schema import migrate
from vlmscope.evaluators import CustomEvaluation, run_evaluations
from vlmscope.evaluators.base import PIPELINE_ROW_SCHEMA
from vlmscope.evaluators.custom import parse_custom

ROWS = [
    {"row_id": "r0", "output": "a cat", "expected": "cat", "objects": ["cat"],
     "top_k_labels": ["cat", "dog"], "instruction": "Describe the image."},
    {"row_id": "r1", "output": "a dog and a cat on a sofa", "expected": "cat",
     "objects": ["cat", "couch"], "top_k_labels": ["dog", "cat"],
     "instruction": "Describe the image."},
    {"row_id": "r2", "output": "dog", "expected": "cat", "objects": ["cat"],
     "top_k_labels": ["cat", "dog"], "instruction": "What animal is this?"},
    {"row_id": "r3", "output": None, "expected": None, "objects": None,
     "top_k_labels": None, "instruction": None},
]


def table_store(path: Path | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path) if path else ":memory:")
    migrate(con)
    rows = [{"trace_id": "t", "span_id": f"s{i}", "llm_span_id": f"l{i}", **row}
            for i, row in enumerate(ROWS)]
    con.register("rows_arrow", pa.Table.from_pylist(rows, schema=PIPELINE_ROW_SCHEMA))
    con.execute("CREATE TABLE rows AS SELECT * FROM rows_arrow")
    return con


def test_a_sql_rule_scores_every_row_and_is_stored_under_its_name() -> None:
    con = table_store()
    rule = CustomEvaluation("short_answer", sql="length(output) <= 5", threshold=1.0)
    run = run_evaluations(con, [rule], source="rows")
    stored = con.execute("SELECT row_id, score, passed, label, explanation FROM evaluations "
                         "WHERE run_id = ? AND evaluator = 'short_answer' ORDER BY row_id",
                         [run.run_id]).fetchall()
    assert stored == [("r0", 1.0, True, "pass", "short_answer scored 1 >= threshold 1"),
                      ("r1", 0.0, False, "fail", "short_answer scored 0 < threshold 1"),
                      ("r2", 1.0, True, "pass", "short_answer scored 1 >= threshold 1")]
    summary = run.summaries["short_answer"]
    assert (summary["judged"], summary["passed"]) == (3, 2)
    assert summary["mean_score"] == pytest.approx(2 / 3)
    assert summary["skipped_reasons"] == {"the rule gave no score": 1}
    config = con.execute("SELECT config FROM eval_runs WHERE run_id = ?",
                         [run.run_id]).fetchall()[0][0]
    assert json.loads(config) == {"kind": "sql", "rule": "length(output) <= 5",
                                  "threshold": 1.0}


def test_a_numeric_sql_rule_passes_at_its_threshold() -> None:
    rule = CustomEvaluation("overlap", sql="len(list_intersect(objects, top_k_labels)) "
                            "/ len(objects)", threshold=0.75)
    assert rule.evaluate(objects=["cat", "dog"], top_k_labels=["cat"]).passed is False
    assert rule.evaluate(objects=["cat"], top_k_labels=["cat"]).score == 1.0


def test_a_python_rule_gets_each_row_and_may_give_a_reason() -> None:
    seen: list[str] = []

    def polite(row: dict) -> tuple[float, str] | None:
        seen.append(row["row_id"])
        if row["output"] is None:
            return None
        return float("cat" in row["output"]), f"{len(row['output'])} characters"

    con = table_store()
    rule = CustomEvaluation("mentions_cat", fn=polite)
    run = run_evaluations(con, [rule], source="rows")
    assert sorted(seen) == ["r0", "r1", "r2", "r3"]
    stored = dict(con.execute("SELECT row_id, explanation FROM evaluations WHERE run_id = ?",
                              [run.run_id]).fetchall())
    assert stored == {"r0": "mentions_cat scored 1 >= threshold 0.5; 5 characters",
                      "r1": "mentions_cat scored 1 >= threshold 0.5; 25 characters",
                      "r2": "mentions_cat scored 0 < threshold 0.5; 3 characters"}
    assert run.summaries["mentions_cat"]["skipped"] == 1
    single = rule.evaluate(output="a dog")
    assert (single.score, single.reason) == (
        0.0, "mentions_cat scored 0 < threshold 0.5; 5 characters")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"name": "x"}, "needs exactly one of sql="),
    ({"name": "x", "sql": "1", "fn": len}, "needs exactly one of sql="),
    ({"name": "bad name", "sql": "1"}, "must start with a letter"),
    ({"name": "x", "sql": "1; DROP TABLE spans"}, "without ';'"),
])
def test_bad_rules_fail_when_made(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CustomEvaluation(**kwargs)


def test_a_sql_rule_that_does_not_bind_names_itself() -> None:
    con = table_store()
    with pytest.raises(ValueError, match="custom evaluator 'colour'.*colour = 'red'"):
        run_evaluations(con, [CustomEvaluation("colour", sql="colour = 'red'")], source="rows")


def test_a_python_rule_returning_text_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="fn returned str"):
        CustomEvaluation("x", fn=lambda row: "yes").evaluate(output="a")


def test_the_cli_form_sets_name_threshold_and_expression() -> None:
    rule = parse_custom("short@0.9=length(output) < 10")
    assert (rule.name, rule.sql, rule.threshold) == ("short", "length(output) < 10", 0.9)
    with pytest.raises(ValueError, match="expected NAME=SQL_EXPRESSION"):
        parse_custom("short")


@pytest.fixture
def store_file(tmp_path: Path) -> Path:
    """A store whose pipeline_rows view has the rows (written as per-row records)."""
    db = tmp_path / "store.duckdb"
    con = duckdb.connect(str(db))
    migrate(con)
    for i, row in enumerate(ROWS):
        con.execute("INSERT INTO row_records (trace_id, span_id, row_id, cohort, expected, "
                    "objects, instruction, start_time, status_code) VALUES "
                    "('t', ?, ?, 'c', ?, ?, ?, TIMESTAMP '2026-01-01', 'OK')",
                    [f"s{i}", row["row_id"], row["expected"], row["objects"],
                     row["instruction"]])
        if row["top_k_labels"] is not None:
            con.execute("INSERT INTO encoder_records (trace_id, span_id, record_index, row_id, "
                        "checkpoint_sha256, top_k_labels, top_k_scores, start_time) VALUES "
                        "('t', ?, 0, ?, 'abc', ?, [0.6, 0.3], TIMESTAMP '2026-01-01')",
                        [f"e{i}", row["row_id"], row["top_k_labels"]])
        con.execute("INSERT INTO llm_records (trace_id, span_id, record_index, row_id, output, "
                    "start_time) VALUES ('t', ?, 0, ?, ?, TIMESTAMP '2026-01-01')",
                    [f"l{i}", row["row_id"], row["output"]])
    facts.refresh(con)  # records written with SQL: rebuild the materialised pipeline_rows
    con.close()
    return db


def test_vlmscope_eval_summarises_the_new_evaluators_and_custom_rules(store_file: Path,
                                                                      capsys) -> None:
    status = main(["eval", "--db", str(store_file), "--evaluators",
                   "caption_hallucination,failure_attribution,instruction_adherence",
                   "--custom", "short@1=length(output) <= 5", "--format", "json",
                   "--fail-under", "adherence=0.1"])
    summary = json.loads(capsys.readouterr().out)
    assert status == 0
    # Mentions: r0 cat; r1 cat, couch, dog (dog hallucinated); r2 dog (hallucinated).
    assert summary["chair_i"] == pytest.approx(2 / 5)
    assert summary["chair_s"] == pytest.approx(2 / 3)
    assert summary["coverage"] == pytest.approx(3 / 4)
    # r2: encoder says cat, LLM says dog (the head's); r1: the caption repeats the dog the
    # encoder reported (its top-1) where there is none (the encoder's).
    assert summary["blame_language_head"] == 0.5 and summary["blame_encoder"] == 0.5
    assert summary["blame_unattributable"] == 0.0 and summary["blame_both"] == 0.0
    assert 0 < summary["adherence"] < 1
    assert summary["custom"]["short"]["passed"] == 2
    assert summary["thresholds"] == [{"metric": "adherence", "threshold": 0.1,
                                      "value": summary["adherence"], "passed": True}]


def test_vlmscope_eval_prints_the_new_metrics_in_its_table(store_file: Path, capsys) -> None:
    status = main(["eval", "--db", str(store_file), "--evaluators",
                   "caption_hallucination,failure_attribution", "--custom", "short=1"])
    out = capsys.readouterr().out
    assert status == 0
    for metric in ("chair_i", "chair_s", "coverage", "blame_encoder", "blame_language_head",
                   "blame_both", "custom short (pass rate)"):
        assert metric in out
    assert "Blame of the failing rows per cohort and checkpoint" in out


def test_vlmscope_eval_rejects_the_custom_evaluator_without_a_rule(store_file: Path,
                                                                   capsys) -> None:
    status = main(["eval", "--db", str(store_file), "--evaluators", "custom"])
    assert status == 2 and "--custom NAME=SQL" in capsys.readouterr().err


def test_two_evaluators_of_one_name_in_one_run_are_refused_before_anything_is_written():
    """Their summaries would share a key and their rows an evaluator name: the run says so
    and writes nothing; two custom rules of different names run together."""
    from vlmscope.evaluators import FailureAttribution

    con = table_store()
    with pytest.raises(ValueError, match="failure_attribution given more than once"):
        run_evaluations(con, [FailureAttribution(), FailureAttribution(encoder_threshold=0.7)],
                        source="rows")
    with pytest.raises(ValueError, match="same given more than once"):
        run_evaluations(con, [CustomEvaluation("same", sql="1.0"),
                              CustomEvaluation("same", sql="0.0")], source="rows")
    assert con.execute("SELECT count(*) FROM evaluations").fetchall() == [(0,)]
    assert con.execute("SELECT count(*) FROM eval_runs").fetchall() == [(0,)]
    run = run_evaluations(con, [CustomEvaluation("high", sql="1.0"),
                                CustomEvaluation("low", sql="0.0")], source="rows")
    assert run.summaries["high"]["passed"] == 4 and run.summaries["low"]["passed"] == 0
