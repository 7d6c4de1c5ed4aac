"""The OpenTelemetry ``SpanExporter`` that writes spans into a vlmscope DuckDB store."""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from vlmscope.collectors.convert import SpanBatch, spans_to_batch
from vlmscope.collectors.handover import GilHandOver
from vlmscope.collectors.store import (
    DEFAULT_EXIT_WAIT_S,
    StoreUnavailableError,
    StoreWriter,
    merge_batches,
)

_log = logging.getLogger("vlmscope.exporter")

DEFAULT_PENDING_BATCHES = 8
"""Converted batches that may wait for the writer thread before ``export`` blocks: enough
to ride out a slow commit, few enough to bound the memory they hold."""

DEFAULT_MAX_GROUP_SPANS = 32_768
"""Most spans the writer thread commits in one transaction. One commit costs a fixed
share (a handful of statements, the WAL sync) whatever its size, so the writer takes one
waiting batch and, without waiting for more, every other batch already queued up to this
many spans, and commits them together (group commit)."""

EXIT_WAIT_ENV = "VLMSCOPE_EXIT_WAIT_S"
"""Environment variable: the longest, in seconds, shutdown waits for a held store
(default :data:`~vlmscope.collectors.store.DEFAULT_EXIT_WAIT_S`, 5)."""

SPOOL_RETRY_S = 0.5
"""Seconds between an idle exporter's tries to commit what it spooled."""

_STOP = object()


@dataclass(frozen=True)
class ExportStats:
    """What an exporter did so far: spans committed (directly, or from the spool it put
    them in), spans lost, and the last error;
    ``spooled_spans``: spans waiting now in the store's spool (see
    :mod:`vlmscope.collectors.spool`), of this exporter or another writer of the store."""

    exported_spans: int
    failed_spans: int
    failed_batches: int
    last_error: str | None
    spooled_spans: int = 0


