"""The store writer on a growing store: µs a span per round of 60,000 spans, for DuckDB's
default checkpoint threshold (16MB) and for the writer's (``store.DEFAULT_SETTINGS``), and
for row group sizes (``store.DEFAULT_ROW_GROUP_SIZE``; 0 for DuckDB's 122,880).

Realistic vlmscope spans (row, encoder with top-5, LLM; no vectors) are converted once into
batches of 4,096 (conversion not timed), then written round after round into one fresh
store per threshold, with the writer's merge into ``pipeline_rows``; the same batches each
round (the writer does not look for repeated ids). Rounds in which DuckDB checkpoints cost
more; compare the averages, measured in the same run. ``--group N`` commits N batches at
once, as the exporter does when it falls behind: a commit that fills a row group of a table
is written to the file as it commits, not through the write-ahead log. The file's size is
printed after the close.

    .venv/bin/python benchmarks/bench_store_writes.py [--rounds 8] [--thresholds 16MB,128MB]
        [--row-group-sizes 16384,0] [--group 4]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from workloads import make_spans

from vlmscope.collectors.convert import spans_to_batch
from vlmscope.collectors.store import (
    DEFAULT_ROW_GROUP_SIZE,
    DEFAULT_SETTINGS,
    StoreWriter,
    merge_batches,
)

ROUND = 60_000
BATCH = 4096


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--thresholds",
                        default=f"16MB,{DEFAULT_SETTINGS['checkpoint_threshold']}")
    parser.add_argument("--row-group-sizes", default=str(DEFAULT_ROW_GROUP_SIZE),
                        help="comma-separated; 0 is DuckDB's default (122,880)")
    parser.add_argument("--group", type=int, default=1, help="batches of 4,096 a commit")
    args = parser.parse_args()
    spans = make_spans(ROUND)
    batches = [spans_to_batch(spans[i:i + BATCH]) for i in range(0, len(spans), BATCH)]
    commits = [merge_batches(batches[i:i + args.group])
               for i in range(0, len(batches), args.group)]
    averages = {}
    for threshold in args.thresholds.split(","):
        for size in (int(s) for s in args.row_group_sizes.split(",")):
            label = f"checkpoint_threshold {threshold}, row groups {size or 122_880:,}"
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "writes.duckdb"
                writer = StoreWriter(path, settings={"checkpoint_threshold": threshold},
                                     row_group_size=size or None)
                writer.open()
                rounds = []
                for _ in range(args.rounds):
                    started = time.perf_counter()
                    for commit in commits:
                        writer.write(commit)
                    rounds.append((time.perf_counter() - started) / len(spans) * 1e6)
                started = time.perf_counter()
                writer.close()
                closing = (time.perf_counter() - started) / (len(spans) * args.rounds) * 1e6
                megabytes = path.stat().st_size / 1e6
            averages[label] = statistics.mean(rounds) + closing
            print(f"{label}: us a span by round {', '.join(f'{r:.1f}' for r in rounds)}; "
                  f"close {closing:.2f} us a span; average with close "
                  f"{averages[label]:.2f} us a span ({args.rounds * len(spans):,} spans, "
                  f"{len(spans) // len(commits):,} a commit); file {megabytes:.1f} MB")
    first, *others = averages
    for other in others:
        print(f"[{first}] / [{other}] = {averages[first] / averages[other]:.2f}x")


if __name__ == "__main__":
    main()
