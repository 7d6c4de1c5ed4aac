"""The one pipeline-row assembler and the rule it applies: a key's records to its parts, run
by DuckDB (private to :mod:`vlmscope.collectors.facts`, which re-exports its names)."""

from __future__ import annotations

import logging
import math
import os

import duckdb
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)

from vlmscope import settings
from vlmscope.collectors import spec

_log = logging.getLogger("vlmscope")

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


def assemble_batch(con: duckdb.DuckDBPyConnection, relations: dict[str, str],
                   tables: dict[str, pa.Table] | None = None) -> pa.Table:
    """The parts of one batch, assembled by :func:`assemble_sql` (the one assembler) from its
    record tables, given as the names of relations the connection can read (``row_records``
    -> a registered Arrow view ...; a missing kind has no records). DuckDB runs it off the
    GIL. Given the batch's Arrow ``tables`` too, the assembler's native twin picks the
    records instead where it is loaded (:func:`native_twin`): the same rows, without
    DuckDB's fixed cost of planning the query on every commit; tables the twin cannot read
    go to DuckDB, which gives the reference's rows or its error. Rows in no particular
    order; ``SCHEMA`` columns (start times as timestamps)."""
    twin = native_twin() if tables is not None else None
    if twin is not None:
        try:
            return _assemble_natively(twin, tables)
        except (KeyError, TypeError, ValueError, OverflowError, pa.ArrowException):
            pass  # tables the twin cannot read: DuckDB gives the reference's rows or error
    sources = {part: relations.get(table) or f"(SELECT * FROM {table} WHERE false)"
               for part, table in _EMPTY.items()}
    return con.sql(assemble_sql(sources["row"], sources["encoder"], sources["llm"])
                   ).to_arrow_table().cast(SCHEMA)


# The twin's three parts, from the spec: the row part (every row span), the part picked
# first (its records link to a record of the other) and the one picked second.
_ROW_PART = spec.PARTS[0]
_FIRST = next(part for part in spec.PARTS if spec.LINK[0] in dict(part.columns))
_SECOND = next(part for part in spec.PARTS if spec.LINK[1] in dict(part.columns))


def _pick_columns(part: spec.Part, table: pa.Table | None) -> tuple:
    """What the native twin reads of one part's records (see ``_assembly_native.c``)."""
    if table is None:
        return ([], [], [], None, [], None, None, [] if part is _FIRST else None)
    record = dict(part.columns)
    span, index, start = (source for _, source in part.columns[:3])
    return (
        table.column("trace_id").to_pylist(), table.column("row_id").to_pylist(),
        table.column(span).to_pylist(),
        None if index == "0" else table.column(index).to_pylist(),
        table.column(start).cast(pa.int64()).to_pylist(),
        table.column("duration_ms").to_pylist() if part.latest == "end" else None,
        None if part.prefer is None
        else pa.compute.is_valid(table.column(record[part.prefer])).to_pylist(),
        table.column(record[spec.LINK[0]]).to_pylist() if part is _FIRST else None)


def _assemble_natively(twin, tables: dict[str, pa.Table]) -> pa.Table:
    """:func:`assemble_batch`'s rows, the records picked by the native ``twin``."""
    rows = tables.get(_ROW_PART.table.name)
    trace_ids, row_ids, *picked = twin.pick(
        (rows.column("trace_id").to_pylist(), rows.column("row_id").to_pylist())
        if rows is not None else ([], []),
        _pick_columns(_FIRST, tables.get(_FIRST.table.name)),
        _pick_columns(_SECOND, tables.get(_SECOND.table.name)))
    at = dict(zip((_ROW_PART.name, _SECOND.name, _FIRST.name), picked, strict=True))
    arrays = [pa.array(trace_ids, pa.string()), pa.array(row_ids, pa.string())]
    for part in spec.PARTS:
        table = tables.get(part.table.name)
        positions = pa.array(at[part.name], pa.int64())
        sources = [source for _, source in part.columns if source != "0"]
        # One take of the part's columns (a take a column costs about as much each).
        taken = table.select(sources).take(positions) if table is not None else None
        for fact, source in part.columns:
            kind = SCHEMA.field(fact).type
            if source == "0":
                arrays.append(pa.compute.if_else(pa.compute.is_valid(positions),
                                                 pa.scalar(0, kind), pa.scalar(None, kind)))
            elif taken is None:
                arrays.append(pa.nulls(len(positions), kind))
            else:
                column = taken.column(source)
                arrays.append(column if column.type == kind else column.cast(kind))
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


_twin: object | None = None
_twin_loaded = False


def native_twin() -> object | None:
    """The assembler's native twin (``_assembly_native``), loaded on first use by
    :func:`_load_native`; None where the SQL assembler does the work."""
    global _twin, _twin_loaded
    if not _twin_loaded:
        _twin, _twin_loaded = _load_native(), True
    return _twin


