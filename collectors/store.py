"""The store writer: span batches appended to a DuckDB store, a transaction each, the file
lent to readers of other processes when they ask.

DuckDB lets one process write a database file and, while it holds it, no other process may
open it at all, not even read-only. Opening and closing per write would let readers in, but
every close checkpoints, which costs more than the write. So the two sides take turns:

* the :class:`StoreWriter` keeps its connection open while spans flow, and gives the file up
  when a reader asks, and after :data:`DEFAULT_IDLE_CLOSE_S` without writes;
* a reader (:func:`read_connection`, used by ``vlmscope sql``) that finds the file locked asks
  by dropping a request file into ``<db>.readers/``, retries until it gets in, and removes the
  request when done. While a request is pending, or another process holds the file, or the
  file is damaged, the writer does not wait: it puts what it cannot commit in the store's
  durable spool (:mod:`vlmscope.collectors.spool`) and commits it, exactly once, as soon as
  it holds the file again; the next writer that opens the store does the same.

Request files older than :data:`STALE_REQUEST_S` (a crashed reader) are ignored. A file
that is not a whole DuckDB database (:func:`check_store_file`) is never written into.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from vlmscope.collectors import facts, normalize
from vlmscope.collectors._recent_spans import (  # noqa: F401  (re-exported)
    DEFAULT_RECENT_SPANS,
    RecentSpans,
    key_hashes,
)
from vlmscope.collectors._store_files import (  # noqa: F401  (re-exported)
    DEFAULT_READ_TIMEOUT_S,
    STALE_REQUEST_S,
    NotAStoreError,
    StoreDamagedError,
    StoreError,
    StoreLockedError,
    StoreMissingError,
    StoreUnavailableError,
    check_store_file,
    damaged_error,
    is_damage_error,
    is_lock_error,
    pending_readers,
    read_connection,
    readers_dir,
    write_connection,
)
from vlmscope.collectors.convert import SpanBatch
from vlmscope.collectors.query import (
    QueryLimits,
    ReadOnlyQueryError,
    lock_down,
    query_cursor,
    run_read_only,
)
from vlmscope.collectors.schema import migrate
from vlmscope.collectors.spool import Spool, skip_stored

_log = logging.getLogger("vlmscope.store")

DEFAULT_IDLE_CLOSE_S = 1.0
"""Seconds without writes after which the writer closes the file (readers then open at once)."""


DEFAULT_SETTINGS = {"checkpoint_threshold": "256MB"}
"""DuckDB settings a store writer applies unless told otherwise. ``checkpoint_threshold``
(DuckDB's default is 16MB) lets the write-ahead log grow this large before a commit folds
it into the file, since every checkpoint rewrites the partly filled last row group of each
table it appends to and so costs more as a store grows (figures: ``benchmarks/README.md``).
The price: more data held in memory, a longer checkpoint when the writer lets the file go,
and a longer replay after a crash."""

DEFAULT_ROW_GROUP_SIZE = 16_384
"""Rows in each row group the store writer appends (DuckDB's own default: 122,880), small
enough that the exporter's commits fill one: a transaction that appends at least this many
rows to a table has DuckDB write them to the file, compressed, before it commits
("optimistic writes"), so the write-ahead log records where they are rather than the rows
(figures: ``benchmarks/README.md``)."""

_BATCH = "_vlmscope_span_batch"
_ALIAS = "vlmscope_store"
# What DuckDB raises when a file is held (a lock of another process; this process's writer).
_HELD_ERRORS = tuple(error for error in (
    duckdb.IOException, getattr(duckdb, "ResourceInUseException", None)) if error)
_VECTOR_SIZE = 2048


def writer_threads() -> int:
    """DuckDB threads a store writer runs with: every core this process may use but one,
    which is left to the application's own Python (the converting thread), so that the two
    do not compete (figures: ``benchmarks/README.md``)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


def merge_batches(batches: list[SpanBatch]) -> SpanBatch:
    """``batches`` as one batch for one transaction, each table concatenated (the write
    assembles the group's pipeline-row parts from its records, once for the group)."""
    if len(batches) == 1:
        return batches[0]
    derived: dict[str, list[pa.Table]] = {}
    for batch in batches:
        for name, table in batch.derived.items():
            derived.setdefault(name, []).append(table)
    return SpanBatch(pa.concat_tables([b.spans for b in batches]),
                     {name: pa.concat_tables(tables) for name, tables in derived.items()})


DEFAULT_EXIT_WAIT_S = 5.0
"""Longest time, in seconds, closing a writer waits for a held store to commit its spool;
what is still spooled then stays on disk for the next writer."""

SPOOL_CHECK_S = 1.0
"""Seconds between a writer's looks for entries other writers spooled."""

QUERY_SLOTS = 2
"""Read-only queries a writer runs at once on its instance (``run_query``)."""


def _quoted(path: Path) -> str:
    """``path`` for a single-quoted SQL string."""
    return str(path).replace("'", "''")


class StoreWriter:
    """Appends span batches to a DuckDB store; thread-safe; one per process and file.

    Each :meth:`write` is one transaction: the spans (one Arrow insert), the per-row records
    derived from them and the embeddings, all or nothing.

    ``config`` is DuckDB's connect config; ``settings`` are applied with ``SET`` on the
    writer's connection each time it opens, over :data:`DEFAULT_SETTINGS`.
    ``row_group_size`` (:data:`DEFAULT_ROW_GROUP_SIZE`; a multiple of 2,048) is the size of
    the row groups the writer's appends make; None leaves DuckDB's own. The writer attaches
    the file to a connection of its own to set it, so no other connection of this process
    shares the writer's: a reader here asks for the file as one in another process does.

    :meth:`write` raises :class:`StoreUnavailableError` at once, without waiting, when a
    reader asked for the file, another process holds it or it is damaged; the caller then
    hands the batch to :meth:`spool`. Spooled batches are committed when the writer next
    opens the store, and otherwise by :meth:`retry_spool` and :meth:`close` (which waits at
    most ``exit_wait_s`` for a held store).

    ``query_limits``, when given, lets :meth:`run_query` run read-only queries on the
    writer's own DuckDB instance, which is then locked down
    (:func:`vlmscope.collectors.query.lock_down`) each time it opens.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        idle_close_s: float = DEFAULT_IDLE_CLOSE_S,
        config: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
        row_group_size: int | None = DEFAULT_ROW_GROUP_SIZE,
        query_limits: QueryLimits | None = None,
        exit_wait_s: float = DEFAULT_EXIT_WAIT_S,
    ) -> None:
        if exit_wait_s < 0:
            raise ValueError(f"exit_wait_s must be >= 0 seconds, got {exit_wait_s!r}")
        if idle_close_s <= 0:
            raise ValueError(f"idle_close_s must be > 0 seconds, got {idle_close_s!r}")
        if row_group_size is not None and (
                type(row_group_size) is not int or row_group_size <= 0
                or row_group_size % _VECTOR_SIZE):
            raise ValueError(f"row_group_size must be a positive multiple of {_VECTOR_SIZE} "
                             f"(DuckDB's vector size), or None for DuckDB's default; got "
                             f"{row_group_size!r}")
        self._row_group_size = row_group_size
        self.path = Path(path)
        self._idle_close_s = idle_close_s
        self._config = dict(config or {})
        self._settings = {name: value for name, value in DEFAULT_SETTINGS.items()
                          if name not in self._config}
        self._settings.update(settings or {})
        for name in self._settings:
            if not name.replace("_", "").isalnum():
                raise ValueError(f"{name!r} is not a DuckDB setting name")
        self._lock = threading.Lock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._merge_state = facts.MergeState()
        self._recent: RecentSpans | None = None
        self._last_write = 0.0
        self._closed = False
        self._watcher: threading.Thread | None = None
        self._wake = threading.Event()
        self.spool_store = Spool(self.path)
        self._exit_wait_s = exit_wait_s
        self._spool_checked = 0.0
        self._warned: set[type] = set()
        self.spooled_batches = 0
        """Batches this writer put in the spool."""
        self.unspooled_spans = 0
        """Spans this writer spooled and a writer (this one) committed since."""
        self._own_entries: dict[str, int] = {}
        self.spool_pending = False
        """Whether this writer spooled batches that no writer has committed yet (as far as
        it knows)."""
        self._query_limits = query_limits
        self._query_cursors: list[duckdb.DuckDBPyConnection] = []
        self._active_queries: dict[int, duckdb.DuckDBPyConnection] = {}
        self._checked_file: tuple[int, int] | None = None
        self._unavailable: Exception | None = None

    # -- connection lifecycle ------------------------------------------------------------

    def open(self) -> None:
        """Open (and migrate) the store now rather than at the first write; raises as a
        write would. The file is let go again after ``idle_close_s`` without writes."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the store writer is closed")
            self._open()
            self._last_write = time.monotonic()

    def _open(self) -> duckdb.DuckDBPyConnection:
        """The open store; opens it when closed. Raises :class:`StoreLockedError` at once
        when a reader asked for the file or another process holds it, and
        :class:`StoreDamagedError` when the file is damaged: the caller spools."""
        if self._con is not None:
            return self._con
        if pending_readers(self.path):
            raise StoreLockedError(f"{self.path} is lent to a reader")
        self._check_file()
        try:
            con = self._connect()
        except _HELD_ERRORS as error:
            if is_lock_error(error):
                raise StoreLockedError(f"{self.path} is held by another process ({error})") \
                    from error
            if is_damage_error(error):
                raise damaged_error(self.path, str(error).splitlines()[0]) from error
            raise
        try:
            if "threads" not in self._config:
                # SET, not the connect config: a connection opened with a config of its own
                # would stop this process's other connections to the file from opening.
                con.execute(f"SET threads = {writer_threads()}")
            for name, value in self._settings.items():
                con.execute(f"SET {name} = ?", [value])
            migrate(con)
            cursors = []
            if self._query_limits is not None:
                use = _ALIAS if self._row_group_size is not None else None
                cursors = [query_cursor(con, self._query_limits, use, QUERY_SLOTS)
                           for _ in range(QUERY_SLOTS)]
                # From here on DuckDB itself refuses every file but the store, extensions
                # and settings (but the optimizer switch of a connection's own appends).
                lock_down(con, allowed_configs=("enable_optimizer",))
        except Exception as error:
            con.close()
            if is_damage_error(error):
                raise damaged_error(self.path, str(error).splitlines()[0]) from error
            raise
        self._con = con
        self._query_cursors = cursors
        self._merge_state = facts.MergeState()
        self._recent = None
        self._ensure_watcher()
        self._drain_spool(con)
        return con

    def _check_file(self) -> None:
        """:func:`check_store_file`, unless the file is as this writer left it."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return
        seen = (stat.st_size, stat.st_mtime_ns)
        if seen != self._checked_file:
            check_store_file(self.path)
            self._checked_file = seen

    def _connect(self) -> duckdb.DuckDBPyConnection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._row_group_size is None:
            return duckdb.connect(str(self.path), config=self._config)
        # ROW_GROUP_SIZE is an ATTACH option: attach the file to an in-memory database
        # and make it the default. A config that forbids file access can only be applied
        # once the file is attached.
        config = dict(self._config)
        locked = config.pop("enable_external_access", True) in (False, "false", 0)
        con = duckdb.connect(config=config)
        try:
            con.execute(f"ATTACH '{_quoted(self.path)}' AS {_ALIAS} "
                        f"(ROW_GROUP_SIZE {self._row_group_size})")
            con.execute(f"USE {_ALIAS}")
            if locked:
                con.execute("SET enable_external_access = false")
        except BaseException:
            con.close()
            raise
        return con

    def _ensure_watcher(self) -> None:
        if self._watcher is None or not self._watcher.is_alive():
            self._watcher = threading.Thread(
                target=self._watch, name="vlmscope-store-watcher", daemon=True
            )
            self._watcher.start()

    def _watch(self) -> None:
        """Close the connection when a reader asks for the file or writes have stopped
        (never while a query of :meth:`run_query` runs on it)."""
        while not self._closed:
            self._wake.wait(0.05)
            with self._lock:
                if self._con is None:
                    return
                if self._active_queries:
                    continue
                idle = time.monotonic() - self._last_write > self._idle_close_s
                if idle or pending_readers(self.path):
                    self._close_connection()
                    return

    def _close_connection(self) -> None:
        self._recent = None  # others may write to the file before it opens again
        for cursor in self._query_cursors:
            with contextlib.suppress(Exception):
                cursor.close()
        self._query_cursors = []
        if self._con is not None:
            try:
                self._compact()
                self._con.close()
            finally:
                self._con = None
                with contextlib.suppress(OSError):
                    stat = self.path.stat()
                    self._checked_file = (stat.st_size, stat.st_mtime_ns)

    # -- the spool -----------------------------------------------------------------------

    def spool(self, batch: SpanBatch, reason: BaseException | str) -> None:
        """Keep ``batch`` durably in the store's spool (``<db>.spool/``) because it could
        not be committed now (``reason``); it is committed, once, when a writer holds the
        store. Warns once per kind of reason."""
        entry = self.spool_store.put(batch)
        self._own_entries[entry.name] = batch.num_spans
        self.spooled_batches += 1
        self.spool_pending = True
        kind = type(reason)
        if kind not in self._warned:
            self._warned.add(kind)
            _log.warning("vlmscope keeps spans in %s: %s. They are committed to the store "
                         "once it can be written (by this writer or the next one).",
                         self.spool_store.folder, reason)

    def spooled_spans(self) -> int:
        """Spans waiting in the store's spool now (of any writer)."""
        return self.spool_store.spooled_spans()

    def _drain_spool(self, con: duckdb.DuckDBPyConnection) -> int:
        """Commit every spooled entry, oldest first, each once; returns the spans committed.
        Runs with the store open (under the writer's lock)."""
        self._spool_checked = time.monotonic()
        committed = 0
        for entry in self.spool_store.entries():
            try:
                batch = self.spool_store.load(entry)
            except (OSError, pa.ArrowException) as error:
                _log.warning("vlmscope skips the unreadable spool entry %s: %s", entry, error)
                continue
            committed += self._write(con, batch, skip_stored)
            self.spool_store.remove(entry)
            self.unspooled_spans += self._own_entries.pop(entry.name, 0)
        self.spool_pending = False
        if committed:
            _log.info("vlmscope committed %d spooled spans to %s", committed, self.path)
        return committed

    def retry_spool(self) -> int:
        """Try to commit what is spooled now; returns the spans still spooled. Never raises:
        a store still held or damaged leaves the spool as it is."""
        with self._lock:
            if self._closed or not self.spool_store.entries():
                self.spool_pending = False
                return 0
            try:
                con = self._open()  # drains when it opens
                if self.spool_store.entries():
                    self._drain_spool(con)
            except Exception as error:
                self._unavailable = error
                _log.debug("vlmscope spool stays: %s", error)
        return self.spooled_spans()

    def _compact(self) -> None:
        """Leave ``pipeline_rows`` equal to the plain join before letting the file go
        (:func:`vlmscope.collectors.facts.compact`); a failure costs only exactness."""
        con = self._con
        try:
            con.execute("BEGIN TRANSACTION")
            facts.compact(con, self._merge_state)
            con.execute("COMMIT")
        except Exception as error:
            with contextlib.suppress(Exception):
                con.execute("ROLLBACK")
            _log.warning("vlmscope could not compact pipeline_rows in %s (%s); rows whose "
                         "row id repeats within a trace may show stale encoder or LLM parts "
                         "until the next write closes the store", self.path, error)

    # -- writing ---------------------------------------------------------------------------

    def write(
        self,
        batch: SpanBatch,
        prepare: Callable[[duckdb.DuckDBPyConnection, SpanBatch], SpanBatch] | None = None,
        *,
        new_spans_only: bool = False,
    ) -> int:
        """Append ``batch`` in one transaction; returns the number of spans written. Raises
        on failure (the exporter counts it).

        ``prepare``, when given, runs inside the transaction before the inserts and returns
        the batch to insert instead (e.g. without the spans the store already holds).

        ``new_spans_only`` (with such a ``prepare``): first try the whole batch in one
        script whose span insert skips spans the store holds (same trace and span id, in the
        batch's start-time range, which DuckDB prunes by row-group min/max). When that
        insert writes every span, as it does unless a client resent spans, the
        transaction commits as it is; else it is rolled back and redone through ``prepare``,
        which must drop what is stored from the derived tables too. A batch with
        evaluations always goes through ``prepare``.
        """
        if batch.num_spans == 0 and not batch.derived:
            return 0
        if new_spans_only and prepare is None:
            raise ValueError("new_spans_only needs the prepare that drops stored spans")
        with self._lock:
            if self._closed:
                raise RuntimeError("the store writer is closed")
            try:
                con = self._open()
                if time.monotonic() - self._spool_checked > SPOOL_CHECK_S:
                    self._drain_spool(con)  # what other writers spooled meanwhile
                if new_spans_only and batch.num_spans and "evaluations" not in batch.derived:
                    written = self._write_unless_stored(con, batch)
                    if written is not None:
                        return written
                return self._write(con, batch, prepare)
            except StoreUnavailableError:
                raise
            except Exception as error:
                # A failed connection may be unusable; open afresh next time.
                self._close_connection()
                if is_damage_error(error):
                    raise damaged_error(self.path, str(error).splitlines()[0]) from error
                raise
            finally:
                self._last_write = time.monotonic()

    def _write_unless_stored(self, con: duckdb.DuckDBPyConnection,
                             batch: SpanBatch) -> int | None:
        """The fast path of ``new_spans_only``: the spans written, or None (rolled back)
        when some were stored already. Spans that :class:`RecentSpans` knows are new are
        inserted as they are; others only where the store holds no span with the same
        ids in the batch's start-time range."""
        bounds = pc.min_max(batch.spans.column("start_time").cast(pa.int64())).as_py()
        hashes = key_hashes(batch.spans)
        if self._recent is None:
            ((latest,),) = con.execute("SELECT epoch_ns(max(start_time)) FROM spans").fetchall()
            self._recent = RecentSpans(-(2**63) if latest is None else latest + 1)
        if bounds["min"] is not None and self._recent.all_new(hashes, bounds["min"]):
            insert = f"INSERT INTO spans SELECT * FROM {_BATCH}"
        else:
            insert = (f"INSERT INTO spans SELECT * FROM {_BATCH} b WHERE NOT EXISTS "
                      "(SELECT 1 FROM spans s WHERE s.start_time BETWEEN "
                      f"make_timestamp_ns({int(bounds['min'] or 0)}) AND "
                      f"make_timestamp_ns({int(bounds['max'] or 0)}) "
                      "AND s.trace_id = b.trace_id AND s.span_id = b.span_id)")
        con.register(_BATCH, batch.spans)
        try:
            con.execute("BEGIN TRANSACTION")
            try:
                ((written,),) = normalize.insert_tables(
                    con, batch.derived, state=self._merge_state, plain_appends=True,
                    last=insert)
                if written == batch.num_spans:
                    con.execute("COMMIT")
                    self._remember(hashes, bounds["max"])
                    return written
            except Exception:
                with contextlib.suppress(Exception):
                    con.execute("ROLLBACK")
                raise
            con.execute("ROLLBACK")
            self._merge_state.forget()
            return None
        finally:
            with contextlib.suppress(Exception):  # keep the write's own error
                con.unregister(_BATCH)

    def _remember(self, hashes: list[int], last_start: int | None) -> None:
        """After a commit: note its spans in :class:`RecentSpans` (when kept)."""
        if self._recent is not None and hashes:
            self._recent.add(hashes, last_start if last_start is not None else 2**63 - 1)

    def _write(self, con: duckdb.DuckDBPyConnection, batch: SpanBatch,
               prepare: Callable[[duckdb.DuckDBPyConnection, SpanBatch], SpanBatch] | None
               ) -> int:
        con.register(_BATCH, batch.spans)
        try:
            con.execute("BEGIN TRANSACTION")
            try:
                if prepare is not None:
                    batch = prepare(con, batch)
                    con.register(_BATCH, batch.spans)
                normalize.insert_tables(con, batch.derived, state=self._merge_state,
                                        first=f"INSERT INTO spans SELECT * FROM {_BATCH}",
                                        plain_appends=True)
                con.execute("COMMIT")
                if self._recent is not None and batch.num_spans:
                    self._remember(key_hashes(batch.spans), pc.max(
                        batch.spans.column("start_time").cast(pa.int64())).as_py())
            except Exception:
                with contextlib.suppress(Exception):
                    con.execute("ROLLBACK")
                raise
            return batch.num_spans
        finally:
            with contextlib.suppress(Exception):  # keep the write's own error
                con.unregister(_BATCH)

    @contextlib.contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor on the open store for one read, holding writes back until it closes."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the store writer is closed")
            cursor = self._open().cursor()
            try:
                if self._row_group_size is not None:
                    cursor.execute(f"USE {_ALIAS}")  # a cursor starts in the in-memory one
                yield cursor
            finally:
                cursor.close()
                self._last_write = time.monotonic()

    def serve_queries(self, limits: QueryLimits) -> None:
        """Take read-only queries (:meth:`run_query`) within ``limits`` from now on."""
        with self._lock:
            self._query_limits = limits
            self._close_connection()  # reopened locked down, with query cursors

    def run_query(self, sql: str, *, checked: bool = True
                  ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run one read-only query on the open store, beside the writes: it holds no lock
        a write needs, runs in a read-only transaction on an instance DuckDB keeps from
        any file but the store, and within the writer's ``query_limits`` (see
        :mod:`vlmscope.collectors.query`). Raises
        :class:`~vlmscope.collectors.query.ReadOnlyQueryError`."""
        if self._query_limits is None:
            raise RuntimeError("this writer takes no queries: give it query_limits")
        with self._lock:
            if self._closed:
                raise RuntimeError("the store writer is closed")
            try:
                con = self._open()
            except StoreUnavailableError as error:
                raise ReadOnlyQueryError(f"the store cannot be read now: {error}", 503) \
                    from error
            if not self._query_cursors:
                raise ReadOnlyQueryError(f"more than {QUERY_SLOTS} queries at once", 503)
            cursor = self._query_cursors.pop()
            self._active_queries[id(cursor)] = cursor
        try:
            return run_read_only(cursor, sql, self._query_limits, checked=checked)
        finally:
            with self._lock:
                del self._active_queries[id(cursor)]
                if self._con is con:
                    self._query_cursors.append(cursor)
                else:
                    with contextlib.suppress(Exception):
                        cursor.close()
                self._last_write = time.monotonic()

    def close(self, timeout_s: float | None = None) -> None:
        """Close the file; later writes raise. Queries still running are interrupted.
        What is spooled is committed first while the store can be written, waiting for a
        held store at most ``timeout_s`` (the writer's ``exit_wait_s`` by default); the
        rest stays in the spool for the next writer."""
        wait = self._exit_wait_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + wait
        self._unavailable = None
        while self.spool_store.entries() and not self._closed:
            if not self.retry_spool() or isinstance(self._unavailable, StoreDamagedError):
                break  # done, or nothing to wait for
            if time.monotonic() >= deadline:
                _log.warning("vlmscope leaves %d spans spooled in %s: the store stayed "
                             "unavailable for %.1f s; the next writer commits them",
                             self.spooled_spans(), self.spool_store.folder, wait)
                break
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
        with self._lock:
            self._closed = True
            for cursor in self._active_queries.values():
                with contextlib.suppress(Exception):
                    cursor.interrupt()
        while self._active_queries:
            time.sleep(0.01)
        with self._lock:
            self._close_connection()
        self._wake.set()





class ForkedChildError(StoreLockedError):
    """The store belongs to the process this one was forked from."""


class ForkedChildWriter(StoreWriter):
    """The writer of a process forked from a traced one. It never opens the store: the
    parent holds it, and the DuckDB state inherited from the parent must not be used here.
    Every batch goes to the store's spool, which the parent's writer commits when it next
    writes (it looks every :data:`SPOOL_CHECK_S`) or closes, or the next writer does; a
    child killed at any moment leaves whole entries or none."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path, exit_wait_s=0.0)
        self._warned.add(ForkedChildError)  # expected in a child: not worth a warning

    def _open(self) -> duckdb.DuckDBPyConnection:
        raise ForkedChildError(f"{self.path} is written by the process this one was forked "
                               "from")

    def retry_spool(self) -> int:
        """Nothing to retry: the parent (or the next writer) commits the spool."""
        self.spool_pending = False
        return 0
