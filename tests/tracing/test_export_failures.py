"""Storage failures never reach the pipeline: they are counted and logged once."""

from __future__ import annotations

import errno
import logging
import threading

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import vlmscope
import vlmscope.tracing
from vlmscope.collectors.exporter import DuckDBSpanExporter
from vlmscope.collectors.store import StoreWriter


def _trace_rows(n: int) -> None:
    for i in range(n):
        with vlmscope.trace_row(f"r{i}", expected="cat"):
            with vlmscope.llm_span(model="m", instruction="q") as span:
                span.set_output("cat")
        vlmscope.force_flush()


def _warnings(caplog) -> list[str]:
    return [r.message for r in caplog.records
            if r.levelno == logging.WARNING and "could not write" in r.getMessage()]


def test_an_unwritable_database_path_never_raises_and_the_loss_is_counted_once(tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    vlmscope.configure(db=blocker / "traces.duckdb")
    with caplog.at_level(logging.DEBUG, logger="vlmscope"):
        _trace_rows(3)
        stats = vlmscope.export_stats()
        vlmscope.shutdown()
    assert stats.failed_spans == 6 and stats.exported_spans == 0
    assert len(_warnings(caplog)) == 1


class _FullDisk(StoreWriter):
    def write(self, batch):
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_never_raises_and_every_lost_span_is_counted(tmp_path, caplog):
    exporter = DuckDBSpanExporter(writer=_FullDisk(tmp_path / "x.duckdb"))
    vlmscope.configure(exporter=exporter)
    with caplog.at_level(logging.DEBUG, logger="vlmscope"):
        _trace_rows(4)
        stats = vlmscope.export_stats()
        vlmscope.shutdown()
    assert stats.failed_spans == 8 and "No space left" in stats.last_error
    assert len(_warnings(caplog)) == 1


def test_a_file_that_is_not_a_duckdb_database_never_raises_and_its_spans_are_spooled(
        tmp_path, caplog):
    bad = tmp_path / "garbage.duckdb"
    bad.write_bytes(b"this is not a database" * 1000)
    vlmscope.configure(db=bad)
    with caplog.at_level(logging.DEBUG, logger="vlmscope"):
        _trace_rows(2)
        vlmscope.force_flush()
        stats = vlmscope.export_stats()
        vlmscope.shutdown()
    assert (stats.failed_spans, stats.exported_spans, stats.spooled_spans) == (0, 0, 4)
    assert bad.read_bytes() == b"this is not a database" * 1000  # left untouched
    spooled = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
               and "keeps spans in" in r.getMessage()]
    assert len(spooled) == 1 and "not a DuckDB database file" in spooled[0]


def test_a_failed_batch_does_not_stop_later_batches(tmp_path):
    class _FailOnce(StoreWriter):
        failed = False

        def write(self, batch):
            if not self.failed:
                self.failed = True
                raise RuntimeError("transient")
            super().write(batch)

    path = tmp_path / "t.duckdb"
    vlmscope.configure(exporter=DuckDBSpanExporter(writer=_FailOnce(path)))
    _trace_rows(3)
    stats = vlmscope.export_stats()
    vlmscope.shutdown()
    assert (stats.failed_spans, stats.exported_spans) == (2, 4)
    from tests.helpers import query

    assert query(path, "SELECT count(*) FROM pipeline_rows") == [(2,)]


def test_bad_settings_fail_early_with_what_was_expected(monkeypatch):
    monkeypatch.setenv("VLMSCOPE_CAPTURE_IMAGES", "maybe")
    with pytest.raises(ValueError, match="VLMSCOPE_CAPTURE_IMAGES='maybe' is not a boolean"):
        vlmscope.configure(db=":memory:")
    with pytest.raises(ValueError, match="must be positive"):
        vlmscope.configure(db=":memory:", max_queue_size=0)


class _HeldExporter(InMemorySpanExporter):
    """An in-memory exporter whose ``export`` waits until the test lets it go: spans pile
    up behind it as behind a slow backend."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def export(self, spans):
        self.release.wait(30)
        return super().export(spans)


def test_spans_a_full_batch_queue_drops_are_counted_and_the_rest_exported():
    """Through the SDK's batch processor (an OTLP-style exporter, not the store): with the
    exporter held, at most ``max_queue_size`` spans wait, every span past that is counted
    dropped, and every other one reaches the exporter."""
    held = _HeldExporter()
    vlmscope.configure(exporter=held, max_queue_size=10, max_export_batch_size=5,
                       schedule_delay_ms=5, service_name="tests", set_global=False)
    try:
        tracer = vlmscope.tracing.get_tracer()
        for i in range(100):
            tracer.start_span(f"s{i}").end()
        during = vlmscope.export_stats()
        held.release.set()
        assert vlmscope.force_flush()
        after = vlmscope.export_stats()
    finally:
        held.release.set()
        vlmscope.shutdown()
    exported = len(held.get_finished_spans())
    assert during.dropped_spans >= 100 - 10 - 5  # at most a queue and a batch got through
    assert after.dropped_spans == during.dropped_spans
    assert exported + after.dropped_spans == 100  # nothing lost unseen
    assert (after.exported_spans, after.failed_spans) == (exported, 0)


class _RaisingExporter(InMemorySpanExporter):
    def export(self, spans):
        raise ConnectionError("backend gone")


def test_an_exporter_that_raises_has_its_spans_counted_failed_not_raised():
    vlmscope.configure(exporter=_RaisingExporter(), schedule_delay_ms=5, service_name="tests",
                       set_global=False)
    try:
        for i in range(7):
            vlmscope.tracing.get_tracer().start_span(f"s{i}").end()
        vlmscope.force_flush()
        stats = vlmscope.export_stats()
    finally:
        vlmscope.shutdown()
    assert (stats.exported_spans, stats.failed_spans, stats.dropped_spans) == (0, 7, 0)
    assert "ConnectionError: backend gone" in stats.last_error
