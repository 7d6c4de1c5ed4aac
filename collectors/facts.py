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
(:func:`assemble_batch`, in the writer's transaction) and the rows that repairs, compaction
and :func:`refresh` rebuild. Each batch the store
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
view, :func:`_order` in Python for a merge), tested with the rest against the plain join on
random arrival orders and batchings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

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
_PARTS: dict[str, tuple[str, tuple[tuple[str, str, str], ...]]] = {
    part.name: (part.table.name, part.typed()) for part in spec.PARTS}

_KEY = ("trace_id", "row_id")
COLUMNS: tuple[str, ...] = _KEY + tuple(
    column for _, fields in _PARTS.values() for column, _, _ in fields)
"""The columns of both tables, in order."""

_NEW_KEYS = "_vlmscope_new_row_keys"
_STARTS = ("row_start", "encoder_start", "llm_start")

COMPACT_AT = 4096
"""A merge also compacts each time the waiting parts pass another multiple of this."""

# A record without a start time sorts before every other (as ORDER BY ... DESC NULLS LAST).
_EARLIEST = "TIMESTAMP_NS '1678-01-01'"


_ARROW_TYPES = spec.ARROW_TYPES

SCHEMA = pa.schema(
    [("trace_id", pa.string()), ("row_id", pa.string())]
    + [(c, _ARROW_TYPES[t]) for _, fields in _PARTS.values() for c, _, t in fields])
"""Arrow schema of both tables, column for column."""

# Where the column that wins first sits in each part's tuple (the encoder's top-k labels:
# a record with a reading beats one without), None for parts without one.
_PREFER_AT: dict[str, int | None] = {
    part.name: None if part.prefer is None else [c for c, _ in part.columns].index(part.prefer)
    for part in spec.PARTS}


# Where the duration sits in the tuple of each part whose latest record is the one that
# ended last (start plus duration), None for parts ordered by start.
_DURATION_AT: dict[str, int | None] = {
    part.name: [r for _, r in part.columns].index("duration_ms") if part.latest == "end"
    else None for part in spec.PARTS}


def duration_ns(duration_ms: float | None) -> int:
    """A record's duration (ms) as whole nanoseconds, floored, 0 when unknown: what its end
    time adds to its start, the same in Python and in SQL (:func:`_latest_sql`)."""
    if duration_ms is None or not math.isfinite(duration_ms):
        return 0
    return math.floor(duration_ms * 1_000_000)


def _order(part: tuple, prefer: int | None = None, duration: int | None = None) -> tuple:
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
    ``start`` and ``duration`` (ms) expressions (:func:`_order`)."""
    if _DURATION_AT[part] is None:
        return start
    return (f"make_timestamp_ns(epoch_ns({start}) + CASE WHEN isfinite({duration}) THEN "
            f"CAST(floor({duration} * 1000000) AS BIGINT) ELSE 0 END)")


RECORD_TABLES = ("row_records", "encoder_records", "llm_records")
"""The record tables whose rows make the parts."""


_SLICED_UP_TO = 64
"""Rows picked by :func:`rows_at` as slices (zero-copy) up to this many runs of them."""


def rows_at(table: pa.Table, rows: list[int]) -> pa.Table:
    """The ``rows`` (indices, in the order given) of ``table``. Where they fall in a few
    runs, as the rows a merge keeps or touches do, they are sliced out without a copy:
    ``take`` on the wide table of parts costs the same however few rows it takes
    (``benchmarks/README.md``, "Figures from the code")."""
    runs: list[tuple[int, int]] = []
    for row in rows:
        if runs and runs[-1][1] == row:
            runs[-1] = (runs[-1][0], row + 1)
        else:
            if len(runs) == _SLICED_UP_TO:
                return table.take(pa.array(rows, pa.int64()))
            runs.append((row, row + 1))
    if len(runs) == 1 and runs[0] == (0, table.num_rows):
        return table
    if not runs:
        return table.slice(0, 0)
    return pa.concat_tables([table.slice(start, stop - start) for start, stop in runs])


def to_arrow(rows: list[tuple]) -> pa.Table:
    """Assembled rows as an Arrow table (start times in epoch nanoseconds)."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(SCHEMA)
    return pa.Table.from_arrays(
        [pa.array(c, type=f.type) for c, f in zip(columns, SCHEMA, strict=True)],
        schema=SCHEMA)


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
    fields = ",\n    ".join(f"{c} {t}" for _, cols in _PARTS.values() for c, _, t in cols)
    return (f"CREATE TABLE {name} (\n    trace_id VARCHAR NOT NULL,\n"
            f"    row_id VARCHAR NOT NULL,\n    {fields}\n)")


