"""Committing decoded OTLP requests exactly once, with group commit and backpressure.

:class:`SpanIngestor` is the single writer behind the OTLP receiver and the import: callers
:meth:`~SpanIngestor.submit` decoded requests and get a future that resolves only after the
DuckDB ``COMMIT`` that holds their spans, so an acknowledgement means the spans are durable.
A writer thread drains the queue and commits every waiting request in one transaction (one
commit costs about as much for 5 spans as for 5,000), all or nothing.

Exactly once: a span is identified by (trace id, span id). A client that retries a request
whose acknowledgement it never saw (the collector died between COMMIT and response) sends
spans the store already holds; they are dropped inside the transaction, as are spans sent
twice within one commit group and evaluations already recorded. The lookup reads only the
store's rows in the start-time range of the group, which DuckDB prunes by row-group min/max.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import queue
import threading
from dataclasses import dataclass

from vlmscope.collectors.otlp import DecodedSpans
from vlmscope.collectors.spool import skip_stored, without_spans
from vlmscope.collectors.store import StoreUnavailableError, StoreWriter, merge_batches

_log = logging.getLogger("vlmscope.ingest")

DEFAULT_MAX_PENDING_SPANS = 200_000
"""Spans that may wait for a commit before :meth:`SpanIngestor.submit` refuses more."""

DEFAULT_MAX_GROUP_SPANS = 20_000
"""Most spans committed in one transaction."""


SPOOL_RETRY_S = 0.5
"""Seconds between an idle ingestor's tries to commit what it spooled."""

_STOP = object()


class IngestBusyError(RuntimeError):
    """Too many spans wait for a commit: the caller should retry later (HTTP 503)."""


@dataclass
class _Pending:
    decoded: DecodedSpans
    future: concurrent.futures.Future[int]
    spans: int


class SpanIngestor:
    """Commits decoded requests to the store at ``path`` from one writer thread.

    ``max_pending_spans`` bounds memory: past it, :meth:`submit` raises
    :class:`IngestBusyError`. ``max_group_spans`` bounds one transaction.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_pending_spans: int = DEFAULT_MAX_PENDING_SPANS,
        max_group_spans: int = DEFAULT_MAX_GROUP_SPANS,
        writer: StoreWriter | None = None,
    ) -> None:
        if max_pending_spans < 1 or max_group_spans < 1:
            raise ValueError("max_pending_spans and max_group_spans must be at least 1")
        self.writer = writer if writer is not None else StoreWriter(path)
        self._max_pending = max_pending_spans
        self._max_group = max_group_spans
        self._pending_spans = 0
        self._count_lock = threading.Lock()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self.committed_spans = 0
        self._thread = threading.Thread(target=self._loop, name="vlmscope-ingest", daemon=True)
        self._thread.start()

    def submit(self, decoded: DecodedSpans) -> concurrent.futures.Future[int]:
        """Queue ``decoded`` for commit; the future resolves to the request's span count once
        its spans are committed (or already stored), or to the write error."""
        spans = decoded.batch.num_spans + decoded.evaluations
        with self._count_lock:
            if self._closed:
                raise RuntimeError("the ingestor is closed")
            if self._pending_spans and self._pending_spans + spans > self._max_pending:
                raise IngestBusyError(
                    f"{self._pending_spans} spans are waiting for the store; retry later")
            self._pending_spans += spans
        future: concurrent.futures.Future[int] = concurrent.futures.Future()
        self._queue.put(_Pending(decoded, future, spans))
        return future

    @property
    def pending_spans(self) -> int:
        """Spans submitted and not yet committed or failed."""
        return self._pending_spans

    def _loop(self) -> None:
        stop = False
        while not stop:
            if self.writer.spool_pending:
                # Spans acknowledged from the spool: commit them once the store is free.
                try:
                    item = self._queue.get(timeout=SPOOL_RETRY_S)
                except queue.Empty:
                    self.writer.retry_spool()
                    continue
            else:
                item = self._queue.get()
            if item is _STOP:
                return
            group = [item]
            size = item.spans
            while size < self._max_group:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    stop = True
                    break
                group.append(more)
                size += more.spans
            self._commit(group)

    def _commit(self, group: list[_Pending]) -> None:
        seen: set[tuple[str, str]] = set()
        parts = []
        for pending in group:
            keys = pending.decoded.keys
            repeated = seen.intersection(keys)
            seen.update(keys)
            batch = pending.decoded.batch
            parts.append(without_spans(batch, repeated) if repeated else batch)
        batch = merge_batches(parts)
        stored = 0
        error: Exception | None = None
        try:
            stored = self.writer.write(batch, prepare=skip_stored, new_spans_only=True)
        except StoreUnavailableError as held:
            # Held by another process or damaged: the spool keeps the spans durably (the
            # acknowledgement stays true) until a writer can commit them.
            try:
                self.writer.spool(batch, held)
            except Exception as failure:
                error = failure
                _log.warning("could not commit or spool %d spans: %s", batch.num_spans, failure)
        except Exception as failure:  # reported to every waiting request, never raised here
            error = failure
            _log.warning("could not commit %d spans: %s", batch.num_spans, failure)
        with self._count_lock:
            self._pending_spans -= sum(p.spans for p in group)
            if error is None:
                self.committed_spans += stored
        for pending in group:
            if error is None:
                pending.future.set_result(pending.decoded.batch.num_spans)
            else:
                pending.future.set_exception(error)

    def close(self) -> None:
        """Commit everything submitted, then close the store."""
        with self._count_lock:
            if self._closed:
                return
            self._closed = True
        self._queue.put(_STOP)
        self._thread.join()
        self.writer.close()
