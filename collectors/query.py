"""Read-only SQL on a store: which statements pass, and running one with a time limit."""

from __future__ import annotations

import threading
from typing import Any

import duckdb

READ_ONLY_STATEMENTS = frozenset({duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN})
"""Statement types a read-only query may be (DESCRIBE, SHOW, SUMMARIZE and FROM-first parse
as SELECT)."""


class ReadOnlyQueryError(ValueError):
    """The query is not exactly one read-only statement, or it failed."""


def check_read_only(query: str) -> None:
    """Raise :class:`ReadOnlyQueryError` unless ``query`` is exactly one read-only
    statement."""
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as error:
        raise ReadOnlyQueryError(f"the query does not parse: {error}") from error
    if len(statements) != 1:
        raise ReadOnlyQueryError(f"give exactly one statement (got {len(statements)})")
    kind = statements[0].type
    if kind not in READ_ONLY_STATEMENTS:
        raise ReadOnlyQueryError(
            f"queries are read-only: {kind.name} statements are not allowed; use SELECT, "
            "WITH, FROM, DESCRIBE, SHOW, SUMMARIZE or EXPLAIN"
        )


def run_read_only(con: duckdb.DuckDBPyConnection, query: str, *, timeout_s: float,
                  max_rows: int) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run one read-only ``query`` on ``con``, interrupted after ``timeout_s`` seconds;
    return column names and at most ``max_rows`` rows (more is an error: add a LIMIT).

    ``con`` should be a cursor of its own, closed afterwards: a result longer than
    ``max_rows`` is left unread, and closing the cursor discards it.
    """
    check_read_only(query)
    timer = threading.Timer(timeout_s, con.interrupt)
    timer.start()
    try:
        result = con.execute(query)
        columns = [d[0] for d in result.description or ()]
        rows = result.fetchmany(max_rows + 1)
    except duckdb.InterruptException as error:
        raise ReadOnlyQueryError(f"the query ran longer than {timeout_s:g} s") from error
    except duckdb.Error as error:
        raise ReadOnlyQueryError(f"query failed: {error}") from error
    finally:
        timer.cancel()
    if len(rows) > max_rows:
        raise ReadOnlyQueryError(f"the result has more than {max_rows} rows; add a LIMIT")
    return columns, rows
