"""Exporter throughput: finished spans written into DuckDB per second.

Realistic vlmscope spans (row, encoder with top-5, LLM, in equal shares; no embedding
vectors) are made once with the real SDK, then handed to DuckDBSpanExporter.export in
batches of the size configure() uses, into a fresh file; the clock includes the final close.

    .venv/bin/python benchmarks/bench_exporter.py [--spans 120000] [--batch 4096]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import vlmscope
from vlmscope.collectors.exporter import DuckDBSpanExporter
from vlmscope.collectors.store import read_connection


def make_spans(count: int) -> list:
    memory = InMemorySpanExporter()
    vlmscope.configure(exporter=memory, batch=False)
    for i in range(count // 3):
        with vlmscope.trace_row(f"row-{i}", cohort="bench", expected="tabby"):
            with vlmscope.encoder_span("resnet18", checkpoint_sha256="ab" * 32) as enc:
                enc.record(top_k_labels=[["tabby", "tiger cat", "lynx", "dog", "fox"]],
                           top_k_scores=[[0.6, 0.2, 0.1, 0.05, 0.01]], entropy=[1.2],
                           image_sha256=["cd" * 32])
            with vlmscope.llm_span(model="gpt-4o-mini", provider="openai",
                                   instruction="What animal is in the image?") as llm:
                llm.set_output("A tabby cat.", input_tokens=42, output_tokens=4)
    vlmscope.shutdown()
    return list(memory.get_finished_spans())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=120_000)
    parser.add_argument("--batch", type=int, default=4096)
    args = parser.parse_args()
    spans = make_spans(args.spans)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "throughput.duckdb"
        exporter = DuckDBSpanExporter(path)
        start = time.perf_counter()
        for i in range(0, len(spans), args.batch):
            exporter.export(spans[i:i + args.batch])
        exporter.shutdown()
        elapsed = time.perf_counter() - start
        with read_connection(path) as con:
            ((stored,),) = con.execute("SELECT count(*) FROM spans").fetchall()
            ((rows,),) = con.execute("SELECT count(*) FROM pipeline_rows").fetchall()
    assert stored == len(spans) and rows == len(spans) // 3
    print(f"{len(spans)} spans in batches of {args.batch}: {elapsed:.2f} s, "
          f"{len(spans) / elapsed:,.0f} spans/s (target >= 100,000), "
          f"{rows} pipeline rows derived")


if __name__ == "__main__":
    main()
