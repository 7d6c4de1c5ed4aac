"""``run_on_ray``: a dataset through the user's pipeline in a Ray Data actor pool, traced,
each actor writing its own Parquet shards, then scored in Ray tasks.

Every actor builds the pipeline once (``pipeline_factory()``: models loaded and instrumented
there), traces into a DuckDB file of its own, and after each batch writes the batch's traces
as one shard under the dataset root (:mod:`vlmscope.collectors.shards`) -- no single writer
in the way. The shard of a batch is named after the run and the batch's row ids, so a batch
retried after a worker died rewrites the same shard: every row is in the result once.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa

from vlmscope.collectors.parquet import SPAN_TABLES, span_table_query
from vlmscope.collectors.shards import SPAN_PARTITION, ShardRoot, shard_name

if TYPE_CHECKING:
    from vlmscope.dataset.core import Dataset, DatasetRow
    from vlmscope.evaluators.base import Evaluator

DEFAULT_BATCH_SIZE = 64
"""Rows per pipeline call (and per shard) unless ``batch_size`` says otherwise."""

ROW_KEYS = ("id", "image", "instruction", "instruction_kind", "expected", "objects", "caption",
            "tags", "source_row_id", "corruption", "severity", "position")
"""Columns a Ray Dataset of rows may have (``id`` and ``image`` needed; ``image`` as encoded
bytes, a path every node reads, or an array): :class:`vlmscope.DatasetRow`'s fields plus
``position`` (the row's place in the dataset)."""

_TRACES = "_vlmscope_shard_traces"
_BATCH = "_vlmscope_shard_rows"


@dataclass(frozen=True)
class RayRun:
    """What :func:`run_on_ray` did: the run's and dataset's names, the root, rows traced and
    failed (``failures``: row id -> error), the shards written, the evaluation run id and
    summary (``summary['evaluations']`` holds each evaluator's) and any ``warnings``."""

    name: str
    dataset: str
    root: str
    rows: int
    failed: int
    failures: dict[str, str]
    shards: int
    eval_run_id: str
    summary: dict[str, Any]
    warnings: list[str]


def _row_from_mapping(record: Mapping[str, Any]) -> DatasetRow:
    from vlmscope.dataset.core import DatasetRow

    objects, tags = record.get("objects"), record.get("tags")
    return DatasetRow(
        id=str(record["id"]), image=record["image"], instruction=record.get("instruction"),
        expected=record.get("expected"),
        objects=None if objects is None else tuple(str(o) for o in objects),
        caption=record.get("caption"), tags=tuple(str(t) for t in tags or ()),
        source_row_id=record.get("source_row_id"), corruption=record.get("corruption"),
        severity=record.get("severity"), instruction_kind=record.get("instruction_kind"))


class PipelineActor:
    """One actor of the pool: the pipeline built once, traced into the actor's own DuckDB
    file, each batch written as one committed shard. Ray Data calls it with a batch of rows
    (a :class:`pyarrow.Table` with :data:`ROW_KEYS` columns) and gets back one outcome row
    per input row: ``row_id``, ``error`` (None when it ran) and ``shard``."""

    def __init__(self, pipeline_factory: Callable[[], Callable[[Any], Any]], root: ShardRoot,
                 run: str, cohort: str, service_name: str | None,
                 configure_options: Mapping[str, Any]) -> None:
        import ray

        import vlmscope

        self._ray = ray
        self._folder = tempfile.mkdtemp(prefix="vlmscope-actor-")
        self._db = os.path.join(self._folder, "traces.duckdb")
        vlmscope.configure(db=self._db, service_name=service_name, **configure_options)
        self._pipeline = pipeline_factory()
        self._root, self._run, self._cohort = root, run, cohort

    def __call__(self, batch: pa.Table) -> pa.Table:
        from vlmscope.dataset.runner import run_batch
        from vlmscope.tracing import force_flush

        records = batch.to_pylist()
        rows = [_row_from_mapping(r) for r in records]
        ids = [row.id for row in rows]
        failures: dict[str, str] = {}
        run_batch(rows, self._pipeline, self._run, self._cohort, failures)
        force_flush()
        shard = shard_name("rows", self._run, *ids)
        files = self._write(shard, rows, [r.get("position") for r in records])
        context = self._ray.get_runtime_context()
        self._root.commit(shard, files, kind="rows", run=self._run, rows=len(ids),
                          node=context.get_node_id(), actor=context.get_actor_id())
        return pa.table({"row_id": pa.array(ids, pa.string()),
                         "error": pa.array([failures.get(i) for i in ids], pa.string()),
                         "shard": pa.array([shard] * len(ids), pa.string())})

    def _write(self, shard: str, rows: Sequence[DatasetRow],
               positions: Sequence[int | None]) -> dict[str, list[str]]:
        from vlmscope.dataset.core import Dataset
        from vlmscope.dataset.store import dataset_tables, store_connection

        files: dict[str, list[str]] = {}
        with store_connection(self._db) as con:
            con.register(_BATCH, pa.table({"row_id": [row.id for row in rows]}))
            try:
                con.execute(
                    f"CREATE OR REPLACE TEMP TABLE {_TRACES} AS SELECT * FROM spans WHERE "
                    "trace_id IN (SELECT trace_id FROM row_records WHERE run_name = ? "
                    f"AND row_id IN (SELECT row_id FROM {_BATCH}))", [self._run])
                for table in SPAN_TABLES:
                    part = con.sql(span_table_query(table, _TRACES)).to_arrow_table()
                    if part.num_rows:
                        files[table] = self._root.write_table(table, part, shard,
                                                              SPAN_PARTITION)
            finally:
                con.unregister(_BATCH)
                con.execute(f"DROP TABLE IF EXISTS {_TRACES}")
        dataset_rows, _ = dataset_tables(Dataset(self._cohort, rows), store_images=False)
        position = pa.array([-1 if p is None else int(p) for p in positions], pa.int32())
        dataset_rows = dataset_rows.set_column(
            dataset_rows.schema.get_field_index("position"), "position", position)
        files["dataset_rows"] = self._root.write_table("dataset_rows", dataset_rows, shard)
        return files

    def __del__(self) -> None:
        shutil.rmtree(getattr(self, "_folder", ""), ignore_errors=True)


def _records(dataset: Dataset) -> list[dict[str, Any]]:
    """The dataset's rows as Ray items, images as encoded bytes (every node reads them)."""
    from vlmscope.dataset.images import ImageDecodeError, decode_image, stored_bytes

    records = []
    for position, row in enumerate(dataset.rows):
        image = row.image
        if not isinstance(image, bytes | str):
            try:
                image = stored_bytes(image, decode_image(image))
            except (ImageDecodeError, OSError, TypeError):
                image = b""  # the actor traces it as a failed row, with the reason
        records.append({
            "id": row.id, "image": image, "instruction": row.instruction,
            "instruction_kind": row.instruction_kind, "expected": row.expected,
            "objects": None if row.objects is None else list(row.objects),
            "caption": row.caption, "tags": list(row.tags), "source_row_id": row.source_row_id,
            "corruption": row.corruption, "severity": row.severity, "position": position})
    return records


def run_on_ray(
    source: Any,
    pipeline_factory: Callable[[], Callable[[Any], Any]],
    *,
    root: str | os.PathLike[str],
    name: str,
    dataset_name: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    num_actors: int = 2,
    num_cpus_per_actor: float = 1,
    num_gpus_per_actor: float = 0,
    resources_per_actor: Mapping[str, float] | None = None,
    evaluators: Sequence[Evaluator] | None = None,
    filesystem: Any = None,
    service_name: str | None = None,
    configure_options: Mapping[str, Any] | None = None,
    address: str | None = None,
) -> RayRun:
    """Run ``source`` (a :class:`vlmscope.Dataset`, or a Ray Dataset of rows with
    :data:`ROW_KEYS` columns and then ``dataset_name``) through the pipeline on Ray, trace
    every row, write the traces as Parquet shards under ``root`` and score the run.

    ``pipeline_factory()`` runs once in each of the ``num_actors`` actors (each with
    ``num_cpus_per_actor`` CPUs, ``num_gpus_per_actor`` GPUs and ``resources_per_actor``
    custom resources) after vlmscope is configured there (``service_name``,
    ``configure_options`` as :func:`vlmscope.configure` takes them): load and instrument the
    models in it. It returns the batched pipeline, which gets ``batch_size`` rows (images
    decoded) and returns one answer per row, as :meth:`vlmscope.Dataset.run` with
    ``batch_size`` calls it. Rows are traced with :func:`vlmscope.trace_batch` under run
    ``name`` and cohort = the dataset's name. A :class:`vlmscope.Dataset`'s images travel to
    the actors as encoded bytes (a PNG of an array, tensor or PIL image; a path stays a
    path), so the pipeline gets an RGB PIL image where ``Dataset.run`` would hand over the
    array itself, and the rows' image hashes are those of the bytes.

    ``root`` is a local folder, a URI pyarrow opens, or a path on ``filesystem`` (a pyarrow
    or fsspec filesystem). The run is scored by ``evaluators`` (default: ground_truth_match)
    with :func:`vlmscope.distributed.evaluate_on_ray` and registered, so ``vlmscope diff
    --parquet ROOT --base A --candidate B`` compares it with another run under ``root``.
    Running a name again replaces its shards. Ray Data restarts an actor that died and
    retries its batch, which rewrites the same shard. Connects to the Ray cluster at
    ``address`` (default: the running one, else a local one).
    """
    from vlmscope._optional import require
    from vlmscope.dataset.core import Dataset

    if not name:
        raise ValueError("a run needs a name (what `vlmscope diff` compares)")
    if batch_size < 1 or num_actors < 1:
        raise ValueError(f"batch_size and num_actors must be at least 1, got {batch_size} "
                         f"and {num_actors}")
    if not callable(pipeline_factory):
        raise TypeError("pipeline_factory builds the pipeline in each actor: pass a function "
                        "that takes no argument and returns the pipeline")
    ray = require("ray", "the Ray engine")
    import ray.data as ray_data

    if not ray.is_initialized():
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    if isinstance(source, Dataset):
        cohort = source.name
        if len(source) == 0:
            raise ValueError(f"dataset {source.name!r} has no rows")
        rows = ray_data.from_items(_records(source))
    elif isinstance(source, ray_data.Dataset):
        if not dataset_name:
            raise ValueError("a Ray Dataset of rows needs dataset_name= (the cohort)")
        missing = {"id", "image"} - set(source.schema().names)
        if missing:
            raise ValueError(f"the Ray Dataset lacks the column(s) {', '.join(sorted(missing))};"
                             f" rows have {', '.join(ROW_KEYS)}")
        cohort, rows = dataset_name, source
    else:
        raise TypeError(f"source must be a vlmscope.Dataset or a ray.data.Dataset, got "
                        f"{type(source).__name__}")
    shard_root = ShardRoot(os.fspath(root), filesystem)
    outcome = rows.map_batches(
        PipelineActor,
        fn_constructor_kwargs={"pipeline_factory": pipeline_factory, "root": shard_root,
                               "run": name, "cohort": cohort, "service_name": service_name,
                               "configure_options": dict(configure_options or {})},
        batch_size=batch_size, batch_format="pyarrow", concurrency=num_actors,
        num_cpus=num_cpus_per_actor, num_gpus=num_gpus_per_actor,
        resources=dict(resources_per_actor or {}) or None,
    ).to_arrow_refs()
    results = pa.concat_tables(ray.get(outcome))
    return _register(shard_root, results, name, cohort, evaluators)


def _register(root: ShardRoot, results: pa.Table, name: str, cohort: str,
              evaluators: Sequence[Evaluator] | None) -> RayRun:
    """Score the run and write its ``datasets`` and ``dataset_runs`` rows under ``root``."""
    import datetime as dt

    from vlmscope.dataset.core import Dataset, DatasetRow
    from vlmscope.dataset.runner import ANSWER_MODEL
    from vlmscope.distributed.evaluate import evaluate_on_ray
    from vlmscope.evaluators import GroundTruthMatch

    evaluated = evaluate_on_ray(root.root, evaluators or [GroundTruthMatch()],
                                filesystem=root.filesystem, run=name)
    shards = sorted(set(results.column("shard").to_pylist()))
    manifests = root.manifests()
    files = root.table_files({s: manifests[s] for s in shards if s in manifests})
    con = root.connect(files)
    try:
        ((stored, distinct),) = con.execute(
            "SELECT count(*), count(DISTINCT row_id) FROM row_records WHERE run_name = ?",
            [name]).fetchall()
        llm_models = dict(con.execute(
            "SELECT model, count(*) FROM llm_records WHERE model IS DISTINCT FROM ? "
            "GROUP BY 1 ORDER BY 1", [ANSWER_MODEL]).fetchall())
        listed = con.execute(
            "SELECT row_id, image_sha256, instruction, expected, objects, caption, tags, "
            "source_row_id, corruption, severity, instruction_kind FROM dataset_rows "
            "ORDER BY position, row_id"
        ).fetchall()
    finally:
        con.close()
    failures = {r: e for r, e in zip(results.column("row_id").to_pylist(),
                                     results.column("error").to_pylist(), strict=True)
                if e is not None}
    total = results.num_rows
    warnings = []
    if distinct != total or stored != distinct:
        warnings.append(f"{total} rows ran, {distinct} distinct rows in {stored} row records "
                        "reached the root")
    mix = evaluated.checkpoint_mix
    if mix.mixed:
        warnings.append(mix.describe())
    dataset = Dataset(cohort, (DatasetRow(
        id=row_id, image=None, instruction=instruction, expected=expected,
        objects=None if objects is None else tuple(objects), caption=caption,
        tags=tuple(tags or ()), source_row_id=source_row, corruption=corruption,
        severity=severity, instruction_kind=kind) for row_id, _, instruction, expected, objects,
        caption, tags, source_row, corruption, severity, kind in listed))
    fingerprint = dataset.fingerprint([row[1] for row in listed])
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    summary = {
        "run": name, "dataset": cohort, "eval_run_id": evaluated.run_id, "rows": total,
        "failed": len(failures), "failures": failures, "evaluations": evaluated.summaries,
        "checkpoints": mix.checkpoints,
        "embedding_dims": {str(k): v for k, v in mix.embedding_dims.items()},
        "llm_models": llm_models, "mixed_checkpoints": mix.mixed, "warnings": warnings,
        "shards": len(shards),
    }
    datasets = pa.table({"name": [cohort], "fingerprint": [fingerprint],
                         "num_rows": pa.array([len(listed)], pa.int32()),
                         "derived_from": pa.array([None], pa.string()),
                         "created_at": pa.array([now], pa.timestamp("us"))})
    shard = shard_name("datasets", cohort)
    root.commit(shard, {"datasets": root.write_table("datasets", datasets, shard)},
                kind="datasets")
    runs = pa.table({
        "run_name": [name], "dataset": [cohort], "eval_run_id": [evaluated.run_id],
        "num_rows": pa.array([total], pa.int32()),
        "failed_rows": pa.array([len(failures)], pa.int32()),
        "checkpoints": [orjson.dumps(mix.checkpoints).decode()],
        "embedding_dims": [orjson.dumps(summary["embedding_dims"]).decode()],
        "llm_models": [orjson.dumps(llm_models).decode()],
        "mixed_checkpoints": [mix.mixed], "summary": [orjson.dumps(summary).decode()],
        "created_at": pa.array([now], pa.timestamp("us"))})
    shard = shard_name("dataset_runs", name)
    root.commit(shard, {"dataset_runs": root.write_table("dataset_runs", runs, shard)},
                kind="dataset_runs", run=name)
    return RayRun(name, cohort, root.root, total, len(failures), failures, len(shards),
                  evaluated.run_id, summary, warnings)

