"""``vlmscope sql``: run one read-only query against a store and print the result."""

from __future__ import annotations

import argparse
import os

import duckdb

from vlmscope.cli import CommandError
from vlmscope.cli.output import FORMATS, render
from vlmscope.settings import DEFAULT_DB

_ALLOWED = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``sql`` to the CLI."""
    parser = subparsers.add_parser(
        "sql",
        help="run a read-only SQL query on a store",
        description="Run one read-only query (SELECT, WITH, FROM, DESCRIBE, SHOW, SUMMARIZE, "
        "EXPLAIN) on a vlmscope store. Tables: spans, embeddings, encoder_records, "
        "llm_records, row_records; view: pipeline_rows. Works while another process is "
        "writing the file: the writer hands it over.",
    )
    parser.add_argument("query", help="the SQL query, e.g. \"SELECT * FROM pipeline_rows\"")
    parser.add_argument("--db", default=os.environ.get("VLMSCOPE_DB", DEFAULT_DB),
                        help="the DuckDB store (default: $VLMSCOPE_DB or vlmscope.duckdb)")
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds to wait for a writing process to hand the file over")
    parser.set_defaults(handler=run)


def check_read_only(query: str) -> None:
    """Raise :class:`CommandError` unless ``query`` is exactly one read-only statement."""
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as error:
        raise CommandError(f"the query does not parse: {error}") from error
    if len(statements) != 1:
        raise CommandError(f"give exactly one statement (got {len(statements)})")
    kind = statements[0].type
    if kind not in _ALLOWED:
        raise CommandError(
            f"vlmscope sql is read-only: {kind.name} statements are not allowed; use SELECT, "
            "WITH, FROM, DESCRIBE, SHOW, SUMMARIZE or EXPLAIN"
        )


def query_store(db: str, query: str, timeout_s: float) -> tuple[list[str], list[tuple]]:
    """Run one read-only ``query`` on the store ``db``; return column names and rows."""
    from vlmscope.collectors.store import StoreLockedError, read_connection

    check_read_only(query)
    try:
        with read_connection(db, timeout_s=timeout_s) as con:
            result = con.execute(query)
            columns = [d[0] for d in result.description or ()]
            rows = result.fetchall()
    except (FileNotFoundError, StoreLockedError) as error:
        raise CommandError(str(error)) from error
    except duckdb.Error as error:
        raise CommandError(f"query failed: {error}") from error
    return columns, rows


def run(args: argparse.Namespace) -> int:
    """Handle ``vlmscope sql``."""
    columns, rows = query_store(args.db, args.query, args.timeout)
    print(render(columns, rows, args.format))
    return 0
