"""DuckDBSpanProcessor: spans converted as they end, batches written behind the pipeline."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider

import vlmscope
from vlmscope import conventions as cv
from vlmscope.collectors import convert
from vlmscope.collectors.exporter import DuckDBSpanExporter
from vlmscope.collectors.processor import DuckDBSpanProcessor
from vlmscope.collectors.store import StoreWriter, read_connection


def _rows(count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        with vlmscope.trace_row(f"r{i}", expected="cat"):
            with vlmscope.encoder_span("resnet18", checkpoint_sha256="ab" * 32) as enc:
                enc.record(top_k_labels=[["cat", "dog"]], top_k_scores=[[0.7, 0.2]])
            with vlmscope.llm_span(model="m", instruction="what?") as llm:
                llm.set_output("cat")


def _finished(*names: str) -> list[ReadableSpan]:
    """Finished SDK spans, made by a provider of their own (nothing else sees them)."""
    provider = TracerProvider()
    tracer = provider.get_tracer("test")
    finished = []
    for name in names:
        span = tracer.start_span(name, attributes={"a": 1})
        span.end()
        finished.append(span._readable_span())
    return finished


def _count(path: Path, table: str = "pipeline_rows") -> int:
    with read_connection(path) as con:
        return con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]


def test_configure_writes_through_the_processor_and_every_row_lands(tmp_path: Path) -> None:
    db = tmp_path / "p.duckdb"
    provider = vlmscope.configure(db=db, max_export_batch_size=64)
    assert any(isinstance(p, DuckDBSpanProcessor)
               for p in provider._active_span_processor._span_processors)
    _rows(500)
    vlmscope.shutdown()
    stats = vlmscope.export_stats()
    assert (stats.exported_spans, stats.failed_spans, stats.dropped_spans) == (1500, 0, 0)
    assert _count(db) == 500
    with read_connection(db) as con:
        assert con.execute("SELECT count(DISTINCT row_id), min(output), max(top_k_labels[1]) "
                           "FROM pipeline_rows").fetchall() == [(500, "cat", "cat")]


def test_the_processor_holds_no_finished_span(tmp_path: Path) -> None:
    exporter = DuckDBSpanExporter(tmp_path / "h.duckdb")
    processor = DuckDBSpanProcessor(exporter)
    [finished] = _finished("probe")
    alive = weakref.ref(finished)
    processor.on_end(finished)
    del finished
    gc.collect()
    assert alive() is None
    processor.shutdown()
    assert _count(tmp_path / "h.duckdb", "spans") == 1


def test_a_span_the_converter_rejects_is_counted_and_the_rest_lands(tmp_path: Path) -> None:
    db = tmp_path / "bad.duckdb"
    vlmscope.configure(db=db)
    _rows(3)
    tracer = vlmscope.tracing.get_tracer()
    with tracer.start_as_current_span("blob", attributes={cv.VLMSCOPE_ROW_ID: "x"}) as span:
        span.set_attribute("payload", 2**70)  # the SDK keeps it; JSON has no such integer
    _rows(3, start=3)
    vlmscope.shutdown()  # no exception reached the pipeline
    stats = vlmscope.export_stats()
    assert stats.exported_spans == 18 and stats.failed_spans == 1
    assert "64-bit" in stats.last_error
    assert _count(db) == 6


class _BlockedWriter(StoreWriter):
    """A real store writer that waits for a signal before its first write."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.release = threading.Event()
        self.finished = threading.Event()

    def write(self, batch, prepare=None, **options) -> int:  # type: ignore[no-untyped-def]
        self.release.wait(30)
        try:
            return super().write(batch, prepare, **options)
        finally:
            self.finished.set()


def test_a_full_queue_drops_the_oldest_batches_and_counts_them(tmp_path: Path) -> None:
    writer = _BlockedWriter(tmp_path / "q.duckdb")
    exporter = DuckDBSpanExporter(writer=writer, pending_batches=1)
    processor = DuckDBSpanProcessor(exporter, max_export_batch_size=3, max_queue_size=6,
                                    schedule_delay_millis=10_000)
    spans = _finished(*(f"s{i}" for i in range(60)))
    for span in spans:
        processor.on_end(span)  # never blocks, even with the writer stuck
    # Deterministic: had on_end waited for the writer, a write would have finished (its
    # wait ends after 30 s at the latest) before the loop did.
    assert not writer.finished.is_set()
    writer.release.set()
    processor.shutdown()
    stats = exporter.stats
    assert processor.dropped_spans > 0
    assert stats.exported_spans + processor.dropped_spans == 60
    with read_connection(tmp_path / "q.duckdb") as con:
        names = [n for (n,) in con.execute("SELECT name FROM spans WHERE name LIKE 's%' "
                                           "ORDER BY start_time").fetchall()]
    assert names[-1] == "s59"  # the newest survive, as the batch processor keeps them


