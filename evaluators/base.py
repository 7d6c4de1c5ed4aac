"""The evaluator interface: what every evaluator is, and the result of judging one row.

An evaluator is a transform from a relation with the ``pipeline_rows`` columns to evaluation
rows (:class:`RowEvaluator`) and/or a run summary (:class:`Evaluator`), written in SQL that
DuckDB runs over the whole relation at once. The per-row API of a :class:`RowEvaluator`
(``evaluate_row``, ``evaluate_rows``) builds a relation of the given rows and runs the very
same SQL on it, so there is one implementation of each rule. A run may store intermediate
stages of that SQL as temporary tables first (:meth:`RowEvaluator.stages`); the per-row API
inlines them as CTEs.
"""

from __future__ import annotations

import contextlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import duckdb
import orjson
import pyarrow as pa

from vlmscope import conventions as cv
from vlmscope.collectors import spec
from vlmscope.evaluators.declaration import Metric, Option
from vlmscope.unicode_text import valid_text

ANNOTATOR_KINDS = cv.ANNOTATOR_KINDS
"""Who judged a row, as OpenInference names it: deterministic code, an LLM judge or a person."""

PIPELINE_ROW_SCHEMA = spec.pipeline_rows_schema()
"""The columns of the ``pipeline_rows`` view, with their Arrow types."""

_ONE_ROW = "_vlmscope_one_row"


