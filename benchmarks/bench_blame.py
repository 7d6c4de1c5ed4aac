"""Benchmark: FailureAttribution over 1,000,000 stored multi-object rows of every instruction
kind.

Writes N demo-like rows into a table with the ``pipeline_rows`` columns of a fresh store:
scenes of 1-3 of the ten digits, a multi-label encoder's ten sigmoid scores (sorted, so the
order of the low scores differs from row to row; a digit missed or invented now and then),
and an instruction of one of the five kinds (name, list, count, yes/no probe, describe; the
kind given with the row half the time, read from the instruction otherwise) with an answer
that is right, follows the encoder, drops, adds or swaps a digit. Then it times
``run_evaluations`` end to end (judge every row, write one ``evaluations`` row each,
summarise, write ``eval_runs``, commit).

Run: ``.venv/bin/python benchmarks/bench_blame.py [--rows N] [--threads T]
[--against OLD_ATTRIBUTION_PY]`` (with ``--against``, an older ``evaluators/attribution.py`` and
this code run in turn, twice, on the same rows: the ratio in one run, verdicts compared).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
import time
from pathlib import Path

import duckdb

from vlmscope.collectors.schema import migrate
from vlmscope.evaluators import FailureAttribution, run_evaluations

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def write_rows(con: duckdb.DuckDBPyConnection, rows: int) -> None:
    """``rows`` demo-like pipeline rows into the table ``rows``."""
    digits = "[" + ", ".join(f"'{d}'" for d in DIGITS) + "]"
    con.execute(f"""
        CREATE TABLE rows AS
        WITH base AS (
            SELECT i, list_sort(list_distinct([{digits}[1 + (hash(i * 8 + j) % 10)::BIGINT]
                                               FOR j IN range(1 + i % 3)])) AS objects,
                   ['name', 'list', 'count', 'probe', 'describe'][
                       1 + (hash(i * 8 + 4) % 5)::BIGINT] AS kind,
                   (hash(i * 8 + 5) % 6)::INTEGER AS variant,
                   {digits}[1 + (hash(i * 8 + 6) % 10)::BIGINT] AS other,
                   (hash(i * 8 + 7) % 20)::INTEGER AS fault
            FROM range({rows}) r(i)
        ), scored AS (
            SELECT *, list_reverse_sort(list_transform(range(10), lambda d: struct_pack(
                score := CASE WHEN list_contains(objects, {digits}[d + 1])
                              THEN CASE WHEN fault = 0 AND {digits}[d + 1] = objects[1]
                                        THEN 0.2 ELSE 0.6 + (hash(i * 16 + d) % 390) / 1000
                                        END
                              WHEN fault = 1 AND {digits}[d + 1] = other THEN 0.8
                              ELSE (hash(i * 16 + d) % 300) / 1000 END,
                label := {digits}[d + 1]))) AS ranked
            FROM base
        ), read AS (
            SELECT *, list_transform(ranked, lambda x: x.label) AS top_k_labels,
                   list_transform(ranked, lambda x: x.score) AS top_k_scores,
                   list_sort(list_transform(list_filter(ranked, lambda x: x.score >= 0.5),
                                            lambda x: x.label)) AS reading
            FROM scored
        ), asked AS (
            SELECT *, CASE kind
                WHEN 'name' THEN objects[1]
                WHEN 'list' THEN array_to_string(objects, ' ')
                WHEN 'count' THEN len(objects)::VARCHAR
                WHEN 'probe' THEN CASE WHEN i % 2 = 0 OR list_contains(objects, other)
                                       THEN 'yes' ELSE 'no' END
                ELSE 'a picture of ' || array_to_string(objects, ' and ') END AS expected,
                CASE kind
                WHEN 'name' THEN 'which digit is shown ? answer in one word'
                WHEN 'list' THEN 'what digits are shown ?'
                WHEN 'count' THEN 'how many digits are there ? answer with a number'
                WHEN 'probe' THEN 'is there a ' || CASE WHEN i % 2 = 0 THEN objects[1]
                                                        ELSE other END || ' ?'
                ELSE 'describe the image' END AS instruction,
                CASE kind
                WHEN 'name' THEN [objects[1], reading[1], other, 'it is a ' || objects[1],
                                  objects[1] || ' ' || other, 'The ' || objects[1] || '.']
                WHEN 'list' THEN [array_to_string(objects, ' '), array_to_string(reading, ' '),
                                  array_to_string(objects[2:], ' '),
                                  array_to_string(objects, ' ') || ' ' || other,
                                  array_to_string(list_reverse(objects), ', '), other]
                WHEN 'count' THEN [len(objects)::VARCHAR, len(reading)::VARCHAR,
                                   (len(objects) + 1)::VARCHAR, 'two', '1', 'there are 3']
                WHEN 'probe' THEN ['yes', 'no', 'yes, there is', 'no.', 'Yes', 'nope']
                ELSE ['a picture of ' || array_to_string(objects, ' and '),
                      'a picture of ' || array_to_string(reading, ' and '),
                      'a picture of ' || objects[1],
                      'a picture of ' || array_to_string(objects, ' and ') || ' and ' || other,
                      'a picture of ' || other, 'a picture of ' || array_to_string(
                          list_reverse(objects), ' and ')] END[1 + variant] AS output
            FROM read
        )
        SELECT 'row' || i AS row_id, 't' || (i // 100) AS trace_id, 'r' || i AS span_id,
               'l' || i AS llm_span_id, 'cohort' || (i % 3) AS cohort,
               'ckpt' || (i % 2) AS checkpoint_sha256, expected, objects, instruction,
               CASE WHEN i % 2 = 0 THEN kind END AS instruction_kind, output, top_k_labels,
               top_k_scores, true AS encoder_multi_label
        FROM asked
    """)


def _load_evaluator(path: str) -> type:
    """The ``FailureAttribution`` class of an older ``evaluators/attribution.py`` (e.g. from
    ``git show COMMIT:evaluators/attribution.py``), run beside this one."""
    spec = importlib.util.spec_from_file_location("_bench_blame_before", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FailureAttribution


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads (cores)")
    parser.add_argument("--against", metavar="ATTRIBUTION_PY",
                        help="an older evaluators/attribution.py: run it and this code in turn "
                             "on the same rows and check their verdicts are equal")
    args = parser.parse_args()
    contenders = [("this code", FailureAttribution)]
    if args.against:
        contenders.insert(0, ("before", _load_evaluator(args.against)))
    with tempfile.TemporaryDirectory() as folder:
        con = duckdb.connect(str(Path(folder) / "bench.duckdb"),
                             config={"threads": args.threads})
        migrate(con)
        write_rows(con, args.rows)
        con.execute("CHECKPOINT")
        (cases,) = con.execute(
            "SELECT count(*) FROM (SELECT DISTINCT output, expected, objects, instruction, "
            "instruction_kind, list_filter(top_k_labels, lambda x, i: top_k_scores[i] >= 0.5) "
            "FROM rows)").fetchall()[0]
        print(f"{args.rows:,} rows, {cases:,} distinct (answer, expected, objects, "
              f"instruction, kind, reading) cases ({args.threads} DuckDB threads)")
        runs = {}
        for _ in range(2):
            for name, evaluator in contenders:
                load = os.getloadavg()[0]
                started, cpu = time.perf_counter(), time.process_time()
                run = run_evaluations(con, [evaluator(classes=DIGITS)], source="rows")
                wall, cpu = time.perf_counter() - started, time.process_time() - cpu
                runs[name] = run
                summary = run.summaries["failure_attribution"]
                print(f"FailureAttribution ({name}): {wall:.2f} s wall, "
                      f"{args.rows / wall:,.0f} rows/s; {cpu:.2f} s CPU, "
                      f"{args.rows / (cpu / args.threads):,.0f} rows/s per {args.threads} busy "
                      f"cores (failing {summary['failing']:,}: encoder "
                      f"{summary['blame_encoder']:.3f}, language_head "
                      f"{summary['blame_language_head']:.3f}, both "
                      f"{summary['blame_both']:.3f}, unattributable "
                      f"{summary['blame_unattributable']:.4f}; host load {load:.1f} before)")
        if args.against:
            before, after = runs["before"], runs["this code"]
            columns = "row_id, trace_id, span_id, score, passed, label, explanation, metadata"
            ((differing,),) = con.execute(
                f"SELECT count(*) FROM (SELECT {columns} FROM evaluations WHERE run_id = ? "
                f"EXCEPT ALL SELECT {columns} FROM evaluations WHERE run_id = ?)",
                [before.run_id, after.run_id]).fetchall()
            same = (before.summaries["failure_attribution"]
                    == after.summaries["failure_attribution"])
            print(f"verdicts differing: {differing:,}; summaries equal: {same}")
        con.close()

if __name__ == "__main__":
    main()
