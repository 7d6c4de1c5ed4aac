"""The store as Parquet shards under one dataset root, written by many processes at once.

The layout is that of ``vlmscope export --format parquet`` (:mod:`.parquet`): one folder per
table, span tables partitioned ``date=YYYY-MM-DD/service=NAME/``. Each writer (a Ray actor's
batch of rows, an evaluation task's partition) writes its own files, all named after its
shard, then commits the shard by writing ``_shards/<shard>.json``, which lists those files.
Readers read the files of committed shards only.

Exactly once: a shard's name is a hash of what it holds (the run and the ids of its rows; an
evaluation run and its partition), so a task retried after a worker failure writes the same
file names again, replacing the files of the failed attempt, and commits a manifest naming
its own files only. Files of an attempt that died before its commit are never read, even
when the retry wrote elsewhere (a batch retried after midnight lands under another date).
A root without ``_shards/`` (a plain export) is read file by file, as the export wrote it.
Each run writes the ``dataset_rows`` of the rows it ran; a reader keeps one per (dataset,
row id).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from vlmscope.collectors.parquet import (
    DATASET_TABLES,
    SPAN_TABLES,
    WRITTEN_TABLES,
    open_parquet_files,
)

MANIFESTS = "_shards"
"""Folder of the root holding one manifest (``<shard>.json``) per committed shard."""

EXPORT_SHARD = "export"
"""The shard a plain export's files are committed as when shards are first written beside
them."""

MANIFEST_READERS = 32
"""Manifests read at once (threads)."""

"""Tables of ``Dataset`` runs a root may hold (for ``vlmscope diff --parquet``)."""

SPAN_PARTITION = ("date", "service")
"""Hive partition columns of the span tables and of ``evaluations``."""


def shard_name(*parts: str) -> str:
    """The name of the shard holding ``parts`` (e.g. a run name and its row ids): 32 hex
    digits of their SHA-256, the same every time the same rows are written."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\x1f")
    return digest.hexdigest()[:32]


def _filesystem(root: str | os.PathLike[str], filesystem: Any) -> tuple[pafs.FileSystem, str]:
    if filesystem is None:
        text = os.fspath(root)
        if "://" in text:
            return pafs.FileSystem.from_uri(text)
        return pafs.LocalFileSystem(), os.path.abspath(text)
    path = os.fspath(root)
    if isinstance(filesystem, pafs.FileSystem):
        return filesystem, path
    if hasattr(filesystem, "protocol") and hasattr(filesystem, "open"):  # fsspec
        return pafs.PyFileSystem(pafs.FSSpecHandler(filesystem)), path
    raise TypeError(f"filesystem must be a pyarrow.fs.FileSystem or an fsspec filesystem, "
                    f"got {type(filesystem).__name__}")


