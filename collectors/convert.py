"""Turn finished OpenTelemetry spans into Arrow tables shaped like the store's tables.

This is the exporter's hot path: one pass over the spans fills plain Python lists column by
column, attributes are serialised with orjson, and pyarrow builds each column at once. The
embedding vectors of EMBEDDING spans are moved out of the attributes into their own table
(FLOAT lists), so a 2,048-d vector is never turned into JSON text, and the per-row records are
derived from each attribute dict while it is at hand.

Two implementations do this work: the native one (``_spans_native.c``, an optional C
extension, about five times faster) and the pure-Python reference below
(:func:`_spans_to_batch_python` with :class:`~vlmscope.collectors.normalize.RecordBuilder`),
which the native one mirrors value for value (``tests/store/test_spans_native.py``). The native one
is used when built, unless ``VLMSCOPE_PURE_PYTHON=1``. :class:`SpanAccumulator` converts
spans one at a time as they end, so that nothing keeps them alive until a batch is full.
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
from opentelemetry import trace as trace_api
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceState

from vlmscope import conventions as cv
from vlmscope import settings
from vlmscope.collectors import spec
from vlmscope.collectors.normalize import (
    ARROW_POOL,
    EMBEDDING_SCHEMA,
    TABLES,
    TRAINING_RUN_ID_PREFIX,
    RecordBuilder,
    arrow_table,
    foreign_llm_rows,
    list_array,
)
from vlmscope.unicode_text import has_invalid_text, valid_text

_log = logging.getLogger("vlmscope")

PURE_PYTHON_ENV = settings.PURE_PYTHON_ENV
"""Set to 1 to convert (and decode OTLP) with the pure-Python reference code even where the
native extensions are built (:data:`vlmscope.settings.PURE_PYTHON_ENV`)."""

SPAN_SCHEMA = spec.arrow_schema(spec.SPANS)
"""Arrow schema of a batch of spans, column for column the ``spans`` table."""

_KIND_NAMES = {kind: kind.name for kind in SpanKind}
_STATUS_NAMES = {code: code.name for code in StatusCode}


@dataclass
class SpanBatch:
    """A batch of spans and the per-row records derived from them, as Arrow tables ready
    for one insert per table (see :mod:`vlmscope.collectors.normalize`)."""

    spans: pa.Table
    derived: dict[str, pa.Table]

    @property
    def num_spans(self) -> int:
        """Spans in the batch."""
        return self.spans.num_rows


def _hex_span(span_id: int) -> str:
    return format(span_id, "016x")


def _hex_trace(trace_id: int) -> str:
    return format(trace_id, "032x")


def _json_default(value: Any) -> str:
    """What orjson cannot write itself: bytes (an attribute type the SDK allows) as base64
    text, as the OTLP receiver stores them; anything else is an error."""
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode()
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def _dumps(value: Any) -> str:
    return orjson.dumps(value, default=_json_default, option=orjson.OPT_NON_STR_KEYS).decode()


def _plain(attributes: Any) -> dict[str, Any]:
    """Attributes (of a span, event or link) as a plain dict, without copying when possible.

    ``dict(attributes)`` iterates the SDK's BoundedAttributes under its lock; the mapping
    underneath is read directly when the SDK has one.
    """
    inner = getattr(attributes, "_dict", None)
    if isinstance(inner, dict):
        return inner
    return dict(attributes) if attributes else {}


def _attribute_dict(span: Any) -> dict[str, Any]:
    """The span's own attributes as a plain dict (see :func:`_plain`)."""
    return _plain(getattr(span, "_attributes", None) or span.attributes)


def pop_vectors(attributes: dict[str, Any]) -> list[tuple[int, Sequence[float]]]:
    """Remove ``embedding.embeddings.N.embedding.vector`` keys; return (N, vector) pairs."""
    found = []
    for key in [k for k in attributes if k.endswith(cv.EMBEDDING_VECTOR_SUFFIX)]:
        middle = key[len(cv.EMBEDDING_EMBEDDINGS_PREFIX) + 1 : -len(cv.EMBEDDING_VECTOR_SUFFIX)]
        if key.startswith(cv.EMBEDDING_EMBEDDINGS_PREFIX + ".") and middle.isdigit():
            found.append((int(middle), attributes.pop(key)))
    return found


