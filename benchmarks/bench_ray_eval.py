"""Benchmark: GroundTruthMatch + ClassificationReport + FailureAttribution over N stored rows
in Parquet, evaluated by Ray tasks with 1 and 2 workers (``vlmscope eval --engine ray``).

Writes N synthetic pipeline rows (bench_evaluators.py's: 10 classes, noisy answers, top-5
labels and scores) into a fresh store, then as P Parquet shards under a dataset root (the
layout ``run_on_ray`` writes). Then, on one local Ray cluster, ``evaluate_on_ray`` with at
most 1 and at most 2 tasks at a time (one DuckDB thread each), interleaved, ``--repeat``
times each: rows/s, the ratio, the per-task time (open the partition, materialise its
``pipeline_rows``, judge, write the evaluations back) and the driver's merge time; and, as
the baseline, the one-process DuckDB engine over the same root (``vlmscope eval --parquet``,
all threads). Every merged summary is checked equal to the baseline's.

Run: ``.venv/bin/python benchmarks/bench_ray_eval.py [--rows 10000000] [--partitions 32]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import duckdb
from bench_evaluators import CLASSES, write_rows

from vlmscope.collectors.schema import migrate
from vlmscope.collectors.shards import ShardRoot, open_root, shard_name
from vlmscope.distributed import evaluate_on_ray
from vlmscope.evaluators import (
    ClassificationReport,
    FailureAttribution,
    GroundTruthMatch,
    run_evaluations,
)

TABLES = ("row_records", "encoder_records", "llm_records")


def write_root(root: Path, rows: int, partitions: int) -> float:
    """The rows as ``partitions`` committed shards (whole traces each); seconds taken."""
    started = time.perf_counter()
    con = duckdb.connect()
    migrate(con)
    write_rows(con, rows)
    # One root span a trace: the partition's index (the evaluators read the record tables).
    con.execute("CREATE TABLE root_spans AS SELECT DISTINCT trace_id, 'root-' || trace_id "
                "AS span_id, 'vlmscope.batch' AS name, TIMESTAMP '2026-01-01' AS start_time, "
                "'bench' AS service_name FROM row_records")
    traces = (rows + 99) // 100
    shard_root = ShardRoot(str(root))
    for part in range(partitions):
        low, high = part * traces // partitions, (part + 1) * traces // partitions
        shard = shard_name("bench", str(part))
        files = {}
        for table in ("spans", *TABLES):
            folder = root / table / "date=2026-01-01" / "service=bench"
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / f"{shard}.parquet"
            source = "root_spans" if table == "spans" else table
            con.execute(f"COPY (SELECT * FROM {source} WHERE "
                        f"CAST(substr(trace_id, 2) AS BIGINT) BETWEEN {low} AND {high - 1}) "
                        f"TO '{target}' (FORMAT parquet)")
            files[table] = [str(target.relative_to(root))]
        ((count,),) = con.execute(
            f"SELECT count(*) FROM row_records WHERE "
            f"CAST(substr(trace_id, 2) AS BIGINT) BETWEEN {low} AND {high - 1}").fetchall()
        shard_root.commit(shard, files, kind="rows", rows=count)
    con.close()
    return time.perf_counter() - started


def evaluators() -> list:
    return [GroundTruthMatch(), ClassificationReport(), FailureAttribution(classes=CLASSES)]


def main() -> None:
    import ray

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "root"
        seconds = write_root(root, args.rows, args.partitions)
        print(f"{args.rows:,} rows as {args.partitions} Parquet shards in {seconds:.1f} s")
        started = time.perf_counter()
        con = open_root(root)
        reference = run_evaluations(con, evaluators()).summaries
        con.close()
        baseline = time.perf_counter() - started
        print(f"one process, DuckDB engine: {baseline:.2f} s = {args.rows / baseline:,.0f} "
              "rows/s (open, materialise, judge; evaluations kept in memory)")
        ray.init(address="local", num_cpus=2, log_to_driver=False, include_dashboard=False)
        timings: dict[int, list[float]] = {1: [], 2: []}
        tasks: dict[int, list[float]] = {1: [], 2: []}
        merges: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(args.repeat):
            for workers in (1, 2):
                started = time.perf_counter()
                run = evaluate_on_ray(root, evaluators(), num_workers=workers,
                                      rows_per_task=args.rows // args.partitions)
                timings[workers].append(time.perf_counter() - started)
                tasks[workers].extend(run.task_seconds)
                merges[workers].append(run.merge_seconds)
                assert (run.rows, run.partitions) == (args.rows, args.partitions)
                assert run.summaries == reference, "merged summaries differ from one process's"
        ray.shutdown()
    rate = {w: args.rows / statistics.median(t) for w, t in timings.items()}
    for workers in (1, 2):
        print(f"{workers} worker(s): median {statistics.median(timings[workers]):.2f} s "
              f"({', '.join(f'{t:.2f}' for t in timings[workers])}) = {rate[workers]:,.0f} "
              f"rows/s; per task median {statistics.median(tasks[workers]):.2f} s over "
              f"{args.rows // args.partitions:,} rows; merge median "
              f"{statistics.median(merges[workers]) * 1000:.1f} ms")
    print(f"2 workers / 1 worker: {rate[2] / rate[1]:.2f}x")
    per_task = statistics.median(tasks[1])
    print(f"per-worker rate inside tasks: {args.rows / args.partitions / per_task:,.0f} rows/s")


if __name__ == "__main__":
    main()
