"""instruction_adherence, multilabel_report and custom summaries merged from parts of the rows
equal the one-run summary exactly: over random rows split at random, and over a real Parquet
export cut into its date/service partitions (evaluated as a Ray task evaluates one, without
Ray here; test_ray.py runs them on a cluster)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from tests.merge_corpus import merged_evaluators, random_rows, traced_export
from vlmscope.collectors.schema import migrate
from vlmscope.evaluators import (
    Evaluator,
    RowEvaluator,
)
from vlmscope.evaluators.merge import check_mergeable, evaluate_part, merge_parts
from vlmscope.evaluators.runner import run_evaluations


def one_run(con: duckdb.DuckDBPyConnection, source: str = "pipeline_rows",
            variant: int = 0) -> dict:
    return run_evaluations(con, merged_evaluators(variant), source=source).summaries


def in_parts(table: pa.Table, parts: int, seed: int, variant: int) -> dict:
    order = np.random.default_rng(seed).permutation(table.num_rows)
    cuts = sorted(random.Random(seed).sample(range(1, table.num_rows), parts - 1))
    chosen = merged_evaluators(variant)
    results: dict[str, list] = {ev.name: [] for ev in chosen}
    for piece in np.split(order, cuts):
        con = duckdb.connect()
        migrate(con)
        con.register("part_arrow", table.take(piece))
        con.execute("CREATE TEMP TABLE part AS SELECT * FROM part_arrow")
        for ev in chosen:
            results[ev.name].append(evaluate_part(con, ev, "part", "run-id"))
        con.close()
    return {ev.name: merge_parts(ev, results[ev.name]) for ev in chosen}


def check_worth_comparing(summary: dict) -> None:
    """The summaries compared hold real numbers (a comparison of Nones proves nothing)."""
    adherence = summary["instruction_adherence"]
    assert adherence["judged"] > 100 and 0 < adherence["adherence"] < 1
    assert len(adherence["instruction_types"]) >= 4 and len(adherence["failed_checks"]) >= 4
    assert adherence.get("judge", {"rows": adherence["judged"]})["rows"] == adherence["judged"]
    report = summary["multilabel_report"]
    assert report["rows"] > 100 and 0 < report["mean_average_precision"] < 1
    assert 0 < report["subset_accuracy"] < 1 and report["skipped"] > 0
    assert summary["tenth"]["mean_score"] > 0 and summary["by_length"]["judged"] > 100


@pytest.mark.parametrize(("seed", "parts"), [
    (0, 2), (1, 3), *(pytest.param(seed, parts, marks=pytest.mark.slow)
                      for seed, parts in [(2, 4), (3, 5), (4, 7), (5, 9)])])
def test_adherence_multilabel_and_custom_merged_from_random_parts_equal_the_one_run(
        seed: int, parts: int) -> None:
    table = random_rows(seed, 700)
    con = duckdb.connect()
    con.register("rows_arrow", table)
    con.execute("CREATE TABLE all_rows AS SELECT * FROM rows_arrow")
    variant = seed % 2
    expected = one_run(con, "all_rows", variant)
    check_worth_comparing(expected)
    assert in_parts(table, parts, seed, variant) == expected


@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.slow)])
def test_a_parquet_export_evaluated_partition_by_partition_merges_to_the_one_run(
        tmp_path: Path, seed: int) -> None:
    from vlmscope.collectors.shards import ShardRoot, open_root
    from vlmscope.distributed.evaluate import evaluate_partition

    folder = traced_export(tmp_path, random_rows(seed, 400), services=4)
    con = open_root(folder)
    try:
        expected = one_run(con, variant=seed)
    finally:
        con.close()
    check_worth_comparing(expected)
    root = ShardRoot(str(folder))
    partitions = root.partitions()
    assert len(partitions) == 4
    chosen = merged_evaluators(seed)
    filters = {"cohort": None, "checkpoint": None, "run": None}
    parts = [evaluate_partition(root, files, chosen, "run-id", filters)
             for files in partitions]
    merged = {ev.name: merge_parts(ev, [p.summaries[i] for p in parts])
              for i, ev in enumerate(chosen)}
    assert merged == expected


class CountsOnly(RowEvaluator):
    """A user's row evaluator whose summary is the counts: it merges."""

    name = "counts_only"
    description = "passes rows with an answer"
    required_columns = ("row_id", "trace_id", "span_id", "output")

    def config(self) -> dict[str, Any]:
        return {}

    def skip_reason_sql(self) -> str:
        return "NULL"

    def judge_sql(self, source: str) -> str:
        return (f"SELECT row_id, trace_id, span_id, 1.0 AS score, output IS NOT NULL AS "
                f"passed, 'ok' AS label, '' AS explanation, '{{}}' AS metadata FROM {source}")


class AddsAKey(CountsOnly):
    """A user's row evaluator that adds a summary key without additive statistics."""

    name = "adds_a_key"

    def run(self, con: duckdb.DuckDBPyConnection, source: str, run_id: str) -> dict[str, Any]:
        return {**super().run(con, source, run_id), "median": 0.5}


class WholeRelation(Evaluator):
    """A user's evaluator that summarises the whole relation in one go."""

    name = "whole_relation"
    description = "rows"
    required_columns = ()

    def config(self) -> dict[str, Any]:
        return {}

    def run(self, con: duckdb.DuckDBPyConnection, source: str, run_id: str) -> dict[str, Any]:
        return {"rows": con.execute(f"SELECT count(*) FROM {source}").fetchall()[0][0]}


def test_evaluators_of_your_own_merge_by_the_documented_rule_or_are_refused_with_it() -> None:
    check_mergeable(CountsOnly())
    with pytest.raises(ValueError, match="adds summary keys to the counts without additive "
                                         "statistics.*summarise_statistics"):
        check_mergeable(AddsAKey())
    with pytest.raises(ValueError, match="not a row evaluator.*additive statistics"):
        check_mergeable(WholeRelation())
    for evaluator in merged_evaluators(0) + merged_evaluators(1):
        check_mergeable(evaluator)


@pytest.mark.parametrize("seed", range(6))
def test_exact_sums_equal_fraction_sums_and_merged_means_do_not_depend_on_the_cut(
        seed: int) -> None:
    from fractions import Fraction

    from vlmscope.evaluators.exact import exact_mean, exact_mean_of, exact_sum, exact_sum_table

    rng = random.Random(seed)
    values = [(rng.uniform(-1, 1) * 10.0 ** rng.randint(-320, 300), rng.randint(1, 10**12))
              for _ in range(400)] + [(0.0, 3), (-0.0, 1), (5e-324, 7), (None, 4),
                                      (rng.random(), 1)]
    reference = sum((Fraction(v) * n for v, n in values if v is not None), Fraction(0))
    assert exact_sum(values) == (sum(n for v, n in values if v is not None), reference)
    mean = exact_mean_of(values)
    assert mean == float(reference / sum(n for v, n in values if v is not None))
    for parts in (2, 5, 17):
        shuffled = values[:]
        rng.shuffle(shuffled)
        tables = [exact_sum_table(shuffled[i::parts]) for i in range(parts)]
        rows = [(t["n"][0].as_py(), t["sum_numerator"][0].as_py(),
                 t["sum_denominator"][0].as_py()) for t in tables]
        assert exact_mean(rows) == mean
    assert exact_mean_of([(1.0, 2), (float("inf"), 1)]) == float("inf")
    assert exact_mean([(1, "inf", "0"), (2, "3", "1")]) == float("inf")
    assert exact_mean_of([]) is None