class DuckDBSpanExporter(SpanExporter):
    """Writes each batch of finished spans into the DuckDB store at ``path``.

    ``export`` converts the spans to Arrow in the caller's thread (the batch span
    processor's worker) and hands them to a writer thread that commits them; DuckDB
    releases the GIL while it inserts, so conversion of the next batch overlaps the commit
    of this one. The writer commits every batch waiting when it is free in one transaction
    (at most ``max_group_spans`` spans; a batch larger than that alone). At most
    ``pending_batches`` converted batches wait; then ``export`` blocks, so memory stays
    bounded.

    Never raises into the application: a batch that cannot be converted or written is
    counted in :attr:`stats` and logged once (the first failure) at WARNING with what to do;
    later failures are logged at DEBUG and summed up at shutdown. A batch the store cannot
    take now (another process holds the file, or it is damaged) is not lost: it goes to the
    store's durable spool and is committed once the store can be written, by this exporter
    (it retries every :data:`SPOOL_RETRY_S` while idle) or by the next writer.
    :meth:`force_flush` waits until every handed-over batch is committed, spooled or counted
    as lost; :meth:`shutdown` waits at most ``exit_wait_s`` seconds for a held store.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = "vlmscope.duckdb",
        *,
        writer: StoreWriter | None = None,
        pending_batches: int = DEFAULT_PENDING_BATCHES,
        max_group_spans: int = DEFAULT_MAX_GROUP_SPANS,
        exit_wait_s: float | None = None,
    ) -> None:
        if pending_batches < 1:
            raise ValueError(f"pending_batches must be at least 1, got {pending_batches}")
        if max_group_spans < 1:
            raise ValueError(f"max_group_spans must be at least 1, got {max_group_spans}")
        self._max_group_spans = max_group_spans
        if writer is None:
            if exit_wait_s is None:
                exit_wait_s = float(os.environ.get(EXIT_WAIT_ENV, DEFAULT_EXIT_WAIT_S))
            writer = StoreWriter(path, exit_wait_s=exit_wait_s)
        self._writer = writer
        self.path = self._writer.path
        self._stats_lock = threading.Lock()
        self._exported = 0
        self._failed = 0
        self._failed_batches = 0
        self._last_error: str | None = None
        self._shutdown = False
        self.handover = GilHandOver()
        """Whether the writer thread commits now, for the threads that convert spans
        meanwhile (:mod:`vlmscope.collectors.handover`)."""
        self._queue: queue.Queue = queue.Queue(maxsize=pending_batches)
        self._thread = threading.Thread(target=self._write_loop, name="vlmscope-duckdb-writer",
                                        daemon=True)
        self._thread.start()

    @property
    def stats(self) -> ExportStats:
        """A snapshot of the counts so far."""
        with self._stats_lock:
            counts = (self._exported + self._writer.unspooled_spans, self._failed,
                      self._failed_batches, self._last_error)
        return ExportStats(*counts, spooled_spans=self._writer.spooled_spans())

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Convert ``spans`` and queue them for the writer; never raises."""
        if self._shutdown:
            self.count_failure(len(spans), "exporter already shut down")
            return SpanExportResult.FAILURE
        try:
            batch = spans_to_batch(spans, busy=self.handover)
        except Exception as error:  # an exporter must never raise into the pipeline
            self.count_failure(len(spans), f"{type(error).__name__}: {error}")
            return SpanExportResult.FAILURE
        self._queue.put(batch)
        return SpanExportResult.SUCCESS

    def export_batch(self, batch: SpanBatch, timeout_s: float | None = None) -> bool:
        """Queue an already converted batch for the writer (blocks while ``pending_batches``
        wait, at most ``timeout_s`` if given: then the batch goes to the spool); False, with
        the spans counted lost, once the exporter is shut down."""
        if self._shutdown:
            self.count_failure(batch.num_spans, "exporter already shut down")
            return False
        try:
            self._queue.put(batch, timeout=timeout_s)
        except queue.Full:
            self.spool_batch(batch, "the writer is stuck")
        return True

    def spool_batch(self, batch: SpanBatch, why: BaseException | str,
                    batches: int = 1) -> None:
        """Put ``batch`` in the store's spool at once (it is committed later, exactly once);
        a failure to spool counts its spans lost."""
        try:
            self._writer.spool(batch, why)
        except Exception as error:  # never raised into the application
            self.count_failure(batch.num_spans, f"could not spool ({error}); {why}", batches)

    def _spool_waiting(self, why: str) -> int:
        """Spool every batch still waiting for the writer; returns their spans."""
        spans = 0
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return spans
            if item is not _STOP:
                self.spool_batch(item, why)
                spans += item.num_spans
            self._queue.task_done()

    def _write_loop(self) -> None:
        carried = None  # a batch taken from the queue that did not fit the last group
        while True:
            if carried is not None:
                item = carried
            elif self._writer.spool_pending:
                try:
                    item = self._queue.get(timeout=SPOOL_RETRY_S)
                except queue.Empty:
                    with self.handover.committing():
                        self._writer.retry_spool()
                    continue
            else:
                item = self._queue.get()
            carried = None
            if item is _STOP:
                self._queue.task_done()
                return
            group = [item]
            size = item.num_spans
            # Group commit: whatever else waits already, without waiting for more.
            while size < self._max_group_spans:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP or size + more.num_spans > self._max_group_spans:
                    carried = more
                    break
                group.append(more)
                size += more.num_spans
            try:
                with self.handover.committing():
                    self._write_group(group)
            finally:
                for _ in group:
                    self._queue.task_done()

    def _write_group(self, group: list[SpanBatch]) -> None:
        try:
            batch = merge_batches(group)
        except Exception as error:  # batches whose tables do not concatenate: one by one
            _log.debug("vlmscope writes %d batches one by one: %s", len(group), error)
            for batch in group:
                self._write(batch)
            return
        self._write(batch, batches=len(group))

    def _write(self, batch: SpanBatch, batches: int = 1) -> None:
        """Commit ``batch`` (``batches`` handed-over batches merged) in one transaction,
        counting its spans as exported or, on failure, as lost."""
        try:
            self._writer.write(batch)
        except StoreUnavailableError as held:
            self.spool_batch(batch, held, batches)
            return
        except Exception as error:
            self.count_failure(batch.num_spans, f"{type(error).__name__}: {error}", batches)
            return
        with self._stats_lock:
            self._exported += batch.num_spans

    def count_failure(self, count: int, message: str, batches: int = 1) -> None:
        """Count ``count`` spans (``batches`` batches) lost, here or before they reached the
        exporter, with why; logged once at WARNING, later losses at DEBUG."""
        with self._stats_lock:
            first = self._failed_batches == 0
            self._failed += count
            self._failed_batches += batches
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
        """Wait until every batch handed to :meth:`export` is committed, spooled or counted
        lost, at most ``timeout_millis``; False when the time ran out first."""
        deadline = time.monotonic() + timeout_millis / 1e3
        done = self._queue.all_tasks_done
        with done:
            while self._queue.unfinished_tasks:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                done.wait(left)
        return True

    def shutdown(self, timeout_millis: float = 30_000) -> None:
        """Commit what is queued, close the store (waiting at most ``exit_wait_s`` for a
        held one: what it cannot commit by then stays spooled), and report lost spans once.
        Returns within about ``timeout_millis``: should the writer not finish by then (a
        commit that does not return), the batches still waiting go to the spool."""
        if self._shutdown:
            return
        self._shutdown = True
        deadline = time.monotonic() + timeout_millis / 1e3
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=max(0.0, deadline - time.monotonic()))
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            spooled = self._spool_waiting("the writer did not finish in time")
            _log.warning("vlmscope's writer did not finish within %.1f s; %d waiting spans "
                         "were spooled in %s for the next writer", timeout_millis / 1e3,
                         spooled, self._writer.spool_store.folder)
        else:
            self._writer.close()
        stats = self.stats
        if stats.failed_spans:
            _log.warning(
                "vlmscope lost %d spans in %d batches writing %s; last error: %s",
                stats.failed_spans, stats.failed_batches, self.path, stats.last_error,
            )