def rows_table(rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    """``rows`` as an Arrow table of ``schema``; text that is not valid Unicode (a lone
    surrogate) is read with U+FFFD in its place, as the store keeps it
    (:mod:`vlmscope.unicode_text`), rather than raising into the caller."""
    try:
        return pa.Table.from_pylist(list(rows), schema=schema)
    except UnicodeEncodeError:
        return pa.Table.from_pylist(valid_text([dict(row) for row in rows]), schema=schema)


_SQL_TYPES = {pa.string(): "VARCHAR", pa.bool_(): "BOOLEAN"}


@contextlib.contextmanager
def with_columns(con: duckdb.DuckDBPyConnection, source: str, columns: Sequence[pa.Field],
                 tag: str) -> Iterator[str]:
    """``source``, or while the block runs a view ``<tag>_widened`` of it that adds as NULL
    each of ``columns`` it lacks (an older store's rows, or a user's table without them)."""
    present = {row[0] for row in con.execute(f"DESCRIBE {source}").fetchall()}
    absent = [f for f in columns if f.name not in present]
    if not absent:
        yield source
        return
    widened = f"{tag}_widened"
    nulls = ", ".join(f"NULL::{_SQL_TYPES[f.type]} AS {f.name}" for f in absent)
    con.execute(f"CREATE OR REPLACE TEMP VIEW {widened} AS SELECT *, {nulls} FROM {source}")
    # Dropped after a success only: after an error the transaction may be aborted, and a
    # statement there would hide the error (its rollback takes the view too).
    yield widened
    con.execute(f"DROP VIEW IF EXISTS {widened}")


def with_stages(stages: Sequence[tuple[str, str]], final: str) -> str:
    """One query: each ``(name, query)`` stage as a materialised CTE, then ``final``, which
    reads the stages by name (the per-row path of a staged evaluator)."""
    if not stages:
        return final
    ctes = ",\n".join(f"{name} AS MATERIALIZED ({query})" for name, query in stages)
    return f"WITH {ctes}\nSELECT * FROM ({final})"


@contextlib.contextmanager
def staged(con: duckdb.DuckDBPyConnection,
           stages: Sequence[tuple[str, str]]) -> Iterator[None]:
    """Each ``(name, query)`` stage stored as a temporary table, in order, for the block; a
    query that then reads them runs as plain table scans, which DuckDB parallelises."""
    try:
        for name, query in stages:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {query}")
        yield
    finally:
        for name, _ in stages:
            # After a failed statement the transaction is aborted and its rollback drops
            # them: never hide that first error behind this one.
            with contextlib.suppress(duckdb.TransactionException):
                con.execute(f"DROP TABLE IF EXISTS {name}")


@dataclass(frozen=True)
class EvalResult:
    """The judgement of one pipeline row.

    ``score`` is in [0, 1] (1 = right), ``passed`` says whether the row passes; both are None
    when the row was skipped (no ground truth: never scored 0). ``label`` is a short category
    (``match``, ``mismatch``, ``no_answer``, ``skipped``), ``reason`` a sentence a person can
    read, ``metadata`` what was compared.
    """

    score: float | None
    passed: bool | None
    label: str
    reason: str
    metadata: dict[str, Any] = field(default_factory=dict)


class Evaluator(ABC):
    """Scores a relation with the ``pipeline_rows`` columns and summarises one run.

    Subclasses set :attr:`name` (the registry and ``evaluations.evaluator`` name),
    :attr:`description` (one line, shown by ``vlmscope eval --list``), :attr:`annotator_kind`
    and :attr:`required_columns`.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    annotator_kind: ClassVar[str] = cv.ANNOTATOR_KIND_CODE
    required_columns: ClassVar[tuple[str, ...]]
    optional_columns: ClassVar[tuple[str, ...]] = ()
    """Columns read when the relation has them (a run over an older store lacks them)."""
    options: ClassVar[tuple[Option, ...]] = ()
    """The constructor's options: type, default, help and the ``vlmscope eval`` flag of each
    (:class:`~vlmscope.evaluators.declaration.Option`)."""
    summary_metrics: ClassVar[tuple[Metric, ...]] = ()
    """The numbers of the summary the CLI prints, the gate checks and the report shows
    (:class:`~vlmscope.evaluators.declaration.Metric`)."""
    merged_from: ClassVar[str] = ""
    """What each part of the rows contributes when a run is evaluated in parts (empty: the
    summary does not merge; :meth:`unmergeable_reason` says why)."""
    summary_key: ClassVar[str | None] = None
    """Where ``vlmscope eval``'s combined summary holds this evaluator's summary: under this
    key (None: under :attr:`name`), or :data:`~vlmscope.evaluators.declaration.SUMMARY_AT_TOP`
    for its keys at the top level."""
    summary_group: ClassVar[str | None] = None
    """Set when each instance is named by its user (``custom``): the combined summary holds
    the summaries under ``summary[summary_group][instance name]``."""

    @classmethod
    def from_options(cls, values: Mapping[str, Any]) -> list[Evaluator]:
        """The evaluators ``vlmscope eval`` runs, from the declared options its flags set
        (``values``: option name -> parsed value, only those given); default: one,
        constructed with the keyword options. :class:`ValueError` for bad values."""
        keywords = {o.name for o in cls.options if o.keyword}
        return [cls(**{k: v for k, v in values.items() if k in keywords})]

    @abstractmethod
    def config(self) -> dict[str, Any]:
        """The settings of this evaluator, as stored in ``eval_runs.config``."""

    @abstractmethod
    def run(self, con: duckdb.DuckDBPyConnection, source: str, run_id: str) -> dict[str, Any]:
        """Judge every row of the relation named ``source`` on ``con`` (writing any
        evaluation rows under ``run_id``) and return the run's summary (JSON-serialisable)."""

    def unmergeable_reason(self) -> str | None:
        """Why this evaluator's summary cannot be merged exactly from summaries of parts of
        the rows (:mod:`vlmscope.evaluators.merge`), or None when it can. An evaluator merges
        when its whole summary follows from additive statistics of each part."""
        return (f"{self.name}'s summary cannot be merged from parts of the rows: it is not "
                "a row evaluator, and it does not compute its summary from additive "
                "statistics (see vlmscope.evaluators.merge)")

    def check_columns(self, con: duckdb.DuckDBPyConnection, source: str) -> None:
        """Raise :class:`ValueError` naming the missing columns when ``source`` lacks one that
        this evaluator reads."""
        present = {row[0] for row in con.execute(f"DESCRIBE {source}").fetchall()}
        missing = [c for c in self.required_columns if c not in present]
        if missing:
            raise ValueError(
                f"{self.name} needs the column(s) {', '.join(missing)}, which {source} lacks; "
                f"it reads {', '.join(self.required_columns)} (the pipeline_rows columns)"
            )


class RowEvaluator(Evaluator):
    """An evaluator that judges each pipeline row, in SQL.

    Subclasses give :meth:`judge_sql` (the judged rows) and :meth:`skip_reason_sql` (why a row
    cannot be judged). :meth:`run` inserts the judged rows into ``evaluations`` in one
    statement; :meth:`evaluate` runs the same SQL on a one-row relation.
    """

    row_schema: ClassVar[pa.Schema] = PIPELINE_ROW_SCHEMA
    """The columns a row given to :meth:`evaluate_rows` may have."""

    kept_statistics: list[pa.Table] | None = None
    """When a list, :meth:`run` appends to it the additive statistics of the rows it judged
    (those :meth:`summarise_statistics` reads), so that runs over parts of the rows merge
    exactly (:mod:`vlmscope.evaluators.merge`)."""

    def __init__(self) -> None:
        self._row_con: duckdb.DuckDBPyConnection | None = None
        self._row_lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        """The evaluator without its per-row connection and lock (one per process), so that
        it pickles into Ray tasks."""
        state = self.__dict__.copy()
        state["_row_con"] = None
        state.pop("_row_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._row_lock = threading.Lock()

    def prepare(self, con: duckdb.DuckDBPyConnection) -> None:
        """Create whatever :meth:`judge_sql` needs on ``con`` (macros, lookup tables)."""

    @abstractmethod
    def skip_reason_sql(self) -> str:
        """A SQL expression over one row: why it cannot be judged, or NULL when it can."""

    @abstractmethod
    def judge_sql(self, source: str) -> str:
        """A query over ``source`` giving ``row_id, trace_id, span_id, score, passed, label,
        explanation, metadata`` for every row whose :meth:`skip_reason_sql` is NULL."""

    def stages(self, source: str) -> list[tuple[str, str]]:
        """Intermediate relations, ``(name, query)`` in order, that :meth:`run` stores as
        temporary tables before running :meth:`staged_sql` (default: none). :meth:`judge_sql`
        must give the same rows with the stages inlined (see :func:`with_stages`)."""
        return []

    def staged_sql(self, source: str) -> str:
        """:meth:`judge_sql` reading the :meth:`stages` by name (default: :meth:`judge_sql`)."""
        return self.judge_sql(source)

    def run(self, con: duckdb.DuckDBPyConnection, source: str, run_id: str) -> dict[str, Any]:
        """Insert one ``evaluations`` row per judged row; summary: ``judged``, ``passed``,
        ``accuracy`` (= passed / judged), ``skipped`` and ``skipped_reasons``."""
        self.check_columns(con, source)
        self.prepare(con)
        with staged(con, self.stages(source)):
            con.execute(
                "INSERT INTO evaluations SELECT $run_id, row_id, trace_id, span_id, $evaluator, "
                "score, passed, label, explanation, metadata, $kind "
                f"FROM ({self.staged_sql(source)})",
                {"run_id": run_id, "evaluator": self.name, "kind": self.annotator_kind},
            )
        ((judged, passed),) = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE passed) FROM evaluations "
            "WHERE run_id = ? AND evaluator = ?", [run_id, self.name],
        ).fetchall()
        return self.counts_summary(con, source, judged, passed)

    def counts_summary(self, con: duckdb.DuckDBPyConnection, source: str, judged: int,
                       passed: int, reasons: dict[str, int] | None = None) -> dict[str, Any]:
        """``judged``, ``passed``, ``accuracy`` (= passed / judged), ``skipped`` and
        ``skipped_reasons`` (``reasons`` when already known, else :meth:`skip_reasons`)."""
        if reasons is None:
            reasons = self.skip_reasons(con, source)
        return {
            "judged": judged,
            "passed": passed,
            "accuracy": passed / judged if judged else None,
            "skipped": sum(reasons.values()),
            "skipped_reasons": reasons,
        }

    def skip_reasons(self, con: duckdb.DuckDBPyConnection, source: str) -> dict[str, int]:
        """Rows of ``source`` per reason they could not be judged, by reason."""
        return dict(con.execute(
            f"SELECT reason, count(*) FROM (SELECT {self.skip_reason_sql()} AS reason "
            f"FROM {source}) WHERE reason IS NOT NULL GROUP BY reason ORDER BY reason"
        ).fetchall())

    def summarise_statistics(self, con: duckdb.DuckDBPyConnection,
                             statistics: str) -> dict[str, Any]:
        """The summary keys :meth:`run` adds to :meth:`counts_summary`'s, from the relation
        ``statistics`` (stacked :attr:`kept_statistics` tables of disjoint parts)."""
        raise NotImplementedError(f"{self.name} has no additive summary statistics")

    def unmergeable_reason(self) -> str | None:
        """None when the summary is :meth:`counts_summary` (counts add) or :meth:`run` keeps
        additive statistics (:meth:`summarise_statistics` is given); else why not."""
        own = type(self)
        if (own.run is RowEvaluator.run
                or own.summarise_statistics is not RowEvaluator.summarise_statistics):
            return None
        return (f"{self.name}'s run() adds summary keys to the counts without additive "
                "statistics: keep them in kept_statistics and give summarise_statistics() "
                "to merge it from parts")

    def _one_row_connection(self) -> duckdb.DuckDBPyConnection:
        if self._row_con is None:
            # One row gains nothing from parallelism; one thread halves the per-call cost.
            self._row_con = duckdb.connect(config={"threads": 1})
            self.prepare(self._row_con)
        return self._row_con

    def evaluate_row(self, row: Mapping[str, Any]) -> EvalResult:
        """Judge one row given as a mapping of ``pipeline_rows`` columns (others are NULL)."""
        return self.evaluate_rows([row])[0]

    def evaluate_rows(self, rows: Iterable[Mapping[str, Any]]) -> list[EvalResult]:
        """Judge many rows, each a mapping of ``pipeline_rows`` columns, with one run of the
        same SQL; the results come in the order of ``rows``.

        A call costs mostly DuckDB planning the judging query (a few ms), whatever the number
        of rows: judging a list in one call is far cheaper than calling :meth:`evaluate_row`
        in a loop.
        """
        rows = [dict(row) for row in rows]
        for row in rows:
            unknown = set(row) - set(self.row_schema.names)
            if unknown:
                raise ValueError(
                    f"unknown column(s) {', '.join(sorted(unknown))}; the row columns are "
                    f"{', '.join(self.row_schema.names)}"
                )
        if not rows:
            return []
        # Each row is keyed by its position: the judging carries row_id through, unread.
        table = rows_table([{**row, "row_id": str(i)} for i, row in enumerate(rows)],
                           self.row_schema)
        with self._row_lock:
            con = self._one_row_connection()
            con.register(_ONE_ROW, table)
            try:
                judged = {key: values for key, *values in con.execute(
                    f"SELECT row_id, score, passed, label, explanation, metadata "
                    f"FROM ({self.judge_sql(_ONE_ROW)})"
                ).fetchall()}
                reasons = {}
                if len(judged) < len(rows):
                    reasons = dict(con.execute(
                        f"SELECT row_id, {self.skip_reason_sql()} FROM {_ONE_ROW}"
                    ).fetchall())
            finally:
                con.unregister(_ONE_ROW)
        results = []
        for i in range(len(rows)):
            verdict = judged.get(str(i))
            if verdict is None:
                results.append(EvalResult(None, None, "skipped", f"skipped: {reasons[str(i)]}"))
                continue
            score, passed, label, explanation, metadata = verdict
            results.append(EvalResult(score, passed, label, explanation,
                                      orjson.loads(metadata) if metadata else {}))
        return results
