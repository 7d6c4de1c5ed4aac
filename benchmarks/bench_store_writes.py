"""The store writer on a growing store: µs a span per round of 60,000 spans, for DuckDB's
default checkpoint threshold (16MB) and for the writer's (``store.DEFAULT_SETTINGS``).

Realistic vlmscope spans (row, encoder with top-5, LLM; no vectors) are converted once into
batches of 4,096 (conversion not timed), then written round after round into one fresh
store per threshold, with the writer's merge into ``pipeline_rows``; the same batches each
round (the writer does not look for repeated ids). Rounds in which DuckDB checkpoints cost
more; compare the averages, measured in the same run.

    .venv/bin/python benchmarks/bench_store_writes.py [--rounds 8] [--thresholds 16MB,128MB]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from workloads import make_spans

from vlmscope.collectors.convert import spans_to_batch
from vlmscope.collectors.store import DEFAULT_SETTINGS, StoreWriter

ROUND = 60_000
BATCH = 4096


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--thresholds",
                        default=f"16MB,{DEFAULT_SETTINGS['checkpoint_threshold']}")
    args = parser.parse_args()
    spans = make_spans(ROUND)
    batches = [spans_to_batch(spans[i:i + BATCH]) for i in range(0, len(spans), BATCH)]
    averages = {}
    for threshold in args.thresholds.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            writer = StoreWriter(Path(tmp) / "writes.duckdb",
                                 settings={"checkpoint_threshold": threshold})
            writer.open()
            rounds = []
            for _ in range(args.rounds):
                started = time.perf_counter()
                for batch in batches:
                    writer.write(batch)
                rounds.append((time.perf_counter() - started) / len(spans) * 1e6)
            started = time.perf_counter()
            writer.close()
            closing = (time.perf_counter() - started) / (len(spans) * args.rounds) * 1e6
        averages[threshold] = statistics.mean(rounds) + closing
        print(f"checkpoint_threshold {threshold}: us a span by round "
              f"{', '.join(f'{r:.1f}' for r in rounds)}; close {closing:.2f} us a span; "
              f"average with close {averages[threshold]:.2f} us a span "
              f"({args.rounds * len(spans):,} spans)")
    first, *others = averages
    for other in others:
        print(f"{first} / {other} = {averages[first] / averages[other]:.2f}x")


if __name__ == "__main__":
    main()