def _events_json(span: Any) -> str | None:
    # The public property copies the list: skip it when the span has none.
    if not getattr(span, "_events", True):
        return None
    events = span.events
    if not events:
        return None
    return _dumps([{"name": e.name, "time_unix_nano": e.timestamp,
                    "attributes": _plain(e.attributes)} for e in events])


def _links_json(span: Any) -> str | None:
    if not getattr(span, "_links", True):
        return None
    links = span.links
    if not links:
        return None
    return _dumps([
        {
            "trace_id": _hex_trace(link.context.trace_id),
            "span_id": _hex_span(link.context.span_id),
            "trace_state": link.context.trace_state.to_header()
            if link.context.trace_state else None,
            "attributes": _plain(link.attributes),
        }
        for link in links
    ])


def _resource_info(resource: Any) -> tuple[str, str | None]:
    """A resource's JSON text and its service name."""
    attributes = dict(resource.attributes)
    return (_dumps({"attributes": attributes, "schema_url": resource.schema_url or ""}),
            attributes.get("service.name"))


def valid_text_span(span: Any) -> Any | None:
    """A copy of ``span`` whose every text (name, attributes, events, links, status,
    resource, scope) is valid Unicode (:func:`vlmscope.unicode_text.valid_text`); None when
    it is already.

    UTF-8 cannot encode a lone surrogate, so the span would be lost: kept with U+FFFD in
    its place, its timing, model and tokens still count. Called only after a conversion
    failed, so the check costs nothing on the way every valid span takes."""
    scope = span.instrumentation_scope
    parts = {
        "name": span.name,
        "attributes": dict(span.attributes or {}),
        "events": [(e.name, dict(e.attributes or {})) for e in span.events],
        "links": [dict(link.attributes or {}) for link in span.links],
        "status": span.status.description,
        "resource": dict(span.resource.attributes) if span.resource else {},
        "scope": None if scope is None else (scope.name, scope.version),
    }
    if not has_invalid_text(parts):
        return None
    fixed = valid_text(parts)
    return ReadableSpan(
        name=fixed["name"], context=span.context, parent=span.parent,
        resource=None if span.resource is None else Resource(fixed["resource"],
                                                             span.resource.schema_url),
        attributes=fixed["attributes"],
        events=[Event(name, attributes, e.timestamp)
                for (name, attributes), e in zip(fixed["events"], span.events, strict=True)],
        links=[trace_api.Link(link.context, attributes)
               for attributes, link in zip(fixed["links"], span.links, strict=True)],
        kind=span.kind,
        status=Status(span.status.status_code, fixed["status"]),
        start_time=span.start_time, end_time=span.end_time,
        instrumentation_scope=None if scope is None else InstrumentationScope(
            fixed["scope"][0], fixed["scope"][1], scope.schema_url),
    )


def spans_to_batch(spans: Sequence[Any], *, busy: Any = None) -> SpanBatch:
    """Convert OpenTelemetry ``ReadableSpan`` objects into a :class:`SpanBatch` (the store
    assembles its pipeline-row parts when it writes it, off the GIL). A span whose text is
    not valid Unicode is converted with U+FFFD in its place (:func:`valid_text_span`).

    ``busy``, when given, is the writer's :class:`~vlmscope.collectors.handover.GilHandOver`
    (or any object with a ``writing`` attribute): while it says the writer commits, the
    conversion hands it the GIL by the rule of :mod:`vlmscope.collectors.handover`."""
    try:
        return _spans_to_batch(spans, busy)
    except Exception:
        fixed = [valid_text_span(span) for span in spans]
        if all(f is None for f in fixed):
            raise
        return _spans_to_batch([f or span for f, span in zip(fixed, spans, strict=True)],
                               busy)


