"""The OTLP/HTTP receiver behind ``vlmscope collect``: an ASGI application served by uvicorn.

Routes:

* ``POST /v1/traces`` - an OTLP ``ExportTraceServiceRequest``, protobuf
  (``application/x-protobuf``) or JSON (``application/json``), optionally gzip-encoded. The
  response (200) comes only after the DuckDB COMMIT holding the spans; it is an
  ``ExportTraceServiceResponse`` in the request's encoding, with ``partial_success`` when
  spans were rejected. Errors follow the OTLP specification: 400 malformed, 401 bad token,
  413 too large, 415 wrong content type, 503 with ``Retry-After`` when the store lags
  behind (the client retries), each with a ``google.rpc.Status`` body.
* ``POST /v1/query`` - ``{"sql": "..."}``: one read-only statement on the store, answered as
  ``{"columns": [...], "rows": [[...], ...]}``. It runs beside the ingest, holding no lock
  the ingest needs, in a read-only transaction on an instance where DuckDB itself refuses
  every file but the store, every extension and every setting, within a time, a memory and
  a result-size limit (:mod:`vlmscope.collectors.query`). Errors: 400 a query that fails,
  403 one that would write or touch a file, 408 past the time limit, 413 past the memory or
  result limits, 503 while the store cannot be read.
* ``GET /health`` - ``{"status": "ok", ...}`` with the spans committed and pending.

With a token configured, every route but ``/health`` needs ``Authorization: Bearer <token>``,
compared in constant time.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hmac
import logging
import os
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)

from vlmscope.collectors import otlp
from vlmscope.collectors._decoders import (  # noqa: F401  (re-exported)
    DecoderDied,
    DecoderProcesses,
    decoder_started,
)
from vlmscope.collectors.ingest import IngestBusyError, SpanIngestor
from vlmscope.collectors.query import (
    DEFAULT_QUERY_MAX_BYTES,
    DEFAULT_QUERY_MAX_ROWS,
    DEFAULT_QUERY_TIMEOUT_S,
    QueryLimits,
    ReadOnlyQueryError,
    jsonable,
)
from vlmscope.collectors.store import QUERY_SLOTS

_log = logging.getLogger("vlmscope.receiver")

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
"""Largest request body accepted, in bytes, after gzip decompression (413 beyond)."""

DEFAULT_RETRY_AFTER_S = 1
"""Seconds a client is told to wait (``Retry-After``) when the store lags behind."""

DEFAULT_DECODERS = min(os.cpu_count() or 1, 4)
"""Processes that decode request bodies in parallel (0: one thread in the server process)."""

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


# google.rpc.Code of each HTTP error status, for the OTLP error body.
_RPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 405: 12, 408: 4, 413: 8, 415: 3, 503: 14}


class _HttpError(Exception):
    def __init__(self, status: int, message: str, headers: list[tuple[bytes, bytes]] = ()):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = list(headers)


@dataclass(frozen=True)
class ReceiverConfig:
    """What the receiver accepts: body size (bytes), span limits, token, query limits."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    limits: otlp.OtlpLimits = otlp.DEFAULT_LIMITS
    token: str | None = None
    retry_after_s: int = DEFAULT_RETRY_AFTER_S
    query_timeout_s: float = DEFAULT_QUERY_TIMEOUT_S
    query_max_rows: int = DEFAULT_QUERY_MAX_ROWS
    query_max_bytes: int = DEFAULT_QUERY_MAX_BYTES
    query_memory_limit: str | None = None
    decoders: int = DEFAULT_DECODERS

    def __post_init__(self) -> None:
        if self.decoders < 0:
            raise ValueError(f"decoders must be 0 or more, got {self.decoders}")
        if self.max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be at least 1, got {self.max_body_bytes}")
        if self.token is not None and not self.token:
            raise ValueError("the token must not be empty")
        self.query_limits  # noqa: B018 - validates the query limits

    @property
    def query_limits(self) -> QueryLimits:
        """The limits of one query through ``/v1/query``."""
        return QueryLimits(self.query_timeout_s, self.query_max_rows, self.query_max_bytes,
                           self.query_memory_limit)


