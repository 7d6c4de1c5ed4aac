"""Stored traces in and out as OTLP: JSON Lines export and import, and replay to any OTLP/HTTP
backend.

The export writes one OTLP JSON ``ExportTraceServiceRequest`` per line (hex ids, 64-bit
integers as strings, enums as numbers), as the OTLP file exporter does. Every stored span field,
attribute, event, link and resource goes out, embedding vectors are put back into their
encoder span's attributes (``embedding.embeddings.N.embedding.vector``), and evaluations go out
as EVALUATOR spans (see :mod:`vlmscope.collectors.annotations`). The import runs each line
through the OTLP receiver's decoder and ingestor, so what lands is what ``vlmscope collect``
would have stored, and importing a file twice stores its spans once.
"""

from __future__ import annotations

import gzip
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import duckdb
import orjson

from vlmscope import conventions as cv
from vlmscope.collectors import annotations as an
from vlmscope.collectors import otlp
from vlmscope.collectors.ingest import SpanIngestor
from vlmscope.collectors.normalize import TRAINING_RUN_ID_PREFIX

DEFAULT_SPANS_PER_REQUEST = 512
"""Spans per exported line (one OTLP request each) and per replayed request."""

EVALUATION_SERVICE = "vlmscope.evaluations"
"""``service.name`` of the resource that exported evaluation spans carry."""

_RETRYABLE = {429, 502, 503, 504}

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class TransferCounts:
    """What an export, import or replay moved: spans and evaluations."""

    spans: int
    evaluations: int


def _any_value(value: Any) -> dict[str, Any]:
    """A plain Python value as an OTLP JSON ``AnyValue``."""
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, list):
        return {"arrayValue": {"values": [_any_value(v) for v in value]}}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": _key_values(value)}}
    return {}


