"""Read-only SQL on a store: where a query runs so that DuckDB itself cannot write, and its
limits (time, memory, result size).

Every query path vlmscope calls read-only (``POST /v1/query``, ``vlmscope sql --db``,
``vlmscope sql --parquet``) goes through :func:`run_read_only`, on a connection that
:func:`lock_down` (or :func:`read_only_config`) made safe:

* the statement runs alone (only the first parsed statement object is executed, so no
  ``COMMIT; DROP ...`` can follow it) inside ``BEGIN TRANSACTION READ ONLY``: DuckDB refuses
  any write to any attached database, ``EXPLAIN ANALYZE`` of a write included;
* external access is off, with only the store or the Parquet root allowed: no ``COPY``,
  ``read_text``, ``ATTACH`` of a file, ``INSTALL`` or ``LOAD``;
* the configuration is locked: no ``SET`` or ``PRAGMA`` of a setting;
* each query has a time limit (``interrupt``), a memory limit for its intermediates
  (DuckDB's per-connection ``operator_memory_limit``) and a cap on its result, in rows and
  in bytes.

Before any of that, :func:`check_read_only` refuses what is not one ``SELECT`` (or an
``EXPLAIN`` of one) with a clear message. That check is for the message: the engine's
barriers above hold without it, with one exception DuckDB leaves open inside a read-only
transaction, catalog changes of the session (``ATTACH ':memory:'``, ``USE``, ``DETACH``),
which only the collector's shared instance needs the check for (a store detached that way
is attached again by the writer's next commit).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import decimal
import os
import re
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

READ_ONLY_STATEMENTS = frozenset({duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN})
"""Statement types a read-only query may be (DESCRIBE, SHOW, SUMMARIZE and FROM-first parse
as SELECT); an EXPLAIN must explain a SELECT."""

DEFAULT_QUERY_TIMEOUT_S = 30.0
"""Longest a read-only query may run, in seconds."""

DEFAULT_QUERY_MAX_ROWS = 100_000
"""Most rows a read-only query may return."""

DEFAULT_QUERY_MAX_BYTES = 64 * 1024 * 1024
"""Most bytes (of Arrow data) a read-only query's result may hold."""

DEFAULT_QUERY_MEMORY_FRACTION = 0.25
"""Share of the machine's memory one query's intermediates may use, by default."""

_EXPLAIN = re.compile(r"^\s*explain\s+(analy[sz]e\s+)?", re.IGNORECASE)


