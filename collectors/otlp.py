"""Decode OTLP trace requests (protobuf or JSON) into store batches.

One decoder serves the OTLP/HTTP receiver and the OTLP JSON Lines import: a JSON request is
first turned into the protobuf message (OTLP JSON differs from the proto3 JSON mapping only
in its hex-encoded ids), then every span goes through the same code as a protobuf one, and
its decoded attributes through the one normaliser (:class:`RecordBuilder`).

Spans that break a limit (:class:`OtlpLimits`) or carry ids of the wrong length are rejected
one by one and counted (OTLP ``partial_success``); a body that does not parse is rejected as a
whole (:class:`OtlpDecodeError`). Embedding vectors leave the attributes for the
``embeddings`` table as in the in-process exporter. Spans repeated within one request are
kept once.

Two decoders turn a request into span items (:func:`_span_items`): the pure-Python reference
here, on the parsed message, and a native one (``_otlp_native.c``, an optional C extension,
about ten times faster) on the protobuf bytes, with the same values, checks and rejection
messages. The native one is used when built, unless ``VLMSCOPE_PURE_PYTHON=1``; protobuf
still parses every body first, so both decoders see only requests protobuf accepts, and the
rare request whose meaning protobuf defines by merging repeated message fields is left to the
reference decoder. From the items on, one code path builds the batch (:func:`_assemble`).
"""

from __future__ import annotations

import base64
import logging
import os
import pickle
import struct
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)

from vlmscope import conventions as cv
from vlmscope.collectors import annotations as an
from vlmscope.collectors import convert
from vlmscope.collectors.convert import PURE_PYTHON_ENV, SPAN_SCHEMA, SpanBatch, _pop_vectors
from vlmscope.collectors.normalize import RecordBuilder, arrow_table

_log = logging.getLogger("vlmscope.otlp")