def _newer(part: str, new: str, old: str) -> str:
    """SQL: the ``part`` of row ``new`` wins over that of row ``old`` (:func:`_order`: the
    preferred column present, then the latest start (or end) time, then the smaller span id, then
    the smaller record index; a present part beats none)."""
    fields = _PARTS[part][1]
    span, index, start = (c for c, _, _ in fields[:3])
    duration = fields[_DURATION_AT[part] or 0][0]
    new_start, old_start = (
        f"coalesce({_latest_sql(part, f'{side}.{start}', f'{side}.{duration}')}, {_EARLIEST})"
        for side in (new, old))
    later = (f"{new_start} > {old_start}"
             f" OR ({new_start} = {old_start} AND ({new}.{span} < {old}.{span}"
             f" OR ({new}.{span} = {old}.{span} AND {new}.{index} <= {old}.{index})))")
    prefer = _PREFER_AT[part]
    if prefer is not None:
        column = fields[prefer][0]
        later = (f"({new}.{column} IS NOT NULL AND {old}.{column} IS NULL)"
                 f" OR (({new}.{column} IS NULL) = ({old}.{column} IS NULL) AND ({later}))")
    return f"({new}.{span} IS NOT NULL AND ({old}.{span} IS NULL OR {later}))"


def _overlay_sql(base: str, over: str, key: str) -> str:
    """SQL select list: the key from ``key`` (one of the two), each part from ``over``
    where it wins over ``base``'s."""
    items = [f"{key}.trace_id", f"{key}.row_id"]
    for part, (_, fields) in _PARTS.items():
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
        fields = _PARTS[part][1]
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
        prefer = _PREFER_AT[part]
        if prefer is not None:
            first.append(f"p := {fields[prefer][1]} IS NULL")
        order = (f"struct_pack({''.join(f + ', ' for f in first)}a := {start} IS NULL, "
                 f"b := -epoch_ns({_latest_sql(part, start, 'duration_ms')}), "
                 f"c := {span}, d := {index})")
        ctes.append(
            f"{part}_part AS (SELECT trace_id, row_id, unnest(picked) FROM ("
            f"SELECT trace_id, row_id, arg_min(struct_pack({packed}), {order}) AS picked "
            f"FROM {source} GROUP BY trace_id, row_id))")
    columns = ", ".join(f"{p}_part.{c}" for p, (_, f) in _PARTS.items() for c, _, _ in f)
    return (f"WITH {', '.join(ctes)} SELECT trace_id, row_id, {columns} FROM row_part "
            "FULL JOIN encoder_part USING (trace_id, row_id) "
            "FULL JOIN llm_part USING (trace_id, row_id)")


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
    SELECT {outputs} FROM (SELECT {_overlay_sql("f", "p", "f")} FROM {FACTS} f
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


def _overlay(base: tuple | None, over: tuple) -> tuple:
    """``over`` with each part taken from ``base`` where ``base``'s wins (:func:`_newer`)."""
    if base is None:
        return over
    out = list(over[:2])
    at = 2
    for part, (_, fields) in _PARTS.items():
        width = len(fields)
        mine, theirs = over[at:at + width], base[at:at + width]
        prefer, duration = _PREFER_AT[part], _DURATION_AT[part]
        wins = mine[0] is not None and (theirs[0] is None or _order(
            mine, prefer, duration) <= _order(theirs, prefer, duration))
        out.extend(mine if wins else theirs)
        at += width
    return tuple(out)


@dataclass
class MergeState:
    """What a writer knows between merges on one connection, so that a merge runs as few
    statements as it can (each has a fixed cost, whatever its size): how many parts
    wait in the store (None until asked), the waiting parts themselves while there are at
    most :data:`CACHE_LIMIT` (None when not known: the merge then claims them with a
    ``DELETE ... RETURNING``), and the keys given rows since the last compaction (where
    :func:`compact` looks for repeated row ids).

    The counts and parts are only right if the transaction they were last used in commits:
    after a rollback, :meth:`forget` them (a writer that reopens its connection starts with
    a fresh state). Keys noted by a rolled-back merge are harmless: compaction looks them up
    in the facts and finds nothing."""

    waiting: int | None = None
    new_keys: list[pa.Table] = field(default_factory=list)
    parts: dict[tuple[str, str], tuple] | None = None

    def forget(self) -> None:
        """Drop what is known about the waiting parts (ask the store again next time)."""
        self.waiting = None
        self.parts = None


CACHE_LIMIT = 20_000
"""Most waiting parts a writer's :class:`MergeState` holds in memory; past it, each merge
asks the store for the parts it claims."""


@dataclass
class MergePlan:
    """One batch's merge, ready to run in the caller's transaction: ``statements`` in order,
    and ``plain``, appends that need no optimiser (in any order after them; both in one
    script with others if wanted), then :meth:`finish`."""

    con: duckdb.DuckDBPyConnection
    state: MergeState
    stateless: bool
    statements: list[str]
    plain: list[str]
    view: str | None
    waits: int
    keys: pa.Table | None
    repairs: list[str] = field(default_factory=list)
    """Statements to run after ``plain``: rows whose encoder part is not the record their
    LLM part links to, assembled again from the records (:func:`_repairs`)."""

    def release(self) -> None:
        """Let the batch's view go (also when the statements failed)."""
        if self.view is not None:
            self.con.unregister(self.view)
            self.view = None

    def finish(self) -> None:
        """After the statements ran: let the batch's view go, note the keys given rows, and
        compact when another :data:`COMPACT_AT` parts have come to wait."""
        con, state = self.con, self.state
        self.release()
        if self.keys is not None:
            state.new_keys.append(self.keys)
            if self.stateless:  # nobody keeps the state: leave the keys on the connection
                _store_new_keys(con, state)
        # Late parts whose row is stored wait until compaction: compact each time another
        # COMPACT_AT have piled up (parts that never get a row stay, so not at every batch).
        total = state.waiting
        if self.waits and total // COMPACT_AT > (total - self.waits) // COMPACT_AT:
            compact(con, state)


_LISTED = ", ".join(f"epoch_ns({c})" if c in _STARTS else c for c in COLUMNS)
_BATCH_PARTS = "_vlmscope_batch_parts"


def _rows_of(table: pa.Table) -> list[tuple]:
    """``table``'s rows as tuples in :data:`COLUMNS` order, start times as epoch ns."""
    return list(zip(*(table.column(c).cast(pa.int64()).to_pylist() if c in _STARTS
                      else table.column(c).to_pylist() for c in COLUMNS), strict=True))


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def plan_merge(con: duckdb.DuckDBPyConnection, parts: pa.Table,
               state: MergeState | None = None) -> MergePlan:
    """The merge of one batch's assembled parts (:func:`assemble`) into the tables: overlaid
    with what waits for their keys (claimed from the ``state``'s cache when it holds the
    waiting parts, else from the store at once), completed rows to the facts, the rest to
    wait. Registers the batch's parts as a view the statements read; :meth:`MergePlan.finish`
    lets it go. ``state`` carries what the caller's connection already knows (without it,
    the merge asks the store and keeps the keys in a temporary table)."""
    stateless = state is None
    if state is None:
        state = MergeState()
    if parts.num_rows == 0:
        return MergePlan(con, state, stateless, [], [], None, 0, None)
    if state.waiting is None:
        ((state.waiting,),) = con.execute(f"SELECT count(*) FROM {PARTS}").fetchall()
        state.parts = None
        if not stateless and state.waiting <= CACHE_LIMIT:
            state.parts = {(row[0], row[1]): row for row in con.execute(
                f"SELECT {_LISTED} FROM {PARTS}").fetchall()}
    statements = []
    claimed: dict[tuple[str, str], tuple] = {}
    batch_keys = None
    if state.waiting:
        batch_keys = list(zip(parts.column("trace_id").to_pylist(),
                              parts.column("row_id").to_pylist(), strict=True))
    if state.waiting and state.parts is not None:
        cache = state.parts
        claimed = {key: cache.pop(key) for key in batch_keys if key in cache}
        if claimed:
            if any("\x00" in t or "\x00" in r for t, r in claimed):
                # Keys a SQL literal cannot hold: delete through a registered table.
                con.register("_vlmscope_claimed_keys", pa.table(
                    {"trace_id": [t for t, _ in claimed], "row_id": [r for _, r in claimed]}))
                try:
                    con.execute(f"DELETE FROM {PARTS} WHERE (trace_id, row_id) IN "
                                "(SELECT trace_id, row_id FROM _vlmscope_claimed_keys)")
                finally:
                    con.unregister("_vlmscope_claimed_keys")
            else:
                listed = ", ".join(f"({_quoted(t)}, {_quoted(r)})" for t, r in claimed)
                statements.append(f"DELETE FROM {PARTS} WHERE (trace_id, row_id) IN "
                                  f"(VALUES {listed})")
    elif state.waiting:
        # A part that crossed a batch boundary, or arrived late: claim it from the store.
        con.register(_BATCH_PARTS, parts)
        try:
            claimed = {(w[0], w[1]): w for w in con.execute(
                f"DELETE FROM {PARTS} WHERE (trace_id, row_id) IN (SELECT trace_id, row_id "
                f"FROM {_BATCH_PARTS}) RETURNING {_LISTED}").fetchall()}
        finally:
            con.unregister(_BATCH_PARTS)
    state.waiting -= len(claimed)
    # Rows are picked by index (``take``): a filter of the whole table of parts costs the
    # same whatever its length, and a merge used to run four.
    if claimed:
        touched = [i for i, key in enumerate(batch_keys) if key in claimed]
        kept = [i for i, key in enumerate(batch_keys) if key not in claimed]
        merged = [_overlay(claimed[(row[0], row[1])], row)
                  for row in _rows_of(rows_at(parts, touched))]
        parts = pa.concat_tables([rows_at(parts, kept), to_arrow(merged)]) if kept else \
            to_arrow(merged)
    con.register(_BATCH_PARTS, parts)
    plain = [f"INSERT INTO {FACTS} SELECT * FROM {_BATCH_PARTS} WHERE row_span_id IS NOT NULL"]
    repairs = _repairs(parts)
    row_span = parts.column("row_span_id")
    waits = row_span.null_count
    keys = parts.select(["trace_id", "row_id"])
    if waits:
        plain.append(f"INSERT INTO {PARTS} SELECT * FROM {_BATCH_PARTS} "
                     "WHERE row_span_id IS NULL")
        state.waiting += waits
        missing = pa.compute.is_null(row_span)
        if state.parts is not None:
            if state.waiting > CACHE_LIMIT:
                state.parts = None
            else:
                waiting = rows_at(parts, pa.compute.indices_nonzero(missing).to_pylist())
                state.parts.update(((row[0], row[1]), row) for row in _rows_of(waiting))
        keys = keys.filter(pa.compute.invert(missing))
    return MergePlan(con, state, stateless, statements, plain, _BATCH_PARTS, waits, keys,
                     repairs)


def _repairs(parts: pa.Table) -> list[str]:
    """Statements that assemble again, from the records and by the whole rule (the linked
    encoder record first), the completed rows of ``parts`` whose encoder part is not the
    record their LLM part links to: a batch's assembly sees only its own records, and the
    linked record may have come in another batch (or lost to a later one). In-process
    tracing, with one encoder call per row, needs none."""
    linked, chosen = (parts.column(c) for c in spec.LINK)
    if linked.null_count == len(linked):
        return []
    pc = pa.compute
    unlinked = pc.and_(pc.and_(pc.is_valid(parts.column("row_span_id")), pc.is_valid(linked)),
                       pc.fill_null(pc.not_equal(linked, chosen), True))
    if not pc.any(unlinked).as_py():
        return []
    picked = parts.filter(unlinked)
    keys = sorted(set(zip(picked.column("trace_id").to_pylist(),
                          picked.column("row_id").to_pylist(), strict=True)))
    if any("\x00" in t or "\x00" in r for t, r in keys):
        return []  # keys a SQL literal cannot hold: compaction brings them to the rule
    listed = "(VALUES " + ", ".join(f"({_quoted(t)}, {_quoted(r)})" for t, r in keys) + ")"
    only = [f"(SELECT * FROM {name} WHERE (trace_id, row_id) IN {listed})"
            for name in RECORD_TABLES]
    return [f"DELETE FROM {FACTS} WHERE (trace_id, row_id) IN {listed}",
            f"INSERT INTO {FACTS} SELECT * FROM ({assemble_sql(*only)}) "
            "WHERE row_span_id IS NOT NULL"]


def _store_new_keys(con: duckdb.DuckDBPyConnection, state: MergeState) -> None:
    """Move the keys ``state`` holds into the connection's temporary key table."""
    if not state.new_keys:
        return
    con.execute(f"CREATE TEMP TABLE IF NOT EXISTS {_NEW_KEYS} "
                "(trace_id VARCHAR, row_id VARCHAR)")
    con.register("_vlmscope_new_keys_batch", pa.concat_tables(state.new_keys))
    try:
        con.execute(f"INSERT INTO {_NEW_KEYS} SELECT * FROM _vlmscope_new_keys_batch")
    finally:
        con.unregister("_vlmscope_new_keys_batch")
    state.new_keys.clear()


def compact(con: duckdb.DuckDBPyConnection, state: MergeState | None = None, *,
            everything: bool = False) -> int:
    """Bring the tables to the plain join exactly (inside the caller's transaction): fold
    waiting parts into the facts rows of their keys, and re-assemble from the records the
    keys that have more than one row span. Repeats are looked for among the keys merged on
    this connection since its last compaction (kept in ``state``, or by a stateless merge in
    a temporary table), or among all keys with ``everything`` or when none were tracked.
    Returns how many keys changed."""
    if state is not None:
        _store_new_keys(con, state)
    ((tracked,),) = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = ?",
        [_NEW_KEYS]).fetchall()
    if tracked and not everything:
        repeated = (f"SELECT trace_id, row_id FROM {FACTS} WHERE (trace_id, row_id) IN "
                    f"(SELECT trace_id, row_id FROM {_NEW_KEYS}) "
                    "GROUP BY trace_id, row_id HAVING count(*) > 1")
    else:
        repeated = (f"SELECT trace_id, row_id FROM {FACTS} "
                    "GROUP BY trace_id, row_id HAVING count(*) > 1")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _vlmscope_compact_keys AS "
        f"SELECT trace_id, row_id FROM {PARTS} p WHERE EXISTS (SELECT 1 FROM {FACTS} f "
        f"WHERE f.trace_id = p.trace_id AND f.row_id = p.row_id) UNION {repeated}")
    if tracked:
        con.execute(f"DELETE FROM {_NEW_KEYS}")
    ((changed,),) = con.execute("SELECT count(*) FROM _vlmscope_compact_keys").fetchall()
    if changed:
        keys = "(SELECT trace_id, row_id FROM _vlmscope_compact_keys)"
        only = {name: f"(SELECT * FROM {name} WHERE (trace_id, row_id) IN {keys})"
                for name in ("row_records", "encoder_records", "llm_records")}
        con.execute("CREATE OR REPLACE TEMP TABLE _vlmscope_compacted AS " + assemble_sql(
            only["row_records"], only["encoder_records"], only["llm_records"]))
        con.execute(f"DELETE FROM {FACTS} WHERE (trace_id, row_id) IN {keys}")
        con.execute(f"DELETE FROM {PARTS} WHERE (trace_id, row_id) IN {keys}")
        con.execute(f"INSERT INTO {FACTS} SELECT * FROM _vlmscope_compacted "
                    "WHERE row_span_id IS NOT NULL")
        con.execute("DROP TABLE _vlmscope_compacted")
    con.execute("DROP TABLE _vlmscope_compact_keys")
    if state is not None:
        state.waiting = None  # ask again at the next merge
        state.parts = None
    return int(changed)