def _key_values(attributes: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": key, "value": _any_value(value)} for key, value in attributes.items()]


def _span_json(row: dict[str, Any]) -> dict[str, Any]:
    """One stored span row (with its ``vectors``) as an OTLP JSON span."""
    attributes = orjson.loads(row["attributes"]) if row["attributes"] else {}
    for vector in row["vectors"] or ():
        attributes[cv.embedding_vector_key(vector["i"])] = vector["v"]
    span: dict[str, Any] = {
        "traceId": row["trace_id"], "spanId": row["span_id"], "name": row["name"],
        "kind": otlp.SPAN_KINDS.index(row["kind"]) if row["kind"] in otlp.SPAN_KINDS else 0,
        "startTimeUnixNano": str(row["start_ns"]), "endTimeUnixNano": str(row["end_ns"]),
        "attributes": _key_values(attributes),
        "status": {"code": otlp.STATUS_CODES.index(row["status_code"])
                   if row["status_code"] in otlp.STATUS_CODES else 0},
    }
    if row["status_message"] is not None:
        span["status"]["message"] = row["status_message"]
    optional = {"parentSpanId": row["parent_span_id"], "traceState": row["trace_state"],
                "flags": row["trace_flags"],
                "droppedAttributesCount": row["dropped_attributes"],
                "droppedEventsCount": row["dropped_events"],
                "droppedLinksCount": row["dropped_links"]}
    span.update((k, v) for k, v in optional.items() if v)
    if row["events"]:
        span["events"] = [{"name": e["name"], "timeUnixNano": str(e["time_unix_nano"]),
                           "attributes": _key_values(e["attributes"] or {})}
                          for e in orjson.loads(row["events"])]
    if row["links"]:
        span["links"] = [{"traceId": link["trace_id"], "spanId": link["span_id"],
                          **({"traceState": link["trace_state"]} if link["trace_state"] else {}),
                          "attributes": _key_values(link["attributes"] or {})}
                         for link in orjson.loads(row["links"])]
    return span


def _request(groups: dict[tuple[str, str | None, str | None], list[dict[str, Any]]]
             ) -> dict[str, Any]:
    """Spans grouped by (resource JSON, scope name, scope version) as one OTLP request."""
    by_resource: dict[str, list[dict[str, Any]]] = {}
    for (resource, scope_name, scope_version), spans in groups.items():
        scope = {k: v for k, v in (("name", scope_name), ("version", scope_version)) if v}
        by_resource.setdefault(resource, []).append({"scope": scope, "spans": spans})
    resource_spans = []
    for resource, scope_spans in by_resource.items():
        parsed = orjson.loads(resource) if resource else {}
        entry: dict[str, Any] = {
            "resource": {"attributes": _key_values(parsed.get("attributes") or {})},
            "scopeSpans": scope_spans}
        if parsed.get("schema_url"):
            entry["schemaUrl"] = parsed["schema_url"]
        resource_spans.append(entry)
    return {"resourceSpans": resource_spans}


def _selected(where: str | None) -> str:
    return f"(SELECT * FROM spans WHERE {where})" if where else "spans"


def count_spans(con: duckdb.DuckDBPyConnection, where: str | None = None) -> int:
    """Spans (plus evaluations) an export with ``where`` would write."""
    ((spans,),) = con.execute(f"SELECT count(*) FROM {_selected(where)}").fetchall()
    ((evaluations,),) = con.execute(
        f"SELECT count(*) FROM ({_evaluations_query(where)})").fetchall()
    return int(spans) + int(evaluations)


def _evaluations_query(where: str | None) -> str:
    join = "JOIN" if where else "LEFT JOIN"
    return (
        "SELECT ev.*, coalesce(epoch_ns(s.end_time), 0) AS time_ns FROM evaluations ev "
        f"{join} {_selected(where)} s ON s.trace_id = ev.trace_id AND s.span_id = ev.span_id "
        f"WHERE NOT starts_with(ev.run_id, '{TRAINING_RUN_ID_PREFIX}')"
    )


def _evaluation_span(row: dict[str, Any]) -> dict[str, Any]:
    attributes = an.evaluation_attributes(
        row["run_id"], row["evaluator"], row["row_id"], row["trace_id"], row["score"],
        row["passed"], row["label"], row["explanation"], row["metadata"],
        row["annotator_kind"])
    span: dict[str, Any] = {
        "traceId": row["trace_id"] or an.evaluation_trace_id(row["run_id"]),
        "spanId": an.evaluation_span_id(row["run_id"], row["evaluator"], row["trace_id"],
                                        row["span_id"], row["row_id"]),
        "name": cv.EVALUATION_SPAN_NAME, "kind": 1,
        "startTimeUnixNano": str(row["time_ns"]), "endTimeUnixNano": str(row["time_ns"]),
        "attributes": _key_values(attributes), "status": {},
    }
    if row["span_id"] is not None:
        span["parentSpanId"] = row["span_id"]
        if row["trace_id"] is not None:
            span["links"] = [{"traceId": row["trace_id"], "spanId": row["span_id"]}]
    return span


def otlp_requests(con: duckdb.DuckDBPyConnection, where: str | None = None,
                  spans_per_request: int = DEFAULT_SPANS_PER_REQUEST
                  ) -> Iterator[tuple[dict[str, Any], int, int]]:
    """The stored spans matching ``where`` (a SQL predicate on ``spans``), then the
    evaluations of those spans, as OTLP JSON requests of at most ``spans_per_request``
    spans; yields (request, spans, evaluations)."""
    if spans_per_request < 1:
        raise ValueError(f"spans_per_request must be at least 1, got {spans_per_request}")
    reader = con.sql(
        "SELECT s.* EXCLUDE (start_time, end_time), epoch_ns(s.start_time) AS start_ns, "
        "epoch_ns(s.end_time) AS end_ns, "
        "v.vectors FROM " + _selected(where) + " s LEFT JOIN ("
        "  SELECT trace_id, span_id, list({'i': record_index, 'v': vector} "
        "  ORDER BY record_index) AS vectors FROM embeddings GROUP BY trace_id, span_id"
        ") v ON v.trace_id = s.trace_id AND v.span_id = s.span_id "
        "ORDER BY s.start_time, s.trace_id, s.span_id"
    ).to_arrow_reader(spans_per_request)
    # An Arrow reader's batches may be smaller than asked: regroup into full requests.
    groups: dict[tuple[str, str | None, str | None], list[dict[str, Any]]] = {}
    pending = 0
    for batch in reader:
        for row in batch.to_pylist():
            key = (row["resource"], row["scope_name"], row["scope_version"])
            groups.setdefault(key, []).append(_span_json(row))
            pending += 1
            if pending == spans_per_request:
                yield _request(groups), pending, 0
                groups, pending = {}, 0
    if pending:
        yield _request(groups), pending, 0
    evaluations = con.sql(_evaluations_query(where)).to_arrow_reader(spans_per_request)
    resource = orjson.dumps({"attributes": {"service.name": EVALUATION_SERVICE}}).decode()
    for batch in evaluations:
        spans = [_evaluation_span(row) for row in batch.to_pylist()]
        if spans:
            yield _request({(resource, "vlmscope.evaluations", None): spans}), 0, len(spans)


def export_otlp_jsonl(con: duckdb.DuckDBPyConnection, path: str | os.PathLike[str], *,
                      where: str | None = None,
                      spans_per_request: int = DEFAULT_SPANS_PER_REQUEST,
                      progress: Progress | None = None) -> TransferCounts:
    """Write the stored spans matching ``where`` and their evaluations to ``path`` as OTLP
    JSON Lines (gzip-compressed when the name ends in ``.gz``)."""
    total = count_spans(con, where) if progress else 0
    spans = evaluations = 0
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as out:
        for request, n_spans, n_evaluations in otlp_requests(con, where, spans_per_request):
            out.write(orjson.dumps(request))
            out.write(b"\n")
            spans += n_spans
            evaluations += n_evaluations
            if progress:
                progress(spans + evaluations, total)
    return TransferCounts(spans, evaluations)


def import_otlp_jsonl(path: str | os.PathLike[str], ingestor: SpanIngestor, *,
                      limits: otlp.OtlpLimits = otlp.DEFAULT_LIMITS,
                      progress: Progress | None = None) -> TransferCounts:
    """Store every span of the OTLP JSON Lines file at ``path`` (``.gz`` read as gzip) through
    ``ingestor``; spans the store holds already are skipped. Raises
    :class:`~vlmscope.collectors.otlp.OtlpDecodeError` naming the first bad line (lines
    before it are stored) and :class:`ValueError` when a span breaks ``limits``."""
    total = os.path.getsize(path)
    spans = evaluations = 0
    futures = []
    with open(path, "rb") as raw, (gzip.open(raw) if str(path).endswith(".gz") else raw) as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                decoded = otlp.decode_request(otlp.parse_json(line), limits)
            except otlp.OtlpDecodeError as error:
                for future in futures:
                    future.result()
                raise otlp.OtlpDecodeError(f"line {number}: {error}") from error
            if decoded.rejected:
                raise ValueError(f"line {number}: {decoded.rejected} spans break the limits "
                                 f"({decoded.message})")
            futures.append(ingestor.submit(decoded))
            spans += decoded.batch.num_spans
            evaluations += decoded.evaluations
            # Bound memory: wait for older commits while later lines decode.
            while len(futures) > 8:
                futures.pop(0).result()
            if progress:
                progress(raw.tell(), total)
    for future in futures:
        future.result()
    return TransferCounts(spans, evaluations)


def replay(con: duckdb.DuckDBPyConnection, endpoint: str, *, where: str | None = None,
           headers: dict[str, str] | None = None,
           spans_per_request: int = DEFAULT_SPANS_PER_REQUEST, timeout_s: float = 30.0,
           max_retries: int = 5, progress: Progress | None = None) -> TransferCounts:
    """Send the stored spans matching ``where`` and their evaluations to the OTLP/HTTP
    ``endpoint`` (e.g. ``http://127.0.0.1:4318/v1/traces``) as gzip-compressed protobuf,
    retrying 429/502/503/504 answers after their ``Retry-After``. Raises
    :class:`RuntimeError` when the endpoint refuses a request."""
    import requests

    total = count_spans(con, where) if progress else 0
    spans = evaluations = 0
    session = requests.Session()
    session.headers.update({"Content-Type": "application/x-protobuf",
                            "Content-Encoding": "gzip", **(headers or {})})
    for request, n_spans, n_evaluations in otlp_requests(con, where, spans_per_request):
        body = gzip.compress(otlp.parse_json(request).SerializeToString(), compresslevel=1)
        for attempt in range(max_retries + 1):
            try:
                response = session.post(endpoint, data=body, timeout=timeout_s)
            except requests.RequestException as error:
                raise RuntimeError(f"cannot reach {endpoint}: {error}") from error
            if response.status_code not in _RETRYABLE or attempt == max_retries:
                break
            retry_after = response.headers.get("Retry-After", "")
            time.sleep(float(retry_after) if retry_after.isdigit() else 2.0 ** attempt / 4)
        if not 200 <= response.status_code < 300:
            raise RuntimeError(f"{endpoint} answered {response.status_code} after "
                               f"{spans + evaluations} spans: {response.text[:300]}")
        spans += n_spans
        evaluations += n_evaluations
        if progress:
            progress(spans + evaluations, total)
    return TransferCounts(spans, evaluations)