def _self_test(native: Any) -> None:
    """Raise unless ``native`` decodes a request of :func:`convert.sample_spans` (encoded by
    the installed OpenTelemetry exporter) into the reference decoder's items."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    request = encode_spans(convert.sample_spans())
    got = native.decode(request.SerializeToString(), *(min(limit, sys.maxsize) for limit in (
        DEFAULT_LIMITS.max_attributes, DEFAULT_LIMITS.max_value_chars,
        DEFAULT_LIMITS.max_array_items, DEFAULT_LIMITS.max_depth)), _resource_info)
    if got != _span_items(request, DEFAULT_LIMITS):
        raise RuntimeError("its items differ from the reference decoder's")


def _load_native() -> Any:
    """The native decoder, when it is built, not switched off and its self-test passes;
    else None (with one log line why)."""
    if os.environ.get(PURE_PYTHON_ENV, "0") not in ("", "0"):
        return None
    try:
        from vlmscope.collectors import _otlp_native
    except ImportError as error:  # built without a C compiler: the reference does the work
        _log.info("vlmscope: the native OTLP decoder is not built (%s); requests are "
                  "decoded by the Python reference", error)
        return None
    try:
        _self_test(_otlp_native)
    except Exception as error:
        _log.warning("vlmscope: the native OTLP decoder failed its self-test (%s: %s); "
                     "requests are decoded by the Python reference", type(error).__name__,
                     error)
        return None
    return _otlp_native


def native_decoder() -> bool:
    """Whether requests are decoded by the native (C) decoder."""
    return _native is not None

DEFAULT_MAX_ATTRIBUTES = 1024
"""Most attributes one span, event, link or resource may carry."""

DEFAULT_MAX_VALUE_CHARS = 256 * 1024
"""Longest string attribute value, in characters."""

DEFAULT_MAX_ARRAY_ITEMS = 65_536
"""Most items in one array or key-value-list attribute value."""

DEFAULT_MAX_DEPTH = 16
"""Deepest nesting of array and key-value-list attribute values."""

SPAN_KINDS = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
"""Stored span kind names by OTLP ``SpanKind`` number."""

STATUS_CODES = ("UNSET", "OK", "ERROR")
"""Stored status code names by OTLP ``StatusCode`` number."""


class OtlpDecodeError(ValueError):
    """The request body is not an OTLP trace request."""


class _SpanRejected(ValueError):
    """One span breaks a limit; the others of its request still land."""


@dataclass(frozen=True)
class OtlpLimits:
    """Caps on what one span may carry (see the ``DEFAULT_*`` constants)."""

    max_attributes: int = DEFAULT_MAX_ATTRIBUTES
    max_value_chars: int = DEFAULT_MAX_VALUE_CHARS
    max_array_items: int = DEFAULT_MAX_ARRAY_ITEMS
    max_depth: int = DEFAULT_MAX_DEPTH

    def __post_init__(self) -> None:
        if min(self.max_attributes, self.max_value_chars, self.max_array_items,
               self.max_depth) < 1:
            raise ValueError(f"every OTLP limit must be at least 1, got {self}")


DEFAULT_LIMITS = OtlpLimits()
"""The limits when none are given."""


@dataclass
class DecodedSpans:
    """A decoded request: the batch to store, the (trace id, span id) of each of its spans in
    row order, and the spans rejected with the first reason."""

    batch: SpanBatch
    keys: list[tuple[str, str]]
    rejected: int = 0
    message: str = ""
    evaluations: int = 0


_ARRAY, _KVLIST, _BYTES = 5, 6, 7  # AnyValue field numbers of the values that need work


def _check_text(text: str, limits: OtlpLimits) -> str:
    if len(text) > limits.max_value_chars:
        raise _SpanRejected(f"a string value is longer than {limits.max_value_chars} chars")
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
        raise _SpanRejected(f"an attribute value is nested deeper than {limits.max_depth}")
    items = value.values
    if len(items) > limits.max_array_items:
        raise _SpanRejected(f"an attribute value has more than {limits.max_array_items} items")
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
        raise _SpanRejected(f"more than {limits.max_attributes} attributes")
    out: dict[str, Any] = {}
    for kv in key_values:
        fields = kv.value.ListFields()
        if not fields:
            out[kv.key] = None
            continue
        ((descriptor, value),) = fields
        if type(value) is str:
            if len(value) > limits.max_value_chars:
                raise _SpanRejected(
                    f"a string value is longer than {limits.max_value_chars} chars")
            out[kv.key] = value
        else:
            out[kv.key] = _value(descriptor.number, value, limits, depth)
    return out


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _hex_id(raw: bytes, size: int, what: str) -> str:
    if len(raw) != size:
        raise _SpanRejected(f"{what} must be {size} bytes, got {len(raw)}")
    return raw.hex()


_MAX_INT64 = 2**63 - 1
_MAX_INT32 = 2**31 - 1


def _check_numbers(span: Any) -> None:
    """Times must fit a TIMESTAMP_NS, counts and flags an INTEGER column."""
    if max(span.start_time_unix_nano, span.end_time_unix_nano) > _MAX_INT64:
        raise _SpanRejected("a time is beyond the year 2262 (over 2**63 - 1 ns)")
    if max(span.flags, span.dropped_attributes_count, span.dropped_events_count,
           span.dropped_links_count) > _MAX_INT32:
        raise _SpanRejected("flags or a dropped count is over 2**31 - 1")


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


def _resource_info(attributes: dict[str, Any], schema_url: str) -> tuple[str, str | None]:
    """A resource's stored JSON and its service name."""
    service = attributes.get("service.name")
    return (_dumps({"attributes": attributes, "schema_url": schema_url}),
            None if service is None else str(service))


# A span item (see _span_items) is a list of the SPAN_SCHEMA values in column order, with the
# attributes (column 15) still a dict and the events and links (16, 17) lists of dicts.
_ATTRIBUTES, _EVENTS, _LINKS = 15, 16, 17


def _span_items(request: ExportTraceServiceRequest, limits: OtlpLimits) -> list[Any]:
    """The reference decoder: one item per span of ``request`` in order, a span item (a
    list, see above) or the message (str) of its rejection. The native decoder
    (``_otlp_native.c``) produces the same items from the request's bytes."""
    items: list[Any] = []
    for resource_spans in request.resource_spans:
        try:
            resource_attributes = _attributes(resource_spans.resource.attributes, limits)
        except _SpanRejected as error:
            count = sum(len(s.spans) for s in resource_spans.scope_spans)
            items.extend([f"resource: {error}"] * count)
            continue
        resource, service = _resource_info(resource_attributes, resource_spans.schema_url)
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
                except _SpanRejected as error:
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


def _native_items(body: bytes, limits: OtlpLimits) -> list[Any]:
    """:func:`_span_items` by the native decoder, from the request's protobuf bytes. Raises
    ``ValueError`` (``_otlp_native.Unsupported`` among them) where it cannot decode them."""
    assert _native is not None
    return _native.decode(body, *(min(limit, sys.maxsize) for limit in (
        limits.max_attributes, limits.max_value_chars, limits.max_array_items,
        limits.max_depth)), _resource_info)


