"""OTLP JSON trace requests read into the protobuf request (hex ids, 64-bit integers as
strings) (private to :mod:`vlmscope.collectors.otlp`, which re-exports its public names)."""

from __future__ import annotations

import base64
import json
from typing import Any

import orjson
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)

from vlmscope.collectors._otlp_types import OtlpDecodeError
from vlmscope.unicode_text import valid_text


def _hex_to_base64(container: dict[str, Any], name: str) -> None:
    value = container.get(name)
    if value is None:
        return
    if not isinstance(value, str):
        raise OtlpDecodeError(f"{name} must be a hex string, got {type(value).__name__}")
    try:
        container[name] = base64.b64encode(bytes.fromhex(value)).decode()
    except ValueError as error:
        raise OtlpDecodeError(f"{name} {value[:40]!r} is not hex") from error


def _list(container: Any, *names: str) -> list[Any]:
    if not isinstance(container, dict):
        raise OtlpDecodeError("expected a JSON object")
    for name in names:
        if name in container:
            value = container[name]
            if not isinstance(value, list):
                raise OtlpDecodeError(f"{name} must be a list")
            return value
    return []


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _with_lone_surrogates(document: bytes, error: orjson.JSONDecodeError) -> Any:
    """A body orjson refuses, read again by the standard library, which accepts a lone
    surrogate escape (``"\\ud83d"``: JavaScript's ``JSON.stringify`` writes one for half an
    emoji); its text keeps U+FFFD in the surrogate's place, as the OpenTelemetry Collector
    does, rather than the whole request being refused. Anything else orjson refused is
    still :class:`OtlpDecodeError` (``NaN`` and ``Infinity`` included)."""
    try:
        return valid_text(json.loads(document, parse_constant=_no_constant))
    except (ValueError, RecursionError):
        raise OtlpDecodeError(f"the body is not JSON ({error})") from error


def parse_json(document: bytes | dict[str, Any]) -> ExportTraceServiceRequest:
    """Parse an OTLP JSON ``ExportTraceServiceRequest`` (hex ids, 64-bit integers as
    strings or numbers); :class:`OtlpDecodeError` if it is not one."""
    try:
        data = orjson.loads(document) if isinstance(document, bytes) else document
    except orjson.JSONDecodeError as error:
        data = _with_lone_surrogates(document, error)
    # The proto3 JSON mapping reads ids as base64; OTLP JSON writes them as hex.
    if not isinstance(data, dict):
        raise OtlpDecodeError("the body must be a JSON object")
    for resource_spans in _list(data, "resourceSpans", "resource_spans"):
        for scope_spans in _list(resource_spans, "scopeSpans", "scope_spans"):
            for span in _list(scope_spans, "spans"):
                if not isinstance(span, dict):
                    raise OtlpDecodeError("a span must be a JSON object")
                for name in ("traceId", "spanId", "parentSpanId",
                             "trace_id", "span_id", "parent_span_id"):
                    _hex_to_base64(span, name)
                for link in _list(span, "links"):
                    if not isinstance(link, dict):
                        raise OtlpDecodeError("a link must be a JSON object")
                    for name in ("traceId", "spanId", "trace_id", "span_id"):
                        _hex_to_base64(link, name)
    request = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(data, request, ignore_unknown_fields=True)
    except (json_format.ParseError, RecursionError, TypeError, ValueError,
            AttributeError) as error:
        raise OtlpDecodeError(f"the body is not an OTLP JSON trace request ({error})") from error
    return request
