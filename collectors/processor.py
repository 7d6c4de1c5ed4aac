"""The span processor of the embedded store: each span converted as it ends, batches written
behind the application's back.

The SDK's ``BatchSpanProcessor`` keeps every finished span alive in its queue until a batch
is full; thousands of live spans (each a dozen objects, some with a 512-float vector) make
Python's cyclic garbage collector walk them again and again, which costs a traced pipeline
more than converting the spans does. :class:`DuckDBSpanProcessor` converts each span when it
ends into the columns of the store's tables (the native converter, ``_spans_native.c``, holds
no reference to the span afterwards) and otherwise behaves as the batch processor does: a
worker thread hands full batches, or whatever has accumulated every ``schedule_delay_millis``,
to the :class:`~vlmscope.collectors.exporter.DuckDBSpanExporter`'s writer; at most
``max_queue_size`` spans wait, and past that the oldest waiting batch is dropped and counted
(the batch processor drops the oldest span); ``force_flush`` and ``shutdown`` write
everything first.

It never raises into the application: a span the converter rejects is counted lost and
logged by the exporter, and nothing else of it is kept.

A process forked from a traced one (``multiprocessing`` on Linux, a pre-forking server)
inherits the processor with no worker thread and the parent's connection to the store. In
the child the processor starts afresh: the spans the parent had waiting are the parent's to
write, the parent's exporter is left untouched (closing its connection here would write to
the parent's store), and a new exporter takes the child's spans into the store's spool
(:class:`~vlmscope.collectors.store.ForkedChildWriter`: the child never opens the store),
which the parent's writer (or the next one) commits. A forked child may be killed rather
than exit (``Pool.terminate``), so it flushes at the end of each row
(:func:`vlmscope.tracing.flush_if_forked`).
"""

from __future__ import annotations

import collections
import contextlib
import os
import threading
import time
import weakref

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from vlmscope.collectors.convert import SpanAccumulator, valid_text_span
from vlmscope.collectors.exporter import DuckDBSpanExporter
from vlmscope.collectors.store import ForkedChildWriter
from vlmscope.settings import (
    DEFAULT_MAX_EXPORT_BATCH_SIZE,
    DEFAULT_MAX_QUEUE_SIZE,
    DEFAULT_SCHEDULE_DELAY_MS,
)

_INHERITED: list[DuckDBSpanExporter] = []
"""In a forked child, the parent's exporters: kept alive so that nothing of theirs (the
parent's store connection) is closed or finalised here."""


def _call(method: weakref.WeakMethod) -> None:
    bound = method()
    if bound is not None:
        with contextlib.suppress(Exception):  # a fork must not fail for tracing's sake
            bound()