def _assemble(items: list[Any]) -> DecodedSpans:
    """The batch for the store from a request's span items: spans repeated within the request
    kept once, evaluation spans turned into evaluations, embedding vectors moved to their
    table, attributes, events and links written as JSON. The native span converter
    (``_spans_native.c``, ``SpanColumns.add_item``) does this when built, building the
    tables' Arrow buffers itself; else :func:`_assemble_python`,
    the reference it is tested against, does (figures: ``benchmarks/bench_collector.py
    --only decode``)."""
    spans_native = convert._native
    if spans_native is None:
        return _assemble_python(items)
    columns = spans_native.SpanColumns()
    add = columns.add_item
    keys: list[tuple[str, str]] = []
    evaluations = 0
    rejections = _Rejections()
    for key, row in rejections.unique(items):
        if add(row):
            evaluations += 1
        else:
            keys.append(key)
    batch = convert.columns_to_batch(*columns.take())
    return DecodedSpans(batch, keys, rejections.count, rejections.message, evaluations)


_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


class _Rejections:
    """The rejected spans of a request's items, counted with the first reason."""

    def __init__(self) -> None:
        self.count = 0
        self.message = ""

    def unique(self, items: list[Any]) -> Iterator[tuple[tuple[str, str], list[Any]]]:
        """((trace id, span id), span item) for each accepted span of ``items``, the first
        time its ids come; counts the rejected ones."""
        seen: set[tuple[str, str]] = set()
        for row in items:
            if type(row) is str:
                self.count += 1
                self.message = self.message or row
                continue
            key = (row[0], row[1])
            if key[0] == _ZERO_TRACE or key[1] == _ZERO_SPAN:
                # OTLP: an all-zero trace or span id is invalid.
                self.count += 1
                self.message = self.message or "an all-zero trace_id or span_id is invalid"
                continue
            if key not in seen:
                seen.add(key)
                yield key, row


def _assemble_python(items: list[Any]) -> DecodedSpans:
    """The pure-Python reference of :func:`_assemble`."""
    rows: list[list[Any]] = []
    keys: list[tuple[str, str]] = []
    records = RecordBuilder()
    evaluations = 0
    rejections = _Rejections()
    for key, row in rejections.unique(items):
        attributes = row[_ATTRIBUTES]
        if attributes.get(cv.VLMSCOPE_SPAN_ROLE) == an.ROLE_EVALUATION:
            # Evaluations live in their own table, never as spans (see annotations).
            records.add_span(row[0], row[1], row[5], row[7], row[8], row[9], attributes, (),
                             row[2])
            evaluations += 1
            continue
        vectors: list[tuple[int, Sequence[float]]] = []
        if attributes.get(cv.OPENINFERENCE_SPAN_KIND) == cv.SPAN_KIND_EMBEDDING:
            vectors = _pop_vectors(attributes)
        records.add_span(row[0], row[1], row[5], row[7], row[8], row[9], attributes, vectors,
                         row[2])
        row[_ATTRIBUTES] = _dumps(attributes)
        if row[_EVENTS] is not None:
            row[_EVENTS] = _dumps(row[_EVENTS])
        if row[_LINKS] is not None:
            row[_LINKS] = _dumps(row[_LINKS])
        keys.append(key)
        rows.append(row)
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(SPAN_SCHEMA)
    spans = arrow_table(columns, SPAN_SCHEMA)
    return DecodedSpans(SpanBatch(spans, records.tables()), keys, rejections.count,
                        rejections.message, evaluations)


def _items(request: ExportTraceServiceRequest, body: bytes | None,
           limits: OtlpLimits) -> list[Any]:
    """The span items of ``request`` (whose protobuf bytes are ``body`` when at hand): by
    the native decoder when built, else (or for the rare request it leaves, see
    ``_otlp_native.c``) by the reference decoder."""
    if _native is not None:
        try:
            return _native_items(request.SerializeToString() if body is None else body,
                                 limits)
        except ValueError as error:
            _log.debug("native OTLP decoder declined a request (%s); decoding in Python",
                       error)
    return _span_items(request, limits)


def decode_request(request: ExportTraceServiceRequest,
                   limits: OtlpLimits = DEFAULT_LIMITS) -> DecodedSpans:
    """Decode a parsed ``ExportTraceServiceRequest`` into a batch for the store."""
    return _assemble(_items(request, None, limits))


