"""Building OTLP trace requests for tests: protobuf messages with chosen ids and attributes."""

from __future__ import annotations

import os
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue


def any_value(value: Any) -> AnyValue:
    """A Python value as an OTLP ``AnyValue``."""
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    out = AnyValue()
    for item in value:
        out.array_value.values.append(any_value(item))
    return out


def request(n: int, *, service: str = "tests", attributes: dict[str, Any] | None = None,
            trace_id: bytes | None = None, start_ns: int = 1_700_000_000_000_000_000
            ) -> tuple[ExportTraceServiceRequest, list[tuple[str, str]]]:
    """A request with ``n`` spans of one new trace; returns it and the (trace, span) hex ids."""
    message = ExportTraceServiceRequest()
    resource_spans = message.resource_spans.add()
    resource_spans.resource.attributes.append(
        KeyValue(key="service.name", value=AnyValue(string_value=service)))
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "tests"
    trace = trace_id or os.urandom(16)
    ids = []
    for i in range(n):
        span = scope_spans.spans.add()
        span.trace_id = trace
        span.span_id = os.urandom(8)
        span.name = f"span-{i}"
        span.kind = 1
        span.start_time_unix_nano = start_ns + i
        span.end_time_unix_nano = start_ns + i + 1_000_000
        for key, value in (attributes or {"i": i}).items():
            span.attributes.append(KeyValue(key=key, value=any_value(value)))
        ids.append((trace.hex(), span.span_id.hex()))
    return message, ids
