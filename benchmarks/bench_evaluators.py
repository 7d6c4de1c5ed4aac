"""Benchmark: GroundTruthMatch + ClassificationReport over 1,000,000 stored pipeline rows.

Writes N synthetic rows into the per-row record tables of a fresh store (what the exporter
writes for traced rows: 10 classes, answers with case/punctuation/article noise, top-5 labels
and softmax scores), then times, end to end, ``run_evaluations`` (select the rows, judge every
row, write one ``evaluations`` row each, compute the report, write ``eval_runs``, commit):

* from the ``pipeline_rows`` view (what ``vlmscope eval`` does), and
* from a table that already has the ``pipeline_rows`` columns (the evaluators alone).

Then the cost of one per-row ``GroundTruthMatch().evaluate(...)`` call, and of one
``evaluate_rows`` call on a list of rows (the per-row API for many rows at once).

Run: ``.venv/bin/python benchmarks/bench_evaluators.py [--rows N] [--threads T]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import duckdb
from workloads import fresh_store, insert_encoder_records

from vlmscope.evaluators import ClassificationReport, GroundTruthMatch, run_evaluations

CLASSES = ["cat", "dog", "bird", "tabby cat", "car", "truck", "ship", "frog", "horse", "deer"]


def write_rows(con: duckdb.DuckDBPyConnection, rows: int) -> None:
    """``rows`` pipeline rows (100 rows a trace, 16 a batch) into the record tables."""
    labels = "[" + ", ".join(f"'{c}'" for c in CLASSES) + "]"
    con.execute(f"""
        INSERT INTO row_records (trace_id, span_id, row_id, run_name, cohort, expected,
                                 instruction, start_time, duration_ms, status_code)
        SELECT 't' || (i // 100), 'r' || i, 'row' || i, 'bench', 'cohort' || (i % 3),
               CASE WHEN i % 50 = 0 THEN NULL ELSE {labels}[1 + (i % 10)] END,
               'what is it?', TIMESTAMP '2026-01-01' + INTERVAL (i) MICROSECOND, 5.0, 'OK'
        FROM range({rows}) r(i)""")
    insert_encoder_records(con, rows, labels)
    con.execute(f"""
        INSERT INTO llm_records (trace_id, span_id, record_index, row_id, model, instruction,
            output, encoder_span_id, start_time, duration_ms, status_code)
        SELECT 't' || (i // 100), 'l' || (i // 16), i % 16, 'row' || i, 'head', 'what is it?',
               CASE i % 4 WHEN 0 THEN 'A Dog.' WHEN 1 THEN ' The ' || {labels}[1 + (i % 10)]
                          WHEN 2 THEN upper({labels}[1 + (i % 10)]) || '!'
                          ELSE {labels}[1 + ((i * 3) % 10)] END,
               'e' || (i // 16), TIMESTAMP '2026-01-01' + INTERVAL (i) MICROSECOND, 3.0, 'OK'
        FROM range({rows}) r(i)""")


def timed_run(con: duckdb.DuckDBPyConnection, source: str) -> tuple[float, dict]:
    started = time.perf_counter()
    run = run_evaluations(con, [GroundTruthMatch(), ClassificationReport()], source=source)
    return time.perf_counter() - started, run.summaries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads (cores)")
    parser.add_argument("--calls", type=int, default=200, help="per-row evaluate() calls")
    parser.add_argument("--list-rows", type=int, default=10_000,
                        help="rows of one evaluate_rows() call")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        con = fresh_store(Path(folder) / "bench.duckdb", args.threads, args.rows, write_rows)
        con.execute("CHECKPOINT")

        seconds, summaries = timed_run(con, "pipeline_rows")
        judged = summaries["ground_truth_match"]["judged"]
        print(f"from pipeline_rows view: {seconds:.2f} s, {args.rows / seconds:,.0f} rows/s "
              f"({judged:,} evaluation rows written, "
              f"{summaries['ground_truth_match']['skipped']:,} skipped; "
              f"answer accuracy {summaries['ground_truth_match']['accuracy']:.3f}, "
              f"top1 {summaries['classification_report']['top1']:.3f})")

        con.execute("CREATE TABLE materialised_rows AS SELECT * FROM pipeline_rows")
        con.execute("CHECKPOINT")
        seconds, _ = timed_run(con, "materialised_rows")
        print(f"from a table with the pipeline_rows columns: {seconds:.2f} s, "
              f"{args.rows / seconds:,.0f} rows/s")
        con.close()

    match = GroundTruthMatch()
    match.evaluate(output="warm up", expected="cat")
    costs = []
    for i in range(args.calls):
        started = time.perf_counter()
        match.evaluate(output=f"The {CLASSES[i % 10]}.", expected=CLASSES[(i * 3) % 10],
                       top_k_labels=CLASSES[:5])
        costs.append(time.perf_counter() - started)
    print(f"one per-row evaluate(): median {statistics.median(costs) * 1e3:.2f} ms, "
          f"p95 {sorted(costs)[int(0.95 * len(costs))] * 1e3:.2f} ms over {args.calls} calls")
    rows = [{"output": f"The {CLASSES[i % 10]}.", "expected": CLASSES[(i * 3) % 10],
             "top_k_labels": CLASSES[:5]} for i in range(args.list_rows)]
    costs = []
    for _ in range(5):
        started = time.perf_counter()
        match.evaluate_rows(rows)
        costs.append(time.perf_counter() - started)
    seconds = statistics.median(costs)
    print(f"evaluate_rows() on a list of {args.list_rows:,} rows: median {seconds * 1e3:.1f} ms "
          f"({args.list_rows / seconds:,.0f} rows/s) over 5 calls")


if __name__ == "__main__":
    main()
