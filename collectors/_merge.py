"""Merging a batch's parts into the materialised pipeline rows, and compaction (private to
:mod:`vlmscope.collectors.facts`, which re-exports its names)."""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)

from vlmscope.collectors import spec
from vlmscope.collectors._assembly import (
    ASSEMBLED_PARTS,
    COLUMNS,
    DURATION_AT,
    FACTS,
    PARTS,
    PREFER_AT,
    RECORD_TABLES,
    SCHEMA,
    STARTS,
    assemble_sql,
    part_order,
)

_NEW_KEYS = "_vlmscope_new_row_keys"


COMPACT_AT = 4096
"""A merge also compacts each time the waiting parts pass another multiple of this."""


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


def _overlay(base: tuple | None, over: tuple) -> tuple:
    """``over`` with each part taken from ``base`` where ``base``'s wins (:func:`_newer`)."""
    if base is None:
        return over
    out = list(over[:2])
    at = 2
    for part, (_, fields) in ASSEMBLED_PARTS.items():
        width = len(fields)
        mine, theirs = over[at:at + width], base[at:at + width]
        prefer, duration = PREFER_AT[part], DURATION_AT[part]
        wins = mine[0] is not None and (theirs[0] is None or part_order(
            mine, prefer, duration) <= part_order(theirs, prefer, duration))
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


_LISTED = ", ".join(f"epoch_ns({c})" if c in STARTS else c for c in COLUMNS)


_BATCH_PARTS = "_vlmscope_batch_parts"


def _rows_of(table: pa.Table) -> list[tuple]:
    """``table``'s rows as tuples in :data:`COLUMNS` order, start times as epoch ns."""
    return list(zip(*(table.column(c).cast(pa.int64()).to_pylist() if c in STARTS
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
