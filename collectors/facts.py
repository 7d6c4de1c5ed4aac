"""``pipeline_rows`` kept materialised at ingest, so that reading it joins nothing.

A pipeline row is assembled from three records: its row span (``row_records``), the
encoder call and the language-head call that answered for it (``encoder_records``,
``llm_records``), picked by the rule of :data:`vlmscope.collectors.spec.PARTS`. Every row
span makes one pipeline row (a row id that repeats within a trace makes two, as a plain
join would). Joining them for every query would cost a scan of all three tables, so the
store keeps the join as it goes, in two tables with the same columns (one *part* of columns
per record kind):

* ``pipeline_row_facts`` - rows whose row span has arrived, with whatever encoder and LLM
  parts had arrived by then (or arrived in the same batch);
* ``pipeline_row_parts`` - at most one row per key (trace id, row id) of encoder and LLM
  parts still waiting for a row span, or of parts that arrived after their row was written
  to the facts (a language head running in another service, say).

One assembler, :func:`assemble_sql` (run by DuckDB), makes parts from records: a batch's
(:func:`assemble_batch`, in the writer's transaction, where its native twin
``_assembly_native`` picks the same records when it is built and passes its self-test) and
the rows that repairs, compaction and :func:`refresh` rebuild. Each batch the store
writes is merged by :func:`plan_merge` in the same transaction as its records: its parts
are overlaid with what waits for those keys and split into completed rows (appended to the
facts) and waiting parts. The ``pipeline_rows`` view reads the facts, overlaying the
waiting part of a key where there is one.

With one row span per key (what ``trace_row`` and ``trace_batch`` write) the view equals the
plain join at every moment. A row id traced twice within one trace is the exception: until
compaction, each of its row spans shows the parts that had arrived with it, not the latest of
the key's. :func:`compact` re-assembles such keys from the records and folds late parts into
the facts; the store writer runs it when it lets the file go, so a store at rest equals the
plain join, and a merge runs it each time :data:`COMPACT_AT` more parts wait.

The overlay of two parts of a key follows the same ordering (:func:`_newer` in SQL for the
view, :func:`part_order` in Python for a merge), tested with the rest against the plain join on
random arrival orders and batchings.
"""

from __future__ import annotations

import duckdb

from vlmscope.collectors import spec
from vlmscope.collectors._assembly import (  # noqa: F401  (re-exported)
    COLUMNS,
    FACTS,
    PARTS,
    RECORD_TABLES,
    SCHEMA,
    assemble_batch,
    assemble_sql,
    duration_ns,
    overlay_sql,
)
from vlmscope.collectors._merge import (  # noqa: F401  (re-exported)
    CACHE_LIMIT,
    COMPACT_AT,
    MergePlan,
    MergeState,
    compact,
    plan_merge,
    rows_at,
    to_arrow,
)

_OUTPUTS = spec.pipeline_rows_select()

KEY_COLUMN = "_vlmscope_k"
"""The extra column of :func:`stored_rows_sql`: 1, 2, ... one number per row."""


def stored_rows_sql(con: duckdb.DuckDBPyConnection) -> str | None:
    """A query equal to ``pipeline_rows`` plus :data:`KEY_COLUMN` (numbering the rows
    without a window: ``row_number()`` runs on one thread), reading the facts alone; None
    when parts are waiting (then only the view, which overlays them, is right)."""
    ((waiting,),) = con.execute(f"SELECT count(*) FROM {PARTS}").fetchall()
    if waiting:
        return None
    return f"SELECT {_OUTPUTS}, rowid + 1 AS {KEY_COLUMN} FROM {FACTS}"


def view_sql() -> str:
    """The ``pipeline_rows`` view over the two tables."""
    outputs = _OUTPUTS
    return f"""
    CREATE OR REPLACE VIEW pipeline_rows AS
    SELECT {outputs} FROM {FACTS} f
    WHERE NOT EXISTS (SELECT 1 FROM {PARTS} p
                      WHERE p.trace_id = f.trace_id AND p.row_id = f.row_id)
    UNION ALL
    SELECT {outputs} FROM (SELECT {overlay_sql("f", "p", "f")} FROM {FACTS} f
                           JOIN {PARTS} p USING (trace_id, row_id))
    """


def _refill_statements() -> tuple[str, ...]:
    assembled = assemble_sql("row_records", "encoder_records", "llm_records")
    return (
        f"CREATE OR REPLACE TEMP TABLE _vlmscope_assembled AS {assembled}",
        f"INSERT INTO {FACTS} SELECT * FROM _vlmscope_assembled WHERE row_span_id IS NOT NULL",
        f"INSERT INTO {PARTS} SELECT * FROM _vlmscope_assembled WHERE row_span_id IS NULL",
        "DROP TABLE _vlmscope_assembled",
    )


def refresh(con: duckdb.DuckDBPyConnection) -> None:
    """Recompute both tables from the record tables (inside the caller's transaction)."""
    con.execute(f"DELETE FROM {FACTS}")
    con.execute(f"DELETE FROM {PARTS}")
    for statement in _refill_statements():
        con.execute(statement)


