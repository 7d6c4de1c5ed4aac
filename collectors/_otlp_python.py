"""The pure-Python reading of an OTLP request's spans into span items, the reference the native
decoder is tested against (private to :mod:`vlmscope.collectors.otlp`, which re-exports its
public names)."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)

from vlmscope.collectors._otlp_types import SPAN_KINDS, STATUS_CODES, OtlpLimits, SpanRejected

_MAX_INT64 = 2**63 - 1
_MAX_INT32 = 2**31 - 1
_ARRAY, _KVLIST, _BYTES = 5, 6, 7  # AnyValue field numbers of the values that need work


def _check_text(text: str, limits: OtlpLimits) -> str:
    if len(text) > limits.max_value_chars:
        raise SpanRejected(f"a string value is longer than {limits.max_value_chars} chars")
    return text


def _value(number: int, value: Any, limits: OtlpLimits, depth: int) -> Any:
    """The set field (``number``, ``value``) of an OTLP ``AnyValue`` as a plain Python
    value (bytes as base64 text)."""
    if type(value) is str:
        return _check_text(value, limits)
    if number < _ARRAY:
        return value
    if number == _BYTES:
        return base64.b64encode(value).decode()
    if depth >= limits.max_depth:
        raise SpanRejected(f"an attribute value is nested deeper than {limits.max_depth}")
    items = value.values
    if len(items) > limits.max_array_items:
        raise SpanRejected(f"an attribute value has more than {limits.max_array_items} items")
    if number == _ARRAY:
        out: list[Any] = []
        append = out.append
        for item in items:
            fields = item.ListFields()
            if not fields:
                append(None)
                continue
            ((descriptor, scalar),) = fields
            # Arrays hold scalars nearly always (embedding vectors, top-k lists): no call.
            if type(scalar) is str:
                append(_check_text(scalar, limits))
            elif descriptor.number < _ARRAY:
                append(scalar)
            else:
                append(_value(descriptor.number, scalar, limits, depth + 1))
        return out
    return _attributes(items, limits, depth + 1)


def _attributes(key_values: Sequence[Any], limits: OtlpLimits,
                depth: int = 0) -> dict[str, Any]:
    """OTLP ``KeyValue`` messages as a dict. ``ListFields`` reads the one set field of each
    ``AnyValue`` in one call: the cheapest access upb offers from Python."""
    if len(key_values) > limits.max_attributes:
        raise SpanRejected(f"more than {limits.max_attributes} attributes")
    out: dict[str, Any] = {}
    for kv in key_values:
        fields = kv.value.ListFields()
        if not fields:
            out[kv.key] = None
            continue
        ((descriptor, value),) = fields
        if type(value) is str:
            if len(value) > limits.max_value_chars:
                raise SpanRejected(
                    f"a string value is longer than {limits.max_value_chars} chars")
            out[kv.key] = value
        else:
            out[kv.key] = _value(descriptor.number, value, limits, depth)
    return out


def dumps_json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _hex_id(raw: bytes, size: int, what: str) -> str:
    if len(raw) != size:
        raise SpanRejected(f"{what} must be {size} bytes, got {len(raw)}")
    return raw.hex()


def _check_numbers(span: Any) -> None:
    """Times must fit a TIMESTAMP_NS, counts and flags an INTEGER column."""
    if max(span.start_time_unix_nano, span.end_time_unix_nano) > _MAX_INT64:
        raise SpanRejected("a time is beyond the year 2262 (over 2**63 - 1 ns)")
    if max(span.flags, span.dropped_attributes_count, span.dropped_events_count,
           span.dropped_links_count) > _MAX_INT32:
        raise SpanRejected("flags or a dropped count is over 2**31 - 1")


def _events(span: Any, limits: OtlpLimits) -> list[dict[str, Any]] | None:
    if not span.events:
        return None
    return [{"name": e.name, "time_unix_nano": e.time_unix_nano,
             "attributes": _attributes(e.attributes, limits)} for e in span.events]


def _links(span: Any, limits: OtlpLimits) -> list[dict[str, Any]] | None:
    if not span.links:
        return None
    return [{"trace_id": _hex_id(link.trace_id, 16, "a link's trace_id"),
             "span_id": _hex_id(link.span_id, 8, "a link's span_id"),
             "trace_state": link.trace_state or None,
             "attributes": _attributes(link.attributes, limits)}
            for link in span.links]


def resource_info(attributes: dict[str, Any], schema_url: str) -> tuple[str, str | None]:
    """A resource's stored JSON and its service name."""
    service = attributes.get("service.name")
    return (dumps_json({"attributes": attributes, "schema_url": schema_url}),
            None if service is None else str(service))


def span_items(request: ExportTraceServiceRequest, limits: OtlpLimits) -> list[Any]:
    """The reference decoder: one item per span of ``request`` in order, a span item (a
    list, see above) or the message (str) of its rejection. The native decoder
    (``_otlp_native.c``) produces the same items from the request's bytes."""
    items: list[Any] = []
    for resource_spans in request.resource_spans:
        try:
            resource_attributes = _attributes(resource_spans.resource.attributes, limits)
        except SpanRejected as error:
            count = sum(len(s.spans) for s in resource_spans.scope_spans)
            items.extend([f"resource: {error}"] * count)
            continue
        resource, service = resource_info(resource_attributes, resource_spans.schema_url)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope
            scope_name, scope_version = scope.name or None, scope.version or None
            for span in scope_spans.spans:
                try:
                    _check_numbers(span)
                    trace_hex = _hex_id(span.trace_id, 16, "trace_id")
                    span_hex = _hex_id(span.span_id, 8, "span_id")
                    parent_hex = (_hex_id(span.parent_span_id, 8, "parent_span_id")
                                  if span.parent_span_id else None)
                    attributes = _attributes(span.attributes, limits)
                    events = _events(span, limits)
                    links = _links(span, limits)
                except SpanRejected as error:
                    items.append(f"span {span.name!r}: {error}")
                    continue
                start = span.start_time_unix_nano
                end = span.end_time_unix_nano or start
                status = span.status
                items.append([
                    trace_hex, span_hex, parent_hex, span.name,
                    SPAN_KINDS[span.kind] if 0 <= span.kind < 6 else "UNSPECIFIED",
                    start, end, (end - start) / 1e6,
                    STATUS_CODES[status.code] if 0 <= status.code < 3 else "UNSET",
                    status.message or None, service, scope_name, scope_version,
                    span.trace_state or None, span.flags, attributes, events, links, resource,
                    span.dropped_attributes_count, span.dropped_events_count,
                    span.dropped_links_count,
                ])
    return items
