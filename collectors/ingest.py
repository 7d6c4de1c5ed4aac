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

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from vlmscope.collectors import facts
from vlmscope.collectors.convert import SpanBatch
from vlmscope.collectors.otlp import DecodedSpans
from vlmscope.collectors.store import StoreWriter, merge_batches

_log = logging.getLogger("vlmscope.ingest")

DEFAULT_MAX_PENDING_SPANS = 200_000
"""Spans that may wait for a commit before :meth:`SpanIngestor.submit` refuses more."""

DEFAULT_MAX_GROUP_SPANS = 20_000
"""Most spans committed in one transaction."""


_STOP = object()
_GROUP = "_vlmscope_ingest_group"
_EVALUATION_KEY = ("run_id", "evaluator", "trace_id", "span_id", "row_id")


class IngestBusyError(RuntimeError):
    """Too many spans wait for a commit: the caller should retry later (HTTP 503)."""


@dataclass
class _Pending:
    decoded: DecodedSpans
    future: concurrent.futures.Future[int]
    spans: int


def without_spans(batch: SpanBatch, dropped: set[tuple[str, str]]) -> SpanBatch:
    """``batch`` without the spans keyed (trace id, span id) in ``dropped`` and the
    per-row records derived from them (evaluations are deduplicated on insert instead)."""

    def keep(table: pa.Table) -> pa.Table:
        mask = [(t, s) not in dropped for t, s in zip(
            table.column("trace_id").to_pylist(), table.column("span_id").to_pylist(),
            strict=True)]
        return table.filter(pa.array(mask, pa.bool_()))

    derived = {name: table if name == "evaluations" else keep(table)
               for name, table in batch.derived.items() if name != facts.BATCH_KEY}
    return SpanBatch(keep(batch.spans), {k: v for k, v in derived.items() if v.num_rows})


def skip_stored(con: duckdb.DuckDBPyConnection, batch: SpanBatch) -> SpanBatch:
    """Inside the write transaction: drop the spans the store already holds, and the
    evaluations it already records or that repeat within ``batch``."""
    if batch.num_spans:
        bounds = pc.min_max(batch.spans.column("start_time").cast(pa.int64())).as_py()
        con.register(_GROUP, batch.spans.select(["trace_id", "span_id"]))
        try:
            stored = con.execute(
                f"SELECT s.trace_id, s.span_id FROM spans s SEMI JOIN {_GROUP} g "
                "ON s.trace_id = g.trace_id AND s.span_id = g.span_id "
                "WHERE s.start_time BETWEEN make_timestamp_ns($lo) AND make_timestamp_ns($hi)",
                {"lo": bounds["min"], "hi": bounds["max"]},
            ).fetchall()
        finally:
            con.unregister(_GROUP)
        if stored:
            batch = without_spans(batch, set(stored))
    evaluations = batch.derived.get("evaluations")
    if evaluations is not None:
        same = " AND ".join(f"e.{c} IS NOT DISTINCT FROM g.{c}" for c in _EVALUATION_KEY)
        con.register(_GROUP, evaluations)
        try:
            fresh = con.sql(
                f"SELECT * FROM {_GROUP} g WHERE NOT EXISTS "
                f"(SELECT 1 FROM evaluations e WHERE {same}) "
                f"QUALIFY row_number() OVER (PARTITION BY {', '.join(_EVALUATION_KEY)}) = 1"
            ).to_arrow_table()
        finally:
            con.unregister(_GROUP)
        derived = dict(batch.derived)
        if fresh.num_rows:
            derived["evaluations"] = fresh.cast(evaluations.schema)
        else:
            del derived["evaluations"]
        batch = SpanBatch(batch.spans, derived)
    return batch


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
