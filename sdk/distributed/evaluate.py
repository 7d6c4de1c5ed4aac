"""Evaluators over a Parquet dataset root, one Ray task per partition, summaries merged exactly.

Each task opens its partition (whole traces: one row shard of a Ray run, or one
``date=/service=`` folder of an export) as an in-memory DuckDB store, runs each evaluator's
same SQL on the selected rows (:func:`vlmscope.evaluators.merge.evaluate_part`), writes the
evaluation rows back under the root as its own shard, and returns the evaluators' additive
statistics; the driver merges them (:func:`vlmscope.evaluators.merge.merge_parts`) and
writes the run's ``eval_runs`` rows. A retried task rewrites the same shard.
"""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa

from vlmscope.collectors.shards import SPAN_PARTITION, ShardRoot, shard_name
from vlmscope.evaluators.base import Evaluator
from vlmscope.evaluators.merge import PartSummary, check_mergeable, evaluate_part, merge_parts
from vlmscope.evaluators.runner import EvalRun, check_distinct_names
from vlmscope.pinning import CheckpointMix

DEFAULT_ROWS_PER_TASK = 250_000
"""Rows a Ray evaluation task takes (whole shards) unless ``rows_per_task`` says otherwise."""

_ROWS = "_vlmscope_part_rows"
_SELECT = ("SELECT * FROM pipeline_rows WHERE ($cohort IS NULL OR cohort = $cohort) "
           "AND ($checkpoint IS NULL OR starts_with(checkpoint_sha256, $checkpoint)) "
           "AND ($run IS NULL OR run = $run)")


@dataclass(frozen=True)
class DistributedEvalRun(EvalRun):
    """An :class:`~vlmscope.evaluators.runner.EvalRun` evaluated in partitions:
    also the rows selected, the partitions, the checkpoint mix of the rows and the rows
    whose expected answer the encoder never ranks (as ``vlmscope eval`` warns)."""

    rows: int = 0
    partitions: int = 0
    checkpoint_mix: CheckpointMix = field(default_factory=lambda: CheckpointMix({}, {}))
    unranked_expected: int = 0
    task_seconds: list[float] = field(default_factory=list)
    """Wall time of each partition's task (open, select, judge, write back), in seconds."""
    merge_seconds: float = 0.0
    """Wall time of the driver's merge and ``eval_runs`` write, in seconds."""


@dataclass
class _PartResult:
    summaries: list[PartSummary]
    rows: int
    checkpoints: dict[str, int]
    embedding_dims: dict[int, int]
    expected: dict[str, int]
    ranked: set[str]
    seconds: float


def evaluate_partition(root: ShardRoot, files: dict[str, list[str]],
                       evaluators: Sequence[Evaluator], run_id: str,
                       filters: dict[str, str | None], threads: int | None = None
                       ) -> _PartResult:
    """Evaluate one partition (``files``: span table -> paths under ``root``) and write its
    evaluation rows to ``root``; what a Ray task runs, and callable without Ray."""
    started = time.perf_counter()
    con = root.connect(files, threads=threads)
    try:
        con.execute("SET preserve_insertion_order = false")
        con.execute(f"CREATE TEMP TABLE {_ROWS} AS {_SELECT}", filters)
        summaries = [evaluate_part(con, ev, _ROWS, run_id) for ev in evaluators]
        ((rows,),) = con.execute(f"SELECT count(*) FROM {_ROWS}").fetchall()
        checkpoints = dict(con.execute(
            f"SELECT checkpoint_sha256, count(*) FROM {_ROWS} "
            "WHERE checkpoint_sha256 IS NOT NULL GROUP BY 1").fetchall())
        dims = dict(con.execute(
            f"SELECT embedding_dim, count(*) FROM {_ROWS} "
            "WHERE embedding_dim IS NOT NULL GROUP BY 1").fetchall())
        ranked_rows = (f"(SELECT expected, top_k_labels FROM {_ROWS} "
                       "WHERE len(coalesce(top_k_labels, []::VARCHAR[])) > 0)")
        expected = dict(con.execute(
            f"SELECT expected, count(*) FROM {ranked_rows} "
            "WHERE nullif(trim(expected), '') IS NOT NULL GROUP BY 1").fetchall())
        ranked = {label for (label,) in con.execute(
            f"SELECT DISTINCT unnest(top_k_labels) FROM {ranked_rows}").fetchall()}
        judged = con.sql(
            "SELECT e.*, strftime(s.start_time, '%Y-%m-%d') AS date, "
            "coalesce(s.service_name, 'unknown') AS service FROM evaluations e "
            "LEFT JOIN spans s ON s.trace_id = e.trace_id AND s.span_id = e.span_id "
            "WHERE e.run_id = $run_id", params={"run_id": run_id}).to_arrow_table()
    finally:
        con.close()
    if judged.num_rows:
        shard = shard_name("evaluations", run_id, *files["spans"])
        written = root.write_table("evaluations", judged, shard, SPAN_PARTITION)
        root.commit(shard, {"evaluations": written}, kind="evaluations", run_id=run_id)
    return _PartResult(summaries, int(rows), {str(k): int(v) for k, v in checkpoints.items()},
                       {int(k): int(v) for k, v in dims.items()},
                       {str(k): int(v) for k, v in expected.items()}, ranked,
                       time.perf_counter() - started)


def _ray() -> Any:
    from vlmscope._optional import require

    return require("ray", "the Ray engine")


