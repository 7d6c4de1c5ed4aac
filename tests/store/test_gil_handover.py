"""How conversion shares the interpreter with the store's writer thread.

The writer needs the GIL back each time one of its DuckDB calls returns. A converting thread
that released the GIL and took it straight back (what the converter did before) starved it:
the waiter's switch request is withdrawn whenever the GIL changes hands, so it waited for
hundreds of milliseconds a call. While ``busy.writing`` is true the converter now hands the
GIL over for real (``hand_over_gil`` in ``_spans_native.c``); otherwise it keeps it, and the
interpreter switches as it always does (the rule: ``collectors/handover.py``). These tests
check the rule and the contract (when ``writing`` is read) deterministically, and the effect
(marked slow) as a ratio measured in one run: a thread waiting for the GIL while another
converts gets it far sooner with a busy writer than without.

Also here: the converters build their columns from :data:`convert.ARROW_POOL` (the system
allocator), never from pyarrow's default pool, whose slow reuse of memory freed by another
thread made conversion 1.7 times slower while the writer worked.
"""

from __future__ import annotations

import statistics
import threading
import time

import pyarrow as pa
import pytest
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, TraceFlags

from vlmscope import conventions as cv
from vlmscope.collectors import convert

native = pytest.mark.skipif(not convert.native_converter(),
                            reason="the native converter is not built")


def _spans(count: int) -> list[ReadableSpan]:
    attrs = {cv.VLMSCOPE_SPAN_ROLE: cv.ROLE_ENCODER, cv.VISION_ENCODER_BATCH_SIZE: 1,
             cv.VLMSCOPE_ROW_IDS: ["r"], cv.VISION_ENCODER_TOP_K_LABELS: ["a", "b", "c"],
             cv.VISION_ENCODER_TOP_K_SCORES: [0.5, 0.25, 0.125]}
    return [ReadableSpan(name="e", context=SpanContext(1, i + 1, False, TraceFlags(1)),
                         attributes=BoundedAttributes(attributes=attrs), start_time=1,
                         end_time=2) for i in range(count)]


class _Counting:
    """A busy flag that counts how often it is read; reading it may raise."""

    def __init__(self, value: bool, fail: bool = False) -> None:
        self.reads = 0
        self._value = value
        self._fail = fail

    @property
    def writing(self) -> bool:
        self.reads += 1
        if self._fail:
            raise RuntimeError("unreadable flag")
        return self._value


@native
def test_extend_reads_the_busy_flag_every_64_spans_and_survives_a_broken_one() -> None:
    spans = _spans(640)
    for value in (True, False):
        flag = _Counting(value)
        columns = convert._native.SpanColumns()
        columns.extend(spans, flag)
        assert flag.reads == 10 and len(columns) == 640
    broken = _Counting(True, fail=True)
    columns = convert._native.SpanColumns()
    columns.extend(spans, busy=broken)  # an unreadable flag means "not busy", never an error
    assert broken.reads == 10 and len(columns) == 640
    columns.extend(spans)  # no flag: never read
    assert len(columns) == 1280


def test_spans_to_batch_with_a_busy_writer_converts_the_same(monkeypatch) -> None:
    spans = _spans(300)
    plain = convert.spans_to_batch(spans)
    busy = convert.spans_to_batch(spans, busy=_Counting(True))
    assert busy.spans.equals(plain.spans)
    assert sorted(busy.derived) == sorted(plain.derived)
    for name, table in plain.derived.items():
        assert busy.derived[name].equals(table), name


def _median_gil_wait(busy: object | None, samples: int = 40) -> float:
    """Median seconds a thread waits to get the GIL back after a short sleep, while
    another thread converts spans without pause."""
    spans = _spans(2048)
    stop = threading.Event()

    def convert_forever() -> None:
        while not stop.is_set():
            convert._native.SpanColumns().extend(spans, busy)

    worker = threading.Thread(target=convert_forever, daemon=True)
    worker.start()
    time.sleep(0.05)
    waits = []
    try:
        for _ in range(samples):
            started = time.perf_counter()
            time.sleep(0.0001)  # releases the GIL; returning needs it back
            waits.append(time.perf_counter() - started)
    finally:
        stop.set()
        worker.join()
    return statistics.median(waits)


def test_the_hand_over_follows_its_one_rule(monkeypatch) -> None:
    """While (and only while) the writer commits, each yield point hands the GIL over: the
    span processor's every HAND_OVER_EVERY span ends, the converters' every column; a
    commit that fails still ends the hand-over."""
    from vlmscope.collectors import handover

    handed = []
    monkeypatch.setattr(handover, "_yield_gil", lambda: handed.append(1))
    gil = handover.GilHandOver()
    for _ in range(10):
        gil.span_ended()
        handover.yield_to_writer(gil)
    handover.yield_to_writer(None)
    assert handed == [] and not gil.writing
    with gil.committing():
        assert gil.writing
        for _ in range(3 * handover.HAND_OVER_EVERY):
            gil.span_ended()
        assert len(handed) == 3
        handover.yield_to_writer(gil)
        handover.yield_to_writer(_Counting(True))
        assert len(handed) == 5
    with pytest.raises(RuntimeError), gil.committing():
        raise RuntimeError("the commit failed")
    assert not gil.writing


@native
def test_conversion_reads_the_rule_from_the_exporters_hand_over(monkeypatch) -> None:
    """The columns the native converter hands to Arrow yield between them while the
    hand-over says the writer commits, and not otherwise."""
    from vlmscope.collectors import handover

    handed = []
    monkeypatch.setattr(handover, "_yield_gil", lambda: handed.append(1))
    gil = handover.GilHandOver()
    convert.spans_to_batch(_spans(10), busy=gil)
    assert handed == []
    with gil.committing():
        convert.spans_to_batch(_spans(10), busy=gil)
    assert handed  # at least one yield point (a list column) while the writer commits


@native
@pytest.mark.slow  # a timing ratio: the host's load can blur it
def test_a_busy_writer_gets_the_gil_far_sooner_than_an_idle_one() -> None:
    class Busy:
        writing = True

    idle = _median_gil_wait(None)  # the interpreter's own switching: about 5 ms
    handed = _median_gil_wait(Busy())  # handed over every 64 spans: well under 1 ms
    assert handed * 3 < idle, (handed, idle)


@pytest.mark.skipif(pa.default_memory_pool().backend_name == "system",
                    reason="the default pool is the system allocator already")
def test_batches_are_built_from_the_system_allocator_not_the_default_pool() -> None:
    spans = _spans(2000)
    default, system = pa.default_memory_pool(), convert.ARROW_POOL
    assert system.backend_name == "system"
    before_default = default.bytes_allocated()
    batch = convert.spans_to_batch(spans)
    held = batch.spans.nbytes + sum(table.nbytes for table in batch.derived.values())
    # The native converter hands most columns over as Python bytes (malloc), the rest, and
    # the reference's columns, come from ARROW_POOL: next to nothing from the default pool.
    assert held > 0 and default.bytes_allocated() - before_default < held / 10
    del batch
