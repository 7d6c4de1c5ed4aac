"""OTLP trace requests (protobuf or JSON) decoded into store batches.

One decoder serves the OTLP/HTTP receiver and the OTLP JSON Lines import: a JSON request is
first turned into the protobuf message (OTLP JSON differs from the proto3 JSON mapping only
in its hex-encoded ids), then every span goes through the same code as a protobuf one, and
its decoded attributes through the one normaliser (:class:`RecordBuilder`).

Spans that break a limit (:class:`OtlpLimits`) or carry ids of the wrong length are rejected
one by one and counted (OTLP ``partial_success``); a body that does not parse is rejected as a
whole (:class:`OtlpDecodeError`). Embedding vectors leave the attributes for the
``embeddings`` table as in the in-process exporter. Spans repeated within one request are
kept once.

Two decoders turn a request into span items: the pure-Python reference
(:mod:`vlmscope.collectors._otlp_python`), on the parsed message, and a native one
(``_otlp_native.c``, an optional C extension, much faster) on the protobuf bytes, with the
same values, checks and rejection messages. The native one is used when built, unless
``VLMSCOPE_PURE_PYTHON=1``; protobuf still parses every body first, so both decoders see only
requests protobuf accepts, and the
rare request whose meaning protobuf defines by merging repeated message fields is left to the
reference decoder. From the items on, one code path builds the batch (:func:`_assemble`).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)

from vlmscope import conventions as cv
from vlmscope.collectors import convert
from vlmscope.collectors._otlp_json import parse_json
from vlmscope.collectors._otlp_packed import PackedSpans
from vlmscope.collectors._otlp_python import dumps_json, resource_info, span_items
from vlmscope.collectors._otlp_types import (  # noqa: F401  (re-exported)
    DEFAULT_LIMITS,
    DEFAULT_MAX_ARRAY_ITEMS,
    DEFAULT_MAX_ATTRIBUTES,
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_VALUE_CHARS,
    SPAN_KINDS,
    STATUS_CODES,
    DecodedSpans,
    OtlpDecodeError,
    OtlpLimits,
)
from vlmscope.collectors.convert import PURE_PYTHON_ENV, SPAN_SCHEMA, SpanBatch, pop_vectors
from vlmscope.collectors.normalize import RecordBuilder, arrow_table

_log = logging.getLogger("vlmscope.otlp")


def _self_test(native: Any) -> None:
    """Raise unless ``native`` decodes a request of :func:`convert.sample_spans` (encoded by
    the installed OpenTelemetry exporter) into the reference decoder's items."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    request = encode_spans(convert.sample_spans())
    got = native.decode(request.SerializeToString(), *(min(limit, sys.maxsize) for limit in (
        DEFAULT_LIMITS.max_attributes, DEFAULT_LIMITS.max_value_chars,
        DEFAULT_LIMITS.max_array_items, DEFAULT_LIMITS.max_depth)), resource_info)
    if got != span_items(request, DEFAULT_LIMITS):
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




# A span item (see span_items) is a list of the SPAN_SCHEMA values in column order, with the
# attributes (column 15) still a dict and the events and links (16, 17) lists of dicts.
_ATTRIBUTES, _EVENTS, _LINKS = 15, 16, 17


def _native_items(body: bytes, limits: OtlpLimits) -> list[Any]:
    """:func:`span_items` by the native decoder, from the request's protobuf bytes. Raises
    ``ValueError`` (``_otlp_native.Unsupported`` among them) where it cannot decode them."""
    assert _native is not None
    return _native.decode(body, *(min(limit, sys.maxsize) for limit in (
        limits.max_attributes, limits.max_value_chars, limits.max_array_items,
        limits.max_depth)), resource_info)


def _assemble(items: list[Any]) -> DecodedSpans:
    """The batch for the store from a request's span items: spans repeated within the request
    kept once, evaluation spans turned into evaluations, embedding vectors moved to their
    table, attributes, events and links written as JSON. The native span converter
    (``_spans_native.c``, ``SpanColumns.add_item``) does this when built, building the
    tables' Arrow buffers itself; else :func:`_assemble_python`,
    the reference it is tested against, does (figures: ``benchmarks/bench_collector.py
    --only decode``)."""
    columns = convert.native_span_columns()
    if columns is None:
        return _assemble_python(items)
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
        if attributes.get(cv.VLMSCOPE_SPAN_ROLE) == cv.ROLE_EVALUATION:
            # Evaluations live in their own table, never as spans (see annotations).
            records.add_span(row[0], row[1], row[5], row[7], row[8], row[9], attributes, (),
                             row[2])
            evaluations += 1
            continue
        vectors: list[tuple[int, Sequence[float]]] = []
        if attributes.get(cv.OPENINFERENCE_SPAN_KIND) == cv.SPAN_KIND_EMBEDDING:
            vectors = pop_vectors(attributes)
        records.add_span(row[0], row[1], row[5], row[7], row[8], row[9], attributes, vectors,
                         row[2])
        row[_ATTRIBUTES] = dumps_json(attributes)
        if row[_EVENTS] is not None:
            row[_EVENTS] = dumps_json(row[_EVENTS])
        if row[_LINKS] is not None:
            row[_LINKS] = dumps_json(row[_LINKS])
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
    return span_items(request, limits)


def decode_request(request: ExportTraceServiceRequest,
                   limits: OtlpLimits = DEFAULT_LIMITS) -> DecodedSpans:
    """Decode a parsed ``ExportTraceServiceRequest`` into a batch for the store."""
    return _assemble(_items(request, None, limits))


def decode_request_python(request: ExportTraceServiceRequest,
                          limits: OtlpLimits = DEFAULT_LIMITS) -> DecodedSpans:
    """:func:`decode_request` by the pure-Python reference decoder and assembly, native ones
    or not."""
    return _assemble_python(span_items(request, limits))


def parse_protobuf(body: bytes) -> ExportTraceServiceRequest:
    """Parse a binary ``ExportTraceServiceRequest``; :class:`OtlpDecodeError` if it is not."""
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, RecursionError, ValueError) as error:
        raise OtlpDecodeError(f"the body is not a protobuf ExportTraceServiceRequest "
                              f"({error})") from error
    return request


def decode_body(body: bytes, is_json: bool, limits: OtlpLimits = DEFAULT_LIMITS) -> DecodedSpans:
    """Parse and decode one request body (OTLP JSON when ``is_json``, else protobuf)."""
    if is_json:
        return decode_request(parse_json(body), limits)
    # protobuf parses (and so validates) the body first: what it rejects is a 400 whichever
    # decoder runs; the native decoder then reads the same bytes.
    return _assemble(_items(parse_protobuf(body), body, limits))


def decode_body_packed(body: bytes, is_json: bool,
                       limits: OtlpLimits = DEFAULT_LIMITS) -> PackedSpans:
    """:func:`decode_body`, packed for the trip back from a decoder process."""
    return PackedSpans.pack(decode_body(body, is_json, limits))


_native = _load_native()