def evaluate_on_ray(
    root: str | os.PathLike[str],
    evaluators: Sequence[Evaluator],
    *,
    filesystem: Any = None,
    cohort: str | None = None,
    checkpoint: str | None = None,
    run: str | None = None,
    run_id: str | None = None,
    num_workers: int | None = None,
    threads_per_worker: int = 1,
    rows_per_task: int = DEFAULT_ROWS_PER_TASK,
    address: str | None = None,
) -> DistributedEvalRun:
    """Run ``evaluators`` over the Parquet dataset root ``root`` in Ray tasks, one per
    partition, at most ``num_workers`` at a time (default: as many as the cluster's CPUs
    allow), each DuckDB on ``threads_per_worker`` threads; merge the summaries exactly and
    write the evaluation rows and the ``eval_runs`` rows back under ``root``. A task takes
    committed row shards until it holds ``rows_per_task`` rows (each task pays a fixed
    cost of about 2 s: fewer, bigger tasks, but at least one per worker).

    ``cohort``, ``checkpoint`` (a SHA-256 prefix) and ``run`` select rows as
    :func:`vlmscope.evaluators.run_evaluations` does. Connects to the Ray cluster at
    ``address`` (default: the running one, else a local one). :class:`ValueError` names an
    evaluator whose summary cannot be merged from parts; :class:`FileNotFoundError` when
    ``root`` holds no spans.
    """
    if not evaluators:
        raise ValueError("give at least one evaluator")
    if num_workers is not None and num_workers < 1:
        raise ValueError(f"num_workers must be at least 1, got {num_workers}")
    for evaluator in evaluators:
        check_mergeable(evaluator)
    check_distinct_names(evaluators)
    shard_root = ShardRoot(os.fspath(root), filesystem)
    if rows_per_task < 1:
        raise ValueError(f"rows_per_task must be at least 1, got {rows_per_task}")
    partitions = shard_root.partitions(rows_per_task, run)
    if not partitions:
        raise FileNotFoundError(f"no vlmscope Parquet in {root} (expected "
                                "spans/date=.../service=.../*.parquet)")
    shard_root.adopt_export()  # the evaluations written back must not hide an export's files
    ray = _ray()
    if not ray.is_initialized():
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    run_id = run_id or uuid.uuid4().hex
    filters = {"cohort": cohort, "checkpoint": checkpoint, "run": run}
    task = ray.remote(num_cpus=threads_per_worker, max_retries=3)(evaluate_partition)
    limit = num_workers or len(partitions)
    pending: dict[Any, int] = {}
    results: dict[int, _PartResult] = {}
    queue = list(enumerate(partitions))
    while queue or pending:
        while queue and len(pending) < limit:
            index, files = queue.pop(0)
            ref = task.remote(shard_root, files, list(evaluators), run_id, filters,
                              threads_per_worker)
            pending[ref] = index
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            results[pending.pop(ref)] = ray.get(ref)
    parts = [results[i] for i in range(len(partitions))]
    return _finish(shard_root, evaluators, parts, run_id, cohort, checkpoint, run,
                   len(partitions))


def _count_sorted(counts: dict[Any, int]) -> dict[Any, int]:
    """Most rows first, ties by value (as :func:`vlmscope.pinning.checkpoint_mix`)."""
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def _finish(root: ShardRoot, evaluators: Sequence[Evaluator], parts: Sequence[_PartResult],
            run_id: str, cohort: str | None, checkpoint: str | None, run: str | None,
            partitions: int) -> DistributedEvalRun:
    started = time.perf_counter()
    summaries = {ev.name: merge_parts(ev, [p.summaries[i] for p in parts])
                 for i, ev in enumerate(evaluators)}
    checkpoints: dict[str, int] = {}
    dims: dict[int, int] = {}
    expected: dict[str, int] = {}
    ranked: set[str] = set()
    for part in parts:
        for key, n in part.checkpoints.items():
            checkpoints[key] = checkpoints.get(key, 0) + n
        for key, n in part.embedding_dims.items():
            dims[key] = dims.get(key, 0) + n
        for key, n in part.expected.items():
            expected[key] = expected.get(key, 0) + n
        ranked |= part.ranked
    seen = sorted(checkpoints)
    created_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    count = len(evaluators)
    runs = pa.table({
        "run_id": [run_id] * count,
        "evaluator": [ev.name for ev in evaluators],
        "config": [orjson.dumps(ev.config()).decode() for ev in evaluators],
        "cohort": pa.array([cohort] * count, pa.string()),
        "checkpoints": pa.array([seen] * count, pa.list_(pa.string())),
        "summary": [orjson.dumps(summaries[ev.name]).decode() for ev in evaluators],
        "created_at": pa.array([created_at] * count, pa.timestamp("us")),
        "run_name": pa.array([run] * count, pa.string()),
        "date": [created_at.strftime("%Y-%m-%d")] * count,
    })
    shard = shard_name("eval_runs", run_id)
    root.commit(shard, {"eval_runs": root.write_table("eval_runs", runs, shard, ("date",))},
                kind="eval_runs", run_id=run_id)
    return DistributedEvalRun(
        run_id, cohort, checkpoint, seen, summaries, run,
        rows=sum(p.rows for p in parts), partitions=partitions,
        checkpoint_mix=CheckpointMix(_count_sorted(checkpoints), _count_sorted(dims)),
        unranked_expected=sum(n for label, n in expected.items() if label not in ranked),
        task_seconds=[p.seconds for p in parts], merge_seconds=time.perf_counter() - started)