def test_spans_are_written_after_the_schedule_delay_without_a_flush(tmp_path: Path) -> None:
    db = tmp_path / "d.duckdb"
    vlmscope.configure(db=db, schedule_delay_ms=100)
    _rows(2)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and vlmscope.export_stats().exported_spans < 6:
        time.sleep(0.05)
    assert vlmscope.export_stats().exported_spans == 6
    vlmscope.shutdown()


def test_force_flush_commits_every_ended_span(tmp_path: Path) -> None:
    db = tmp_path / "f.duckdb"
    vlmscope.configure(db=db, schedule_delay_ms=60_000)
    _rows(7)
    assert vlmscope.force_flush()
    assert vlmscope.export_stats().exported_spans == 21
    vlmscope.shutdown()
    assert _count(db) == 7


@pytest.mark.parametrize("kwargs", [{"schedule_delay_millis": 0}, {"max_queue_size": 0},
                                    {"max_export_batch_size": 10, "max_queue_size": 5}])
def test_bad_settings_fail_at_construction(tmp_path: Path, kwargs: dict) -> None:
    exporter = DuckDBSpanExporter(tmp_path / "s.duckdb")
    with pytest.raises(ValueError, match="must"):
        DuckDBSpanProcessor(exporter, **kwargs)
    exporter.shutdown()


def test_without_the_native_converter_the_reference_code_writes_the_same_rows(
        tmp_path: Path) -> None:
    script = f"""
import vlmscope
from vlmscope.collectors import convert
assert not convert.native_converter()
vlmscope.configure(db={str(tmp_path / "py.duckdb")!r}, max_export_batch_size=16)
for i in range(40):
    with vlmscope.trace_row(f"r{{i}}", expected="cat"):
        with vlmscope.encoder_span("resnet18", capture_embeddings=True) as enc:
            enc.record(top_k_labels=[["cat", "dog"]], top_k_scores=[[0.7, 0.2]],
                       embeddings=[[0.5, 0.25]])
        with vlmscope.llm_span(model="m", instruction="what?") as llm:
            llm.set_output("cat")
vlmscope.shutdown()
stats = vlmscope.export_stats()
assert stats.exported_spans == 120 and stats.failed_spans == 0, stats
"""
    env = {**os.environ, convert.PURE_PYTHON_ENV: "1"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    with read_connection(tmp_path / "py.duckdb") as con:
        assert con.execute("SELECT count(*), sum(len(vector)) FROM embeddings").fetchall() == [
            (40, 80)]
    assert _count(tmp_path / "py.duckdb") == 40


def test_rows_traced_from_several_threads_all_land(tmp_path: Path) -> None:
    db = tmp_path / "threads.duckdb"
    vlmscope.configure(db=db, max_export_batch_size=100)
    threads = [threading.Thread(target=_rows, args=(200, 1000 * t)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    vlmscope.shutdown()
    stats = vlmscope.export_stats()
    assert (stats.exported_spans, stats.failed_spans, stats.dropped_spans) == (2400, 0, 0)
    with read_connection(db) as con:
        assert con.execute("SELECT count(*), count(DISTINCT row_id), count(output), "
                           "count(top_k_labels) FROM pipeline_rows").fetchall() == [
            (800, 800, 800, 800)]


def test_span_ends_hand_the_gil_to_a_committing_writer_every_few_spans(
        tmp_path: Path, monkeypatch) -> None:
    from vlmscope.collectors import handover as module

    handed = []
    monkeypatch.setattr(module, "_yield_gil", lambda: handed.append(1))
    exporter = DuckDBSpanExporter(tmp_path / "handover.duckdb")
    # No write before shutdown: only the test says the writer commits.
    processor = DuckDBSpanProcessor(exporter, schedule_delay_millis=60_000)
    try:
        for span in _finished(*(f"idle{i}" for i in range(8))):
            processor.on_end(span)
        assert handed == []  # nothing to hand over while the writer is idle
        with exporter.handover.committing():  # as while the writer thread commits
            for span in _finished(*(f"busy{i}" for i in range(3 * module.HAND_OVER_EVERY))):
                processor.on_end(span)
        assert len(handed) == 3
        assert not exporter.handover.writing
    finally:
        processor.shutdown()
    assert _count(tmp_path / "handover.duckdb", "spans") == 8 + 3 * module.HAND_OVER_EVERY
