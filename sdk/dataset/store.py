"""Datasets in the DuckDB store: opening the store beside a tracing writer, saving, loading.

A process that traces holds the store through its exporter's writer. DuckDB shares one
database instance between the connections of a process, so the dataset code opens its own
connection in-process (taking the file over from another process the way ``vlmscope eval``
does) and writes next to the span writer: each side appends to its own tables.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa

from vlmscope.collectors.schema import migrate
from vlmscope.dataset.images import ImageDecodeError, decode_image, stored_bytes, thumbnail_png
from vlmscope.images import image_sha256

if TYPE_CHECKING:
    from vlmscope.dataset.core import Dataset

_ROWS = "_vlmscope_dataset_rows"
_IMAGES = "_vlmscope_dataset_images"

DATASET_ROW_SCHEMA = pa.schema([
    ("dataset", pa.string()), ("row_id", pa.string()), ("position", pa.int32()),
    ("image_sha256", pa.string()), ("image_uri", pa.string()), ("thumbnail", pa.binary()),
    ("image_error", pa.string()), ("instruction", pa.string()), ("expected", pa.string()),
    ("objects", pa.list_(pa.string())), ("caption", pa.string()),
    ("tags", pa.list_(pa.string())), ("source_row_id", pa.string()),
    ("corruption", pa.string()), ("severity", pa.int32()), ("instruction_kind", pa.string()),
])
"""Arrow schema of ``dataset_rows``, column for column."""


def configured_store() -> Path:
    """The DuckDB file vlmscope is configured to trace into; :class:`ValueError` otherwise."""
    from vlmscope.collectors.exporter import DuckDBSpanExporter
    from vlmscope.tracing import configured_exporter

    exporter = configured_exporter()
    if not isinstance(exporter, DuckDBSpanExporter):
        raise ValueError("Dataset.run needs vlmscope to trace into a DuckDB store: call "
                         "vlmscope.configure(db='vlmscope.duckdb') first")
    return Path(exporter.path)


def default_store(db: str | os.PathLike[str] | None = None) -> Path:
    """``db`` when given, else the configured store, else ``$VLMSCOPE_DB`` or the default."""
    from vlmscope.settings import default_db

    if db is not None:
        return Path(db)
    try:
        return configured_store()
    except ValueError:
        return Path(default_db())


@contextlib.contextmanager
def store_connection(db: str | os.PathLike[str]) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write, migrated connection to the store ``db`` (created when missing), shared
    in-process with a tracing writer, taken over from another process when needed."""
    from vlmscope.collectors.store import write_connection

    path = Path(db)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        duckdb.connect(str(path)).close()
    with write_connection(path) as con:
        migrate(con)
        yield con


