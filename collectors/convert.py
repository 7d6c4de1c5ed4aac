"""Turn finished OpenTelemetry spans into Arrow tables shaped like the store's tables.

This is the exporter's hot path: one pass over the spans fills plain Python lists column by
column, attributes are serialised with orjson, and pyarrow builds each column at once. The
embedding vectors of EMBEDDING spans are moved out of the attributes into their own table
(FLOAT lists), so a 2,048-d vector is never turned into JSON text, and the per-row records are
derived from each attribute dict while it is at hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa
from opentelemetry.trace import SpanKind, StatusCode

from vlmscope import conventions as cv
from vlmscope.collectors.normalize import RecordBuilder

SPAN_SCHEMA = pa.schema(
    [
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("parent_span_id", pa.string()),
        ("name", pa.string()),
        ("kind", pa.string()),
        ("start_time", pa.timestamp("ns")),
        ("end_time", pa.timestamp("ns")),
        ("duration_ms", pa.float64()),
        ("status_code", pa.string()),
        ("status_message", pa.string()),
        ("service_name", pa.string()),
        ("scope_name", pa.string()),
        ("scope_version", pa.string()),
        ("trace_state", pa.string()),
        ("trace_flags", pa.int32()),
        ("attributes", pa.string()),
        ("events", pa.string()),
        ("links", pa.string()),
        ("resource", pa.string()),
        ("dropped_attributes", pa.int32()),
        ("dropped_events", pa.int32()),
        ("dropped_links", pa.int32()),
    ]
)
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


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _plain(attributes: Any) -> dict[str, Any]:
    """Attributes (of a span, event or link) as a plain dict, without copying when possible.

    ``dict(attributes)`` iterates the SDK's BoundedAttributes under its lock (about 5 us
    each); the mapping underneath is read directly when the SDK has one.
    """
    inner = getattr(attributes, "_dict", None)
    if isinstance(inner, dict):
        return inner
    return dict(attributes) if attributes else {}


def _attribute_dict(span: Any) -> dict[str, Any]:
    """The span's own attributes as a plain dict (see :func:`_plain`)."""
    return _plain(getattr(span, "_attributes", None) or span.attributes)


def _pop_vectors(attributes: dict[str, Any]) -> list[tuple[int, Sequence[float]]]:
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


def spans_to_batch(spans: Sequence[Any]) -> SpanBatch:
    """Convert OpenTelemetry ``ReadableSpan`` objects into a :class:`SpanBatch`."""
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
            res_attrs = dict(resource.attributes)
            cached = (
                _dumps({"attributes": res_attrs, "schema_url": resource.schema_url or ""}),
                res_attrs.get("service.name"),
            )
            resource_cache[id(resource)] = cached
        scope = span.instrumentation_scope

        attributes = _attribute_dict(span)
        vectors: list[tuple[int, Sequence[float]]] = []
        if attributes.get(cv.OPENINFERENCE_SPAN_KIND) == cv.SPAN_KIND_EMBEDDING and any(
            k.endswith(cv.EMBEDDING_VECTOR_SUFFIX) for k in attributes
        ):
            attributes = dict(attributes)  # never mutate the span's own attributes
            vectors = _pop_vectors(attributes)
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
    spans_table = pa.Table.from_arrays(
        [pa.array(col, type=field.type) for col, field in zip(columns, SPAN_SCHEMA, strict=True)],
        schema=SPAN_SCHEMA,
    )
    return SpanBatch(spans=spans_table, derived=records.tables())