def decode_request_python(request: ExportTraceServiceRequest,
                          limits: OtlpLimits = DEFAULT_LIMITS) -> DecodedSpans:
    """:func:`decode_request` by the pure-Python reference decoder and assembly, native ones
    or not."""
    return _assemble_python(_span_items(request, limits))


def parse_protobuf(body: bytes) -> ExportTraceServiceRequest:
    """Parse a binary ``ExportTraceServiceRequest``; :class:`OtlpDecodeError` if it is not."""
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, RecursionError, ValueError) as error:
        raise OtlpDecodeError(f"the body is not a protobuf ExportTraceServiceRequest "
                              f"({error})") from error
    return request


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


def parse_json(document: bytes | dict[str, Any]) -> ExportTraceServiceRequest:
    """Parse an OTLP JSON ``ExportTraceServiceRequest`` (hex ids, 64-bit integers as
    strings or numbers); :class:`OtlpDecodeError` if it is not one."""
    try:
        data = orjson.loads(document) if isinstance(document, bytes) else document
    except orjson.JSONDecodeError as error:
        raise OtlpDecodeError(f"the body is not JSON ({error})") from error
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


def decode_body(body: bytes, is_json: bool, limits: OtlpLimits = DEFAULT_LIMITS) -> DecodedSpans:
    """Parse and decode one request body (OTLP JSON when ``is_json``, else protobuf)."""
    if is_json:
        return decode_request(parse_json(body), limits)
    # protobuf parses (and so validates) the body first: what it rejects is a 400 whichever
    # decoder runs; the native decoder then reads the same bytes.
    return _assemble(_items(parse_protobuf(body), body, limits))


@dataclass
class PackedSpans:
    """A :class:`DecodedSpans` for the trip from a decoder process to the server: each table
    as one Arrow IPC stream, written and read by Arrow's C++ code (faster than pickling the
    tables, ``benchmarks/README.md``), the ids and counts pickled in a header before them
    (:meth:`wire`, :meth:`from_wire`)."""

    names: list[str]
    streams: list[Any]  # pa.Buffer, or any bytes-like object
    keys: list[tuple[str, str]]
    rejected: int = 0
    message: str = ""
    evaluations: int = 0

    @classmethod
    def pack(cls, decoded: DecodedSpans) -> PackedSpans:
        """``decoded``, packed."""
        tables = {"": decoded.batch.spans, **decoded.batch.derived}
        streams = []
        for table in tables.values():
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
            streams.append(sink.getvalue())
        return cls(list(tables), streams, decoded.keys, decoded.rejected, decoded.message,
                   decoded.evaluations)

    def wire(self) -> list[Any]:
        """The pieces to send, in order: the header (its length, then the pickled names,
        stream sizes, keys and counts), then every stream."""
        header = pickle.dumps((self.names, [memoryview(s).nbytes for s in self.streams],
                               self.keys, self.rejected, self.message, self.evaluations),
                              protocol=pickle.HIGHEST_PROTOCOL)
        return [_HEADER.pack(len(header)) + header, *self.streams]

    @classmethod
    def from_wire(cls, data: bytes | memoryview) -> PackedSpans:
        """What :meth:`wire` sent, received as one buffer (the streams are read in place:
        the tables keep ``data`` alive)."""
        view = memoryview(data)
        (size,) = _HEADER.unpack_from(view)
        at = _HEADER.size + size
        names, sizes, keys, rejected, message, evaluations = pickle.loads(
            view[_HEADER.size:at])
        streams = []
        for length in sizes:
            streams.append(view[at:at + length])
            at += length
        return cls(names, streams, keys, rejected, message, evaluations)

    def unpack(self) -> DecodedSpans:
        """The decoded request again (its tables read in place from the streams)."""
        tables = [pa.ipc.open_stream(pa.py_buffer(stream)).read_all()
                  for stream in self.streams]
        spans, *derived = tables
        batch = SpanBatch(spans, dict(zip(self.names[1:], derived, strict=True)))
        return DecodedSpans(batch, self.keys, self.rejected, self.message, self.evaluations)


_HEADER = struct.Struct("<Q")


def decode_body_packed(body: bytes, is_json: bool,
                       limits: OtlpLimits = DEFAULT_LIMITS) -> PackedSpans:
    """:func:`decode_body`, packed for the trip back from a decoder process."""
    return PackedSpans.pack(decode_body(body, is_json, limits))


_native = _load_native()
