"""Which spans a store writer committed lately, so that a batch of new spans skips the
lookup of stored ones (private to :mod:`vlmscope.collectors.store`)."""

from __future__ import annotations

import heapq
import itertools

import pyarrow as pa

DEFAULT_RECENT_SPANS = 262_144
"""Most spans a writer's :class:`RecentSpans` remembers: a few seconds of spans at the
collector's rate, so that a client's resend within them still finds its spans noted."""


class RecentSpans:
    """The spans one writer's connection has committed lately, so that a batch whose spans
    are all new commits without looking the store up (``StoreWriter.write(new_spans_only=
    True)``; the lookup, an anti-join on the spans of the batch's start-time range, is a
    large part of a small commit).

    It holds, for every stored span that starts at or after :attr:`floor`, the hash of its
    (trace id, span id), with a count, so that forgetting a batch is exact even where two
    keys share a hash. A batch is known new when it starts at or after the floor and none
    of its hashes is held; a shared hash only sends a batch to the lookup. The floor starts
    just past the latest start time stored when the connection opened (so a span the store
    held before is never taken for new: a client that resends after a restart goes through
    the lookup), and rises as batches are forgotten, those whose spans start earliest first,
    past the latest start of each. Only right while every span written to the file goes
    through this writer's connection: the writer drops it whenever it lets the file go."""

    def __init__(self, floor: int, capacity: int = DEFAULT_RECENT_SPANS) -> None:
        self.floor = floor
        self._capacity = capacity
        self._counts: dict[int, int] = {}
        self._held = 0
        self._batches: list[tuple[int, int, list[int]]] = []  # a heap by latest start
        self._order = itertools.count()

    def all_new(self, hashes: list[int], first_start: int) -> bool:
        """Whether no span of a batch (its key hashes, its earliest start in ns) is stored."""
        counts = self._counts
        return first_start >= self.floor and not any(h in counts for h in hashes)

    def add(self, hashes: list[int], last_start: int) -> None:
        """Note a committed batch (its key hashes and latest start, ns)."""
        counts = self._counts
        for h in hashes:
            counts[h] = counts.get(h, 0) + 1
        self._held += len(hashes)
        heapq.heappush(self._batches, (last_start, next(self._order), hashes))
        while self._held > self._capacity:
            last, _, old = heapq.heappop(self._batches)
            for h in old:
                left = counts[h] - 1
                if left:
                    counts[h] = left
                else:
                    del counts[h]
            self._held -= len(old)
            self.floor = max(self.floor, last + 1)


def key_hashes(spans: pa.Table) -> list[int]:
    return [hash(key) for key in zip(spans.column("trace_id").to_pylist(),
                                     spans.column("span_id").to_pylist(), strict=True)]
