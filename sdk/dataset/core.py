"""``vlmscope.Dataset``: a named cohort of rows (image + ground truth) that pipelines run over."""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vlmscope.labels import object_names
from vlmscope.unicode_text import valid_text

if TYPE_CHECKING:
    from vlmscope.dataset.runner import DatasetRun
    from vlmscope.evaluators.base import Evaluator

RECORD_KEYS = frozenset({"id", "image", "instruction", "instruction_kind", "expected", "objects",
                         "caption", "tags"})
"""Keys a record given to :meth:`Dataset.from_records` may have (``id`` and ``image`` needed)."""

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
"""File suffixes :meth:`Dataset.from_folder` takes for images when there is no labels file."""

LIST_SEPARATOR = "|"
"""Separator of ``objects`` and ``tags`` in a CSV labels file (``"cat|sofa"``)."""


@dataclass(frozen=True)
class DatasetRow:
    """One row of a dataset: what the pipeline gets as ``row``.

    ``image`` is what the row was built from (path, bytes, PIL image, array or tensor);
    during :meth:`Dataset.run` the pipeline gets it unchanged, except that a path or encoded
    bytes are loaded as an RGB PIL image (see :mod:`vlmscope.dataset.images`).
    ``source_row_id``, ``corruption`` and ``severity`` are set on rows derived by
    :func:`vlmscope.cohorts.perturb` (the clean source row has ``corruption`` None).
    """

    id: str
    image: Any
    instruction: str | None = None
    expected: str | None = None
    objects: tuple[str, ...] | None = None
    caption: str | None = None
    tags: tuple[str, ...] = ()
    source_row_id: str | None = None
    corruption: str | None = None
    severity: int | None = None
    instruction_kind: str | None = None


def _row_from_record(record: Mapping[str, Any], position: int) -> DatasetRow:
    unknown = set(record) - RECORD_KEYS
    if unknown:
        raise ValueError(f"record {position} has unknown key(s) {', '.join(sorted(unknown))}; "
                         f"a record has id, image and any of instruction, instruction_kind, "
                         "expected, objects, "
                         "caption, tags")
    if record.get("id") is None or record.get("image") is None:
        raise ValueError(f"record {position} needs an 'id' and an 'image'")
    objects = record.get("objects")

    def text(value: Any) -> str:
        # A lone surrogate (which UTF-8 cannot store) becomes U+FFFD, as in the spans.
        return valid_text(str(value))

    def optional(key: str) -> str | None:
        return None if record.get(key) is None else text(record[key])

    return DatasetRow(
        id=text(record["id"]),
        image=record["image"],
        instruction=optional("instruction"),
        expected=optional("expected"),
        objects=None if objects is None else tuple(text(o) for o in object_names(objects)),
        caption=optional("caption"),
        tags=tuple(text(t) for t in record.get("tags") or ()),
        instruction_kind=_instruction_kind(record.get("instruction_kind"), position),
    )


def _instruction_kind(value: Any, position: int) -> str | None:
    from vlmscope.conventions import INSTRUCTION_KINDS

    if value is None or value == "":
        return None
    if value not in INSTRUCTION_KINDS:
        raise ValueError(f"record {position} has instruction_kind {value!r}; use one of "
                         f"{', '.join(INSTRUCTION_KINDS)}")
    return str(value)