def _spans_to_batch(spans: Sequence[Any], busy: Any) -> SpanBatch:
    if _native is None:
        return _spans_to_batch_python(spans)
    columns = _native.SpanColumns()
    columns.extend(spans, busy)
    return columns_to_batch(*columns.take(), busy=busy)


def _spans_to_batch_python(spans: Sequence[Any]) -> SpanBatch:
    """The pure-Python reference of :func:`spans_to_batch`."""
    rows: list[tuple[Any, ...]] = []
    records = RecordBuilder()
    # Spans of one process share one Resource and a few scopes: serialise each once.
    resource_cache: dict[int, tuple[str, str | None]] = {}

    for span in spans:
        ctx = span.context
        trace_hex = _hex_trace(ctx.trace_id)
        span_hex = _hex_span(ctx.span_id)
        parent = span.parent
        start = span.start_time or 0
        end = span.end_time or start
        duration = (end - start) / 1e6
        status = span.status
        status_code = _STATUS_NAMES[status.status_code]
        resource = span.resource
        cached = resource_cache.get(id(resource))
        if cached is None:
            cached = resource_cache[id(resource)] = _resource_info(resource)
        scope = span.instrumentation_scope

        attributes = _attribute_dict(span)
        vectors: list[tuple[int, Sequence[float]]] = []
        if attributes.get(cv.OPENINFERENCE_SPAN_KIND) == cv.SPAN_KIND_EMBEDDING and any(
            k.endswith(cv.EMBEDDING_VECTOR_SUFFIX) for k in attributes
        ):
            attributes = dict(attributes)  # never mutate the span's own attributes
            vectors = pop_vectors(attributes)
        parent_hex = _hex_span(parent.span_id) if parent is not None else None
        records.add_span(trace_hex, span_hex, start, duration, status_code,
                         status.description, attributes, vectors, parent_hex)
        rows.append((
            trace_hex,
            span_hex,
            parent_hex,
            span.name,
            _KIND_NAMES[span.kind],
            start,
            end,
            duration,
            status_code,
            status.description,
            cached[1],
            scope.name if scope is not None else None,
            scope.version if scope is not None else None,
            ctx.trace_state.to_header() if ctx.trace_state else None,
            int(ctx.trace_flags),
            _dumps(attributes),
            _events_json(span),
            _links_json(span),
            cached[0],
            span.dropped_attributes,
            span.dropped_events,
            span.dropped_links,
        ))

    columns = list(zip(*rows, strict=True)) if rows else [()] * len(SPAN_SCHEMA)
    return SpanBatch(spans=arrow_table(columns, SPAN_SCHEMA), derived=records.tables())


_VECTOR = EMBEDDING_SCHEMA.get_field_index("vector")


