"""Running evaluators over a store and recording the run.

A run selects the pipeline rows once (optionally one cohort and one checkpoint), runs each
evaluator on them in one transaction, writes the evaluation rows (``evaluations``) and one
``eval_runs`` row per evaluator, all under one run id.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from vlmscope.collectors import facts
from vlmscope.collectors.schema import migrate
from vlmscope.evaluators.adherence import ImageInstructionAdherence
from vlmscope.evaluators.attribution import FailureAttribution
from vlmscope.evaluators.base import Evaluator
from vlmscope.evaluators.classification import ClassificationReport
from vlmscope.evaluators.custom import CustomEvaluation
from vlmscope.evaluators.ground_truth import GroundTruthMatch
from vlmscope.evaluators.hallucination import CaptionHallucination
from vlmscope.evaluators.multilabel import MultiLabelReport

EVALUATORS: dict[str, type[Evaluator]] = {
    GroundTruthMatch.name: GroundTruthMatch,
    ClassificationReport.name: ClassificationReport,
    MultiLabelReport.name: MultiLabelReport,
    CaptionHallucination.name: CaptionHallucination,
    FailureAttribution.name: FailureAttribution,
    ImageInstructionAdherence.name: ImageInstructionAdherence,
    CustomEvaluation.name: CustomEvaluation,
}
"""Every evaluator by name, as ``vlmscope eval --evaluators`` knows them (:func:`register`
adds one)."""


def register(evaluator: type[Evaluator]) -> type[Evaluator]:
    """Add ``evaluator`` to :data:`EVALUATORS` under its :attr:`~Evaluator.name`: ``vlmscope
    eval`` then runs it (``--evaluators``, its declared flags), gates on its declared
    metrics and prints them, and the HTML report shows them. Returns the class, so that it
    can decorate it. :class:`ValueError` when the name is taken by another class or a
    declared flag conflicts with another evaluator's declaration of it.

    Example::

        >>> @register  # doctest: +SKIP
        ... class ShortAnswers(RowEvaluator):
        ...     name = "short_answers"
        ...     description = "answers of at most max_words words pass"
        ...     options = (Option("max_words", "int", 5, "words an answer may have",
        ...                       flag="--short-max-words", parse=int),)
        ...     summary_metrics = (Metric("short_rate", "share of short answers",
        ...                               key="accuracy", gated=True),)
        ...     merged_from = "judged, passed and skipped rows"
        ...     ...  # __init__(self, *, max_words=5), config, skip_reason_sql, judge_sql
    """
    name = getattr(evaluator, "name", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"{evaluator.__name__} needs a name (class attribute) to register")
    if EVALUATORS.get(name, evaluator) is not evaluator:
        raise ValueError(f"an evaluator called {name!r} is registered already "
                         f"({EVALUATORS[name].__qualname__})")
    for option in evaluator.options:
        for other in EVALUATORS.values():
            for theirs in other.options:
                if (option.flag is not None and theirs.flag == option.flag
                        and (theirs.kind, theirs.parse) != (option.kind, option.parse)):
                    raise ValueError(
                        f"{name}'s flag {option.flag} is declared by {other.name} with "
                        "another kind or parser: a shared flag must read alike")
    EVALUATORS[name] = evaluator
    return evaluator

_ROWS = "_vlmscope_eval_rows"
_STORED = "_vlmscope_stored_rows"
_POLL_S = 0.02


@dataclass(frozen=True)
class EvalRun:
    """What a run judged: its id, the filters, the checkpoints seen and each evaluator's
    summary by evaluator name."""

    run_id: str
    cohort: str | None
    checkpoint: str | None
    checkpoints: list[str]
    summaries: dict[str, dict[str, Any]]
    run: str | None = None


def _is_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether ``name`` reads a stored table as it is (scanning it twice costs less than
    copying it): a table, or a view over the materialised pipeline rows."""
    if name in ("pipeline_rows", _STORED):
        name = facts.FACTS
    found = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [name]).fetchall()
    return found[0][0] > 0


def resolve_evaluators(names: Sequence[str]) -> list[type[Evaluator]]:
    """The evaluator classes called ``names``; :class:`ValueError` lists the valid names."""
    unknown = [n for n in names if n not in EVALUATORS]
    if unknown:
        raise ValueError(f"unknown evaluator(s) {', '.join(unknown)}; "
                         f"valid: {', '.join(EVALUATORS)}")
    return [EVALUATORS[n] for n in names]


def check_distinct_names(evaluators: Sequence[Evaluator]) -> None:
    """Raise :class:`ValueError` when two of ``evaluators`` share a name: a run keeps one
    summary and one set of ``evaluations`` rows per evaluator name, so the second would
    overwrite the first's summary and mix its rows with the first's."""
    names = [evaluator.name for evaluator in evaluators]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(
            f"{', '.join(repeated)} given more than once in one run: a run keeps one summary "
            "and one set of evaluation rows per evaluator name; run the variants in separate "
            "runs (custom rules: give each its own name)")


