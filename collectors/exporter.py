"""The OpenTelemetry ``SpanExporter`` that writes spans into a vlmscope DuckDB store."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from vlmscope.collectors.convert import spans_to_batch
from vlmscope.collectors.store import StoreWriter

_log = logging.getLogger("vlmscope.exporter")


@dataclass(frozen=True)
class ExportStats:
    """What an exporter did so far: spans written, spans lost, and the last error."""

    exported_spans: int
    failed_spans: int
    failed_batches: int
    last_error: str | None


class DuckDBSpanExporter(SpanExporter):
    """Writes each batch of finished spans into the DuckDB store at ``path``.

    Each ``export`` call is one Arrow insert per table in one transaction. The exporter is
    thread-safe and never raises into the application: a failed batch returns
    ``SpanExportResult.FAILURE``, is counted in :attr:`stats`, and is logged once (the first
    failure) at WARNING with what to do; later failures are logged at DEBUG and summed up at
    shutdown.
    """

    def __init__(
        self, path: str | os.PathLike[str] = "vlmscope.duckdb", *, writer: StoreWriter | None = None
    ) -> None:
        self._writer = writer if writer is not None else StoreWriter(path)
        self.path = self._writer.path
        self._stats_lock = threading.Lock()
        self._exported = 0
        self._failed = 0
        self._failed_batches = 0
        self._last_error: str | None = None
        self._shutdown = False

    @property
    def stats(self) -> ExportStats:
        """A snapshot of the counts so far."""
        with self._stats_lock:
            return ExportStats(
                self._exported, self._failed, self._failed_batches, self._last_error
            )

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Write ``spans``; never raises."""
        if self._shutdown:
            self._count_failure(len(spans), "exporter already shut down")
            return SpanExportResult.FAILURE
        try:
            self._writer.write(spans_to_batch(spans))
        except Exception as error:  # an exporter must never raise into the pipeline
            self._count_failure(len(spans), f"{type(error).__name__}: {error}")
            return SpanExportResult.FAILURE
        with self._stats_lock:
            self._exported += len(spans)
        return SpanExportResult.SUCCESS

    def _count_failure(self, count: int, message: str) -> None:
        with self._stats_lock:
            first = self._failed_batches == 0
            self._failed += count
            self._failed_batches += 1
            self._last_error = message
        if first:
            _log.warning(
                "vlmscope could not write %d spans to %s (%s); the pipeline goes on, lost "
                "spans are counted in vlmscope.export_stats(). Check that the path is "
                "writable and that no other process writes this file.",
                count, self.path, message,
            )
        else:
            _log.debug("vlmscope could not write %d spans to %s: %s", count, self.path, message)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered here (the span processor batches); always True."""
        return True

    def shutdown(self) -> None:
        """Close the store; report lost spans once."""
        if self._shutdown:
            return
        self._shutdown = True
        self._writer.close()
        stats = self.stats
        if stats.failed_spans:
            _log.warning(
                "vlmscope lost %d spans in %d batches writing %s; last error: %s",
                stats.failed_spans, stats.failed_batches, self.path, stats.last_error,
            )
