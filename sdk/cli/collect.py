"""``vlmscope collect``: the OTLP/HTTP receiver writing into a store (one writer per file)."""

from __future__ import annotations

import argparse
import gc
import ipaddress
import sys
from pathlib import Path

from vlmscope.cli import CommandError
from vlmscope.settings import default_db

DEFAULT_HOST = "127.0.0.1"
"""Address the collector binds unless told otherwise (this machine only)."""

DEFAULT_PORT = 4318
"""The OTLP/HTTP port."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``collect`` to the CLI."""
    from vlmscope.collectors import otlp, query, receiver

    parser = subparsers.add_parser(
        "collect", help="receive OTLP/HTTP traces into a store",
        description="Serve POST /v1/traces (OTLP protobuf or JSON, gzip or not), "
        "POST /v1/query (read-only SQL) and GET /health, writing into one DuckDB store. A 2xx "
        "answer means the spans are committed. SIGTERM or Ctrl-C stops after the requests in "
        "flight are committed.",
    )
    parser.add_argument("--db", default=default_db(),
                        help="the DuckDB store (default: $VLMSCOPE_DB or vlmscope.duckdb)")
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help=f"address to bind (default {DEFAULT_HOST}: this machine only)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"port to listen on (default {DEFAULT_PORT})")
    parser.add_argument("--token-file", type=Path,
                        help="file holding the bearer token every request must carry")
    parser.add_argument("--max-body-bytes", type=int, default=receiver.DEFAULT_MAX_BODY_BYTES,
                        help="largest request body, after decompression (default: "
                        f"{receiver.DEFAULT_MAX_BODY_BYTES})")
    parser.add_argument("--max-attributes", type=int, default=otlp.DEFAULT_MAX_ATTRIBUTES,
                        help="most attributes per span, event, link or resource")
    parser.add_argument("--max-value-chars", type=int, default=otlp.DEFAULT_MAX_VALUE_CHARS,
                        help="longest string attribute value, in characters")
    parser.add_argument("--decoders", type=int, default=receiver.DEFAULT_DECODERS,
                        help="processes decoding requests in parallel (default: "
                        f"{receiver.DEFAULT_DECODERS}; 0 decodes in the server process)")
    parser.add_argument("--query-timeout", type=float, default=query.DEFAULT_QUERY_TIMEOUT_S,
                        metavar="S", help="longest a /v1/query query may run, in seconds "
                        f"(default {query.DEFAULT_QUERY_TIMEOUT_S:g})")
    parser.add_argument("--query-memory-limit", metavar="SIZE",
                        help="memory one /v1/query query may use, e.g. 2GB (default: "
                        f"{query.DEFAULT_QUERY_MEMORY_FRACTION * 100:.0f}%% of this machine)")
    parser.add_argument("--query-max-bytes", type=int, default=query.DEFAULT_QUERY_MAX_BYTES,
                        metavar="N", help="largest /v1/query result, in bytes (default "
                        f"{query.DEFAULT_QUERY_MAX_BYTES})")
    parser.set_defaults(handler=run)


def read_token(path: Path) -> str:
    """The token in ``path`` (surrounding whitespace stripped); :class:`CommandError` when
    the file is missing or empty."""
    try:
        token = path.read_text().strip()
    except OSError as error:
        raise CommandError(f"cannot read the token file: {error}") from error
    if not token:
        raise CommandError(f"the token file {path} is empty")
    return token


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, has_token: bool) -> str | None:
    """The warning to print when ``host`` is reachable from other machines and no token
    guards it; None otherwise."""
    if has_token or _is_loopback(host):
        return None
    return (f"warning: listening on {host} without a token: anyone who reaches this address "
            "can write traces and read the store; pass --token-file")


def run(args: argparse.Namespace) -> int:
    """Handle ``vlmscope collect``."""
    from vlmscope._optional import MissingExtraError, require

    try:
        uvicorn = require("uvicorn", "vlmscope collect (its HTTP server)")
    except MissingExtraError as error:
        raise CommandError(str(error)) from error

    from vlmscope.collectors.ingest import SpanIngestor
    from vlmscope.collectors.otlp import OtlpLimits
    from vlmscope.collectors.receiver import OtlpReceiver, ReceiverConfig
    from vlmscope.collectors.store import StoreWriter

    token = read_token(args.token_file) if args.token_file else None
    warning = exposure_warning(args.host, token is not None)
    if warning:
        print(warning, file=sys.stderr)
    try:
        config = ReceiverConfig(
            max_body_bytes=args.max_body_bytes, token=token, decoders=args.decoders,
            limits=OtlpLimits(max_attributes=args.max_attributes,
                              max_value_chars=args.max_value_chars),
            query_timeout_s=args.query_timeout, query_max_bytes=args.query_max_bytes,
            query_memory_limit=args.query_memory_limit)
    except ValueError as error:
        raise CommandError(str(error)) from error
    # Queries run on the writer's instance, locked down: no file is read or written on a
    # client's word (the receiver hands the writer its query limits).
    writer = StoreWriter(args.db, config={"enable_external_access": False})
    app = OtlpReceiver(SpanIngestor(args.db, writer=writer), config)
    server = uvicorn.Server(uvicorn.Config(
        app, host=args.host, port=args.port, log_level="warning", lifespan="on",
        access_log=False, timeout_graceful_shutdown=30))
    print(f"vlmscope collect: {args.db} <- http://{args.host}:{args.port}/v1/traces",
          file=sys.stderr, flush=True)
    # What is imported by now lives as long as the process: out of the collector's way.
    gc.freeze()
    server.run()
    if not server.started:
        app.close()
        raise CommandError(f"could not listen on {args.host}:{args.port}")
    return 0
