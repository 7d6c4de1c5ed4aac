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
  ``{"columns": [...], "rows": [[...], ...]}``. The store is opened with external access
  disabled, so no query reads or writes a file named by the client.
* ``GET /health`` - ``{"status": "ok", ...}`` with the spans committed and pending.

With a token configured, every route but ``/health`` needs ``Authorization: Bearer <token>``,
compared in constant time.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hmac
import logging
import multiprocessing
import os
import threading
import time
import zlib
from collections.abc import Awaitable, Callable
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import orjson
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)

from vlmscope.collectors import otlp
from vlmscope.collectors.ingest import IngestBusyError, SpanIngestor
from vlmscope.collectors.query import ReadOnlyQueryError, run_read_only

_log = logging.getLogger("vlmscope.receiver")

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
"""Largest request body accepted, in bytes, after gzip decompression (413 beyond)."""

DEFAULT_RETRY_AFTER_S = 1
"""Seconds a client is told to wait (``Retry-After``) when the store lags behind."""

DEFAULT_QUERY_TIMEOUT_S = 30.0
"""Longest a query through the receiver may run, in seconds."""

DEFAULT_QUERY_MAX_ROWS = 100_000
"""Most rows a query through the receiver may return."""

DEFAULT_DECODERS = min(os.cpu_count() or 1, 4)
"""Processes that decode request bodies in parallel (0: one thread in the server process)."""

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


# google.rpc.Code of each HTTP error status, for the OTLP error body.
_RPC_CODES = {400: 3, 401: 16, 404: 5, 405: 12, 413: 8, 415: 3, 503: 14}


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
    decoders: int = DEFAULT_DECODERS

    def __post_init__(self) -> None:
        if self.decoders < 0:
            raise ValueError(f"decoders must be 0 or more, got {self.decoders}")
        if self.max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be at least 1, got {self.max_body_bytes}")
        if self.token is not None and not self.token:
            raise ValueError("the token must not be empty")


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


def _decoder_started(parent: int) -> None:
    """In a decoder process, before its first request: import the decoder, then move every
    object there is to the garbage collector's permanent generation (``gc.freeze``). A
    decoded request is a tree of dicts and lists freed by reference counting, yet building
    one sets off collections that walked every module object the imports left: a 512-span
    request took 5.9-9.6 ms to decode with them, 4.0-4.3 ms frozen
    (``benchmarks/bench_collector.py --only decode``). Then exit with the server process
    (:func:`_exit_with_parent`)."""
    import gc

    from vlmscope.collectors import otlp  # noqa: F401  (imported before the freeze)

    gc.freeze()
    # A request makes thousands of short-lived containers, freed by reference counting: a
    # young-generation collection every 700 of them found nothing and took 5.5% of a
    # decoder's time (py-spy). Cycles are still collected, every 50,000 allocations.
    gc.set_threshold(50_000, 20, 100)
    _exit_with_parent(parent)


def _exit_with_parent(parent: int) -> None:
    """In a decoder process: exit as soon as the server process is gone (even SIGKILLed,
    which gives the pool no chance to stop its workers)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="vlmscope-parent-watch", daemon=True).start()


class OtlpReceiver:
    """The ASGI application; ``ingestor`` commits what it accepts."""

    def __init__(self, ingestor: SpanIngestor, config: ReceiverConfig | None = None):
        self.ingestor = ingestor
        self.config = config = config if config is not None else ReceiverConfig()
        self._token = config.token.encode() if config.token is not None else None
        # Decoding holds the GIL (about 16 us a span with the native decoder, 60 in pure
        # Python): worker processes run it in parallel while this process serves HTTP and
        # DuckDB commits (which release the GIL).
        self._decoder = self._decoder_pool()
        self._queries = concurrent.futures.ThreadPoolExecutor(2, "vlmscope-query")

    def _decoder_pool(self) -> concurrent.futures.Executor:
        if self.config.decoders == 0:
            return concurrent.futures.ThreadPoolExecutor(1, "vlmscope-otlp-decode")
        # spawn, not fork: this process runs threads (DuckDB, the ingest writer).
        return concurrent.futures.ProcessPoolExecutor(
            self.config.decoders, mp_context=multiprocessing.get_context("spawn"),
            initializer=_decoder_started, initargs=(os.getpid(),))

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
        loop = asyncio.get_running_loop()
        empty = b""
        await asyncio.gather(*(
            loop.run_in_executor(self._decoder, otlp.decode_body, empty, False,
                                 self.config.limits)
            for _ in range(max(self.config.decoders, 1))))

    def close(self) -> None:
        """Finish decoding and committing every request taken in; close the store."""
        self._decoder.shutdown(wait=True)
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
        loop = asyncio.get_running_loop()
        decoder = self._decoder
        in_process = self.config.decoders == 0
        try:
            decoded = await loop.run_in_executor(
                decoder, otlp.decode_body if in_process else otlp.decode_body_packed, body,
                media == JSON, self.config.limits)
            if not in_process:
                decoded = decoded.unpack()
        except otlp.OtlpDecodeError as error:
            raise _HttpError(400, str(error)) from error
        except BrokenProcessPool as error:
            # A decoder process died (e.g. killed): start fresh ones, let the client retry.
            if self._decoder is decoder:
                self._decoder = self._decoder_pool()
            raise _HttpError(503, "the decoder restarted; retry", self._retry_after()) from error
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
            raise _HttpError(400, str(error)) from error
        payload = orjson.dumps({"columns": columns, "rows": rows}, default=str,
                               option=orjson.OPT_NON_STR_KEYS)
        await self._respond(send, 200, JSON, payload)

    def _run_query(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        with self.ingestor.writer.cursor() as cursor:
            return run_read_only(cursor, sql, timeout_s=self.config.query_timeout_s,
                                 max_rows=self.config.query_max_rows)

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
