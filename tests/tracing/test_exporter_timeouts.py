"""force_flush and shutdown honour their timeouts, as the OpenTelemetry SDK's do, and a
writer that never returns costs no span: what waits for it goes to the spool."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider

from tests.helpers import query
from vlmscope.collectors.exporter import DuckDBSpanExporter
from vlmscope.collectors.processor import DuckDBSpanProcessor
from vlmscope.collectors.spool import Spool
from vlmscope.collectors.store import StoreWriter


class _StuckWriter(StoreWriter):
    """A real store writer whose commits hang until released (a disk that stopped)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.release = threading.Event()
        self.written = threading.Event()

    def write(self, batch, prepare=None, *, new_spans_only=False):
        self.release.wait(60)
        try:
            return super().write(batch, prepare, new_spans_only=new_spans_only)
        finally:
            self.written.set()


def _provider(writer: StoreWriter) -> tuple[TracerProvider, DuckDBSpanProcessor]:
    processor = DuckDBSpanProcessor(DuckDBSpanExporter(writer=writer, pending_batches=1),
                                    max_export_batch_size=10, max_queue_size=1000)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    return provider, processor


def _spans(provider: TracerProvider, n: int) -> None:
    tracer = provider.get_tracer("timeouts")
    for i in range(n):
        with tracer.start_as_current_span(f"s{i}"):
            pass


def test_force_flush_returns_false_when_its_timeout_passes_and_true_once_written(tmp_path):
    """Deterministic: the writer is stuck until released (or 60 s), so a flush that returns
    False with nothing written returned on its timeout, not after the commit."""
    writer = _StuckWriter(tmp_path / "flush.duckdb")
    provider, processor = _provider(writer)
    _spans(provider, 25)
    assert processor.force_flush(timeout_millis=300) is False
    assert not writer.written.is_set()
    writer.release.set()
    assert processor.force_flush(timeout_millis=30_000) is True
    processor.shutdown()
    assert query(tmp_path / "flush.duckdb", "SELECT count(*) FROM spans") == [(25,)]


def test_shutdown_returns_in_time_and_spools_what_the_stuck_writer_did_not_take(tmp_path):
    """Deterministic as above: shutdown returns while the commit it gave up on is stuck."""
    db = tmp_path / "stuck.duckdb"
    writer = _StuckWriter(db)
    provider, processor = _provider(writer)
    _spans(provider, 45)
    processor.shutdown(timeout_millis=1000)
    assert not writer.written.is_set()
    # One batch was in the stuck commit; everything else waits in the spool.
    spooled = Spool(db).spooled_spans()
    assert 25 <= spooled <= 45
    writer.release.set()  # the disk comes back: the stuck commit finishes
    assert writer.written.wait(30)
    StoreWriter(db).close()  # the next writer commits the spool
    assert query(db, "SELECT count(*), count(DISTINCT span_id) FROM spans") == [(45, 45)]


@pytest.mark.slow
def test_force_flush_and_shutdown_return_within_their_timeouts_by_the_clock(tmp_path):
    """The same two timeouts measured by the wall clock (slow: a loaded host can stall any
    process for a second; the tests above prove the contract without a clock)."""
    writer = _StuckWriter(tmp_path / "clock.duckdb")
    provider, processor = _provider(writer)
    _spans(provider, 45)
    started = time.monotonic()
    assert processor.force_flush(timeout_millis=300) is False
    assert time.monotonic() - started < 2.0
    started = time.monotonic()
    processor.shutdown(timeout_millis=1000)
    assert time.monotonic() - started < 3.0
    writer.release.set()
    assert writer.written.wait(30)
