"""Whether a store file is whole and who holds it, and connections to it that a writing
process hands over (private to :mod:`vlmscope.collectors.store`, which re-exports the public
names)."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb

from vlmscope.collectors.spool import Spool

DEFAULT_READ_TIMEOUT_S = 30.0
"""Longest time, in seconds, a reader waits for a busy writer to hand the file over."""


STALE_REQUEST_S = 120.0
"""Age in seconds after which a reader's request file is considered abandoned."""


_POLL_S = 0.02


_HEADER_BYTES = 3 * 4096  # DuckDB's file header and its two database headers


class StoreError(RuntimeError):
    """A store that cannot be used: the message says why and what to do."""


class StoreUnavailableError(StoreError):
    """The store cannot be written now: spans go to the spool."""


class StoreLockedError(StoreUnavailableError):
    """The store is held by another process that did not hand it over in time."""


class StoreDamagedError(StoreUnavailableError):
    """The store file is damaged (truncated, corrupt, or not a DuckDB file); it is left
    untouched."""


class NotAStoreError(StoreError):
    """The file is empty, or a DuckDB database that is not a vlmscope store."""


class StoreMissingError(StoreError, FileNotFoundError):
    """There is no store at the path."""


def damaged_error(path: Path, why: str) -> StoreDamagedError:
    return StoreDamagedError(
        f"{path} is damaged ({why}); vlmscope leaves it untouched. Move it aside (e.g. "
        f"`mv {path} {path}.damaged`) to start a new store: spans that could not be written "
        f"wait in {Spool(path).folder} and the next writer commits them there.")


def check_store_file(path: str | os.PathLike[str],
                     con: duckdb.DuckDBPyConnection | None = None) -> None:
    """Raise :class:`StoreDamagedError` when the file at ``path`` is not a whole DuckDB
    database: shorter than its headers, without DuckDB's magic bytes, unreadable, or
    shorter than the blocks it uses (a truncated copy; a block past the end that the count
    does not show is found when it is read, and that error is a damage error too). ``con``
    is a connection that has the file open already (read-only); without it the file is
    opened read-only to look. A missing or empty file passes (a writer creates the store).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    if size == 0:
        return
    if size < _HEADER_BYTES:
        raise damaged_error(path, f"{size} bytes, shorter than a DuckDB file's headers")
    with open(path, "rb") as file:
        magic = file.read(12)[8:12]
    if magic != b"DUCK":
        raise damaged_error(path, "not a DuckDB database file")
    own = con is None
    try:
        if own:
            con = duckdb.connect(str(path), read_only=True)
        rows = con.execute(
            "SELECT block_size, used_blocks FROM pragma_database_size() "
            "WHERE database_name = current_database()").fetchall()
    except duckdb.Error as error:
        if is_lock_error(error):
            return  # held: the writer's connect will say so
        raise damaged_error(path, str(error).splitlines()[0]) from error
    finally:
        if own and con is not None:
            con.close()
    # With a write-ahead log beside it, the blocks counted include the log's, not yet in
    # the file: the size says nothing then.
    if rows and not Path(str(path) + ".wal").exists():
        block_size, blocks = rows[0]
        expected = _HEADER_BYTES + int(block_size) * int(blocks)
        if size < expected:
            raise damaged_error(path, f"{size} bytes, too short for the {blocks} blocks in use: "
                                "truncated")


def is_damage_error(error: BaseException) -> bool:
    """Whether a DuckDB error says the database file is damaged."""
    if not isinstance(error, duckdb.Error):
        return False
    text = str(error).lower()
    return any(mark in text for mark in (
        "corrupt", "checksum", "could not read enough bytes", "not a valid duckdb database"))


def readers_dir(db_path: str | os.PathLike[str]) -> Path:
    """The folder where readers of ``db_path`` leave their requests for the writer."""
    return Path(str(db_path) + ".readers")


def pending_readers(db_path: Path) -> bool:
    folder = readers_dir(db_path)
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return False
    now = time.time()
    for entry in entries:
        try:
            if now - entry.stat().st_mtime < STALE_REQUEST_S:
                return True
        except FileNotFoundError:
            continue
    return False


def is_lock_error(error: Exception) -> bool:
    """Whether ``error`` says the file is held: by another process (a lock), or by this
    one's store writer, which attaches it to a database of its own."""
    text = str(error).lower()
    return "lock" in text or "already attached" in text