class Dataset:
    """A named cohort: rows with an image and their ground truth, kept in the DuckDB store.

    Build one with :meth:`from_records` or :meth:`from_folder`, register evaluators with
    :meth:`add_evaluation` and run a pipeline over every row with :meth:`run`. Row ids are
    unique within a dataset; they are what :mod:`vlmscope.regression` pairs runs on.

    >>> ds = vlmscope.Dataset.from_records("night", [{"id": "r1", "image": "a.png",
    ...                                               "expected": "cat"}])  # doctest: +SKIP
    >>> result = ds.run(my_pipeline, name="resnet50-v7")                      # doctest: +SKIP
    """

    def __init__(self, name: str, rows: Iterable[DatasetRow] = (), *,
                 derived_from: str | None = None) -> None:
        if not name or not str(name).strip():
            raise ValueError("a dataset needs a non-empty name")
        self.name = str(name)
        self.rows: tuple[DatasetRow, ...] = tuple(rows)
        self.derived_from = derived_from
        self.evaluators: list[Evaluator] = []
        seen: set[str] = set()
        duplicates = sorted({r.id for r in self.rows if r.id in seen or seen.add(r.id)})
        if duplicates:
            raise ValueError(f"row ids must be unique within a dataset; repeated: "
                             f"{', '.join(duplicates[:5])}")

    # -- building ------------------------------------------------------------------------

    @classmethod
    def from_records(cls, name: str, records: Iterable[Mapping[str, Any]]) -> Dataset:
        """A dataset from dicts with ``id``, ``image`` and any of ``instruction``,
        ``instruction_kind`` (what the instruction asks: name, list, count, probe or
        describe), ``expected``, ``objects`` (a list), ``caption`` and ``tags`` (a list)."""
        return cls(name, (_row_from_record(r, i) for i, r in enumerate(records)))

    @classmethod
    def from_folder(cls, name: str, path: str | os.PathLike[str],
                    labels_file: str | os.PathLike[str] | None = None, *,
                    classes_from_folders: bool = False,
                    instruction: str | None = None) -> Dataset:
        """A dataset from a folder of images and a labels file (CSV or JSONL).

        Each labels entry names its image file (column ``file``, ``image`` or ``path``,
        relative to ``path``) and may give ``id`` (default: the file name relative to
        ``path``), ``expected`` (or ``label``), ``instruction``, ``objects``, ``caption`` and
        ``tags``; in a CSV, ``objects`` and ``tags`` are separated by ``|``. Without a labels
        file every image in the folder (sorted, recursively) becomes a row, unlabelled; with
        ``classes_from_folders`` (the layout of torchvision's ``ImageFolder``:
        ``path/<class>/<image>``) its class folder is its expected answer and its one object.
        ``instruction`` is every row's instruction where its entry gives none.
        """
        folder = Path(path)
        if not folder.is_dir():
            raise FileNotFoundError(f"no image folder at {folder}")
        if labels_file is None:
            files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            if not classes_from_folders:
                return cls(name, (DatasetRow(id=p.relative_to(folder).as_posix(), image=str(p),
                                             instruction=instruction) for p in files))
            loose = [p.name for p in files if p.parent == folder]
            if loose:
                raise ValueError(
                    f"classes_from_folders reads each image's class from its folder, but "
                    f"{len(loose)} image(s) lie in {folder} itself (e.g. {loose[0]!r}): move "
                    "them into a class folder, or give a labels file")
            return cls.from_records(name, ({
                "id": p.relative_to(folder).as_posix(), "image": str(p),
                "expected": p.relative_to(folder).parts[0],
                "objects": [p.relative_to(folder).parts[0]], "instruction": instruction,
            } for p in files))
        if classes_from_folders:
            raise ValueError("classes_from_folders reads the classes from the folders; it "
                             "takes no labels file")
        labels = Path(labels_file)
        if not labels.is_absolute() and not labels.exists():
            labels = folder / labels
        entries = list(_read_labels(labels))
        records = []
        for i, entry in enumerate(entries):
            file = next((entry[k] for k in ("file", "image", "path") if entry.get(k)), None)
            if file is None:
                raise ValueError(f"{labels} entry {i + 1} names no image (column file, image "
                                 "or path)")
            records.append({
                "id": entry.get("id") or Path(file).as_posix(),
                "image": str(folder / file),
                "instruction": entry.get("instruction") or instruction,
                "instruction_kind": entry.get("instruction_kind") or None,
                "expected": entry.get("expected", entry.get("label")),
                "objects": _listed(entry.get("objects")),
                "caption": entry.get("caption") or None,
                "tags": _listed(entry.get("tags")),
            })
        return cls.from_records(name, records)

    def add_evaluation(self, evaluator: Evaluator | str) -> Dataset:
        """Register an evaluator (an instance, or a name from
        :data:`vlmscope.evaluators.EVALUATORS`) to judge every run; returns the dataset."""
        from vlmscope.evaluators.base import Evaluator
        from vlmscope.evaluators.runner import resolve_evaluators

        if isinstance(evaluator, str):
            (evaluator_class,) = resolve_evaluators([evaluator])
            evaluator = evaluator_class()
        if not isinstance(evaluator, Evaluator):
            raise TypeError(f"add_evaluation takes an Evaluator or its name, got "
                            f"{type(evaluator).__name__}")
        if any(e.name == evaluator.name for e in self.evaluators):
            raise ValueError(f"an evaluator named {evaluator.name!r} is already registered")
        self.evaluators.append(evaluator)
        return self

    # -- using ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[DatasetRow]:
        return iter(self.rows)

    def __repr__(self) -> str:
        return f"Dataset({self.name!r}, {len(self.rows)} rows)"

    def row(self, row_id: str) -> DatasetRow:
        """The row with id ``row_id`` (:class:`KeyError` when there is none)."""
        for row in self.rows:
            if row.id == row_id:
                return row
        raise KeyError(f"dataset {self.name!r} has no row {row_id!r}")

    def fingerprint(self, image_hashes: Sequence[str | None]) -> str:
        """SHA-256 (hex) of the rows in order: ids, image content hashes, ground truth and
        provenance. Two datasets with equal fingerprints hold the same cohort."""
        digest = hashlib.sha256()
        for row, image_hash in zip(self.rows, image_hashes, strict=True):
            digest.update(json.dumps(
                [row.id, image_hash, row.instruction, row.expected, row.objects, row.caption,
                 row.tags, row.source_row_id, row.corruption, row.severity]).encode())
            digest.update(b"\n")
        return digest.hexdigest()

    def save(self, db: str | os.PathLike[str], *, store_images: bool = False) -> None:
        """Write the dataset to the store ``db`` (rows, image hashes, thumbnails; the full
        images too with ``store_images``). Saving an identical dataset again does nothing;
        a different dataset under a stored name raises :class:`ValueError`."""
        from vlmscope.dataset.store import save_dataset, store_connection

        with store_connection(db) as con:
            save_dataset(con, self, store_images=store_images)

    @classmethod
    def load(cls, db: str | os.PathLike[str], name: str) -> Dataset:
        """The dataset ``name`` as stored in ``db``. A row's image is its stored file path,
        else its stored full image (bytes), else None (the row then fails to decode when
        run)."""
        from vlmscope.collectors.store import read_connection
        from vlmscope.dataset.store import load_dataset

        with read_connection(db) as con:
            return load_dataset(con, name)

    def run(self, pipeline: Callable[[Any], Any], *, name: str,
            batch_size: int | None = None, progress: bool = True) -> DatasetRun:
        """Run ``pipeline`` over every row under tracing and judge the run.

        Each row is traced with :func:`vlmscope.trace_row` (run ``name``, cohort = this
        dataset's name, its ground truth) and the pipeline is called with the row, its image
        as given (a path or encoded bytes loaded as an RGB PIL image); what it returns (the
        answer text) is recorded on a final language-head span of the row. With
        ``batch_size``, rows go in lists of that size to ``pipeline(rows)``, which returns
        one answer per row (:func:`vlmscope.trace_batch`).
        A row whose image does not decode, or whose pipeline call raises, is recorded as
        failed with the error, and the run goes on. Then the registered evaluators (default:
        ``GroundTruthMatch()``) judge the run's rows, and the run is registered under
        ``name`` for ``vlmscope diff``. vlmscope must be configured onto a DuckDB store
        (:func:`vlmscope.configure`); the run's name must be new in that store.
        """
        from vlmscope.dataset.runner import run_dataset

        return run_dataset(self, pipeline, name=name, batch_size=batch_size,
                           progress=progress)


def _read_labels(path: Path) -> Iterator[dict[str, Any]]:
    if not path.is_file():
        raise FileNotFoundError(f"no labels file at {path}")
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8") as handle:
            yield from csv.DictReader(handle)
    elif path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    yield json.loads(line)
    else:
        raise ValueError(f"labels file {path} must be .csv or .jsonl")


def _listed(value: Any) -> list[str] | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return [part.strip() for part in value.split(LIST_SEPARATOR) if part.strip()]
    return [str(v) for v in value]


__all__ = ["Dataset", "DatasetRow"]