@contextlib.contextmanager
def reading_connection(db: str | os.PathLike[str] | None = None
                       ) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection for reading the store ``db`` (see :func:`default_store`): read-only,
    except for the store this process traces into. DuckDB opens a file once per process
    with one configuration, so that one is shared with the span writer (read-write)."""
    from vlmscope.collectors.store import read_connection, write_connection

    path = default_store(db)
    try:
        traced = configured_store().resolve() == path.resolve()
    except ValueError:
        traced = False
    with (write_connection if traced else read_connection)(path) as con:
        yield con


def dataset_tables(dataset: Dataset, store_images: bool) -> tuple[pa.Table, pa.Table]:
    """``dataset``'s rows as a ``dataset_rows`` table and its images (stored bytes when
    ``store_images``) as a ``dataset_images`` table."""
    rows: dict[str, list] = {name: [] for name in DATASET_ROW_SCHEMA.names}
    images: dict[str, bytes] = {}
    for position, row in enumerate(dataset.rows):
        uri = os.fspath(row.image) if isinstance(row.image, str | os.PathLike) else None
        digest = thumb = error = None
        try:
            digest = image_sha256(row.image)
            decoded = decode_image(row.image)
            thumb = thumbnail_png(decoded)
            if store_images:
                images.setdefault(digest, stored_bytes(row.image, decoded))
        except (ImageDecodeError, OSError, TypeError) as failure:
            error = f"{type(failure).__name__}: {failure}"
        values = (dataset.name, row.id, position, digest, uri, thumb, error, row.instruction,
                  row.expected, None if row.objects is None else list(row.objects),
                  row.caption, list(row.tags), row.source_row_id, row.corruption, row.severity,
                  row.instruction_kind)
        for name, value in zip(DATASET_ROW_SCHEMA.names, values, strict=True):
            rows[name].append(value)
    image_table = pa.table({"image_sha256": pa.array(list(images), pa.string()),
                            "data": pa.array(list(images.values()), pa.binary())})
    return pa.table(rows, schema=DATASET_ROW_SCHEMA), image_table


def save_dataset(con: duckdb.DuckDBPyConnection, dataset: Dataset, *,
                 store_images: bool = False) -> str:
    """Write ``dataset`` on ``con`` in one transaction (one Arrow insert per table); return
    its fingerprint. An identical stored dataset is left as it is (images are added when
    asked); another dataset under the same name raises :class:`ValueError`."""
    table, images = dataset_tables(dataset, store_images)
    fingerprint = dataset.fingerprint(table.column("image_sha256").to_pylist())
    stored = con.execute("SELECT fingerprint, num_rows FROM datasets WHERE name = ?",
                         [dataset.name]).fetchall()
    if stored and stored[0][0] != fingerprint:
        raise ValueError(
            f"the store already holds a different dataset named {dataset.name!r} "
            f"({stored[0][1]} rows, fingerprint {stored[0][0][:12]}; this one has "
            f"{len(dataset)} rows, fingerprint {fingerprint[:12]}): runs over it would not be "
            "comparable; give this dataset another name")
    con.execute("BEGIN TRANSACTION")
    try:
        if not stored:
            con.execute("INSERT INTO datasets VALUES (?, ?, ?, ?, ?)", [
                dataset.name, fingerprint, len(dataset), dataset.derived_from,
                dt.datetime.now(dt.UTC).replace(tzinfo=None)])
            con.register(_ROWS, table)
            con.execute(f"INSERT INTO dataset_rows SELECT * FROM {_ROWS}")
            con.unregister(_ROWS)
        if images.num_rows:
            con.register(_IMAGES, images)
            con.execute(f"INSERT INTO dataset_images SELECT * FROM {_IMAGES} i WHERE NOT "
                        "EXISTS (SELECT 1 FROM dataset_images d "
                        "WHERE d.image_sha256 = i.image_sha256)")
            con.unregister(_IMAGES)
        con.execute("COMMIT")
    except Exception:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise
    return fingerprint


def load_dataset(con: duckdb.DuckDBPyConnection, name: str) -> Dataset:
    """The stored dataset ``name`` (see :meth:`vlmscope.Dataset.load`)."""
    from vlmscope.dataset.core import Dataset, DatasetRow

    found = con.execute("SELECT derived_from FROM datasets WHERE name = ?", [name]).fetchall()
    if not found:
        names = [n for (n,) in con.execute("SELECT name FROM datasets ORDER BY 1").fetchall()]
        raise KeyError(f"no dataset {name!r} in the store; stored: {', '.join(names) or 'none'}")
    rows = con.execute(
        "SELECT r.row_id, r.image_uri, i.data, r.instruction, r.expected, "
        "r.objects, r.caption, r.tags, r.source_row_id, r.corruption, r.severity, "
        "r.instruction_kind "
        "FROM dataset_rows r LEFT JOIN dataset_images i USING (image_sha256) "
        "WHERE r.dataset = ? ORDER BY r.position", [name]).fetchall()
    return Dataset(name, (
        DatasetRow(id=row_id, image=uri if uri is not None else data,
                   instruction=instruction, expected=expected,
                   objects=None if objects is None else tuple(objects), caption=caption,
                   tags=tuple(tags or ()), source_row_id=source, corruption=corruption,
                   severity=severity, instruction_kind=kind)
        for row_id, uri, data, instruction, expected, objects, caption, tags, source, corruption,
        severity, kind in rows), derived_from=found[0][0])
