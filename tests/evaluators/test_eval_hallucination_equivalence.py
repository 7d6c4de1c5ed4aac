"""CaptionHallucination: the batch path (run over a stored table, a view, or the store's
``pipeline_rows``) and the per-row path agree on random captions - vocabulary words,
synonyms, plurals, two-word phrases, negations, punctuation, casing, odd whitespace - in
every mode."""

from __future__ import annotations

import duckdb
import orjson
import pyarrow as pa
import pytest

from tests.hallucination_corpus import USER_VOCABULARY, random_rows
from vlmscope.collectors import facts
from vlmscope.collectors.schema import migrate
from vlmscope.evaluators import CaptionHallucination, run_evaluations
from vlmscope.evaluators.base import PIPELINE_ROW_SCHEMA

ROWS = 600
PER_ROW = 120

MODES = [
    {},
    {"chair_compatible": True},
    {"objects_from_encoder": True, "encoder_threshold": 0.2},
    {"vocabularies": [USER_VOCABULARY, "coco"]},
]


def stored_verdicts(evaluator: CaptionHallucination, rows: list[dict],
                    source: str) -> tuple[dict, dict]:
    """Run ``evaluator`` over ``rows`` stored as a table (``source="table"``) or read through
    a view; the stored verdicts by row id, and the run summary."""
    con = duckdb.connect(config={"threads": 2})
    migrate(con)
    con.register("rows_arrow", pa.Table.from_pylist(rows, schema=PIPELINE_ROW_SCHEMA))
    con.execute("CREATE TABLE rows_table AS SELECT * FROM rows_arrow")
    con.execute("CREATE VIEW rows_view AS SELECT * FROM rows_table")
    if source == "pipeline":  # the store's own view, over its materialised rows
        con.execute("""
            INSERT INTO pipeline_row_facts BY NAME SELECT
                coalesce(trace_id, 't') AS trace_id, row_id, span_id AS row_span_id,
                run AS run_name, cohort, expected, objects, instruction AS llm_instruction,
                image_sha256 AS row_image_sha256, start_time AS row_start, encoder_model,
                checkpoint_sha256, top_k_labels, top_k_scores, embedding_dim,
                encoder_entropy, llm_model, output, input_tokens, output_tokens, encoder_ms,
                llm_ms, row_ms, error AS row_error, encoder_span_id, llm_span_id
            FROM rows_table""")
        assert facts.stored_rows_sql(con) is not None
    run = run_evaluations(con, [evaluator], source="pipeline_rows" if source == "pipeline"
                          else f"rows_{source}")
    verdicts = {r[0]: (r[1], r[2], r[3], r[4], orjson.loads(r[5])) for r in con.execute(
        "SELECT row_id, score, passed, label, explanation, metadata FROM evaluations "
        "WHERE run_id = ?", [run.run_id]).fetchall()}
    return verdicts, run.summaries[evaluator.name]


@pytest.mark.parametrize("mode", range(len(MODES)))
def test_batch_and_per_row_paths_agree_on_random_captions(mode: int) -> None:
    rows = random_rows(seed=mode, count=ROWS)
    evaluator = CaptionHallucination(**MODES[mode])
    table, summary = stored_verdicts(evaluator, rows, "table")
    view, view_summary = stored_verdicts(evaluator, rows, "view")
    assert table == view and summary == view_summary
    stored, stored_summary = stored_verdicts(evaluator, rows, "pipeline")
    assert table == stored and summary == stored_summary
    # The corpus exercises what it is meant to.
    kinds = [v[4]["kind"] for v in table.values()]
    assert kinds.count("probe") > 30 and kinds.count("caption") > 300
    negated = sum(bool(v[4].get("negated")) for v in table.values())
    assert negated == 0 if evaluator.chair_compatible else negated > 20
    assert sum(bool(v[4].get("hallucinated")) for v in table.values()) > 100
    assert summary["skipped"] > 0

    mentions = hallucinated = truth = covered = hallucinating = captions = 0
    for row in rows[:PER_ROW]:
        single = evaluator.evaluate(
            output=row["output"], objects=row["objects"], instruction=row["instruction"],
            top_k_labels=row["top_k_labels"], top_k_scores=row["top_k_scores"])
        if single.score is None:
            assert row["row_id"] not in table
            continue
        assert table[row["row_id"]] == (single.score, single.passed, single.label,
                                        single.reason, single.metadata)
    for score, passed, _label, _explanation, metadata in table.values():
        if metadata["kind"] != "caption":
            continue
        m, h = metadata["mentioned"], metadata["hallucinated"]
        gt = metadata["ground_truth_objects"]
        assert h == [x for x in m if x not in gt]
        assert metadata["missed"] == [x for x in gt if x not in m]
        if evaluator.chair_compatible:  # CHAIR-i per mention: every occurrence counts
            assert sorted(set(metadata["mentions"])) == m
            h = [x for x in metadata["mentions"] if x not in gt]
            m = metadata["mentions"]
        assert passed == (not h) and score == pytest.approx(1 - len(h) / len(m) if m else 1.0)
        mentions, hallucinated = mentions + len(m), hallucinated + len(h)
        truth, covered = truth + len(gt), covered + len(set(gt) & set(m))
        hallucinating += bool(h)
        captions += 1
    assert summary["captions"] == captions
    assert summary["chair_i"] == pytest.approx(hallucinated / mentions)
    assert summary["chair_s"] == pytest.approx(hallucinating / captions)
    assert summary["coverage"] == pytest.approx(covered / truth)


def test_rows_whose_mention_sets_differ_keep_their_own_mentions() -> None:
    # Sets of mentions are joined by a key made of their members' hashes: these pairs would
    # share one if a member's hash combined object and negation linearly.
    captions = ["a dog and no dog, no cat", "a cat", "a bus, no bus. a sofa, no sofa",
                "a bed", "no cat, a cat", "no dog, a dog"]
    rows = [{"row_id": f"r{i}", "trace_id": "t", "span_id": f"s{i}", "output": caption,
             "objects": ["bed"]} for i, caption in enumerate(captions)]
    evaluator = CaptionHallucination()
    table, _ = stored_verdicts(evaluator, rows, "table")
    assert [(table[f"r{i}"][4]["mentioned"], table[f"r{i}"][4]["negated"])
            for i in range(len(captions))] == [
        (["dog"], ["cat", "dog"]), (["cat"], []), (["bus", "couch"], ["bus", "couch"]),
        (["bed"], []), (["cat"], ["cat"]), (["dog"], ["dog"])]
