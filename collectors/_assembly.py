"""The one pipeline-row assembler and the rule it applies: a key's records to its parts, run
by DuckDB (private to :mod:`vlmscope.collectors.facts`, which re-exports its names)."""

from __future__ import annotations

import math

import duckdb
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)

from vlmscope.collectors import spec

FACTS = "pipeline_row_facts"
"""Completed pipeline rows (those whose row span arrived)."""


PARTS = "pipeline_row_parts"
"""Parts waiting for their row span, or newer than the row already in the facts."""


# Each part: the record table it comes from, and its (fact column, record column, type)
# triples (from the spec). The first three columns of every part are its span id, record
# index and start time: the ordering "latest wins" reads.
ASSEMBLED_PARTS: dict[str, tuple[str, tuple[tuple[str, str, str], ...]]] = {
    part.name: (part.table.name, part.typed()) for part in spec.PARTS}


_KEY = ("trace_id", "row_id")


COLUMNS: tuple[str, ...] = _KEY + tuple(
    column for _, fields in ASSEMBLED_PARTS.values() for column, _, _ in fields)
"""The columns of both tables, in order."""


STARTS = ("row_start", "encoder_start", "llm_start")


# A record without a start time sorts before every other (as ORDER BY ... DESC NULLS LAST).
_EARLIEST = "TIMESTAMP_NS '1678-01-01'"


_ARROW_TYPES = spec.ARROW_TYPES


SCHEMA = pa.schema(
    [("trace_id", pa.string()), ("row_id", pa.string())]
    + [(c, _ARROW_TYPES[t]) for _, fields in ASSEMBLED_PARTS.values() for c, _, t in fields])
"""Arrow schema of both tables, column for column."""


# Where the column that wins first sits in each part's tuple (the encoder's top-k labels:
# a record with a reading beats one without), None for parts without one.
PREFER_AT: dict[str, int | None] = {
    part.name: None if part.prefer is None else [c for c, _ in part.columns].index(part.prefer)
    for part in spec.PARTS}


# Where the duration sits in the tuple of each part whose latest record is the one that
# ended last (start plus duration), None for parts ordered by start.
DURATION_AT: dict[str, int | None] = {
    part.name: [r for _, r in part.columns].index("duration_ms") if part.latest == "end"
    else None for part in spec.PARTS}


def duration_ns(duration_ms: float | None) -> int:
    """A record's duration (ms) as whole nanoseconds, floored, 0 when unknown: what its end
    time adds to its start, the same in Python and in SQL (:func:`_latest_sql`)."""
    if duration_ms is None or not math.isfinite(duration_ms):
        return 0
    return math.floor(duration_ms * 1_000_000)


def part_order(part: tuple, prefer: int | None = None, duration: int | None = None) -> tuple:
    """Sort key of a part (span id, record index, start ns, ...): the smallest wins (one
    whose ``prefer`` value is present, for the encoder a reading; then the latest start, or
    end where ``duration`` says where the part's duration is, a missing start being the
    earliest; then span id, record index)."""
    span, index, start = part[0], part[1], part[2]
    if start is not None and duration is not None:
        start += duration_ns(part[duration])
    return (prefer is not None and part[prefer] is None, start is None, -(start or 0), span,
            index)


def _latest_sql(part: str, start: str, duration: str) -> str:
    """SQL: the time (TIMESTAMP_NS) that makes a record of ``part`` the latest, from its
    ``start`` and ``duration`` (ms) expressions (:func:`part_order`)."""
    if DURATION_AT[part] is None:
        return start
    return (f"make_timestamp_ns(epoch_ns({start}) + CASE WHEN isfinite({duration}) THEN "
            f"CAST(floor({duration} * 1000000) AS BIGINT) ELSE 0 END)")


RECORD_TABLES = ("row_records", "encoder_records", "llm_records")
"""The record tables whose rows make the parts."""


_EMPTY = {"row": "row_records", "encoder": "encoder_records", "llm": "llm_records"}


def assemble_batch(con: duckdb.DuckDBPyConnection, relations: dict[str, str]) -> pa.Table:
    """The parts of one batch, assembled by :func:`assemble_sql` (the one assembler) from its
    record tables, given as the names of relations the connection can read (``row_records``
    -> a registered Arrow view ...; a missing kind has no records). DuckDB runs it off the
    GIL. Rows in no particular order; ``SCHEMA`` columns (start times as timestamps)."""
    sources = {part: relations.get(table) or f"(SELECT * FROM {table} WHERE false)"
               for part, table in _EMPTY.items()}
    return con.sql(assemble_sql(sources["row"], sources["encoder"], sources["llm"])
                   ).to_arrow_table().cast(SCHEMA)


def _table_sql(name: str) -> str:
    fields = ",\n    ".join(f"{c} {t}" for _, cols in ASSEMBLED_PARTS.values() for c, _, t in cols)
    return (f"CREATE TABLE {name} (\n    trace_id VARCHAR NOT NULL,\n"
            f"    row_id VARCHAR NOT NULL,\n    {fields}\n)")


