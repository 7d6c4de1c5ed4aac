"""Benchmark: CaptionHallucination and FailureAttribution over 1,000,000 stored pipeline rows.

Writes N synthetic rows into the per-row record tables of a fresh store (what the exporter
writes for traced rows): captions of 8-14 words built from COCO object words, synonyms,
plurals, two-word phrases and negations ("two puppies near a red bus, with no frisbee"), 2-4
ground-truth objects per row, and, for the blame, 10 classes with an expected label, a top-5
and an answer that is right, names the encoder's top-1 or names another class. Then it times
``run_evaluations`` end to end (select the rows, judge every row, write one ``evaluations``
row each, summarise, write ``eval_runs``, commit), one evaluator at a time:

* from the ``pipeline_rows`` view (what ``vlmscope eval`` does), and
* from a table that already has the ``pipeline_rows`` columns (the evaluator alone).

Captions are judged one by one in SQL (they hardly repeat); FailureAttribution judges each
distinct (answer, expected, top-k) case once, so its rate depends on how much those repeat
(here: 10 classes, as in a classification pipeline); the script prints the distinct count.

Run: ``.venv/bin/python benchmarks/bench_hallucination.py [--rows N] [--threads T]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import duckdb
from workloads import fresh_store, insert_encoder_records

from vlmscope.evaluators import (
    CaptionHallucination,
    Evaluator,
    FailureAttribution,
    run_evaluations,
)

SUBJECTS = ["a dog", "two puppies", "a black cat", "three people", "a man", "a teddy bear",
            "two hot dogs", "a red bus", "some sheep", "a woman", "a traffic light",
            "a pizza", "an elephant", "a giraffe", "kittens", "a boy"]
VERBS = ["sitting", "standing", "lying", "sleeping", "playing", "waiting", "parked"]
PLACES = ["on a sofa", "next to a bench", "near the dining table", "under an umbrella",
          "beside a car", "in a kitchen with an oven", "on a bed", "by a fire hydrant",
          "in front of a laptop", "on the grass"]
TAILS = ["", ", with no frisbee", " without a leash", " while a bird flies by",
         " and a cell phone", " in the evening", ", not a horse", " holding a cup"]
SUBJECT_OBJECTS = ["dog", "dog", "cat", "person", "person", "teddy bear", "hot dog", "bus",
                   "sheep", "person", "traffic light", "pizza", "elephant", "giraffe", "cat",
                   "person"]
"""The COCO object each of :data:`SUBJECTS` names."""
OBJECTS = ["dog", "cat", "person", "couch", "bench", "dining table", "umbrella", "car",
           "bus", "bed", "teddy bear", "hot dog", "sheep", "pizza", "laptop", "oven"]
CLASSES = ["cat", "dog", "bird", "tabby cat", "car", "truck", "ship", "frog", "horse", "deer"]


def _sql_list(values: list[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def write_rows(con: duckdb.DuckDBPyConnection, rows: int) -> None:
    """``rows`` pipeline rows (100 rows a trace, 16 a batch) into the record tables."""
    subjects, verbs, places = _sql_list(SUBJECTS), _sql_list(VERBS), _sql_list(PLACES)
    tails, objects, labels = _sql_list(TAILS), _sql_list(OBJECTS), _sql_list(CLASSES)
    subject_objects = _sql_list(SUBJECT_OBJECTS)
    con.execute(f"""
        CREATE TEMP TABLE picks AS
        SELECT i, 1 + (hash(i * 8 + 1) % 16)::BIGINT AS subject,
               1 + (hash(i * 8 + 2) % 7)::BIGINT AS verb,
               1 + (hash(i * 8 + 3) % 10)::BIGINT AS place,
               1 + (hash(i * 8 + 4) % 8)::BIGINT AS tail,
               1 + (hash(i * 8 + 5) % 16)::BIGINT AS other
        FROM range({rows}) r(i)""")
    # Ground truth: the object of the subject, plus 1-3 others (so captions are partly right).
    con.execute(f"""
        INSERT INTO row_records (trace_id, span_id, row_id, run_name, cohort, expected,
                                 objects, instruction, start_time, duration_ms, status_code)
        SELECT 't' || (i // 100), 'r' || i, 'row' || i, 'bench', 'cohort' || (i % 3),
               {labels}[1 + (i % 10)],
               [{subject_objects}[subject]] || [{objects}[1 + (hash(i * 8 + 6 + j) % 16)::BIGINT]
                                        FOR j IN range(1 + i % 3)],
               'describe the image', TIMESTAMP '2026-01-01' + INTERVAL (i) MICROSECOND,
               5.0, 'OK'
        FROM picks""")
    insert_encoder_records(con, rows, labels)
    con.execute(f"""
        INSERT INTO llm_records (trace_id, span_id, record_index, row_id, model, instruction,
            output, encoder_span_id, start_time, duration_ms, status_code)
        SELECT 't' || (i // 100), 'l' || (i // 16), i % 16, 'row' || i, 'head',
               'describe the image',
               {subjects}[subject] || ' ' || {verbs}[verb] || ' ' || {places}[place]
               || {tails}[tail] || CASE WHEN i % 3 = 0 THEN ' next to ' || {subjects}[other]
                                        ELSE '' END || ' (' || i || ')',
               'e' || (i // 16), TIMESTAMP '2026-01-01' + INTERVAL (i) MICROSECOND, 3.0, 'OK'
        FROM picks""")
    con.execute("DROP TABLE picks")


def write_answers(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Replace the captions of ``table`` with short answers for the blame benchmark: right,
    the encoder's top-1, or another class, with case/punctuation/article noise."""
    labels = _sql_list(CLASSES)
    con.execute(f"""
        UPDATE {table} SET output = CASE hash(row_id) % 4
            WHEN 0 THEN 'The ' || expected || '.'
            WHEN 1 THEN upper(top_k_labels[1])
            WHEN 2 THEN 'it is a ' || top_k_labels[1]
            ELSE {labels}[1 + (hash(row_id) % 10)::BIGINT] END""")


def timed(con: duckdb.DuckDBPyConnection, evaluator: Evaluator,
          source: str) -> tuple[float, float, dict]:
    """Wall seconds, CPU seconds of this process (all threads) and the run's summary."""
    started, cpu = time.perf_counter(), time.process_time()
    run = run_evaluations(con, [evaluator], source=source)
    return (time.perf_counter() - started, time.process_time() - cpu,
            run.summaries[evaluator.name])


def rates(rows: int, wall: float, cpu: float, threads: int, unit: str) -> str:
    """The rate by wall clock, and by CPU time spread over ``threads`` cores (what the run
    would take on idle cores: on a shared machine the wall clock also counts waiting)."""
    return (f"{wall:.2f} s wall, {rows / wall:,.0f} {unit}/s; {cpu:.2f} s CPU, "
            f"{rows / (cpu / threads):,.0f} {unit}/s per {threads} busy cores")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads (cores)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        con = fresh_store(Path(folder) / "bench.duckdb", args.threads, args.rows, write_rows)
        con.execute("CREATE TABLE captions AS SELECT * FROM pipeline_rows")
        con.execute("CHECKPOINT")
        (distinct,) = con.execute(
            "SELECT count(DISTINCT output) FROM captions").fetchall()[0]
        print(f"{distinct:,} distinct captions, e.g. "
              f"{con.execute('SELECT output FROM captions LIMIT 1').fetchall()[0][0]!r}")

        for source in ("pipeline_rows", "captions"):
            wall, cpu, summary = timed(con, CaptionHallucination(), source)
            print(f"CaptionHallucination from {source}: "
                  f"{rates(args.rows, wall, cpu, args.threads, 'captions')} "
                  f"(chair_i {summary['chair_i']:.3f}, "
                  f"chair_s {summary['chair_s']:.3f}, coverage {summary['coverage']:.3f})")

        write_answers(con, "captions")
        con.execute("CHECKPOINT")
        (cases,) = con.execute("SELECT count(*) FROM (SELECT DISTINCT output, expected, "
                               "top_k_labels FROM captions)").fetchall()[0]
        wall, cpu, summary = timed(con, FailureAttribution(), "captions")
        print(f"FailureAttribution from a table with the pipeline_rows columns: "
              f"{rates(args.rows, wall, cpu, args.threads, 'rows')} ({cases:,} distinct cases; "
              f"blame shares encoder {summary['blame_encoder']:.3f}, language_head "
              f"{summary['blame_language_head']:.3f}, both {summary['blame_both']:.3f})")
        con.close()


if __name__ == "__main__":
    main()
