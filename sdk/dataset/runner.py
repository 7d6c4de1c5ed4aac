"""``Dataset.run``: a pipeline over every row of a dataset, traced, judged and registered."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb
import orjson
import pyarrow as pa

from vlmscope.dataset.images import pipeline_image
from vlmscope.dataset.store import configured_store, save_dataset, store_connection
from vlmscope.llm import llm_span
from vlmscope.pinning import CheckpointMix, checkpoint_mix
from vlmscope.rows import current_rows, trace_batch, trace_row
from vlmscope.tracing import force_flush

if TYPE_CHECKING:
    from vlmscope.dataset.core import Dataset, DatasetRow

ANSWER_MODEL = "vlmscope.dataset.pipeline"
"""Model name of the language-head span that records what the pipeline returned for a row
(the row's final answer); the language-head models a run reports leave it out."""

_RUN_ROWS = "_vlmscope_run_rows"


@dataclass(frozen=True)
class DatasetRun:
    """What :meth:`vlmscope.Dataset.run` did.

    ``summary`` holds ``rows``, ``failed``, ``failures`` (row id -> error), each evaluator's
    summary under ``evaluations``, the encoder ``checkpoints`` and ``embedding_dims`` seen
    (rows per value), the language-head ``llm_models`` seen (calls per model id),
    ``mixed_checkpoints`` and ``warnings``. ``rows`` has one row per dataset row, in dataset
    order: ``row_id``, ``status`` (``OK``/``ERROR``), ``error``, ``expected``, ``output``,
    ``checkpoint_sha256`` and, per evaluator ``E``, ``E.passed``, ``E.score``, ``E.label``.
    """

    name: str
    dataset: str
    eval_run_id: str
    summary: dict[str, Any]
    rows: pa.Table
    checkpoint_mix: CheckpointMix

    @property
    def mixed_checkpoints(self) -> bool:
        """True when the run's rows saw more than one encoder checkpoint or dimension."""
        return self.checkpoint_mix.mixed


def _check_new_run(con: duckdb.DuckDBPyConnection, name: str) -> None:
    ((registered,),) = con.execute("SELECT count(*) FROM dataset_runs WHERE run_name = ?",
                                   [name]).fetchall()
    ((traced,),) = con.execute("SELECT count(*) FROM row_records WHERE run_name = ?",
                               [name]).fetchall()
    if registered or traced:
        raise ValueError(f"the store already has a run named {name!r} ({traced} traced rows); "
                         "run names are what `vlmscope diff` compares: choose a new one")


def _record_answers(answers: Sequence[Any]) -> None:
    """Record what the pipeline returned as its rows' answers (what the evaluators score).

    A pipeline whose language head is instrumented already recorded each answer on the
    head's span, with the head's model and timing; a final ``ANSWER_MODEL`` span is added
    only for the rows whose recorded answer is missing or differs from the returned one
    (a pipeline that post-processes, or calls an uninstrumented head).
    """
    texts = ["" if a is None else str(a) for a in answers]
    rows = current_rows()
    pending = list(zip(rows.row_ids, texts, strict=True)) if rows is not None and len(
        rows.row_ids) == len(texts) else None
    if pending is not None:
        pending = [(row_id, text) for row_id, text in pending if rows.outputs.get(row_id) != text]
        if not pending:
            return
    with llm_span(model=ANSWER_MODEL,
                  row_ids=None if pending is None else [r for r, _ in pending]) as span:
        chosen = texts if pending is None else [t for _, t in pending]
        span.set_output(chosen[0] if len(chosen) == 1 else chosen)


def _run_one(row: DatasetRow, pipeline: Callable[[Any], Any], run: str, cohort: str) -> None:
    with trace_row(row.id, cohort=cohort, expected=row.expected, objects=row.objects,
                   image=row.image, instruction=row.instruction, run=run,
                   instruction_kind=row.instruction_kind):
        image = pipeline_image(row.image)
        answer = pipeline(dataclasses.replace(row, image=image))
        _record_answers([answer])


def run_batch(rows: list[DatasetRow], pipeline: Callable[[Any], Any], run: str,
              cohort: str, failures: dict[str, str]) -> None:
    """Trace ``rows`` through ``pipeline`` as one batch of ``run``; a row that fails is traced
    on its own and its error put in ``failures`` under its id (a Ray actor runs its batches
    through this too)."""
    decoded: list[DatasetRow] = []
    sources: list[Any] = []
    for row in rows:
        try:
            decoded.append(dataclasses.replace(row, image=pipeline_image(row.image)))
            sources.append(row.image)
        except Exception:
            # Trace the row on its own so that it is stored as failed with the error.
            try:
                _run_one(row, pipeline, run, cohort)
            except Exception as error:
                failures[row.id] = f"{type(error).__name__}: {error}"
    if not decoded:
        return
    try:
        with trace_batch([r.id for r in decoded], cohort=cohort,
                         expected=[r.expected for r in decoded],
                         objects=[None if r.objects is None else list(r.objects)
                                  for r in decoded],
                         images=sources,
                         instructions=[r.instruction for r in decoded], run=run,
                         instruction_kinds=[r.instruction_kind for r in decoded]):
            answers = pipeline(decoded)
            if not isinstance(answers, list | tuple) or len(answers) != len(decoded):
                got = len(answers) if isinstance(answers, list | tuple) else type(answers)
                raise ValueError(f"a batched pipeline must return a list of {len(decoded)} "
                                 f"answers, got {got}")
            _record_answers(answers)
    except Exception as error:
        for row in decoded:
            failures[row.id] = f"{type(error).__name__}: {error}"


def _per_row_table(con: duckdb.DuckDBPyConnection, dataset: str, run_id: str,
                   evaluators: Sequence[str]) -> pa.Table:
    columns = ["d.row_id", "coalesce(p.status, 'ERROR') AS status",
               "coalesce(p.error, CASE WHEN p.row_id IS NULL "
               "THEN 'the row never reached the store' END) AS error",
               "d.expected", "p.output", "p.checkpoint_sha256"]
    joins = []
    for i, name in enumerate(evaluators):
        columns += [f'e{i}.passed AS "{name}.passed"', f'e{i}.score AS "{name}.score"',
                    f'e{i}.label AS "{name}.label"']
        joins.append(f"LEFT JOIN (SELECT row_id, passed, score, label FROM evaluations "
                     f"WHERE run_id = $run_id AND evaluator = '{name}') e{i} "
                     f"ON e{i}.row_id = d.row_id")
    return con.sql(
        f"SELECT {', '.join(columns)} FROM dataset_rows d "
        f"LEFT JOIN {_RUN_ROWS} p ON p.row_id = d.row_id {' '.join(joins)} "
        "WHERE d.dataset = $dataset ORDER BY d.position",
        params={"run_id": run_id, "dataset": dataset}).to_arrow_table()


def run_dataset(dataset: Dataset, pipeline: Callable[[Any], Any], *, name: str,
                batch_size: int | None = None, progress: bool = True) -> DatasetRun:
    """See :meth:`vlmscope.Dataset.run`."""
    from vlmscope.evaluators import GroundTruthMatch, run_evaluations
    from vlmscope.progress import ProgressBar

    if not name:
        raise ValueError("a run needs a name (what `vlmscope diff` compares)")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    db = configured_store()
    with store_connection(db) as con:
        _check_new_run(con, name)
        save_dataset(con, dataset)

    failures: dict[str, str] = {}
    bar = ProgressBar(f"{dataset.name} -> {name}", sys.stderr) if progress else None
    step = batch_size or 1
    for start in range(0, len(dataset.rows), step):
        chunk = list(dataset.rows[start:start + step])
        if batch_size is None:
            try:
                _run_one(chunk[0], pipeline, name, dataset.name)
            except Exception as error:
                failures[chunk[0].id] = f"{type(error).__name__}: {error}"
        else:
            run_batch(chunk, pipeline, name, dataset.name, failures)
        if bar is not None:
            bar.update(start + len(chunk), len(dataset.rows))
    if bar is not None:
        bar.close()
    force_flush()

    evaluators = dataset.evaluators or [GroundTruthMatch()]
    with store_connection(db) as con:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_RUN_ROWS} AS "
                    "SELECT * FROM pipeline_rows WHERE run = ?", [name])
        try:
            evaluated = run_evaluations(con, evaluators, source=_RUN_ROWS, run=name)
            mix = checkpoint_mix(con, _RUN_ROWS)
            llm_models = dict(con.execute(
                f"SELECT model, count(*) FROM llm_records WHERE model IS DISTINCT FROM ? AND "
                f"trace_id IN (SELECT trace_id FROM {_RUN_ROWS}) GROUP BY 1 ORDER BY 1",
                [ANSWER_MODEL]).fetchall())
            ((stored,),) = con.execute(f"SELECT count(*) FROM {_RUN_ROWS}").fetchall()
            rows = _per_row_table(con, dataset.name, evaluated.run_id,
                                  [e.name for e in evaluators])
            warnings = []
            if stored != len(dataset):
                warnings.append(f"{len(dataset) - stored} of {len(dataset)} rows did not reach "
                                "the store (see vlmscope.export_stats())")
            if mix.mixed:
                warnings.append(mix.describe())
            summary = {
                "run": name, "dataset": dataset.name, "eval_run_id": evaluated.run_id,
                "rows": len(dataset), "failed": len(failures), "failures": failures,
                "evaluations": evaluated.summaries,
                "checkpoints": mix.checkpoints,
                "embedding_dims": {str(k): v for k, v in mix.embedding_dims.items()},
                "llm_models": llm_models, "mixed_checkpoints": mix.mixed,
                "warnings": warnings,
            }
            con.execute("INSERT INTO dataset_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
                name, dataset.name, evaluated.run_id, len(dataset), len(failures),
                orjson.dumps(mix.checkpoints).decode(),
                orjson.dumps(summary["embedding_dims"]).decode(),
                orjson.dumps(llm_models).decode(), mix.mixed,
                orjson.dumps(summary).decode(), dt.datetime.now(dt.UTC).replace(tzinfo=None)])
        finally:
            con.execute(f"DROP TABLE IF EXISTS {_RUN_ROWS}")
    return DatasetRun(name, dataset.name, evaluated.run_id, summary, rows, mix)
