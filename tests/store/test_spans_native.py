"""The native span converter (``_spans_native.c``) against the pure-Python reference.

Random spans, built with the real SDK's classes, go through both; every table they produce
(spans, the per-row records, embeddings, evaluations, the pipeline-row parts) must be equal
value for value. The spans cover every role the normaliser reads and the oddities it must
survive: missing and None values, numbers as strings, bools where ints are expected,
negative or oversized top-k, per-row lists shorter than the batch, vector keys that are
not quite vector keys, events, links, trace states and spans that are not the SDK's own class.
"""

from __future__ import annotations

import copy
import gc
import weakref

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    Link,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)

from vlmscope import conventions as cv
from vlmscope.collectors import convert

pytestmark = pytest.mark.skipif(not convert.native_converter(),
                                reason="the native converter is not built")

ROLES = [cv.ROLE_ROW, cv.ROLE_ENCODER, cv.ROLE_LLM, cv.ROLE_TRAINING_CHECK,
         cv.ROLE_EVALUATION, cv.ROLE_BATCH, "other"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 12), st.floats(-1e3, 1e3, width=32),
    st.text(max_size=6), st.sampled_from(["3", "x", "", "2.5"]))
lists = st.lists(st.one_of(st.integers(-2, 9), st.floats(-1, 1), st.text(max_size=4)),
                 max_size=12)
values = st.one_of(scalars, lists, st.lists(st.text(max_size=5), max_size=8).map(tuple))

KEYS = [
    cv.VLMSCOPE_ROW_ID, cv.VLMSCOPE_RUN_NAME, cv.VLMSCOPE_COHORT, cv.VLMSCOPE_ROW_EXPECTED,
    cv.VLMSCOPE_ROW_OBJECTS, cv.VLMSCOPE_ROW_INSTRUCTION, cv.VISION_IMAGE_SHA256,
    cv.VLMSCOPE_ROW_IDS, cv.VISION_ENCODER_BATCH_SIZE, cv.VISION_ENCODER_TOP_K,
    cv.VISION_ENCODER_TOP_K_LABELS, cv.VISION_ENCODER_TOP_K_SCORES,
    cv.VISION_ENCODER_TOP_K_CLASS_IDS, cv.VISION_ENCODER_ENTROPY,
    cv.VISION_ENCODER_EMBEDDING_L2_NORM, cv.VISION_ENCODER_ARCHITECTURE,
    cv.EMBEDDING_MODEL_NAME, cv.VISION_ENCODER_CHECKPOINT_SHA256, cv.VISION_ENCODER_LAYER,
    cv.VISION_ENCODER_EMBEDDING_DIM, cv.VLMSCOPE_LLM_OUTPUTS, cv.VLMSCOPE_LLM_INSTRUCTIONS,
    cv.VLMSCOPE_LLM_INPUT_TOKENS, cv.VLMSCOPE_LLM_OUTPUT_TOKENS, cv.LLM_MODEL_NAME,
    cv.GEN_AI_REQUEST_MODEL, cv.GEN_AI_PROVIDER_NAME, cv.LLM_PROVIDER,
    cv.VISION_ENCODER_SPAN_ID, cv.INPUT_VALUE, cv.OUTPUT_VALUE, cv.GEN_AI_USAGE_INPUT_TOKENS,
    cv.GEN_AI_USAGE_OUTPUT_TOKENS, cv.VLMSCOPE_TRAINING_CHECK_NAME,
    cv.VLMSCOPE_TRAINING_CHECK_SCORE, cv.VLMSCOPE_TRAINING_CHECK_PASSED,
    cv.VLMSCOPE_TRAINING_CHECK_LABEL, cv.VLMSCOPE_TRAINING_CHECK_EXPLANATION, cv.METADATA,
    cv.VLMSCOPE_TRAINING_CHECK_ANNOTATOR_KIND, cv.VLMSCOPE_EVALUATION_RUN_ID, cv.ANNOTATION_NAME,
    cv.ANNOTATION_SCORE, cv.VLMSCOPE_EVALUATION_PASSED, cv.VLMSCOPE_EVALUATION_ROW_ID,
    cv.VLMSCOPE_EVALUATION_TRACE_ID, cv.LEGACY_ANNOTATION_SCORE, cv.LEGACY_ANNOTATION_LABEL,
    cv.LEGACY_ANNOTATION_EXPLANATION,
    cv.ANNOTATION_LABEL, cv.ANNOTATION_EXPLANATION, cv.ANNOTATION_METADATA,
    cv.ANNOTATION_ANNOTATOR_KIND,
]
VECTOR_KEYS = [cv.embedding_vector_key(0), cv.embedding_vector_key(3),
               "embedding.embeddings.x.embedding.vector", "embedding.embeddingsX.embedding.vector",
               "other.embedding.vector", "embedding.embeddings..embedding.vector"]