class DuckDBSpanProcessor(SpanProcessor):
    """Converts spans as they end and writes them, in batches, through ``exporter``.

    ``schedule_delay_millis``, ``max_export_batch_size`` and ``max_queue_size`` mean what they
    mean for the SDK's ``BatchSpanProcessor`` (with :mod:`vlmscope.settings`' defaults); the
    counts of dropped and lost spans are in :attr:`dropped_spans` and the exporter's ``stats``.
    """

    def __init__(
        self,
        exporter: DuckDBSpanExporter,
        *,
        schedule_delay_millis: float = DEFAULT_SCHEDULE_DELAY_MS,
        max_export_batch_size: int = DEFAULT_MAX_EXPORT_BATCH_SIZE,
        max_queue_size: int = DEFAULT_MAX_QUEUE_SIZE,
    ) -> None:
        if schedule_delay_millis <= 0 or max_export_batch_size < 1 or max_queue_size < 1:
            raise ValueError("schedule_delay_millis, max_export_batch_size and max_queue_size "
                             "must be positive")
        if max_export_batch_size > max_queue_size:
            raise ValueError("max_export_batch_size must not exceed max_queue_size")
        self.exporter = exporter
        self.dropped_spans = 0
        """Spans dropped because ``max_queue_size`` spans were already waiting."""
        self._delay_s = schedule_delay_millis / 1e3
        self._max_batch = max_export_batch_size
        self._max_queue = max_queue_size
        self._shutdown = False
        self._start()
        reinit = weakref.WeakMethod(self._after_fork_in_child)
        os.register_at_fork(after_in_child=lambda: _call(reinit))

    def _start(self) -> None:
        """No span waiting, fresh locks, and the worker thread running."""
        self._lock = threading.Lock()
        self._current = SpanAccumulator()
        self._count = 0  # spans in self._current
        self._full: collections.deque[SpanAccumulator] = collections.deque()
        self._waiting = 0  # spans in self._full
        self._wake = threading.Condition(self._lock)
        self._flush_lock = threading.Lock()  # one hand-over at a time, in order
        self._worker = threading.Thread(target=self._work, name="vlmscope-span-processor",
                                        daemon=True)
        self._worker.start()

    def _after_fork_in_child(self) -> None:
        """Start afresh in a forked child (see the module's docstring)."""
        if self._shutdown:
            return
        _INHERITED.append(self.exporter)  # never closed, never collected, in the child
        self.exporter = DuckDBSpanExporter(writer=ForkedChildWriter(self.exporter.path))
        self._start()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing to do when a span starts."""

    def on_end(self, span: ReadableSpan) -> None:
        """Convert ``span`` into the current batch; never raises."""
        if not span.context.trace_flags.sampled:
            return
        try:
            with self._lock:
                if self._shutdown:
                    lost = "the span processor is shut down"
                else:
                    try:
                        self._current.add(span)
                    except Exception:
                        fixed = valid_text_span(span)  # text UTF-8 cannot encode: U+FFFD
                        if fixed is None:
                            raise
                        self._current.add(fixed)
                    self._count += 1
                    if self._count >= self._max_batch:
                        self._seal()
                        self._wake.notify()
                    lost = None
        except Exception as error:  # a span the converter rejects is lost, not raised
            lost = f"{type(error).__name__}: {error}"
        if lost is None:
            handover = self.exporter.handover
            if handover.writing:  # the rule of vlmscope.collectors.handover
                handover.span_ended()
            return
        self.exporter.count_failure(1, lost)

    def _seal(self) -> None:
        """Move the current batch to the waiting ones (holding the lock), dropping the
        oldest waiting batches while more than ``max_queue_size`` spans would wait."""
        batch, self._current = self._current, SpanAccumulator()
        self._count = 0
        self._full.append(batch)
        self._waiting += len(batch)
        while self._waiting > self._max_queue and len(self._full) > 1:
            dropped = self._full.popleft()
            self._waiting -= len(dropped)
            self.dropped_spans += len(dropped)

    def _work(self) -> None:
        while True:
            with self._lock:
                # Woken for a full batch: hand over the full ones; after the delay: all.
                timed_out = not self._full and not self._shutdown and not self._wake.wait(
                    self._delay_s)
                if self._shutdown:
                    return
            self._hand_over(partial=timed_out)

    def _hand_over(self, partial: bool, deadline: float | None = None,
                   closing: bool = False) -> None:
        """Convert the waiting batches (and, with ``partial``, the current one) to Arrow and
        queue them for the writer, oldest first (past ``deadline``, a monotonic time, a
        batch the writer has no room for goes to the spool). ``closing``: when the worker
        is still stuck handing over at the deadline, the rest goes to the spool too."""
        wait = -1 if deadline is None else max(0.0, deadline - time.monotonic())
        if not self._flush_lock.acquire(timeout=wait):
            if closing:
                self._spool_rest()
            return
        try:
            while True:
                with self._lock:
                    if not self._full and partial and self._count:
                        self._seal()
                    if not self._full:
                        return
                    batch = self._full.popleft()
                    self._waiting -= len(batch)
                spans = len(batch)  # take() empties the batch, whether it converts or not
                try:
                    converted = batch.take(busy=self.exporter.handover)
                except Exception as error:  # never raised into the application
                    self.exporter.count_failure(spans, f"{type(error).__name__}: {error}")
                    continue
                self.exporter.export_batch(converted, None if deadline is None else max(
                    0.0, deadline - time.monotonic()))
        finally:
            self._flush_lock.release()

    def _spool_rest(self) -> None:
        """Every span still waiting, to the spool (a stuck writer at shutdown)."""
        with self._lock:
            if self._count:
                self._seal()
            batches = list(self._full)
            self._full.clear()
            self._waiting = 0
        for batch in batches:
            spans = len(batch)
            try:
                self.exporter.spool_batch(batch.take(), "the writer is stuck")
            except Exception as error:  # never raised into the application
                self.exporter.count_failure(spans, f"{type(error).__name__}: {error}")

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Write every span ended so far; True once the store has committed (or spooled)
        them, False when ``timeout_millis`` passed first."""
        if self._shutdown:
            return False
        deadline = time.monotonic() + timeout_millis / 1e3
        self._hand_over(partial=True, deadline=deadline)
        left = max(0.0, deadline - time.monotonic()) * 1e3
        return self.exporter.force_flush(int(left))

    def shutdown(self, timeout_millis: float = 30_000) -> None:
        """Write everything, stop the worker and shut the exporter down, within about
        ``timeout_millis`` (what the writer cannot take by then is spooled). Safe to call
        twice."""
        deadline = time.monotonic() + timeout_millis / 1e3
        with self._lock:
            if self._shutdown:
                return
            self._shutdown = True
            self._wake.notify()
        self._worker.join(max(0.0, deadline - time.monotonic()))
        self._hand_over(partial=True, deadline=deadline, closing=True)
        self.exporter.shutdown(max(0.0, deadline - time.monotonic()) * 1e3)
