"""The GIL hand-over between the threads that convert spans and the store's writer thread.

One rule, kept by one object (:class:`GilHandOver`, one per exporter): **while the writer
commits (``writing`` is true), a converting thread hands it the GIL at each of its yield
points; otherwise it keeps the GIL and the interpreter switches threads as it always does.**

Why: every DuckDB call of the writer releases the GIL while it runs and needs it back when
it returns. A thread that converts spans without pause holds the GIL, so the writer would
wait for the interpreter's switch interval (``sys.getswitchinterval()``) at every call, and
a commit makes many. Handing over only while the writer commits costs the converting thread
nothing the rest of the time.

The yield points, each a fixed amount of converting work apart:

* the span processor: every :data:`HAND_OVER_EVERY` span ends (:meth:`GilHandOver.span_ended`);
* the Python converters: between the columns they build (:func:`yield_to_writer`);
* the native converter (``_spans_native.c``, ``SpanColumns.extend``): every ``YIELD_EVERY``
  spans, reading the same ``writing`` attribute. A bare release and retake of the GIL would
  not let the waiting writer in (its switch request lapses when the GIL changes hands), so
  the C code waits a few microseconds with the GIL released.

Only the writer thread sets ``writing`` (:meth:`GilHandOver.committing`); the converting
threads only read it, so a stale read costs at most one hand-over too many or too few.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Iterator
from typing import Any

HAND_OVER_EVERY = 4
"""Span ends between hand-overs in the span processor while the writer commits: at every
end the application paid for the writer's Python work at once (``benchmarks/README.md``)."""

# time.sleep(0) releases the GIL and takes it back: a thread waiting for it runs now.
_yield_gil = functools.partial(time.sleep, 0)


def yield_to_writer(busy: Any) -> None:
    """Hand the GIL to the writer if ``busy`` (a :class:`GilHandOver`, or any object with a
    ``writing`` attribute; None for none) says it commits."""
    if busy is not None and getattr(busy, "writing", False):
        _yield_gil()


class GilHandOver:
    """Whether the store's writer thread commits now, and the hand-over rule of this module
    for the threads that convert spans meanwhile."""

    def __init__(self) -> None:
        self.writing = False
        """True while the writer thread commits (set by :meth:`committing` only)."""
        self._ended = 0

    @contextlib.contextmanager
    def committing(self) -> Iterator[None]:
        """Around a commit of the writer thread: converting threads hand it the GIL."""
        self.writing = True
        try:
            yield
        finally:
            self.writing = False

    def span_ended(self) -> None:
        """A span was converted at its end: every :data:`HAND_OVER_EVERY`-th while the writer
        commits, hand it the GIL. (Callers on the hot path test ``writing`` first.)"""
        if self.writing:
            self._ended += 1
            if self._ended % HAND_OVER_EVERY == 0:
                _yield_gil()
