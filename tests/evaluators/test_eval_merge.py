"""Summaries merged from parts of the rows equal the summary of all the rows at once.

No Ray here: the parts are judged on one DuckDB connection each, exactly as a Ray task
judges its partition (``vlmscope.evaluators.merge``); test_ray.py runs them on a cluster.
"""

from __future__ import annotations

import random

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from vlmscope.evaluators import (
    CaptionHallucination,
    ClassificationReport,
    FailureAttribution,
    GroundTruthMatch,
)
from vlmscope.evaluators.base import PIPELINE_ROW_SCHEMA
from vlmscope.evaluators.merge import check_mergeable, evaluate_part, merge_parts
from vlmscope.evaluators.runner import run_evaluations

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def random_rows(n: int, seed: int) -> pa.Table:
    """``n`` pipeline rows like a digit classifier's: float32 softmax top-3, answers that
    are mostly the top-1, some the expected label, some wrong or empty, some rows without
    ground truth or without an encoder reading; two cohorts and two checkpoints."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        expected = WORDS[rng.integers(10)]
        logits = rng.normal(size=10).astype(np.float32)
        logits[WORDS.index(expected)] += rng.uniform(0, 3)
        scores = np.exp(logits) / np.exp(logits).sum()
        order = np.argsort(-scores)[:3]
        top = [WORDS[j] for j in order]
        roll = rng.uniform()
        output = (top[0] if roll < 0.6 else expected if roll < 0.75
                  else "" if roll < 0.8 else WORDS[rng.integers(10)])
        rows.append({
            "row_id": f"r{i}", "trace_id": f"t{i // 7}", "span_id": f"s{i}",
            "run": "run", "cohort": ["clean", "blurred"][int(rng.integers(2))],
            "expected": None if rng.uniform() < 0.03 else expected,
            "objects": None, "checkpoint_sha256": ["a" * 64, "b" * 64][int(rng.integers(2))],
            "top_k_labels": None if rng.uniform() < 0.03 else top,
            "top_k_scores": [float(np.float32(scores[j])) for j in order],
            "instruction": "which digit is this?", "output": output,
            "llm_span_id": f"l{i}", "embedding_dim": 512, "status": "OK",
        })
    return pa.Table.from_pylist(rows, schema=PIPELINE_ROW_SCHEMA)


def evaluators() -> list:
    return [GroundTruthMatch(), ClassificationReport(slice_by=["cohort"]),
            FailureAttribution(classes=WORDS)]


def one_run(table: pa.Table) -> dict:
    con = duckdb.connect()
    con.register("rows_arrow", table)
    con.execute("CREATE TABLE all_rows AS SELECT * FROM rows_arrow")
    return run_evaluations(con, evaluators(), source="all_rows").summaries


def merged_run(table: pa.Table, parts: int, seed: int) -> dict:
    order = list(range(table.num_rows))
    random.Random(seed).shuffle(order)
    cuts = sorted(random.Random(seed + 1).sample(range(1, table.num_rows), parts - 1))
    pieces = [order[a:b] for a, b in zip([0, *cuts], [*cuts, table.num_rows], strict=True)]
    chosen = evaluators()
    results = {ev.name: [] for ev in chosen}
    for piece in pieces:
        con = duckdb.connect()
        con.execute("SET threads = 1")
        from vlmscope.collectors.schema import migrate

        migrate(con)
        con.register("part_arrow", table.take(piece))
        con.execute("CREATE TEMP TABLE part AS SELECT * FROM part_arrow")
        for ev in chosen:
            results[ev.name].append(evaluate_part(con, ev, "part", "run-id"))
    return {ev.name: merge_parts(ev, results[ev.name]) for ev in chosen}


@pytest.mark.parametrize(("seed", "parts"), [(0, 2), (1, 3), (2, 5), (3, 8)])
def test_summaries_merged_from_random_parts_equal_the_one_run_to_the_last_digit(
        seed: int, parts: int) -> None:
    table = random_rows(1500, seed)
    expected = one_run(table)
    merged = merged_run(table, parts, seed)
    assert merged == expected
    assert expected["failure_attribution"]["failing"] > 100  # blame has something to count
    assert expected["classification_report"]["ece"] is not None


def test_a_part_with_no_judged_rows_merges_to_the_same_summary() -> None:
    table = random_rows(300, 9)
    empty = table.filter(pa.compute.is_null(table["expected"]))
    assert empty.num_rows > 0
    rest = table.filter(pa.compute.is_valid(table["expected"]))
    whole = one_run(pa.concat_tables([rest, empty]))
    chosen = evaluators()
    parts = {ev.name: [] for ev in chosen}
    from vlmscope.collectors.schema import migrate

    for piece in (rest, empty):
        con = duckdb.connect()
        migrate(con)
        con.register("part_arrow", piece)
        con.execute("CREATE TEMP TABLE part AS SELECT * FROM part_arrow")
        for ev in chosen:
            parts[ev.name].append(evaluate_part(con, ev, "part", "run-id"))
    assert {ev.name: merge_parts(ev, parts[ev.name]) for ev in chosen} == whole


@pytest.mark.parametrize(("seed", "parts"), [(0, 2), (1, 5)])
def test_chair_and_pope_merged_from_random_parts_equal_the_one_run(seed: int,
                                                                   parts: int) -> None:
    from tests.hallucination_corpus import USER_VOCABULARY
    from tests.hallucination_corpus import random_rows as caption_rows

    table = pa.Table.from_pylist(caption_rows(seed, 600), schema=PIPELINE_ROW_SCHEMA)
    chosen = [CaptionHallucination(["coco", USER_VOCABULARY])]
    con = duckdb.connect()
    con.register("rows_arrow", table)
    con.execute("CREATE TABLE all_rows AS SELECT * FROM rows_arrow")
    expected = run_evaluations(con, chosen, source="all_rows").summaries[chosen[0].name]
    pieces = np.array_split(np.random.default_rng(seed).permutation(table.num_rows), parts)
    from vlmscope.collectors.schema import migrate

    results = []
    for piece in pieces:
        part = duckdb.connect()
        migrate(part)
        part.register("part_arrow", table.take(piece))
        part.execute("CREATE TEMP TABLE part AS SELECT * FROM part_arrow")
        results.append(evaluate_part(part, chosen[0], "part", "run-id"))
    assert merge_parts(chosen[0], results) == expected
    assert expected["pope_probes"] > 0 and expected["mentions"] > 0


@pytest.mark.parametrize(("evaluator", "reason"), [
    (ClassificationReport(classes_from_encoder=True), "classes_from_encoder"),
    (FailureAttribution(linear_probe=True), "linear_probe"),
])
def test_evaluators_whose_summary_needs_all_rows_at_once_are_refused_by_name(
        evaluator, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        check_mergeable(evaluator)
