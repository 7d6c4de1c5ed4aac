"""``vlmscope export``, ``vlmscope import`` and ``vlmscope replay``: traces in and out as OTLP
JSON Lines, Hive-partitioned Parquet, or requests to any OTLP/HTTP backend."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vlmscope.cli import CommandError
from vlmscope.progress import ProgressBar
from vlmscope.settings import default_db

_DB_HELP = "the DuckDB store (default: $VLMSCOPE_DB or vlmscope.duckdb)"
_WHERE_HELP = ("only spans matching this SQL predicate on the spans table, e.g. "
               "\"service_name = 'agent'\" (their evaluations follow them)")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``export``, ``import`` and ``replay`` to the CLI."""
    db = default_db()
    export = subparsers.add_parser(
        "export", help="write stored traces as OTLP JSON Lines or Parquet",
        description="otlp-jsonl: one OTLP JSON request per line (the OTLP file format), "
        "evaluations as EVALUATOR spans linked to the span they judge; `vlmscope import` "
        "reads it back losslessly. parquet: one folder per table, Hive-partitioned by date "
        "and service, for DuckDB, Spark or Ray (and `vlmscope sql/eval --parquet`).")
    export.add_argument("--db", default=db, help=_DB_HELP)
    export.add_argument("--format", choices=("otlp-jsonl", "parquet"), default="otlp-jsonl",
                        help="output format (default otlp-jsonl)")
    export.add_argument("-o", "--output", required=True, type=Path,
                        help="the .jsonl file (.jsonl.gz compresses) or the Parquet folder")
    export.add_argument("--where", help=_WHERE_HELP)
    export.add_argument("--timeout", type=float, default=30.0,
                        help="seconds to wait for a writing process to hand the file over")
    export.set_defaults(handler=run_export)

    load = subparsers.add_parser(
        "import", help="store the traces of an OTLP JSON Lines file",
        description="Store every span of an OTLP JSON Lines file (as `vlmscope export` or the "
        "OpenTelemetry file exporter write it); spans already in the store are skipped, so "
        "importing a file twice stores it once.")
    load.add_argument("input", type=Path, help="the .jsonl or .jsonl.gz file")
    load.add_argument("--db", default=db, help=_DB_HELP)
    load.set_defaults(handler=run_import)

    replay = subparsers.add_parser(
        "replay", help="send stored traces to an OTLP/HTTP endpoint",
        description="Send the stored spans (and evaluations as EVALUATOR spans) to any "
        "OTLP/HTTP backend (Phoenix, Jaeger, an OpenTelemetry Collector, vlmscope collect) "
        "as gzip-compressed protobuf, retrying when the backend asks to.")
    replay.add_argument("--db", default=db, help=_DB_HELP)
    replay.add_argument("--endpoint", required=True,
                        help="the traces URL, e.g. http://127.0.0.1:4318/v1/traces")
    replay.add_argument("--where", help=_WHERE_HELP)
    replay.add_argument("--header", action="append", default=[], metavar="NAME=VALUE",
                        help="an HTTP header to send (repeatable)")
    replay.add_argument("--token-file", type=Path,
                        help="send the token in this file as 'Authorization: Bearer ...'")
    replay.add_argument("--timeout", type=float, default=30.0,
                        help="seconds to wait for the store and for each request")
    replay.set_defaults(handler=run_replay)


def run_export(args: argparse.Namespace) -> int:
    """Handle ``vlmscope export``."""
    import duckdb

    from vlmscope.collectors.interchange import count_spans, export_otlp_jsonl
    from vlmscope.collectors.parquet import export_parquet
    from vlmscope.collectors.store import StoreError, read_connection

    bar = ProgressBar(f"export {args.format}", sys.stderr)
    try:
        with read_connection(args.db, timeout_s=args.timeout) as con:
            if args.format == "parquet":
                total = count_spans(con, args.where)
                tables = export_parquet(con, args.output, where=args.where)
                bar.update(total, total)
                summary = ", ".join(f"{name} {rows}" for name, rows in tables.items())
            else:
                counts = export_otlp_jsonl(con, args.output, where=args.where,
                                           progress=bar.update)
                summary = f"{counts.spans} spans, {counts.evaluations} evaluations"
    except (FileNotFoundError, FileExistsError, StoreError) as error:
        raise CommandError(str(error)) from error
    except duckdb.Error as error:
        raise CommandError(f"export failed: {error}") from error
    finally:
        bar.close()
    print(f"wrote {args.output}: {summary}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    """Handle ``vlmscope import``."""
    from vlmscope.collectors.ingest import SpanIngestor
    from vlmscope.collectors.interchange import import_otlp_jsonl

    if not args.input.is_file():
        raise CommandError(f"no such file: {args.input}")
    ingestor = SpanIngestor(args.db)
    bar = ProgressBar("import", sys.stderr)
    try:
        counts = import_otlp_jsonl(args.input, ingestor, progress=bar.update)
    except ValueError as error:
        raise CommandError(f"{args.input}: {error}") from error
    finally:
        bar.close()
        ingestor.close()
    print(f"read {counts.spans} spans and {counts.evaluations} evaluations into {args.db} "
          f"({ingestor.committed_spans} spans were new)")
    return 0


def parse_headers(items: list[str]) -> dict[str, str]:
    """``["Name=value", ...]`` as a dict; :class:`CommandError` on an item without ``=``."""
    headers = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise CommandError(f"--header {item!r}: use NAME=VALUE")
        headers[name.strip()] = value.strip()
    return headers


def run_replay(args: argparse.Namespace) -> int:
    """Handle ``vlmscope replay``."""
    import duckdb

    from vlmscope.cli.collect import read_token
    from vlmscope.collectors.interchange import replay
    from vlmscope.collectors.store import StoreError, read_connection

    headers = parse_headers(args.header)
    if args.token_file:
        headers["Authorization"] = f"Bearer {read_token(args.token_file)}"
    bar = ProgressBar("replay", sys.stderr)
    try:
        with read_connection(args.db, timeout_s=args.timeout) as con:
            counts = replay(con, args.endpoint, where=args.where, headers=headers,
                            timeout_s=args.timeout, progress=bar.update)
    except (FileNotFoundError, StoreError, RuntimeError) as error:
        raise CommandError(str(error)) from error
    except duckdb.Error as error:
        raise CommandError(f"replay failed: {error}") from error
    finally:
        bar.close()
    print(f"sent {counts.spans} spans and {counts.evaluations} evaluations to "
          f"{args.endpoint}", file=sys.stdout)
    return 0