def run_evaluations(
    con: duckdb.DuckDBPyConnection,
    evaluators: Sequence[Evaluator],
    *,
    source: str = "pipeline_rows",
    cohort: str | None = None,
    checkpoint: str | None = None,
    run_id: str | None = None,
    run: str | None = None,
) -> EvalRun:
    """Run ``evaluators`` over ``source`` (a table or view with the ``pipeline_rows``
    columns) on the read-write connection ``con`` and store the results.

    ``cohort`` keeps one cohort; ``checkpoint`` keeps rows whose encoder checkpoint SHA-256
    starts with it; ``run`` keeps the rows of one named run (``pipeline_rows.run``, as
    :meth:`vlmscope.Dataset.run` names them), recorded in ``eval_runs.run_name``. Unknown
    columns in ``source`` raise :class:`ValueError`, and so do two evaluators of one name
    (:func:`check_distinct_names`).
    """
    if not evaluators:
        raise ValueError("give at least one evaluator")
    check_distinct_names(evaluators)
    migrate(con)
    run_id = run_id or uuid.uuid4().hex
    created_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    present = [r[0] for r in con.execute(f"DESCRIBE {source}").fetchall()]
    needed = {"cohort", "checkpoint_sha256"} | ({"run"} if run is not None else set())
    for evaluator in evaluators:
        needed.update(evaluator.required_columns)
    missing = sorted(needed - set(present))
    for evaluator in evaluators:
        needed.update(c for c in evaluator.optional_columns if c in present)
    if missing:
        raise ValueError(f"{source} lacks the column(s) {', '.join(missing)}; "
                         f"its columns are {', '.join(present)}")
    columns = ", ".join(f'"{c}"' for c in present if c in needed)
    # Bulk inserts run in parallel only when row order need not be kept.
    (preserve,) = con.execute(
        "SELECT current_setting('preserve_insertion_order')").fetchall()[0]
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET enable_progress_bar = false")
    con.execute("BEGIN TRANSACTION")
    try:
        rows = source
        stored = facts.stored_rows_sql(con) if source == "pipeline_rows" else None
        if stored is not None:
            # No parts wait: the view's rows are the facts' (read without the overlay).
            rows = source = _STORED
            con.execute(f"CREATE OR REPLACE TEMP VIEW {_STORED} AS {stored}")
        filtered = cohort is not None or checkpoint is not None or run is not None
        if filtered or not _is_table(con, source):
            # Select once: a filtered or computed relation; every evaluator then scans this.
            rows = _ROWS
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE {_ROWS} AS SELECT {columns} FROM {source} "
                "WHERE ($cohort IS NULL OR cohort = $cohort) AND "
                "($checkpoint IS NULL OR starts_with(checkpoint_sha256, $checkpoint))"
                + (" AND run = $run" if run is not None else ""),
                {"cohort": cohort, "checkpoint": checkpoint}
                | ({"run": run} if run is not None else {}),
            )
        checkpoints = con.execute(
            f"SELECT coalesce(list(DISTINCT checkpoint_sha256 ORDER BY checkpoint_sha256) "
            f"FILTER (WHERE checkpoint_sha256 IS NOT NULL), []) FROM {rows}"
        ).fetchall()[0][0]
        summaries = {ev.name: ev.run(con, rows, run_id) for ev in evaluators}
        runs = pa.table({
            "run_id": [run_id] * len(evaluators),
            "evaluator": [ev.name for ev in evaluators],
            "config": [orjson.dumps(ev.config()).decode() for ev in evaluators],
            "cohort": pa.array([cohort] * len(evaluators), pa.string()),
            "checkpoints": pa.array([checkpoints] * len(evaluators), pa.list_(pa.string())),
            "summary": [orjson.dumps(summaries[ev.name]).decode() for ev in evaluators],
            "created_at": pa.array([created_at] * len(evaluators), pa.timestamp("us")),
            "run_name": pa.array([run] * len(evaluators), pa.string()),
        })
        con.register("_vlmscope_eval_runs", runs)
        con.execute("INSERT INTO eval_runs (run_id, evaluator, config, cohort, checkpoints, "
                    "summary, created_at, run_name) SELECT * FROM _vlmscope_eval_runs")
        con.unregister("_vlmscope_eval_runs")
        con.execute(f"DROP TABLE IF EXISTS {_ROWS}")
        con.execute(f"DROP VIEW IF EXISTS {_STORED}")
        con.execute("COMMIT")
    except Exception:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise
    finally:
        con.execute(f"SET preserve_insertion_order = {str(preserve).lower()}")
    return EvalRun(run_id, cohort, checkpoint, checkpoints, summaries, run)