@contextlib.contextmanager
def _handed_over(path: Path, read_only: bool, timeout_s: float,
                 config: dict[str, Any] | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to an existing store, asking a writing process to hand the file over
    (a request file in ``<db>.readers/``) while the file is locked."""
    if not path.exists():
        raise StoreMissingError(
            f"no vlmscope store at {path}: run your traced pipeline (or `vlmscope demo`) "
            "first, or pass the right --db"
        )
    if path.is_dir():
        raise NotAStoreError(f"{path} is a folder, not a vlmscope store")
    if path.stat().st_size == 0:
        raise NotAStoreError(f"{path} is an empty file, not a vlmscope store")
    check_store_file(path)
    request: Path | None = None
    deadline = time.monotonic() + timeout_s
    con = None
    try:
        while con is None:
            try:
                con = duckdb.connect(str(path), read_only=read_only, config=config or {})
            except duckdb.Error as error:
                if not is_lock_error(error):
                    if is_damage_error(error):
                        raise damaged_error(path, str(error).splitlines()[0]) from error
                    raise
                if time.monotonic() > deadline:
                    raise StoreLockedError(
                        f"{path} is held by another process that did not release it within "
                        f"{timeout_s:.0f} s; is it a vlmscope writer? ({error})"
                    ) from error
                if request is None:
                    folder = readers_dir(path)
                    folder.mkdir(exist_ok=True)
                    request = folder / f"{os.getpid()}-{uuid.uuid4().hex}"
                    request.touch()
                time.sleep(_POLL_S)
        check_store_file(path, con)
        ((spans, tables),) = con.execute(
            "SELECT count(*) FILTER (WHERE table_name = 'spans'), count(*) "
            "FROM duckdb_tables() WHERE database_name = current_database()").fetchall()
        # A writer may make a store of a new, empty database; nothing else that lacks spans.
        if not spans and (read_only or tables):
            raise NotAStoreError(f"{path} is a DuckDB database but not a vlmscope store "
                                 "(it has no spans table)")
        yield con
    finally:
        if con is not None:
            con.close()
        if request is not None:
            with contextlib.suppress(FileNotFoundError):
                request.unlink()


@contextlib.contextmanager
def read_connection(
    path: str | os.PathLike[str], *, timeout_s: float = DEFAULT_READ_TIMEOUT_S,
    config: dict[str, Any] | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the store at ``path``, waiting for a writer to hand it over.
    DuckDB itself refuses any write to the store on it; ``config`` adds DuckDB settings
    (:func:`vlmscope.collectors.query.read_only_config` also keeps it from other files).

    Raises :class:`StoreMissingError` (a :class:`FileNotFoundError`) when there is no such
    store, :class:`NotAStoreError` for an empty or foreign file, :class:`StoreDamagedError`
    for a damaged one and :class:`StoreLockedError` when the file stayed locked for
    ``timeout_s`` seconds.
    """
    with _handed_over(Path(path), True, timeout_s, config) as con:
        yield con


@contextlib.contextmanager
def write_connection(
    path: str | os.PathLike[str], *, timeout_s: float = DEFAULT_READ_TIMEOUT_S
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection to an existing store, asking a writing process to hand the
    file over as :func:`read_connection` does (for evaluators writing their results).

    Raises the errors of :func:`read_connection` but :class:`NotAStoreError` for a DuckDB
    database without vlmscope's tables (writers create them).
    """
    with _handed_over(Path(path), False, timeout_s) as con:
        yield con