def _newer(part: str, new: str, old: str) -> str:
    """SQL: the ``part`` of row ``new`` wins over that of row ``old`` (:func:`part_order`: the
    preferred column present, then the latest start (or end) time, then the smaller span id, then
    the smaller record index; a present part beats none)."""
    fields = ASSEMBLED_PARTS[part][1]
    span, index, start = (c for c, _, _ in fields[:3])
    duration = fields[DURATION_AT[part] or 0][0]
    new_start, old_start = (
        f"coalesce({_latest_sql(part, f'{side}.{start}', f'{side}.{duration}')}, {_EARLIEST})"
        for side in (new, old))
    later = (f"{new_start} > {old_start}"
             f" OR ({new_start} = {old_start} AND ({new}.{span} < {old}.{span}"
             f" OR ({new}.{span} = {old}.{span} AND {new}.{index} <= {old}.{index})))")
    prefer = PREFER_AT[part]
    if prefer is not None:
        column = fields[prefer][0]
        later = (f"({new}.{column} IS NOT NULL AND {old}.{column} IS NULL)"
                 f" OR (({new}.{column} IS NULL) = ({old}.{column} IS NULL) AND ({later}))")
    return f"({new}.{span} IS NOT NULL AND ({old}.{span} IS NULL OR {later}))"


def overlay_sql(base: str, over: str, key: str) -> str:
    """SQL select list: the key from ``key`` (one of the two), each part from ``over``
    where it wins over ``base``'s."""
    items = [f"{key}.trace_id", f"{key}.row_id"]
    for part, (_, fields) in ASSEMBLED_PARTS.items():
        wins = _newer(part, over, base)
        items += [f"CASE WHEN {wins} THEN {over}.{c} ELSE {base}.{c} END AS {c}"
                  for c, _, _ in fields]
    return ", ".join(items)


def assemble_sql(rows: str, encoders: str, llms: str) -> str:
    """A query giving one row per key (trace id, row id) found in the three record
    relations, each part the winning record of its kind by the rule of
    :data:`vlmscope.collectors.spec.PARTS` (NULLs where there is none): the one way a
    pipeline row is assembled (batches, repairs, compaction, refresh).
    ``tests/pipeline_row_reference.py`` is its Python reference, tested equal to it.

    The encoder and LLM records of a key are reduced by an aggregate (``arg_min`` over the
    ordering as a struct), not a window, and the parts are put together with full joins,
    since those run faster in DuckDB (``benchmarks/README.md``)."""
    sources = {"row": rows, "encoder": encoders, "llm": llms}
    ctes = []
    # The LLM part first: the encoder part reads the record it links to.
    for part in ("row", "llm", "encoder"):
        fields = ASSEMBLED_PARTS[part][1]
        span, index, start = (r for _, r, _ in fields[:3])
        if part == "row":
            # Every row span makes a pipeline row (a row id repeated within a trace, two).
            picked = ", ".join(f"{r}::{t} AS {c}" for c, r, t in fields)
            ctes.append(f"row_part AS (SELECT trace_id, row_id, {picked} FROM {rows} "
                        "WHERE row_id IS NOT NULL)")
            continue
        # The smallest wins: (linked, preferred,) no start, minus the latest, span, index.
        packed = ", ".join(f"{c} := {r}::{t}" for c, r, t in fields)
        first = []
        source = f"{sources[part]} WHERE row_id IS NOT NULL"
        if part == "encoder":
            first.append(f"l := {span} IS DISTINCT FROM linked")
            source = (f"(SELECT e.*, p.{spec.LINK[0]} AS linked FROM {sources[part]} e "
                      f"LEFT JOIN llm_part p USING (trace_id, row_id)) WHERE row_id IS NOT NULL")
        prefer = PREFER_AT[part]
        if prefer is not None:
            first.append(f"p := {fields[prefer][1]} IS NULL")
        order = (f"struct_pack({''.join(f + ', ' for f in first)}a := {start} IS NULL, "
                 f"b := -epoch_ns({_latest_sql(part, start, 'duration_ms')}), "
                 f"c := {span}, d := {index})")
        ctes.append(
            f"{part}_part AS (SELECT trace_id, row_id, unnest(picked) FROM ("
            f"SELECT trace_id, row_id, arg_min(struct_pack({packed}), {order}) AS picked "
            f"FROM {source} GROUP BY trace_id, row_id))")
    columns = ", ".join(f"{p}_part.{c}" for p, (_, f) in ASSEMBLED_PARTS.items() for c, _, _ in f)
    return (f"WITH {', '.join(ctes)} SELECT trace_id, row_id, {columns} FROM row_part "
            "FULL JOIN encoder_part USING (trace_id, row_id) "
            "FULL JOIN llm_part USING (trace_id, row_id)")