def _media_type(headers: dict[bytes, bytes]) -> str:
    return headers.get(b"content-type", b"").split(b";")[0].strip().decode("latin-1").lower()


def _gunzip(body: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as error:
        raise _HttpError(400, f"the body is not valid gzip ({error})") from error
    if len(data) > limit:
        raise _HttpError(413, f"the decompressed body is larger than {limit} bytes")
    if not inflater.eof:
        raise _HttpError(400, "the gzip body is truncated")
    return data


class OtlpReceiver:
    """The ASGI application; ``ingestor`` commits what it accepts."""

    def __init__(self, ingestor: SpanIngestor, config: ReceiverConfig | None = None):
        self.ingestor = ingestor
        self.config = config = config if config is not None else ReceiverConfig()
        self._token = config.token.encode() if config.token is not None else None
        # Decoding holds the GIL: worker processes run it in parallel while this process
        # serves HTTP and DuckDB commits (which release the GIL).
        self._decoders = DecoderProcesses(config.decoders, config.limits) \
            if config.decoders else None
        self._decode_thread = concurrent.futures.ThreadPoolExecutor(1, "vlmscope-otlp-decode") \
            if not config.decoders else None
        ingestor.writer.serve_queries(config.query_limits)
        self._queries = concurrent.futures.ThreadPoolExecutor(QUERY_SLOTS, "vlmscope-query")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        headers = dict(scope["headers"])
        try:
            route = (scope["method"], scope["path"])
            if route == ("GET", "/health"):
                await self._respond(send, 200, JSON, orjson.dumps({
                    "status": "ok", "committed_spans": self.ingestor.committed_spans,
                    "pending_spans": self.ingestor.pending_spans}))
                return
            if scope["path"] not in ("/v1/traces", "/v1/query"):
                raise _HttpError(404, f"no route {scope['path']}")
            if scope["method"] != "POST":
                raise _HttpError(405, f"{scope['path']} takes POST")
            self._authorize(headers)
            media = _media_type(headers)
            body = await self._read_body(receive, headers)
            if scope["path"] == "/v1/traces":
                await self._traces(send, media, body)
            else:
                await self._query(send, media, body)
        except _HttpError as error:
            await self._error(send, error, _media_type(headers))

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self._warm_up()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _warm_up(self) -> None:
        """Start every decoder process before the first request (each imports vlmscope)."""
        if self._decoders is not None:
            await self._decoders.start()
        else:
            await asyncio.get_running_loop().run_in_executor(
                self._decode_thread, otlp.decode_body, b"", False, self.config.limits)

    def close(self) -> None:
        """Finish decoding and committing every request taken in; close the store."""
        if self._decoders is not None:
            self._decoders.close()
        else:
            self._decode_thread.shutdown(wait=True)
        self._queries.shutdown(wait=True)
        self.ingestor.close()

    def _authorize(self, headers: dict[bytes, bytes]) -> None:
        if self._token is None:
            return
        given = headers.get(b"authorization", b"")
        scheme, _, token = given.partition(b" ")
        if scheme.lower() != b"bearer" or not hmac.compare_digest(token.strip(), self._token):
            raise _HttpError(401, "a valid 'Authorization: Bearer <token>' header is required",
                             [(b"www-authenticate", b"Bearer")])

    async def _read_body(self, receive: Receive, headers: dict[bytes, bytes]) -> bytes:
        limit = self.config.max_body_bytes
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _HttpError(413, f"the body is larger than {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _HttpError(400, "the client went away before sending the whole body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _HttpError(413, f"the body is larger than {limit} bytes")
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        encoding = headers.get(b"content-encoding", b"identity").strip().lower()
        if encoding == b"gzip":
            return _gunzip(body, limit)
        if encoding not in (b"identity", b""):
            raise _HttpError(415, f"unsupported content encoding {encoding.decode('latin-1')!r}; "
                             "send gzip or none")
        return body

    async def _traces(self, send: Send, media: str, body: bytes) -> None:
        if media not in (PROTOBUF, JSON):
            raise _HttpError(415, f"content type {media or 'none'!r} is not accepted; send "
                             f"{PROTOBUF} or {JSON}")
        try:
            if self._decoders is not None:
                decoded = await self._decoders.decode(body, media == JSON)
            else:
                decoded = await asyncio.get_running_loop().run_in_executor(
                    self._decode_thread, otlp.decode_body, body, media == JSON,
                    self.config.limits)
        except otlp.OtlpDecodeError as error:
            raise _HttpError(400, str(error)) from error
        except DecoderDied as error:
            # A decoder process died (e.g. killed): another takes its place; the client retries.
            raise _HttpError(503, str(error), self._retry_after()) from error
        try:
            future = self.ingestor.submit(decoded)
        except IngestBusyError as error:
            raise _HttpError(503, str(error), self._retry_after()) from error
        try:
            await asyncio.wrap_future(future)
        except Exception as error:
            _log.warning("spans not committed: %s", error)
            raise _HttpError(503, f"the store could not commit the spans ({error})",
                             self._retry_after()) from error
        response = ExportTraceServiceResponse()
        if decoded.rejected:
            response.partial_success.rejected_spans = decoded.rejected
            response.partial_success.error_message = decoded.message
        if media == PROTOBUF:
            payload = response.SerializeToString()
        else:
            partial = ({"partialSuccess": {"rejectedSpans": str(decoded.rejected),
                                           "errorMessage": decoded.message}}
                       if decoded.rejected else {})
            payload = orjson.dumps(partial)
        await self._respond(send, 200, media, payload)

    def _retry_after(self) -> list[tuple[bytes, bytes]]:
        return [(b"retry-after", str(self.config.retry_after_s).encode())]

    async def _query(self, send: Send, media: str, body: bytes) -> None:
        if media != JSON:
            raise _HttpError(415, f"send the query as {JSON}: {{\"sql\": \"...\"}}")
        try:
            sql = orjson.loads(body)["sql"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as error:
            raise _HttpError(400, 'the body must be {"sql": "<one read-only statement>"}') \
                from error
        if not isinstance(sql, str):
            raise _HttpError(400, '"sql" must be a string')
        loop = asyncio.get_running_loop()
        try:
            columns, rows = await loop.run_in_executor(self._queries, self._run_query, sql)
        except ReadOnlyQueryError as error:
            raise _HttpError(error.status, str(error)) from error
        except Exception as error:  # never a 500 with a traceback for a query
            _log.warning("query failed: %s: %s", type(error).__name__, error)
            raise _HttpError(400, f"query failed: {type(error).__name__}: {error}") from error
        try:
            payload = orjson.dumps({"columns": columns, "rows": rows},
                                   option=orjson.OPT_NON_STR_KEYS)
        except TypeError:  # values JSON has no type for (HUGEINT, DECIMAL, BLOB, ...)
            payload = orjson.dumps({"columns": columns, "rows": jsonable(rows)},
                                   option=orjson.OPT_NON_STR_KEYS)
        await self._respond(send, 200, JSON, payload)

    def _run_query(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        return self.ingestor.writer.run_query(sql)

    async def _error(self, send: Send, error: _HttpError, media: str) -> None:
        status = status_pb2.Status(code=_RPC_CODES.get(error.status, 2), message=error.message)
        if media == PROTOBUF:
            await self._respond(send, error.status, PROTOBUF, status.SerializeToString(),
                                error.headers)
        else:
            await self._respond(send, error.status, JSON, orjson.dumps(
                {"code": status.code, "message": error.message}), error.headers)

    @staticmethod
    async def _respond(send: Send, status: int, media: str, payload: bytes,
                       headers: list[tuple[bytes, bytes]] = ()) -> None:
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", media.encode()),
            (b"content-length", str(len(payload)).encode()), *headers]})
        await send({"type": "http.response.body", "body": payload})
