"""The store as Hive-partitioned Parquet, and such a folder opened as a store.

``export_parquet`` writes one folder per table (``spans/``, ``row_records/``, ...,
``pipeline_rows/``), each
partitioned as ``date=YYYY-MM-DD/service=NAME/`` by the start date and service of the span the
row belongs to (evaluations: the span they judged; ``eval_runs``: by creation date), so DuckDB,
Spark or Ray read it as is and prune by date and service. ``open_parquet_folder`` gives a
DuckDB connection on which the folder looks like a store: the same tables (views on the files)
and the ``pipeline_rows`` view, for ``vlmscope sql`` and ``vlmscope eval``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb

from vlmscope.collectors import facts
from vlmscope.collectors.schema import migrate

SPAN_TABLES = ("spans", "row_records", "encoder_records", "llm_records", "embeddings")
"""Tables whose rows belong to one span, partitioned by that span's date and service."""

WRITTEN_TABLES = ("evaluations", "eval_runs")
"""Tables a folder opened as a store keeps as real (in-memory) tables: evaluators add rows."""

DATASET_TABLES = ("datasets", "dataset_rows", "dataset_runs")
"""Tables of named datasets and runs (``vlmscope.Dataset``), exported whole, unpartitioned."""

_PARTITION = ("strftime(s.start_time, '%Y-%m-%d') AS date, "
              "coalesce(s.service_name, 'unknown') AS service")


def _quote(path: str | os.PathLike[str]) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _copy(con: duckdb.DuckDBPyConnection, select: str, folder: Path,
          partition: str) -> int:
    ((rows,),) = con.execute(f"SELECT count(*) FROM ({select})").fetchall()
    if rows:
        con.execute(f"COPY ({select}) TO {_quote(folder)} "
                    f"(FORMAT parquet, PARTITION_BY ({partition}))").fetchall()
    return int(rows)


def span_table_query(table: str, spans: str = "spans") -> str:
    """The rows of the span table ``table`` that belong to the spans of the relation
    ``spans``, with the partition columns ``date`` and ``service`` of the export layout."""
    if table == "spans":
        return f"SELECT s.*, {_PARTITION} FROM {spans} s"
    return (f"SELECT t.*, {_PARTITION} FROM {table} t JOIN {spans} s "
            "ON s.trace_id = t.trace_id AND s.span_id = t.span_id")


def export_parquet(con: duckdb.DuckDBPyConnection, folder: str | os.PathLike[str], *,
                   where: str | None = None) -> dict[str, int]:
    """Write the store's tables under ``folder`` (which must not exist or be empty); rows of
    spans matching ``where`` only, when given. Returns the rows written per table."""
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} is not empty; choose a new folder")
    folder.mkdir(parents=True, exist_ok=True)
    selected = f"(SELECT * FROM spans WHERE {where})" if where else "spans"
    written = {}
    for table in SPAN_TABLES:
        written[table] = _copy(con, span_table_query(table, selected), folder / table,
                               "date, service")
    join = "JOIN" if where else "LEFT JOIN"
    written["evaluations"] = _copy(
        con, f"SELECT e.*, {_PARTITION} FROM evaluations e {join} {selected} s "
        "ON s.trace_id = e.trace_id AND s.span_id = e.span_id", folder / "evaluations",
        "date, service")
    # pipeline_rows as it stands, for engines that read the Parquet alone (Spark, Ray);
    # a folder opened as a store assembles its own from the records.
    written["pipeline_rows"] = _copy(
        con, f"SELECT p.*, {_PARTITION} FROM pipeline_rows p JOIN {selected} s "
        "ON s.trace_id = p.trace_id AND s.span_id = p.span_id", folder / "pipeline_rows",
        "date, service")
    runs = "eval_runs" if not where else (
        "(SELECT * FROM eval_runs WHERE run_id IN (SELECT e.run_id FROM evaluations e "
        f"JOIN {selected} s ON s.trace_id = e.trace_id AND s.span_id = e.span_id))")
    written["eval_runs"] = _copy(
        con, f"SELECT r.*, strftime(r.created_at, '%Y-%m-%d') AS date FROM {runs} r",
        folder / "eval_runs", "date")
    for table in DATASET_TABLES:  # what names the runs `vlmscope diff` compares
        ((rows,),) = con.execute(f"SELECT count(*) FROM {table}").fetchall()
        if rows:
            (folder / table).mkdir()
            con.execute(f"COPY {table} TO {_quote(folder / table / 'data_0.parquet')} "
                        "(FORMAT parquet)").fetchall()
        written[table] = int(rows)
    return written


def open_parquet_folder(folder: str | os.PathLike[str]) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection on which the Parquet folder written by
    :func:`export_parquet` reads like a store. Raises :class:`FileNotFoundError` when
    ``folder`` holds no ``spans`` Parquet files."""
    folder = Path(folder)
    if not any((folder / "spans").glob("**/*.parquet")):
        raise FileNotFoundError(f"no vlmscope Parquet export in {folder} "
                                "(expected spans/date=.../service=.../*.parquet)")
    return open_parquet_files({
        table: [str(folder / table / "**" / "*.parquet")]
        for table in (*SPAN_TABLES, *WRITTEN_TABLES, *DATASET_TABLES)
        if any((folder / table).glob("**/*.parquet"))},
        written_tables=(*WRITTEN_TABLES, *DATASET_TABLES))


def open_parquet_files(files: Mapping[str, Sequence[str]], *,
                       written_tables: Sequence[str] = WRITTEN_TABLES,
                       filesystem: Any = None,
                       config: Mapping[str, Any] | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection on which Parquet files in the export layout read like a
    store: ``files`` maps a store table to its files (paths or globs, Hive-partitioned or
    not). Span tables become views on the files; ``written_tables`` are loaded as tables
    (evaluators add rows to them); tables without files stay empty. ``filesystem``: an
    fsspec filesystem the paths are on (registered with DuckDB); ``config``: DuckDB's."""
    con = duckdb.connect(config=dict(config or {}))
    if filesystem is not None:
        con.register_filesystem(filesystem)
    migrate(con)
    for table, paths in files.items():
        if not paths:
            continue
        listed = "[" + ", ".join(_quote(p) for p in paths) + "]"
        source = f"read_parquet({listed}, hive_partitioning = true, union_by_name = true)"
        # A folder written by an older vlmscope may lack columns added since (NULL here).
        written = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
        names = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
        columns = ", ".join(f'"{c}"' if c in written else f'NULL AS "{c}"' for c in names)
        scan = f"SELECT {columns} FROM {source}"
        if table in written_tables:
            con.execute(f"INSERT INTO {table} {scan}").fetchall()
        else:
            con.execute(f"DROP TABLE {table}")
            con.execute(f"CREATE VIEW {table} AS {scan}")
    facts.refresh(con)  # pipeline_rows reads the materialised join
    return con
