"""DuckDB commits from one thread and from two, for the collector's 512-span requests: what
a second committing thread would give (a lever the collector does not pull yet).

The benchmark's requests (``bench_collector.encoded_requests``, whole traces) are decoded
once; then each thread takes the next request and commits its spans and records (no
pipeline-row merge) in one transaction on its own cursor of one connection, on a fresh
store per run. Appends from concurrent transactions do not conflict in DuckDB. The runs
alternate one thread and two; compare them within this run.

    .venv/bin/python benchmarks/bench_parallel_commits.py [--requests 200] [--pairs 2]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import duckdb
from bench_collector import SPANS_PER_REQUEST, encoded_requests

from vlmscope.collectors import facts, otlp
from vlmscope.collectors.schema import migrate
from vlmscope.collectors.store import DEFAULT_SETTINGS


def commit_all(batches: list, threads: int, folder: Path) -> float:
    """Spans a second with ``threads`` threads committing ``batches`` into a new store."""
    con = duckdb.connect(str(folder / f"commits-{threads}-{time.monotonic_ns()}.duckdb"))
    migrate(con)
    con.execute("SET threads = 1")
    for name, value in DEFAULT_SETTINGS.items():
        con.execute(f"SET {name} = ?", [value])
    waiting = list(batches)
    lock = threading.Lock()

    def worker() -> None:
        cursor = con.cursor()
        while True:
            with lock:
                if not waiting:
                    return
                batch = waiting.pop()
            cursor.register("_spans", batch.spans)
            names = [n for n in batch.derived if n in facts.RECORD_TABLES]
            for name in names:
                cursor.register(f"_{name}", batch.derived[name])
            cursor.execute("BEGIN TRANSACTION")
            cursor.execute(";".join(["INSERT INTO spans SELECT * FROM _spans"] + [
                f"INSERT INTO {name} SELECT * FROM _{name}" for name in names]))
            cursor.execute("COMMIT")

    started = time.perf_counter()
    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    elapsed = time.perf_counter() - started
    con.close()
    return sum(b.num_spans for b in batches) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--pairs", type=int, default=2)
    args = parser.parse_args()
    batches = [otlp.decode_body(body, False).batch
               for body in encoded_requests(args.requests, seed=7)]
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.pairs):
            one = commit_all(batches, 1, Path(tmp))
            two = commit_all(batches, 2, Path(tmp))
            print(f"{args.requests} requests of {SPANS_PER_REQUEST} spans, spans and records "
                  f"committed: one thread {one:,.0f} spans/s, two threads {two:,.0f}: "
                  f"{two / one:.2f}x")


if __name__ == "__main__":
    main()