vectors = st.lists(st.floats(-2, 2, width=32), min_size=1, max_size=6)


@st.composite
def attribute_dicts(draw: st.DrawFn) -> dict:
    attrs = {cv.VLMSCOPE_SPAN_ROLE: draw(st.sampled_from(ROLES))}
    for key in draw(st.lists(st.sampled_from(KEYS), max_size=20, unique=True)):
        attrs[key] = draw(values)
    if draw(st.booleans()):
        attrs[cv.OPENINFERENCE_SPAN_KIND] = draw(
            st.sampled_from([cv.SPAN_KIND_EMBEDDING, cv.SPAN_KIND_LLM]))
        for key in draw(st.lists(st.sampled_from(VECTOR_KEYS), max_size=3, unique=True)):
            attrs[key] = draw(vectors)
    return attrs


def _context(draw: st.DrawFn) -> SpanContext:
    state = draw(st.sampled_from([None, TraceState([("vendor", "v1")])]))
    return SpanContext(trace_id=draw(st.integers(1, 2**128 - 1)),
                       span_id=draw(st.integers(1, 2**64 - 1)), is_remote=False,
                       trace_flags=TraceFlags(1), trace_state=state)


class _OwnSpan(ReadableSpan):
    """A ReadableSpan subclass: the converter must read it through its properties."""


RESOURCES = [Resource.create({"service.name": "svc-a"}), Resource.create({"team": "b"})]
SCOPES = [InstrumentationScope("vlmscope", "0.1.0"), None]


@st.composite
def spans(draw: st.DrawFn) -> ReadableSpan:
    attrs = draw(attribute_dicts())
    bounded = draw(st.booleans())
    start = draw(st.one_of(st.none(), st.integers(1, 2**62)))
    end = draw(st.one_of(st.none(), st.integers(1, 2**62)))
    events = [Event(draw(st.text(max_size=5)), {"k": draw(scalars)}, timestamp=i + 1)
              for i in range(draw(st.integers(0, 2)))]
    links = [Link(_context(draw), {"role": "encoder"} if draw(st.booleans()) else None)
             for _ in range(draw(st.integers(0, 2)))]
    cls = _OwnSpan if draw(st.booleans()) else ReadableSpan
    return cls(
        name=draw(st.text(max_size=8)), context=_context(draw),
        parent=_context(draw) if draw(st.booleans()) else None,
        resource=draw(st.sampled_from(RESOURCES)),
        attributes=BoundedAttributes(attributes=attrs) if bounded else attrs,
        events=events, links=links, kind=draw(st.sampled_from(list(SpanKind))),
        status=Status(draw(st.sampled_from(list(StatusCode))),
                      draw(st.sampled_from([None, "boom"]))),
        start_time=start, end_time=end,
        instrumentation_scope=draw(st.sampled_from(SCOPES)),
    )


def _both(batch: list) -> tuple:
    try:
        reference = convert._spans_to_batch_python(batch)
    except Exception as error:
        with pytest.raises(type(error)):
            convert.spans_to_batch(batch)
        return None, None
    return convert.spans_to_batch(batch), reference


def _assert_same(native: convert.SpanBatch, reference: convert.SpanBatch) -> None:
    assert native.spans.equals(reference.spans)
    assert sorted(native.derived) == sorted(reference.derived)
    for name, table in reference.derived.items():
        assert native.derived[name].equals(table), name


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(spans(), min_size=1, max_size=8))
def test_native_converter_equals_the_python_reference_on_random_spans(batch: list) -> None:
    native, reference = _both(batch)
    if reference is not None:
        _assert_same(native, reference)


def test_traced_pipeline_spans_convert_the_same_both_ways(traced_spans: list) -> None:
    native, reference = _both(traced_spans)
    assert reference is not None and reference.num_spans == len(traced_spans)
    assert {"row_records", "encoder_records", "llm_records", "embeddings"} <= set(
        reference.derived)
    _assert_same(native, reference)


