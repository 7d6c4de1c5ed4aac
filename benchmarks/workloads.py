"""Workloads shared by the benchmark scripts: realistic finished spans, and synthetic encoder
records written straight into a store."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import duckdb


def make_spans(count: int) -> list:
    """``count`` realistic finished vlmscope spans (row, encoder with top-5, LLM; no vectors),
    made once with the real SDK."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import vlmscope

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


def insert_encoder_records(con: duckdb.DuckDBPyConnection, rows: int, labels: str) -> None:
    """``rows`` encoder records (one per row ``row<i>``), top-5 drawn from the SQL list
    literal ``labels``, two checkpoints alternating."""
    con.execute(f"""
        INSERT INTO encoder_records (trace_id, span_id, record_index, row_id, model,
            architecture, checkpoint_sha256, embedding_dim, top_k_labels, top_k_scores,
            start_time, duration_ms, status_code)
        SELECT 't' || (i // 100), 'e' || (i // 16), i % 16, 'row' || i, 'resnet18', 'resnet',
               CASE WHEN i % 2 = 0 THEN 'aa' ELSE 'bb' END || repeat('0', 62), 512,
               [{labels}[1 + ((i * 7 + j) % 10)] FOR j IN range(5)],
               [0.6 - 0.1 * j + 0.001 * (i % 97) FOR j IN range(5)],
               TIMESTAMP '2026-01-01' + INTERVAL (i) MICROSECOND, 2.0, 'OK'
        FROM range({rows}) r(i)""")


def materialise(con: duckdb.DuckDBPyConnection) -> None:
    """Materialise ``pipeline_rows`` from record tables written with SQL, and say how long
    it took. The exporter merges each batch as it writes it; here it is paid at once, timed
    apart (an ingest cost, not the evaluators')."""
    from vlmscope.collectors import facts

    started = time.perf_counter()
    con.execute("BEGIN")
    facts.refresh(con)
    con.execute("COMMIT")
    print(f"materialised pipeline_rows from the records in "
          f"{time.perf_counter() - started:.2f} s (paid at ingest, batch by batch)")


def fresh_store(path: Path, threads: int, rows: int,
                write: Callable[[duckdb.DuckDBPyConnection, int], None]
                ) -> duckdb.DuckDBPyConnection:
    """A new store at ``path`` (``threads`` DuckDB threads) holding ``rows`` pipeline rows
    written by ``write`` into the record tables, materialised; both steps timed."""
    con = duckdb.connect(str(path), config={"threads": threads})
    con.execute("SET enable_progress_bar = false")
    from vlmscope.collectors.schema import migrate

    migrate(con)
    started = time.perf_counter()
    write(con, rows)
    print(f"wrote {rows:,} stored rows in {time.perf_counter() - started:.1f} s "
          f"({threads} DuckDB threads)")
    materialise(con)
    return con
