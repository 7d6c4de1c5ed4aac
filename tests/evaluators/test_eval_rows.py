"""``evaluate_rows``: many rows judged by one run of the SQL equal a run over the same rows
and, for row-local rules, the rows judged one at a time; in order, skipped rows included."""

from __future__ import annotations

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pytest

from vlmscope.collectors.schema import migrate
from vlmscope.evaluators import (
    CaptionHallucination,
    CustomEvaluation,
    FailureAttribution,
    GroundTruthMatch,
    ImageInstructionAdherence,
    run_evaluations,
)
from vlmscope.evaluators.base import PIPELINE_ROW_SCHEMA

WORDS = ["cat", "Cat.", "the cat", "dog", "a dog", "kitten", "3", "2.9", "", None, "DOG!",
         "a cat and a dog on a sofa", "no dog here", "is there a cat?", "yes", "no"]


def random_rows(seed: int, n: int) -> list[dict]:
    rng = np.random.default_rng(seed)

    def pick() -> str | None:
        return WORDS[int(rng.integers(len(WORDS)))]

    def words(most: int) -> list[str] | None:
        listed = [w for w in (pick() for _ in range(int(rng.integers(most)))) if w]
        return listed or None

    return [{"output": pick(), "expected": pick(), "instruction": pick(),
             "objects": words(3), "top_k_labels": words(4)} for _ in range(n)]


EVALUATORS = [
    *(GroundTruthMatch(mode=mode, k=2, abs_tol=0.2)
      for mode in ("exact", "normalized", "synonyms", "set", "numeric", "top_k")),
    CaptionHallucination(),
    ImageInstructionAdherence(),
    FailureAttribution(),
    FailureAttribution(classes=["cat", "dog"]),
    CustomEvaluation("short", sql="length(coalesce(output, '')) < 5"),
    CustomEvaluation("has_cat", fn=lambda row: float("cat" in (row["output"] or ""))),
]


def stored_run(evaluator, rows: list[dict]) -> dict[str, tuple]:
    """The evaluations a run over ``rows`` (as a stored table) writes, by row id."""
    con = duckdb.connect()
    migrate(con)
    con.register("given", pa.Table.from_pylist(
        [{**row, "row_id": str(i), "trace_id": "t", "span_id": f"s{i}"}
         for i, row in enumerate(rows)], schema=PIPELINE_ROW_SCHEMA))
    con.execute("CREATE TABLE rows AS SELECT * FROM given")
    run_evaluations(con, [evaluator], source="rows")
    return {row_id: rest for row_id, *rest in con.execute(
        "SELECT row_id, score, passed, label, explanation, metadata FROM evaluations"
    ).fetchall()}


@pytest.mark.parametrize("evaluator", EVALUATORS, ids=lambda e: f"{e.name}-{e.config()}")
def test_rows_judged_together_equal_a_run_over_the_same_rows(evaluator) -> None:
    rows = random_rows(seed=len(evaluator.name), n=80)
    together = evaluator.evaluate_rows(rows)
    stored = stored_run(evaluator, rows)
    for i, result in enumerate(together):
        if result.score is None:
            assert str(i) not in stored
            continue
        score, passed, label, explanation, metadata = stored[str(i)]
        assert (result.score, result.passed, result.label, result.reason) == (
            score, passed, label, explanation)
        assert result.metadata == (orjson.loads(metadata) if metadata else {})
    assert len(stored) == sum(r.score is not None for r in together)
    # The random rows reach both branches: some judged and, where the evaluator skips rows
    # (no expected label, caption or instruction; a custom rule scores every row), some
    # skipped.
    skips = not isinstance(evaluator, CustomEvaluation)
    assert len(stored) > 0 and (len(stored) < len(rows)) == skips


@pytest.mark.parametrize("evaluator", [e for e in EVALUATORS
                                       if not isinstance(e, FailureAttribution)],
                         ids=lambda e: f"{e.name}-{e.config()}")
def test_rows_judged_together_equal_rows_judged_one_at_a_time(evaluator) -> None:
    """Row-local rules give each row the same result alone or in company (FailureAttribution
    is not row-local: its label vocabulary is every label the relation's encoder ranked)."""
    rows = random_rows(seed=len(evaluator.name), n=80)
    assert evaluator.evaluate_rows(rows) == [evaluator.evaluate_row(row) for row in rows]


def test_row_ids_are_kept_apart_from_the_order_of_the_results() -> None:
    """Users' row ids (repeated, missing) do not mix up which result is whose."""
    match = GroundTruthMatch()
    rows = [{"row_id": "same", "output": "cat", "expected": "cat"},
            {"row_id": "same", "output": "dog", "expected": "cat"},
            {"output": None, "expected": "cat"},
            {"row_id": "x", "output": "cat", "expected": None}]
    labels = [r.label for r in match.evaluate_rows(rows)]
    assert labels == ["match", "mismatch", "no_answer", "skipped"]
    assert match.evaluate_rows([]) == []
    with pytest.raises(ValueError, match="unknown column"):
        match.evaluate_rows([{"output": "cat"}, {"answer": "cat"}])