@pytest.fixture
def traced_spans() -> list:
    """The spans of a few real rows (row, encoder with a captured vector, LLM)."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import vlmscope

    memory = InMemorySpanExporter()
    vlmscope.configure(exporter=memory, batch=False)
    for i in range(5):
        with vlmscope.trace_row(f"r{i}", cohort="c", expected="cat", objects=["cat"]):
            with vlmscope.encoder_span("resnet18", checkpoint_sha256="ab" * 32,
                                       capture_embeddings=True) as enc:
                enc.record(top_k_labels=[["cat", "dog"]], top_k_scores=[[0.7, 0.2]],
                           embeddings=[[0.5, 0.25, 0.125]], image_sha256=["cd" * 32])
            with vlmscope.llm_span(model="m", provider="p", instruction="what?") as llm:
                llm.set_output("a cat", input_tokens=3, output_tokens=2)
    vlmscope.shutdown()
    finished = list(memory.get_finished_spans())
    memory.clear()  # the spans are the test's alone
    return finished


def test_a_span_the_converter_rejects_leaves_nothing_of_itself_behind(
        traced_spans: list) -> None:
    columns = convert._native.SpanColumns()
    columns.add(traced_spans[0])
    bad = ReadableSpan(name="bad", context=traced_spans[1].context,
                       attributes={cv.VLMSCOPE_SPAN_ROLE: cv.ROLE_ROW, cv.VLMSCOPE_ROW_ID: "r",
                                   "huge": 2**70})  # past JSON's 64-bit integers
    with pytest.raises(TypeError):
        columns.add(bad)
    columns.add(traced_spans[2])
    assert len(columns) == 2
    native = convert.columns_to_batch(*columns.take())
    _assert_same(native, convert._spans_to_batch_python([traced_spans[0], traced_spans[2]]))


def test_the_converter_keeps_no_reference_to_the_spans_it_converted(
        traced_spans: list) -> None:
    columns = convert._native.SpanColumns()
    probe = traced_spans.pop()
    alive = weakref.ref(probe)
    columns.add(probe)
    del probe
    gc.collect()
    assert alive() is None
    assert len(columns) == 1 and columns.take()[0][3]  # converted all the same


def test_take_starts_afresh(traced_spans: list) -> None:
    columns = convert._native.SpanColumns()
    columns.extend(traced_spans)
    first = convert.columns_to_batch(*columns.take())
    assert first.num_spans == len(traced_spans) and len(columns) == 0
    empty = convert.columns_to_batch(*columns.take())
    assert empty.num_spans == 0 and not empty.derived


@pytest.mark.parametrize("top_k", [3e38, -3e38, 2**62, -(2**62), 2**40])
def test_a_top_k_too_large_for_c_slices_as_python_does(top_k: float) -> None:
    attrs = {cv.VLMSCOPE_SPAN_ROLE: cv.ROLE_ENCODER, cv.VISION_ENCODER_TOP_K: top_k,
             cv.VISION_ENCODER_BATCH_SIZE: 3, cv.VISION_ENCODER_TOP_K_LABELS: ["a", "b", "c"],
             cv.VISION_ENCODER_TOP_K_SCORES: [0.5, 0.25, 0.125]}
    span = ReadableSpan(name="e", context=SpanContext(1, 2, False, TraceFlags(1)),
                        attributes=BoundedAttributes(attributes=attrs), start_time=1,
                        end_time=2)
    native, reference = _both([span])
    assert reference.derived["encoder_records"].num_rows == 3
    _assert_same(native, reference)


def test_bytes_attributes_are_stored_as_base64_text_both_ways() -> None:
    span = ReadableSpan(name="b", context=SpanContext(1, 2, False, TraceFlags(1)),
                        attributes=BoundedAttributes(attributes={"thumb": b"\x89PNG"}),
                        events=[Event("e", {"raw": b"\x00\x01"}, timestamp=5)],
                        start_time=1, end_time=2)
    native, reference = _both([span])
    _assert_same(native, reference)
    assert native.spans.column("attributes")[0].as_py() == '{"thumb":"iVBORw=="}'
    assert '"raw":"AAE="' in native.spans.column("events")[0].as_py()



@pytest.mark.parametrize("start", [5.0, 5.5, True, 2**64, -(2**63) - 1, 2**63 - 1])
def test_values_off_the_fast_path_are_taken_or_refused_as_pyarrow_does(start: object
                                                                        ) -> None:
    """The native converter builds string, timestamp, int and float columns as Arrow
    buffers itself; a value it cannot copy as it is (a float start time, a bool, an int
    past 64 bits) goes to pyarrow, so both converters take the same values and raise the
    same errors; and the span after a refused one is converted whole, with nothing of the
    refused one left behind."""
    span = ReadableSpan(name="e", context=SpanContext(1, 2, False, TraceFlags(1)),
                        attributes={cv.VLMSCOPE_SPAN_ROLE: cv.ROLE_ROW,
                                    cv.VLMSCOPE_ROW_ID: "r"},
                        start_time=start, end_time=2**63 - 1)
    good = ReadableSpan(name="g", context=SpanContext(3, 4, False, TraceFlags(1)),
                        attributes={cv.VLMSCOPE_SPAN_ROLE: cv.ROLE_ROW,
                                    cv.VLMSCOPE_ROW_ID: "r"}, start_time=3, end_time=4)
    native, reference = _both([span, good])
    if reference is not None:
        _assert_same(native, reference)
        return
    columns = convert._native.SpanColumns()
    with pytest.raises(Exception):  # noqa: B017 (the same type as the reference's: _both)
        columns.add(span)
    columns.add(good)
    _assert_same(convert.columns_to_batch(*columns.take()),
                 convert._spans_to_batch_python([good]))


def test_a_string_with_no_utf8_is_refused_both_ways_and_leaves_nothing_behind() -> None:
    """A lone surrogate has no UTF-8: the reference refuses the span when it writes the
    attributes' JSON (orjson's TypeError), the native converter already on the encoder
    record's string column (pyarrow's UnicodeEncodeError)."""
    attrs = {cv.VLMSCOPE_SPAN_ROLE: cv.ROLE_ENCODER, cv.VLMSCOPE_ROW_ID: "r",
             cv.VISION_ENCODER_ARCHITECTURE: "resnet\ud800"}
    span = ReadableSpan(name="e", context=SpanContext(1, 2, False, TraceFlags(1)),
                        attributes=attrs, start_time=1, end_time=2)
    with pytest.raises(TypeError):
        convert._spans_to_batch_python([span])
    columns = convert._native.SpanColumns()
    with pytest.raises(UnicodeEncodeError):
        columns.add(span)
    assert len(columns) == 0
    batch = convert.columns_to_batch(*columns.take())
    assert batch.num_spans == 0 and not batch.derived


@st.composite
def decoder_items(draw: st.DrawFn) -> list:
    """What the OTLP decoder hands over for one request (``otlp.span_items``): a span item
    per span (the span columns, attributes a dict, events and links lists of dicts), the
    message of a rejected span here and there, and ids repeated within the request."""
    items: list = []
    ids = [(format(draw(st.integers(1, 2**128 - 1)), "032x"),
            format(draw(st.integers(1, 2**64 - 1)), "016x")) for _ in range(6)]
    for _ in range(draw(st.integers(0, 10))):
        if draw(st.integers(0, 9)) == 0:
            items.append("span 'x': trace_id must be 16 bytes, got 3")
            continue
        trace, span = draw(st.sampled_from(ids))
        start = draw(st.integers(0, 2**62))
        end = draw(st.one_of(st.just(start), st.integers(start, 2**62)))
        events = draw(st.sampled_from([None, [{"name": "e", "time_unix_nano": 5,
                                                "attributes": {"k": [1, 2]}}]]))
        links = draw(st.sampled_from([None, [{"trace_id": trace, "span_id": span,
                                               "trace_state": None, "attributes": {}}]]))
        items.append([
            trace, span, draw(st.sampled_from([None, "00000000000000ab"])),
            draw(st.text(max_size=6)), "INTERNAL", start, end, (end - start) / 1e6,
            draw(st.sampled_from(["UNSET", "OK", "ERROR"])),
            draw(st.sampled_from([None, "boom"])), draw(st.sampled_from([None, "svc"])),
            "vlmscope", None, None, 1, draw(attribute_dicts()), events, links,
            '{"attributes":{},"schema_url":""}', 0, draw(st.integers(0, 3)), 0])
    return items


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(decoder_items())
def test_the_otlp_decoders_items_convert_natively_as_the_python_reference_does(items):
    from vlmscope.collectors import otlp

    try:
        reference = otlp._assemble_python(copy.deepcopy(items))
    except Exception as error:
        with pytest.raises(type(error)):
            otlp._assemble(copy.deepcopy(items))
        return
    native = otlp._assemble(copy.deepcopy(items))
    _assert_same(native.batch, reference.batch)
    assert (native.keys, native.rejected, native.message, native.evaluations) == (
        reference.keys, reference.rejected, reference.message, reference.evaluations)


def test_an_item_the_converter_rejects_leaves_nothing_of_itself_behind() -> None:
    columns = convert._native.SpanColumns()
    good = ["a" * 32, "b" * 16, None, "n", "INTERNAL", 1, 2, 1e-6, "OK", None, None, None,
            None, None, 1, {cv.VLMSCOPE_SPAN_ROLE: cv.ROLE_ROW, cv.VLMSCOPE_ROW_ID: "r1"},
            None, None, "{}", 0, 0, 0]
    assert columns.add_item(list(good)) is False
    bad = list(good)
    bad[1], bad[5] = "c" * 16, "not a time"  # its row record is made before the span fails
    with pytest.raises((TypeError, ValueError)):
        columns.add_item(bad)
    with pytest.raises(TypeError, match="list of the span columns"):
        columns.add_item(tuple(good))
    assert len(columns) == 1
    batch = convert.columns_to_batch(*columns.take())
    assert batch.spans.column("span_id").to_pylist() == ["b" * 16]
    assert batch.derived["row_records"].column("span_id").to_pylist() == ["b" * 16]
