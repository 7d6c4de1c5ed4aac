"""Exporter throughput: finished spans written into DuckDB per second.

Realistic vlmscope spans (row, encoder with top-5, LLM, in equal shares; no embedding
vectors) are made once with the real SDK, then handed to DuckDBSpanExporter.export in
batches of the size configure() uses, into a fresh file. The store is created and migrated
before the clock starts (once per file; otherwise the first write does it; the time is
printed apart); the clock includes the final close.

The store writer checkpoints at ``store.DEFAULT_SETTINGS`` unless ``--checkpoint-threshold``
says otherwise (DuckDB's own default is 16MB); on short runs the final checkpoint, at
close, weighs more, so compare thresholds on long ones (``--spans 480000``).

    .venv/bin/python benchmarks/bench_exporter.py [--spans 120000] [--batch 4096]
        [--checkpoint-threshold 16MB] [--row-group-size 0]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from workloads import make_spans

from vlmscope.collectors.exporter import DuckDBSpanExporter
from vlmscope.collectors.store import (
    DEFAULT_ROW_GROUP_SIZE,
    DEFAULT_SETTINGS,
    StoreWriter,
    read_connection,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=120_000)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--checkpoint-threshold", help="DuckDB's, for the store writer")
    parser.add_argument("--row-group-size", type=int, default=DEFAULT_ROW_GROUP_SIZE,
                        help="the store writer's (0: DuckDB's default, 122,880)")
    args = parser.parse_args()
    spans = make_spans(args.spans)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "throughput.duckdb"
        writer = StoreWriter(path, settings={"checkpoint_threshold": args.checkpoint_threshold}
                             if args.checkpoint_threshold else None,
                             row_group_size=args.row_group_size or None)
        opened = time.perf_counter()
        writer.open()
        opened = time.perf_counter() - opened
        exporter = DuckDBSpanExporter(writer=writer)
        start = time.perf_counter()
        for i in range(0, len(spans), args.batch):
            exporter.export(spans[i:i + args.batch])
        exporter.force_flush()
        committed = time.perf_counter() - start
        exporter.shutdown()
        elapsed = time.perf_counter() - start
        with read_connection(path) as con:
            ((stored,),) = con.execute("SELECT count(*) FROM spans").fetchall()
            ((rows,),) = con.execute("SELECT count(*) FROM pipeline_rows").fetchall()
    assert stored == len(spans) and rows == len(spans) // 3
    print(f"{len(spans)} spans in batches of {args.batch}: {elapsed:.2f} s, "
          f"{len(spans) / elapsed:,.0f} spans/s (target >= 100,000), "
          f"{rows} pipeline rows derived; all committed after {committed:.2f} s "
          f"({len(spans) / committed:,.0f} spans/s), then closed; creating the store took "
          f"{opened * 1e3:.0f} ms, before the clock; checkpoint threshold "
          f"{args.checkpoint_threshold or DEFAULT_SETTINGS['checkpoint_threshold']}, row groups "
          f"of {args.row_group_size or 122_880:,}")


if __name__ == "__main__":
    main()
