"""``vlmscope sql``: run one read-only query against a store and print the result.

The store is a DuckDB file (``--db``), a running collector (``--url``: the query runs in the
collector, which holds the file) or a Parquet folder written by ``vlmscope export --format
parquet`` (``--parquet``).
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

import duckdb

from vlmscope.cli import CommandError
from vlmscope.cli.output import FORMATS, render
from vlmscope.collectors.query import (
    DEFAULT_QUERY_TIMEOUT_S,
    QueryLimits,
    ReadOnlyQueryError,
    lock_down,
    run_read_only,
)
from vlmscope.collectors.query import check_read_only as check
from vlmscope.settings import default_db


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``sql`` to the CLI."""
    parser = subparsers.add_parser(
        "sql",
        help="run a read-only SQL query on a store",
        description="Run one read-only query (SELECT, WITH, FROM, DESCRIBE, SHOW, SUMMARIZE, "
        "EXPLAIN) on a vlmscope store. Tables: spans, embeddings, encoder_records, "
        "llm_records, row_records; view: pipeline_rows. Works while another process is "
        "writing the file: the writer hands it over. With --url the query runs in a "
        "`vlmscope collect` service; with --parquet on an exported Parquet folder. The "
        "query runs where DuckDB itself refuses writes, and reads no file but the store "
        "(or the Parquet folder) unless --allow-file-access is given.",
    )
    parser.add_argument("query", help="the SQL query, e.g. \"SELECT * FROM pipeline_rows\"")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--db", default=default_db(),
                        help="the DuckDB store (default: $VLMSCOPE_DB or vlmscope.duckdb)")
    source.add_argument("--url", help="a vlmscope collector, e.g. http://127.0.0.1:4318")
    source.add_argument("--parquet", type=Path, metavar="DIR",
                        help="a folder written by `vlmscope export --format parquet`")
    parser.add_argument("--token-file", type=Path,
                        help="with --url: the file holding the collector's token")
    parser.add_argument("--format", choices=(*FORMATS, "parquet"), default="table",
                        help="output format (parquet: written to --output)")
    parser.add_argument("-o", "--output", type=Path,
                        help="with --format parquet: the Parquet file to write")
    parser.add_argument("--allow-file-access", action="store_true",
                        help="let the query read other files (read_csv, read_parquet, ...); "
                        "it still cannot write the store")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds to wait for a writing process to hand the file over "
                        "(or for the collector to answer)")
    parser.set_defaults(handler=run)


def _limits(timeout_s: float) -> QueryLimits:
    return QueryLimits(timeout_s=max(timeout_s, DEFAULT_QUERY_TIMEOUT_S),
                       max_rows=2**62, max_bytes=2**62)


def _run(con: duckdb.DuckDBPyConnection, query: str,
         timeout_s: float) -> tuple[list[str], list[tuple]]:
    try:
        return run_read_only(con, query, _limits(timeout_s))
    except ReadOnlyQueryError as error:
        raise CommandError(f"vlmscope sql: {error}") from error


def query_store(db: str, query: str, timeout_s: float,
                allow_file_access: bool = False) -> tuple[list[str], list[tuple]]:
    """Run one read-only ``query`` on the store ``db``; return column names and rows. The
    connection is read-only and, unless ``allow_file_access``, reads no other file."""
    from vlmscope.collectors.query import read_only_config
    from vlmscope.collectors.store import StoreError, read_connection

    check_read_only(query)
    try:
        with read_connection(db, timeout_s=timeout_s,
                             config=read_only_config(allow_file_access)) as con:
            return _run(con, query, timeout_s)
    except StoreError as error:
        raise CommandError(str(error)) from error
    except duckdb.Error as error:
        raise CommandError(f"query failed: {error}") from error


def query_parquet(folder: Path, query: str, timeout_s: float = DEFAULT_QUERY_TIMEOUT_S,
                  allow_file_access: bool = False) -> tuple[list[str], list[tuple]]:
    """Run one read-only ``query`` on a Parquet export folder; unless
    ``allow_file_access``, no file outside it can be read."""
    from vlmscope.collectors.parquet import open_parquet_folder

    check_read_only(query)
    try:
        with contextlib.closing(open_parquet_folder(folder)) as con:
            if not allow_file_access:
                lock_down(con, allowed_directories=(str(Path(folder).resolve()) + "/",))
            return _run(con, query, timeout_s)
    except FileNotFoundError as error:
        raise CommandError(str(error)) from error
    except duckdb.Error as error:
        raise CommandError(f"query failed: {error}") from error


def check_read_only(query: str) -> None:
    """Raise :class:`CommandError` unless ``query`` is exactly one read-only statement."""
    try:
        check(query)
    except ReadOnlyQueryError as error:
        raise CommandError(f"vlmscope sql: {error}") from error


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


def _write_parquet(args: argparse.Namespace) -> int:
    """``--format parquet``: the result, with its column types, as a Parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if args.output is None:
        raise CommandError("vlmscope sql --format parquet needs --output FILE")
    check_read_only(args.query)
    if args.url:
        from vlmscope.cli.collect import read_token

        token = read_token(args.token_file) if args.token_file else None
        columns, rows = query_collector(args.url, args.query, args.timeout, token)
        table = pa.Table.from_pylist([dict(zip(columns, row, strict=True)) for row in rows])
    else:
        from vlmscope.collectors.frames import read_frame
        from vlmscope.collectors.parquet import open_parquet_folder
        from vlmscope.collectors.store import StoreError

        try:
            if args.parquet:
                with contextlib.closing(open_parquet_folder(args.parquet)) as con:
                    if not args.allow_file_access:
                        lock_down(con, allowed_directories=(
                            str(Path(args.parquet).resolve()) + "/",))
                    table = con.sql(args.query).to_arrow_table()
            else:
                table = read_frame(args.db, args.query, timeout_s=args.timeout,
                                   allow_file_access=args.allow_file_access)
        except (FileNotFoundError, StoreError) as error:
            raise CommandError(str(error)) from error
        except duckdb.Error as error:
            raise CommandError(f"query failed: {error}") from error
    pq.write_table(table, args.output)
    print(f"wrote {table.num_rows} rows to {args.output}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Handle ``vlmscope sql``."""
    if args.format == "parquet":
        return _write_parquet(args)
    if args.url:
        from vlmscope.cli.collect import read_token

        token = read_token(args.token_file) if args.token_file else None
        columns, rows = query_collector(args.url, args.query, args.timeout, token)
    elif args.parquet:
        columns, rows = query_parquet(args.parquet, args.query, args.timeout,
                                      args.allow_file_access)
    else:
        columns, rows = query_store(args.db, args.query, args.timeout, args.allow_file_access)
    print(render(columns, rows, args.format))
    return 0
