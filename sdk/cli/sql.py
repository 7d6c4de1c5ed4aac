"""``vlmscope sql``: run one read-only query against a store and print the result.

The store is a DuckDB file (``--db``), a running collector (``--url``: the query runs in the
collector, which holds the file) or a Parquet folder written by ``vlmscope export --format
parquet`` (``--parquet``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path

import duckdb

from vlmscope.cli import CommandError
from vlmscope.cli.output import FORMATS, render
from vlmscope.settings import DEFAULT_DB


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``sql`` to the CLI."""
    parser = subparsers.add_parser(
        "sql",
        help="run a read-only SQL query on a store",
        description="Run one read-only query (SELECT, WITH, FROM, DESCRIBE, SHOW, SUMMARIZE, "
        "EXPLAIN) on a vlmscope store. Tables: spans, embeddings, encoder_records, "
        "llm_records, row_records; view: pipeline_rows. Works while another process is "
        "writing the file: the writer hands it over. With --url the query runs in a "
        "`vlmscope collect` service; with --parquet on an exported Parquet folder.",
    )
    parser.add_argument("query", help="the SQL query, e.g. \"SELECT * FROM pipeline_rows\"")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--db", default=os.environ.get("VLMSCOPE_DB", DEFAULT_DB),
                        help="the DuckDB store (default: $VLMSCOPE_DB or vlmscope.duckdb)")
    source.add_argument("--url", help="a vlmscope collector, e.g. http://127.0.0.1:4318")
    source.add_argument("--parquet", type=Path, metavar="DIR",
                        help="a folder written by `vlmscope export --format parquet`")
    parser.add_argument("--token-file", type=Path,
                        help="with --url: the file holding the collector's token")
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds to wait for a writing process to hand the file over "
                        "(or for the collector to answer)")
    parser.set_defaults(handler=run)


def check_read_only(query: str) -> None:
    """Raise :class:`CommandError` unless ``query`` is exactly one read-only statement."""
    from vlmscope.collectors.query import ReadOnlyQueryError
    from vlmscope.collectors.query import check_read_only as check

    try:
        check(query)
    except ReadOnlyQueryError as error:
        raise CommandError(f"vlmscope sql: {error}") from error


def _run(con: duckdb.DuckDBPyConnection, query: str) -> tuple[list[str], list[tuple]]:
    result = con.execute(query)
    columns = [d[0] for d in result.description or ()]
    return columns, result.fetchall()


def query_store(db: str, query: str, timeout_s: float) -> tuple[list[str], list[tuple]]:
    """Run one read-only ``query`` on the store ``db``; return column names and rows."""
    from vlmscope.collectors.store import StoreLockedError, read_connection

    check_read_only(query)
    try:
        with read_connection(db, timeout_s=timeout_s) as con:
            return _run(con, query)
    except (FileNotFoundError, StoreLockedError) as error:
        raise CommandError(str(error)) from error
    except duckdb.Error as error:
        raise CommandError(f"query failed: {error}") from error


def query_parquet(folder: Path, query: str) -> tuple[list[str], list[tuple]]:
    """Run one read-only ``query`` on a Parquet export folder."""
    from vlmscope.collectors.parquet import open_parquet_folder

    check_read_only(query)
    try:
        with contextlib.closing(open_parquet_folder(folder)) as con:
            return _run(con, query)
    except FileNotFoundError as error:
        raise CommandError(str(error)) from error
    except duckdb.Error as error:
        raise CommandError(f"query failed: {error}") from error


def query_collector(url: str, query: str, timeout_s: float,
                    token: str | None = None) -> tuple[list[str], list[list]]:
    """Run one read-only ``query`` in the collector at ``url``; the collector rejects DDL
    and DML too, and reads no file a query names."""
    import requests

    check_read_only(query)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = requests.post(url.rstrip("/") + "/v1/query", json={"sql": query},
                                 headers=headers, timeout=timeout_s)
    except requests.RequestException as error:
        raise CommandError(f"cannot reach the collector at {url}: {error}") from error
    if response.status_code != 200:
        try:
            message = response.json()["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:300]
        raise CommandError(f"the collector answered {response.status_code}: {message}")
    answer = response.json()
    return answer["columns"], answer["rows"]


def run(args: argparse.Namespace) -> int:
    """Handle ``vlmscope sql``."""
    if args.url:
        from vlmscope.cli.collect import read_token

        token = read_token(args.token_file) if args.token_file else None
        columns, rows = query_collector(args.url, args.query, args.timeout, token)
    elif args.parquet:
        columns, rows = query_parquet(args.parquet, args.query)
    else:
        columns, rows = query_store(args.db, args.query, args.timeout)
    print(render(columns, rows, args.format))
    return 0