def _load_native() -> object | None:
    """The native twin when it is built, not switched off
    (:data:`vlmscope.settings.PURE_PYTHON_ENV`) and its self-test against
    :func:`assemble_sql` passes; else None, with one log line why."""
    if os.environ.get(settings.PURE_PYTHON_ENV, "0") not in ("", "0"):
        return None
    try:
        from vlmscope.collectors import _assembly_native
    except ImportError as error:
        _log.info("vlmscope: the native pipeline-row assembler is not built (%s); DuckDB "
                  "assembles every batch", error)
        return None
    try:
        _self_test(_assembly_native)
    except Exception as error:  # any failure: the SQL assembler does the work
        _log.warning("vlmscope: the native pipeline-row assembler failed its self-test "
                     "(%s: %s); DuckDB assembles every batch", type(error).__name__, error)
        return None
    return _assembly_native


def _self_test_tables() -> dict[str, pa.Table]:
    """Records that exercise every step of the rule: a link, a reading, ties broken by span
    id and by index, an end time, a duration that is not finite, no start, a repeated row
    id, records without a row span and without a row id."""
    from vlmscope.collectors.normalize import ENCODER_SCHEMA, LLM_SCHEMA, ROW_SCHEMA

    t = 1_700_000_000_000_000_000
    rows = [dict(trace_id="a", span_id="r1", row_id="x", start_time=t),
            dict(trace_id="a", span_id="r2", row_id="x", start_time=t + 1),
            dict(trace_id="a", span_id="r3", row_id="y", start_time=None),
            dict(trace_id="a", span_id="r4", row_id=None, start_time=t)]
    encoders = [dict(trace_id="a", span_id="e1", record_index=0, row_id="x", start_time=t),
                dict(trace_id="a", span_id="e2", record_index=0, row_id="x",
                     start_time=t + 5, top_k_labels=["cat"]),
                dict(trace_id="a", span_id="e3", record_index=1, row_id="y", start_time=t),
                dict(trace_id="a", span_id="e3", record_index=0, row_id="y", start_time=t),
                dict(trace_id="a", span_id="e4", record_index=0, row_id="z", start_time=None)]
    llms = [dict(trace_id="a", span_id="l1", record_index=0, row_id="x", start_time=t,
                 duration_ms=9.0, encoder_span_id="e1"),
            dict(trace_id="a", span_id="l2", record_index=0, row_id="x", start_time=t + 10,
                 duration_ms=float("nan"), encoder_span_id="e2"),
            dict(trace_id="a", span_id="l4", record_index=0, row_id="y", start_time=t,
                 duration_ms=None),
            dict(trace_id="a", span_id="l3", record_index=0, row_id="y", start_time=t),
            dict(trace_id="a", span_id="l5", record_index=0, row_id="w", start_time=None),
            dict(trace_id="a", span_id="l6", record_index=0, row_id="v", start_time=t + 100,
                 duration_ms=float("inf")),
            dict(trace_id="a", span_id="l7", record_index=0, row_id="v", start_time=t,
                 duration_ms=0.0000999)]
    return {"row_records": pa.Table.from_pylist(rows, schema=ROW_SCHEMA),
            "encoder_records": pa.Table.from_pylist(encoders, schema=ENCODER_SCHEMA),
            "llm_records": pa.Table.from_pylist(llms, schema=LLM_SCHEMA)}


def _self_test(twin) -> None:
    """Raise unless ``twin`` assembles :func:`_self_test_tables` as :func:`assemble_sql`
    does."""
    tables = _self_test_tables()
    con = duckdb.connect()
    try:
        for name, table in tables.items():
            con.register(f"_self_test_{name}", table)
        want = con.sql(assemble_sql(*(f"_self_test_{name}" for name in RECORD_TABLES))
                       ).to_arrow_table().cast(SCHEMA)
    finally:
        con.close()
    got = _assemble_natively(twin, tables)
    if sorted(map(repr, _plain_rows(got))) != sorted(map(repr, _plain_rows(want))):
        raise RuntimeError("its rows differ from the SQL assembler's")


def _plain_rows(table: pa.Table) -> list[dict]:
    """The rows of ``table`` with its timestamps as integer nanoseconds: pyarrow turns a
    nanosecond timestamp into Python only through pandas, which a bare install lacks."""
    columns = [column.cast(pa.int64()) if pa.types.is_timestamp(column.type) else column
               for column in table.columns]
    return pa.Table.from_arrays(columns, names=table.column_names).to_pylist()


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
    pipeline row is assembled (batches, repairs, compaction, refresh), and the reference of
    its native twin for batches (``_assembly_native.c``, :func:`native_twin`).
    ``tests/pipeline_row_reference.py`` is its Python reference, tested equal to both.

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
