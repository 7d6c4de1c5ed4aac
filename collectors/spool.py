"""The durable spool beside a store: span batches the writer could not commit, kept on disk
until a writer can, then committed exactly once.

A writer spools when the store is held by another process or damaged. Each spooled batch is
one entry, a folder ``<db>.spool/<time>-<pid>-<random>-<spans>/`` with one Arrow IPC file per
table (``spans.arrow`` and the per-row tables derived from it), written under a hidden name,
fsynced, then renamed into place, so an entry is either whole or absent, also after a
SIGKILL. Whichever writer next holds the store commits the entries, oldest first, each in
one transaction that drops what the store already holds (same trace and span id; the same
evaluation), and then removes it: an entry committed but not removed (a crash in between)
commits nothing the second time.

This module also holds the exactly-once helpers the collector's ingest uses for the same
reason (:func:`skip_stored`, :func:`without_spans`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
import uuid
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from vlmscope.collectors.convert import SpanBatch

_log = logging.getLogger("vlmscope.spool")

STALE_PARTIAL_S = 3600.0
"""Age in seconds after which a half-written entry (its writer died) is removed."""

_GROUP = "_vlmscope_stored_lookup"
_EVALUATION_KEY = ("run_id", "evaluator", "trace_id", "span_id", "row_id")


def spool_dir(db_path: str | os.PathLike[str]) -> Path:
    """The spool folder of the store at ``db_path``."""
    return Path(str(db_path) + ".spool")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """The spool of one store: put batches in, list them, load and remove them."""

    def __init__(self, db_path: str | os.PathLike[str]) -> None:
        self.folder = spool_dir(db_path)

    def put(self, batch: SpanBatch) -> Path:
        """Write ``batch`` durably (fsynced) as one entry; returns its folder."""
        self.folder.mkdir(parents=True, exist_ok=True)
        name = (f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:12]}-"
                f"{batch.num_spans}")
        partial = self.folder / f".{name}.partial"
        partial.mkdir()
        try:
            tables = {"spans": batch.spans, **batch.derived}
            for table_name, table in tables.items():
                path = partial / f"{table_name}.arrow"
                with pa.OSFile(str(path), "wb") as sink, \
                        pa.ipc.new_file(sink, table.schema) as writer:
                    writer.write_table(table)
                _fsync(path)
            _fsync(partial)
            entry = self.folder / name
            os.rename(partial, entry)
            _fsync(self.folder)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        return entry

    def entries(self) -> list[Path]:
        """The whole entries, oldest first (half-written ones of dead writers are removed
        once :data:`STALE_PARTIAL_S` old)."""
        try:
            found = list(os.scandir(self.folder))
        except OSError:  # none yet, or a path that cannot hold one
            return []
        whole = []
        now = time.time()
        for entry in found:
            if entry.name.startswith("."):
                with contextlib.suppress(OSError):
                    if now - entry.stat().st_mtime > STALE_PARTIAL_S:
                        shutil.rmtree(entry.path, ignore_errors=True)
                continue
            whole.append(Path(entry.path))
        return sorted(whole, key=lambda p: p.name)

    def spooled_spans(self) -> int:
        """Spans in the whole entries (read from their names)."""
        total = 0
        for entry in self.entries():
            with contextlib.suppress(ValueError):
                total += int(entry.name.rsplit("-", 1)[1])
        return total

    @staticmethod
    def load(entry: Path) -> SpanBatch:
        """The batch an entry holds."""
        tables = {}
        for path in entry.glob("*.arrow"):
            with pa.memory_map(str(path)) as source:
                tables[path.stem] = pa.ipc.open_file(source).read_all()
        spans = tables.pop("spans")
        return SpanBatch(spans, tables)

    @staticmethod
    def remove(entry: Path) -> None:
        """Remove a committed entry."""
        shutil.rmtree(entry, ignore_errors=True)


def without_spans(batch: SpanBatch, dropped: set[tuple[str, str]]) -> SpanBatch:
    """``batch`` without the spans keyed (trace id, span id) in ``dropped`` and the
    per-row records derived from them (evaluations are deduplicated on insert instead)."""

    def keep(table: pa.Table) -> pa.Table:
        mask = [(t, s) not in dropped for t, s in zip(
            table.column("trace_id").to_pylist(), table.column("span_id").to_pylist(),
            strict=True)]
        return table.filter(pa.array(mask, pa.bool_()))

    derived = {name: table if name == "evaluations" else keep(table)
               for name, table in batch.derived.items()}
    return SpanBatch(keep(batch.spans), {k: v for k, v in derived.items() if v.num_rows})


def skip_stored(con: duckdb.DuckDBPyConnection, batch: SpanBatch) -> SpanBatch:
    """Inside the write transaction: drop the spans the store already holds, and the
    evaluations it already records or that repeat within ``batch``."""
    if batch.num_spans:
        bounds = pc.min_max(batch.spans.column("start_time").cast(pa.int64())).as_py()
        con.register(_GROUP, batch.spans.select(["trace_id", "span_id"]))
        try:
            stored = con.execute(
                f"SELECT s.trace_id, s.span_id FROM spans s SEMI JOIN {_GROUP} g "
                "ON s.trace_id = g.trace_id AND s.span_id = g.span_id "
                "WHERE s.start_time BETWEEN make_timestamp_ns($lo) AND make_timestamp_ns($hi)",
                {"lo": bounds["min"], "hi": bounds["max"]},
            ).fetchall()
        finally:
            con.unregister(_GROUP)
        if stored:
            batch = without_spans(batch, set(stored))
    evaluations = batch.derived.get("evaluations")
    if evaluations is not None:
        same = " AND ".join(f"e.{c} IS NOT DISTINCT FROM g.{c}" for c in _EVALUATION_KEY)
        con.register(_GROUP, evaluations)
        try:
            fresh = con.sql(
                f"SELECT * FROM {_GROUP} g WHERE NOT EXISTS "
                f"(SELECT 1 FROM evaluations e WHERE {same}) "
                f"QUALIFY row_number() OVER (PARTITION BY {', '.join(_EVALUATION_KEY)}) = 1"
            ).to_arrow_table()
        finally:
            con.unregister(_GROUP)
        derived = dict(batch.derived)
        if fresh.num_rows:
            derived["evaluations"] = fresh.cast(evaluations.schema)
        else:
            del derived["evaluations"]
        batch = SpanBatch(batch.spans, derived)
    return batch