def default_query_memory_limit() -> str:
    """:data:`DEFAULT_QUERY_MEMORY_FRACTION` of this machine's memory, as DuckDB reads it."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 * 1024**3
    return f"{max(64, int(total * DEFAULT_QUERY_MEMORY_FRACTION) // 2**20)}MiB"


@dataclass(frozen=True)
class QueryLimits:
    """What one read-only query may use: seconds, result rows, result bytes, and memory for
    its intermediates (a DuckDB size such as ``"2GB"``; None for the machine's default)."""

    timeout_s: float = DEFAULT_QUERY_TIMEOUT_S
    max_rows: int = DEFAULT_QUERY_MAX_ROWS
    max_bytes: int = DEFAULT_QUERY_MAX_BYTES
    memory_limit: str | None = None

    def __post_init__(self) -> None:
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0 seconds, got {self.timeout_s!r}")
        if self.max_rows < 1 or self.max_bytes < 1:
            raise ValueError("max_rows and max_bytes must be at least 1")
        if self.memory_limit is not None:
            memory_bytes(self.memory_limit)

    @property
    def memory(self) -> str:
        """The memory limit as DuckDB reads it."""
        return self.memory_limit or default_query_memory_limit()


class ReadOnlyQueryError(ValueError):
    """The query is not exactly one read-only statement, or it failed.

    ``status`` is the HTTP status the collector answers with: 400 for a query that does not
    parse or fails, 403 for one that would write or read a file, 408 past the time limit,
    413 past the memory or result limits."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def check_read_only(query: str) -> duckdb.Statement:
    """The one read-only statement ``query`` holds; :class:`ReadOnlyQueryError` unless it
    is exactly one SELECT, or an EXPLAIN of one."""
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as error:
        raise ReadOnlyQueryError(f"the query does not parse: {error}") from error
    if len(statements) != 1:
        raise ReadOnlyQueryError(f"give exactly one statement (got {len(statements)})")
    statement = statements[0]
    kind = statement.type
    if kind == duckdb.StatementType.EXPLAIN:
        inner = _EXPLAIN.sub("", query, count=1)
        try:
            explained = duckdb.extract_statements(inner)
        except duckdb.Error:
            explained = []
        if len(explained) != 1 or explained[0].type != duckdb.StatementType.SELECT:
            raise ReadOnlyQueryError(
                "queries are read-only: EXPLAIN may only explain a SELECT", 403)
    elif kind not in READ_ONLY_STATEMENTS:
        raise ReadOnlyQueryError(
            f"queries are read-only: {kind.name} statements are not allowed; use SELECT, "
            "WITH, FROM, DESCRIBE, SHOW, SUMMARIZE or EXPLAIN", 403)
    return statement


def read_only_config(allow_file_access: bool = False) -> dict[str, Any]:
    """DuckDB connect config for a read-only reader in a process of its own: extensions
    neither installed nor loaded, and, unless ``allow_file_access``, no file but the store,
    with the configuration locked."""
    config: dict[str, Any] = {"autoinstall_known_extensions": False,
                              "autoload_known_extensions": False}
    if not allow_file_access:
        config.update(enable_external_access=False, lock_configuration=True)
    return config


def lock_down(con: duckdb.DuckDBPyConnection, *, allowed_directories: tuple[str, ...] = (),
              allowed_configs: tuple[str, ...] = ()) -> None:
    """Make the DuckDB instance of ``con`` safe for read-only queries from now on: no
    extension installed or loaded, no file but ``allowed_directories``, configuration
    locked except ``allowed_configs`` (settings of a connection's own, such as the
    optimizer switch the store writer's appends use). Irreversible for the instance."""
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute("SET allow_community_extensions = false")
    if allowed_directories:
        con.execute("SET allowed_directories = ?", [list(allowed_directories)])
    con.execute("SET enable_external_access = false")
    if allowed_configs:
        con.execute("SET allowed_configs = ?", [list(allowed_configs)])
    con.execute("SET lock_configuration = true")


_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)


def memory_bytes(text: str) -> int:
    """A memory size (``"512MB"``, ``"2GiB"``, ``"1.5GB"``) in bytes; ValueError if it is
    not one."""
    match = _SIZE.match(text)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS or float(match.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a memory size (use e.g. 512MB or 2GB)")
    return int(float(match.group(1)) * _UNITS[unit])


def query_cursor(con: duckdb.DuckDBPyConnection, limits: QueryLimits,
                 use: str | None = None, slots: int = 1) -> duckdb.DuckDBPyConnection:
    """A connection of ``con``'s instance for read-only queries, with the memory limit of
    ``limits`` set on it (and the instance's, for ``slots`` such connections and a writer);
    make it before :func:`lock_down`, which locks those settings."""
    cursor = con.cursor()
    try:
        if use:
            cursor.execute(f"USE {use}")
        per_query = memory_bytes(limits.memory)
        cursor.execute(f"SET operator_memory_limit = '{per_query}B'")
        # What the operator limit does not cover (list aggregates) is held by the instance's
        # own limit: each query slot's share and as much again for the writer.
        cursor.execute(f"SET memory_limit = '{per_query * (slots + 1)}B'")
    except BaseException:
        cursor.close()
        raise
    return cursor


def run_read_only(con: duckdb.DuckDBPyConnection, query: str,
                  limits: QueryLimits | None = None, *, checked: bool = True
                  ) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run one read-only ``query`` on ``con`` (a connection of its own, made safe by
    :func:`lock_down` or :func:`read_only_config`); return column names and rows.

    The statement runs alone in a read-only transaction, interrupted after
    ``limits.timeout_s``; a result over ``limits.max_rows`` rows or ``limits.max_bytes``
    bytes is an error (add a LIMIT). ``checked=False`` skips :func:`check_read_only` (the
    engine's barriers alone; used by the tests that prove they hold)."""
    limits = limits or QueryLimits()
    if checked:
        statement: Any = check_read_only(query)
    else:
        try:
            statements = duckdb.extract_statements(query)
        except duckdb.Error as error:
            raise ReadOnlyQueryError(f"the query does not parse: {error}") from error
        if not statements:
            raise ReadOnlyQueryError("the query is empty")
        statement = statements[0]
    timer = threading.Timer(limits.timeout_s, con.interrupt)
    relation = None
    try:
        con.execute("BEGIN TRANSACTION READ ONLY")
        timer.start()
        relation = con.sql(statement.query)
        if relation is None:  # a statement with no result
            return [], []
        columns = list(relation.columns)
        table = _fetch_capped(relation, limits)
    except duckdb.InterruptException as error:
        raise ReadOnlyQueryError(
            f"the query ran longer than {limits.timeout_s:g} s (the time limit)", 408) from error
    except duckdb.OutOfMemoryException as error:
        raise ReadOnlyQueryError(
            f"the query needs more memory than its limit ({limits.memory}): {error}",
            413) from error
    except duckdb.PermissionException as error:
        raise ReadOnlyQueryError(f"queries read no file but the store: {error}", 403) \
            from error
    except duckdb.TransactionException as error:
        status = 403 if "read-only" in str(error) else 400
        raise ReadOnlyQueryError(f"queries are read-only: {error}", status) from error
    except duckdb.Error as error:
        raise ReadOnlyQueryError(f"query failed: {error}") from error
    except pa.ArrowException as error:
        # Errors met while the result streams arrive through Arrow, with DuckDB's text.
        text = str(error)
        if text.startswith("INTERRUPT"):
            raise ReadOnlyQueryError(
                f"the query ran longer than {limits.timeout_s:g} s (the time limit)",
                408) from error
        if "Out of Memory" in text:
            raise ReadOnlyQueryError(
                f"the query needs more memory than its limit ({limits.memory}): {text}",
                413) from error
        raise ReadOnlyQueryError(f"query failed: {text}") from error
    finally:
        timer.cancel()
        del relation  # an unfinished result would block the ROLLBACK
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
    return columns, table


def _fetch_capped(relation: duckdb.DuckDBPyRelation, limits: QueryLimits
                  ) -> list[tuple[Any, ...]]:
    """The result's rows, read in Arrow batches so the caps hold before it is all in memory."""
    with relation.to_arrow_reader(2048) as reader:
        return _read_capped(reader, limits)


def _read_capped(reader: pa.RecordBatchReader, limits: QueryLimits) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    size = 0
    for batch in reader:
        size += batch.nbytes
        if size > limits.max_bytes:
            raise ReadOnlyQueryError(
                f"the result is larger than {limits.max_bytes} bytes; add a LIMIT or select "
                "fewer columns", 413)
        if len(rows) + batch.num_rows > limits.max_rows:
            raise ReadOnlyQueryError(
                f"the result has more than {limits.max_rows} rows; add a LIMIT", 413)
        if batch.num_rows:
            columns = [_column_values(batch.column(i)) for i in range(batch.num_columns)]
            rows.extend(zip(*columns, strict=True))
    return rows


def _column_values(column: pa.Array) -> list[Any]:
    try:
        return column.to_pylist()
    except (pa.ArrowException, ValueError, OverflowError):
        # Types Python cannot hold as they are (e.g. an interval out of timedelta's range).
        return column.cast(pa.string()).to_pylist()


def jsonable(value: Any) -> Any:
    """``value`` (a cell of a query result) as JSON can carry it: integers past 64 bits and
    decimals (HUGEINT arrives as one) as text, intervals as ISO 8601 durations, UUIDs as
    text, bytes as base64, structs, lists and maps (lists of key-value pairs) element by
    element."""
    if value is None or isinstance(value, bool | float | str):
        return value
    if isinstance(value, pa.MonthDayNano):  # an INTERVAL, as an ISO 8601 duration
        months, days, nanoseconds = value
        return f"P{months}M{days}DT{nanoseconds / 1e9:g}S"
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else str(value)
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, datetime.timedelta):
        return str(value)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        # A MAP comes from Arrow as a list of (key, value) tuples.
        return [jsonable(v) for v in value]
    return str(value)