@dataclass(frozen=True)
class ShardRoot:
    """A dataset root (a local folder, a URI pyarrow reads, or a path on ``filesystem``, a
    pyarrow or fsspec filesystem) that shards are written to and read from. Picklable: Ray
    tasks get it as an argument."""

    root: str
    filesystem: Any = None

    def __post_init__(self) -> None:
        # A relative local path means the caller's folder, not a Ray worker's.
        if self.filesystem is None and "://" not in os.fspath(self.root):
            object.__setattr__(self, "root", os.path.abspath(os.fspath(self.root)))

    @property
    def _fs(self) -> tuple[pafs.FileSystem, str]:
        return _filesystem(self.root, self.filesystem)

    def write_table(self, table_name: str, table: pa.Table, shard: str,
                    partition_by: Sequence[str] = ()) -> list[str]:
        """Write ``table`` as ``<table_name>/<k=v>/.../<shard>.parquet``, one file per value
        of the ``partition_by`` columns (left out of the files, Hive style); returns the
        paths written, relative to the root. Each file appears whole or not at all."""
        fs, base = self._fs
        written = []
        if partition_by and table.num_rows:
            keys = table.select(list(partition_by)).group_by(list(partition_by)).aggregate([])
            parts = []
            for key in keys.to_pylist():
                mask = None
                for column, value in key.items():
                    hit = (pc.is_null(table[column]) if value is None
                           else pc.equal(table[column], value))
                    mask = hit if mask is None else pc.and_(mask, hit)
                folder = "/".join(f"{c}={key[c]}" for c in partition_by)
                parts.append((folder, table.filter(mask).drop_columns(list(partition_by))))
        else:
            parts = [("", table)]
        for folder, part in parts:
            relative = posixpath.join(table_name, folder, f"{shard}.parquet")
            target = posixpath.join(base, relative)
            fs.create_dir(posixpath.dirname(target), recursive=True)
            temporary = f"{target}.{uuid.uuid4().hex}.tmp"
            pq.write_table(part, temporary, filesystem=fs)
            fs.move(temporary, target)
            written.append(relative)
        return written

    def commit(self, shard: str, files: Mapping[str, Sequence[str]], **facts: Any) -> None:
        """Commit ``shard``: its manifest lists ``files`` (table -> paths relative to the
        root) and ``facts`` (JSON values); it replaces any earlier commit of the shard."""
        fs, base = self._fs
        target = posixpath.join(base, MANIFESTS, f"{shard}.json")
        fs.create_dir(posixpath.dirname(target), recursive=True)
        temporary = f"{target}.{uuid.uuid4().hex}.tmp"
        with fs.open_output_stream(temporary) as out:
            out.write(orjson.dumps({"shard": shard, "files": dict(files), **facts}))
        fs.move(temporary, target)

    def adopt_export(self) -> None:
        """Commit a plain export's files as one shard (nothing when shards are committed
        already), so that shards written beside them, such as evaluations written back,
        do not hide them: a root with manifests is read from its manifests alone."""
        if not self.manifests():
            files = self._export_files()
            if files:
                self.commit(EXPORT_SHARD, files, kind="export")

    def manifests(self) -> dict[str, dict[str, Any]]:
        """Every committed shard's manifest, by shard name (empty for a plain export)."""
        fs, base = self._fs
        selector = pafs.FileSelector(posixpath.join(base, MANIFESTS), allow_not_found=True)
        paths = [info.path for info in fs.get_file_info(selector)
                 if info.is_file and info.base_name.endswith(".json")]

        def read(path: str) -> dict[str, Any]:
            with fs.open_input_stream(path) as handle:
                return orjson.loads(handle.read())

        # On an object store each read waits tens of ms: thousands of shards read in turn
        # would keep every worker waiting.
        with ThreadPoolExecutor(MANIFEST_READERS) as pool:
            return {manifest["shard"]: manifest for manifest in pool.map(read, paths)}

    def is_sharded(self) -> bool:
        """Whether the root was written in shards (it has committed manifests)."""
        return bool(self.manifests())

    def _fsspec(self) -> Any:
        """The fsspec filesystem DuckDB reads a remote root through: the one given, or the
        one fsspec opens for the root's URL; None for a local root."""
        if self.filesystem is not None and hasattr(self.filesystem, "protocol"):
            return self.filesystem
        if isinstance(self._fs[0], pafs.LocalFileSystem):
            return None
        try:
            import fsspec

            return fsspec.core.url_to_fs(self.root)[0]
        except (ImportError, ValueError) as error:
            raise ValueError(f"DuckDB reads {self.root} through fsspec: install fsspec and "
                             "the package for its protocol (s3fs, gcsfs, ...), or pass an "
                             "fsspec filesystem as filesystem=") from error

    def _readable(self, relative: str, remote: Any) -> str:
        """The path DuckDB reads ``relative`` by (local, or on the fsspec ``remote``)."""
        path = posixpath.join(self._fs[1], relative)
        if remote is None:
            return path
        protocol = remote.protocol
        protocol = protocol[0] if isinstance(protocol, tuple | list) else protocol
        return f"{protocol}://{path.lstrip('/')}"

    def _export_files(self) -> dict[str, list[str]]:
        fs, base = self._fs
        found: dict[str, list[str]] = {}
        for table in (*SPAN_TABLES, *WRITTEN_TABLES, *DATASET_TABLES):
            selector = pafs.FileSelector(posixpath.join(base, table), recursive=True,
                                         allow_not_found=True)
            files = sorted(posixpath.relpath(i.path, base) for i in fs.get_file_info(selector)
                           if i.is_file and i.base_name.endswith(".parquet"))
            if files:
                found[table] = files
        return found

    def table_files(self, manifests: Mapping[str, Mapping[str, Any]] | None = None
                    ) -> dict[str, list[str]]:
        """Files (relative to the root) of every table, from the committed shards'
        manifests (all of them, or ``manifests``), or, in a plain export, every file."""
        if manifests is None:
            manifests = self.manifests()
            if not manifests:
                return self._export_files()
        files: dict[str, list[str]] = {}
        for manifest in manifests.values():
            for table, paths in manifest["files"].items():
                files.setdefault(table, []).extend(paths)
        return {table: sorted(set(paths)) for table, paths in files.items()}

    def partitions(self, rows_per_partition: int | None = None,
                   run: str | None = None) -> list[dict[str, list[str]]]:
        """The root's span-table files cut into partitions that each hold whole traces
        (so each evaluates on its own): committed row shards (of run ``run`` only, when
        given), as many together as make ``rows_per_partition`` rows (default: one shard
        each), or in a plain export, one per ``date=/service=`` folder. Each maps a span
        table to its relative paths."""
        manifests = self.manifests()
        if manifests:
            groups: list[dict[str, list[str]]] = []
            rows = 0
            for _, manifest in sorted(manifests.items()):
                files = manifest["files"]
                if not files.get("spans") or run is not None and manifest.get("run") != run:
                    continue
                # A shard that does not say its rows makes a partition of its own.
                counted = "rows" in manifest
                if (not groups or rows_per_partition is None or rows >= rows_per_partition
                        or not counted):
                    groups.append({})
                    rows = 0
                rows += int(manifest["rows"]) if counted else rows_per_partition or 0
                for table, paths in files.items():
                    if table in SPAN_TABLES:
                        groups[-1].setdefault(table, []).extend(paths)
            return [{t: sorted(p) for t, p in g.items()} for g in groups]
        folders: dict[str, dict[str, list[str]]] = {}
        for table, paths in self._export_files().items():
            if table not in SPAN_TABLES:
                continue
            for path in paths:
                folder = posixpath.dirname(posixpath.relpath(path, table))
                folders.setdefault(folder, {}).setdefault(table, []).append(path)
        return [folders[f] for f in sorted(folders) if folders[f].get("spans")]

    def connect(self, files: Mapping[str, Sequence[str]] | None = None, *,
                threads: int | None = None) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection (on ``threads`` threads, default all) on which the
        root (or just ``files``, table -> relative paths) reads like a store: span tables as
        views on the files, the evaluation and dataset tables loaded.
        :class:`FileNotFoundError` when there are no spans."""
        files = self.table_files() if files is None else files
        if not files.get("spans"):
            raise FileNotFoundError(f"no vlmscope Parquet in {self.root} (expected "
                                    "spans/date=.../service=.../*.parquet)")
        return _connect(self.readable_files(files), self._fsspec(), threads)

    def readable_files(self, files: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
        """``files`` (table -> paths relative to the root) as the paths DuckDB reads."""
        remote = self._fsspec()
        return {table: [self._readable(p, remote) for p in paths]
                for table, paths in files.items()}


def _connect(readable: Mapping[str, Sequence[str]], remote: Any,
             threads: int | None) -> duckdb.DuckDBPyConnection:
    con = open_parquet_files(readable, written_tables=(*WRITTEN_TABLES, *DATASET_TABLES),
                             filesystem=remote,
                             config=None if threads is None else {"threads": threads})
    # Every run over a dataset writes its rows' dataset_rows: keep one of each.
    con.execute("DELETE FROM dataset_rows WHERE rowid NOT IN "
                "(SELECT min(rowid) FROM dataset_rows GROUP BY dataset, row_id)")
    return con


def open_root(root: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
              filesystem: Any = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection on which the dataset root ``root`` (sharded by Ray runs, or a
    plain ``vlmscope export --format parquet`` folder), or several roots together (on one
    filesystem; e.g. two runs' for ``vlmscope diff``), read like one store."""
    roots = [root] if isinstance(root, str | os.PathLike) else list(root)
    if not roots:
        raise ValueError("give at least one dataset root")
    readable: dict[str, list[str]] = {}
    remote = None
    for each in roots:
        shard_root = ShardRoot(os.fspath(each), filesystem)
        files = shard_root.table_files()
        if not files.get("spans"):
            raise FileNotFoundError(f"no vlmscope Parquet in {each} (expected "
                                    "spans/date=.../service=.../*.parquet)")
        remote = remote or shard_root._fsspec()
        for table, paths in shard_root.readable_files(files).items():
            readable.setdefault(table, []).extend(paths)
    return _connect(readable, remote, None)