def _vectors(chunks: list[bytes]) -> pa.Array:
    """The embeddings' vector column from the native converter's float32 bytes."""
    offsets = np.zeros(len(chunks) + 1, dtype=np.int32)
    np.cumsum([len(c) // 4 for c in chunks], out=offsets[1:])
    values = pa.array(np.frombuffer(b"".join(chunks), dtype=np.float32), memory_pool=ARROW_POOL)
    return pa.ListArray.from_arrays(pa.array(offsets, memory_pool=ARROW_POOL), values,
                                    type=EMBEDDING_SCHEMA.field(_VECTOR).type,
                                    pool=ARROW_POOL)


def column_types(schema: pa.Schema) -> str:
    """The native converter's code for each column of ``schema``: the columns it builds as
    Arrow buffers ('s' string, 't' timestamp[ns], 'l' int64, 'i' int32, 'd' float64) and
    those it hands over as Python lists ('o')."""
    def code(data_type: pa.DataType) -> str:
        if data_type == pa.string():
            return "s"
        if data_type == pa.timestamp("ns"):
            return "t"
        return {pa.int64(): "l", pa.int32(): "i", pa.float64(): "d"}.get(data_type, "o")
    return "".join(code(field.type) for field in schema)


_CODE_TYPES = {"s": pa.string(), "t": pa.timestamp("ns"), "l": pa.int64(), "i": pa.int32(),
               "d": pa.float64()}


def _coerce(value: Any, code: str) -> Any:
    """pyarrow's own verdict on a value off the native converter's fast path (a float in
    an integer column, say): the plain value it makes of it (None for a null), or the error
    it raises, so that both converters accept and refuse the same values."""
    array = pa.array([value], type=_CODE_TYPES[code])
    if code == "t":
        array = array.cast(pa.int64())
    return array[0].as_py()


def _native_table(columns: list[Any], schema: pa.Schema, busy: Any = None) -> pa.Table:
    """An Arrow table of the native converter's columns: Arrow buffers, as the tuple
    (rows, nulls, validity, offsets, data) of bytes, wrapped without a copy; or Python lists
    (see :func:`column_types`), converted as :func:`~vlmscope.collectors.normalize.
    arrow_table` does."""
    arrays = []
    for column, column_field in zip(columns, schema, strict=True):
        if type(column) is not tuple:
            arrays.append(list_array(column, column_field.type, busy))
            continue
        rows, nulls, validity, offsets, data = column
        buffers = [None if validity is None else pa.py_buffer(validity)]
        if offsets is not None:
            buffers.append(pa.py_buffer(offsets))
        buffers.append(pa.py_buffer(data))
        arrays.append(pa.Array.from_buffers(column_field.type, rows, buffers, nulls))
    return pa.Table.from_arrays(arrays, schema=schema)


def columns_to_batch(span_columns: list[Any], derived: dict[str, list[Any]], *,
                     busy: Any = None) -> SpanBatch:
    """The :class:`SpanBatch` of the native converter's columns (``SpanColumns.take()``).
    ``busy``: see :func:`spans_to_batch`."""
    tables = {}
    for name, columns in derived.items():
        if name == "embeddings":
            vectors = columns[_VECTOR]
            columns = [*columns[:_VECTOR], [None] * len(vectors), *columns[_VECTOR + 1:]]
            table = _native_table(columns, TABLES[name], busy)
            tables[name] = table.set_column(_VECTOR, EMBEDDING_SCHEMA.field(_VECTOR),
                                            _vectors(vectors))
        else:
            tables[name] = _native_table(columns, TABLES[name], busy)
    return SpanBatch(spans=_native_table(span_columns, SPAN_SCHEMA, busy), derived=tables)


class SpanAccumulator:
    """Finished spans converted one at a time, as they end, into one batch's columns.

    With the native converter nothing holds on to a span once :meth:`add` returns; a span it
    cannot convert raises there and leaves nothing behind. The pure-Python reference keeps
    the spans and converts them in :meth:`take` (where a bad span fails the whole batch).
    Not thread-safe: callers serialise :meth:`add` and :meth:`take`.
    """

    def __init__(self) -> None:
        self._columns = _native.SpanColumns() if _native is not None else None
        self._spans: list[Any] = []
        # Called once per span: straight to C (or to list.append), no Python frame between.
        self.add: Callable[[Any], None] = (
            self._columns.add if self._columns is not None else self._spans.append)
        """Convert (or, without the native converter, keep) one finished span."""

    def __len__(self) -> int:
        return len(self._columns) if self._columns is not None else len(self._spans)

    def take(self, *, busy: Any = None) -> SpanBatch:
        """The batch of every span added since the last call, and start afresh (``busy``:
        see :func:`spans_to_batch`)."""
        if self._columns is not None:
            return columns_to_batch(*self._columns.take(), busy=busy)
        spans, self._spans = self._spans, []
        self.add = self._spans.append
        return spans_to_batch(spans, busy=busy)


def native_converter() -> bool:
    """Whether spans are converted by the native (C) converter."""
    return _native is not None


def native_span_columns() -> Any | None:
    """An empty column set of the native converter (``_spans_native.SpanColumns``), or None
    when spans are converted by the Python reference."""
    return _native.SpanColumns() if _native is not None else None


def native_widths() -> tuple[int, ...] | None:
    """The column count of each table (spans, then the derived tables) the native converter
    was compiled for; None when it is not built."""
    try:
        from vlmscope.collectors import _spans_native
    except ImportError:
        return None
    return tuple(_spans_native.WIDTHS)


_LLM_SOURCES = {column.name: tuple(source.attribute for source in column.sources)
                for column in spec.LLM_RECORDS.columns}


def sample_spans() -> list[ReadableSpan]:
    """Finished spans of the installed OpenTelemetry SDK, one of each kind the store derives
    records from (a row, an encoder with a vector, vlmscope's LLM span, another
    instrumentor's LLM span, an evaluation, an error with an event and a link): what the
    native extensions' self-tests convert both ways."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    finished = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(finished))
    tracer = provider.get_tracer("vlmscope.self_test", "1")
    with tracer.start_as_current_span("row", attributes={
            cv.VLMSCOPE_SPAN_ROLE: cv.ROLE_ROW, cv.VLMSCOPE_ROW_ID: "r",
            cv.VLMSCOPE_ROW_OBJECTS: ["cat"], cv.VLMSCOPE_BATCH_SIZE: 2}) as row:
        with tracer.start_as_current_span("encoder", attributes={
                cv.VLMSCOPE_SPAN_ROLE: cv.ROLE_ENCODER,
                cv.OPENINFERENCE_SPAN_KIND: cv.SPAN_KIND_EMBEDDING,
                cv.VLMSCOPE_ROW_IDS: ["r"], cv.VISION_ENCODER_TOP_K: 2,
                cv.VISION_ENCODER_TOP_K_LABELS: ["cat", "dog"],
                cv.VISION_ENCODER_TOP_K_SCORES: [0.7, 0.2], cv.VISION_ENCODER_ENTROPY: [0.5],
                cv.VISION_ENCODER_MULTI_LABEL: True, cv.VISION_ENCODER_EMBEDDING_DIM: 2,
                cv.embedding_vector_key(0): [0.25, -1.5]}) as encoder:
            encoder.add_event("forward", {"layer": "avgpool"})
        with tracer.start_as_current_span("llm", attributes={
                cv.VLMSCOPE_SPAN_ROLE: cv.ROLE_LLM, cv.VLMSCOPE_ROW_IDS: ["r"],
                cv.LLM_MODEL_NAME: "m", cv.OUTPUT_VALUE: "a cat",
                cv.GEN_AI_USAGE_INPUT_TOKENS: 3}):
            pass
        with tracer.start_as_current_span("chat", attributes={
                cv.OPENINFERENCE_SPAN_KIND: cv.SPAN_KIND_LLM, cv.VLMSCOPE_ROW_IDS: ["r"],
                f"{cv.LLM_OUTPUT_MESSAGES}.0.{cv.MESSAGE_CONTENT}": "a dog",
                cv.LLM_TOKEN_COUNT_PROMPT: 4}):
            pass
        with tracer.start_as_current_span("judged", attributes={
                cv.VLMSCOPE_SPAN_ROLE: cv.ROLE_EVALUATION, cv.VLMSCOPE_EVALUATION_RUN_ID: "run",
                cv.ANNOTATION_NAME: "match", cv.ANNOTATION_SCORE: 1.0}):
            pass
        row.set_status(Status(StatusCode.ERROR, "boom"))
    with tracer.start_as_current_span("linked", links=[
            trace_api.Link(row.get_span_context(), {"why": "test"})]):
        pass
    provider.shutdown()
    return list(finished.get_finished_spans())


def _self_test(native: Any) -> None:
    """Raise unless ``native`` converts :func:`sample_spans` as the Python reference does."""
    spans = sample_spans()
    columns = native.SpanColumns()
    columns.extend(spans, None)
    got = columns_to_batch(*columns.take())
    want = _spans_to_batch_python(spans)
    if not got.spans.equals(want.spans):
        raise RuntimeError("its spans differ from the Python reference's")
    if sorted(got.derived) != sorted(want.derived):
        raise RuntimeError(f"it derives {sorted(got.derived)}, the reference "
                           f"{sorted(want.derived)}")
    for name, table in want.derived.items():
        if not got.derived[name].equals(table):
            raise RuntimeError(f"its {name} differ from the Python reference's")


def _load_native() -> Any:
    """The native converter, when it is built, not switched off and its self-test against
    the installed OpenTelemetry SDK passes; else None (with one log line why)."""
    if os.environ.get(PURE_PYTHON_ENV, "0") not in ("", "0"):
        return None
    try:
        from vlmscope.collectors import _spans_native
    except ImportError as error:
        _log.info("vlmscope: the native span converter is not built (%s); spans are "
                  "converted by the Python reference", error)
        return None
    try:
        _setup_native(_spans_native)
        _self_test(_spans_native)
    except Exception as error:  # any failure: the reference does the work
        _log.warning("vlmscope: the native span converter failed its self-test against "
                     "opentelemetry-sdk (%s: %s); spans are converted by the Python "
                     "reference", type(error).__name__, error)
        return None
    return _spans_native


def _setup_native(native: Any) -> None:
    """Give the native converter every name it reads (see ``_spans_native.c``)."""
    native.setup(_native_names())


def _native_names() -> dict[str, Any]:
    """The attribute names, schemas and helpers the native converter reads."""
    return {
        "widths": tuple(len(schema) for schema in (SPAN_SCHEMA, *TABLES.values())),
        "types": tuple(column_types(schema) for schema in (SPAN_SCHEMA, *TABLES.values())),
        "dumps": orjson.dumps, "dumps_option": orjson.OPT_NON_STR_KEYS,
        "dumps_default": _json_default,
        "kind_names": _KIND_NAMES, "status_names": _STATUS_NAMES,
        "resource_info": _resource_info, "coerce": _coerce, "readable_span": ReadableSpan,
        "span_context": SpanContext, "status": Status, "scope": InstrumentationScope,
        "bounded_attributes": BoundedAttributes, "bounded_list": BoundedList,
        "trace_state": TraceState,
        "role_key": cv.VLMSCOPE_SPAN_ROLE, "span_kind_key": cv.OPENINFERENCE_SPAN_KIND,
        "span_kind_embedding": cv.SPAN_KIND_EMBEDDING,
        "vector_suffix": cv.EMBEDDING_VECTOR_SUFFIX,
        "vector_prefix": cv.EMBEDDING_EMBEDDINGS_PREFIX + ".",
        "role_training_check": cv.ROLE_TRAINING_CHECK, "role_evaluation": cv.ROLE_EVALUATION,
        "role_row": cv.ROLE_ROW, "role_encoder": cv.ROLE_ENCODER, "role_llm": cv.ROLE_LLM,
        "row_id": cv.VLMSCOPE_ROW_ID, "run_name": cv.VLMSCOPE_RUN_NAME,
        "cohort": cv.VLMSCOPE_COHORT, "expected": cv.VLMSCOPE_ROW_EXPECTED,
        "objects": cv.VLMSCOPE_ROW_OBJECTS, "row_instruction": cv.VLMSCOPE_ROW_INSTRUCTION,
        "image_sha256": cv.VISION_IMAGE_SHA256, "row_ids": cv.VLMSCOPE_ROW_IDS,
        "batch_size": cv.VISION_ENCODER_BATCH_SIZE, "top_k": cv.VISION_ENCODER_TOP_K,
        "top_k_labels": cv.VISION_ENCODER_TOP_K_LABELS,
        "top_k_scores": cv.VISION_ENCODER_TOP_K_SCORES,
        "top_k_class_ids": cv.VISION_ENCODER_TOP_K_CLASS_IDS,
        "entropy": cv.VISION_ENCODER_ENTROPY, "l2_norm": cv.VISION_ENCODER_EMBEDDING_L2_NORM,
        "architecture": cv.VISION_ENCODER_ARCHITECTURE,
        "embedding_model": cv.EMBEDDING_MODEL_NAME,
        "checkpoint": cv.VISION_ENCODER_CHECKPOINT_SHA256, "layer": cv.VISION_ENCODER_LAYER,
        "embedding_dim": cv.VISION_ENCODER_EMBEDDING_DIM,
        "multi_label": cv.VISION_ENCODER_MULTI_LABEL, "rows_in_batch": cv.VLMSCOPE_BATCH_SIZE,
        "instruction_kind": cv.VLMSCOPE_INSTRUCTION_KIND,
        "llm_outputs": cv.VLMSCOPE_LLM_OUTPUTS, "llm_instructions": cv.VLMSCOPE_LLM_INSTRUCTIONS,
        "llm_input_tokens": cv.VLMSCOPE_LLM_INPUT_TOKENS,
        "llm_output_tokens": cv.VLMSCOPE_LLM_OUTPUT_TOKENS,
        # vlmscope's own LLM spans: the first two names of the spec's model and provider
        # lists (other instrumentors' spans go through normalize.foreign_llm_rows).
        "llm_model_name": _LLM_SOURCES["model"][0], "request_model": _LLM_SOURCES["model"][1],
        "provider_name": _LLM_SOURCES["provider"][0],
        "llm_provider": _LLM_SOURCES["provider"][1],
        "response_model": _LLM_SOURCES["response_model"][0],
        "response_model_else": _LLM_SOURCES["response_model"][1],
        "foreign_llm_rows": foreign_llm_rows,
        "encoder_span_id": cv.VISION_ENCODER_SPAN_ID, "input_value": cv.INPUT_VALUE,
        "output_value": cv.OUTPUT_VALUE, "usage_input_tokens": cv.GEN_AI_USAGE_INPUT_TOKENS,
        "usage_output_tokens": cv.GEN_AI_USAGE_OUTPUT_TOKENS,
        "check_name": cv.VLMSCOPE_TRAINING_CHECK_NAME,
        "check_score": cv.VLMSCOPE_TRAINING_CHECK_SCORE,
        "check_passed": cv.VLMSCOPE_TRAINING_CHECK_PASSED,
        "check_label": cv.VLMSCOPE_TRAINING_CHECK_LABEL,
        "check_explanation": cv.VLMSCOPE_TRAINING_CHECK_EXPLANATION,
        "metadata": cv.METADATA, "check_annotator": cv.VLMSCOPE_TRAINING_CHECK_ANNOTATOR_KIND,
        "training_run_prefix": TRAINING_RUN_ID_PREFIX,
        "eval_run_id": cv.VLMSCOPE_EVALUATION_RUN_ID, "annotation_name": cv.ANNOTATION_NAME,
        "annotation_score": cv.ANNOTATION_SCORE,
        "legacy_annotation_score": cv.LEGACY_ANNOTATION_SCORE,
        "eval_passed": cv.VLMSCOPE_EVALUATION_PASSED,
        "eval_row_id": cv.VLMSCOPE_EVALUATION_ROW_ID,
        "eval_trace_id": cv.VLMSCOPE_EVALUATION_TRACE_ID,
        "annotation_label": cv.ANNOTATION_LABEL,
        "legacy_annotation_label": cv.LEGACY_ANNOTATION_LABEL,
        "annotation_explanation": cv.ANNOTATION_EXPLANATION,
        "legacy_annotation_explanation": cv.LEGACY_ANNOTATION_EXPLANATION,
        "annotation_metadata": cv.ANNOTATION_METADATA,
        "annotation_annotator": cv.ANNOTATION_ANNOTATOR_KIND,
        "annotator_code": cv.ANNOTATOR_KIND_CODE,
    }


_native = _load_native()
