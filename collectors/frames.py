"""Any table or query of a store as an Arrow table, a pandas or a polars DataFrame.

:func:`read_frame` is the way to take data out of a store into a data-frame library, also
while another thread or process writes the file: it reads through
:func:`~vlmscope.collectors.store.read_connection`, which asks the writer to hand the file over
for the length of the read (DuckDB allows one writer per file), and runs only read-only SQL.
The rows come as Arrow, without a trip through Python objects; pandas and polars take them
from there (``pip install 'vlmscope[pandas]'`` or ``[polars]``).

>>> rows = read_frame("vlmscope.duckdb", "pipeline_rows", kind="polars")  # doctest: +SKIP
>>> failures = read_frame("vlmscope.duckdb",  # doctest: +SKIP
...                       "SELECT * FROM pipeline_rows WHERE status = 'ERROR'")
"""

from __future__ import annotations

import os
import re
from typing import Any

import pyarrow as pa

from vlmscope._optional import require
from vlmscope.collectors.store import DEFAULT_READ_TIMEOUT_S

KINDS = ("arrow", "pandas", "polars")
"""What :func:`read_frame` can return."""

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def read_frame(db: str | os.PathLike[str], query: str, *, kind: str = "arrow",
               timeout_s: float = DEFAULT_READ_TIMEOUT_S,
               allow_file_access: bool = False) -> Any:
    """A table (by name, e.g. ``pipeline_rows``) or one read-only query of the store ``db``
    as a ``pyarrow.Table`` (``kind="arrow"``), ``pandas.DataFrame`` or ``polars.DataFrame``.

    Waits up to ``timeout_s`` seconds for a writer to hand the file over. The connection is
    read-only and, unless ``allow_file_access``, reads no file but the store. Raises
    :class:`ValueError` for an unknown ``kind`` or a query that is not one read-only
    statement, :class:`~vlmscope.MissingExtraError` (an ImportError) naming the extra when pandas or
    polars is missing."""
    from vlmscope.collectors.query import check_read_only, read_only_config
    from vlmscope.collectors.store import read_connection

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    sql = f'SELECT * FROM "{query}"' if _NAME.fullmatch(query.strip()) else query
    check_read_only(sql)
    library = require(kind, f"read_frame(kind={kind!r})") if kind != "arrow" else None
    with read_connection(db, timeout_s=timeout_s,
                         config=read_only_config(allow_file_access)) as con:
        table: pa.Table = con.sql(sql).to_arrow_table()
    if library is None:
        return table
    return table.to_pandas() if kind == "pandas" else library.from_arrow(table)
