"""CustomEvaluation: the user's own rule, as a SQL expression or a Python function, stored and
summarised like the built-in evaluators.

* ``CustomEvaluation("short", sql="length(output) <= 20")`` - any SQL expression over the
  ``pipeline_rows`` columns, run by DuckDB over all rows at once (and on one row by
  ``evaluate``). A boolean reads as 1.0/0.0; a number is the score as is.
* ``CustomEvaluation("polite", fn=lambda row: "please" in (row["output"] or ""))`` - a Python
  function of one row (a dict of the ``pipeline_rows`` columns) returning a bool, a number,
  or ``(score, reason)``. It runs once per row: for millions of rows prefer SQL.

A row passes when ``score >= threshold`` (default 0.5); a NULL/None score skips the row with
the reason "the rule gave no score", and so does a NaN or infinite one ("the rule gave a score
that is not a finite number (nan)"): it cannot be averaged, and JSON has no word for it.
Summary: ``judged``, ``passed``, ``accuracy`` (= passed / judged), ``mean_score`` (the exactly
summed mean, so that parts merge to the same digit), ``skipped``.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import duckdb
import pyarrow as pa

from vlmscope.evaluators.base import (
    PIPELINE_ROW_SCHEMA,
    EvalResult,
    Evaluator,
    RowEvaluator,
    rows_table,
)
from vlmscope.evaluators.declaration import REQUIRED, Metric, Option
from vlmscope.evaluators.exact import EXACT_SUM_SCHEMA, exact_mean, exact_sum_table
from vlmscope.evaluators.text import install_macros

DEFAULT_THRESHOLD = 0.5
"""Score at or above which a row passes."""

RowRule = Callable[[Mapping[str, Any]], "bool | float | int | tuple[float, str] | None"]
"""A Python rule: one row (``pipeline_rows`` columns) -> bool, score, or (score, reason)."""

_NOT_FINITE = "the rule gave a score that is not a finite number ("

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


class CustomEvaluation(RowEvaluator):
    """A named rule with a pass threshold: ``sql`` (an expression) or ``fn`` (a function);
    see the module docstring.

    Raises :class:`ValueError` for a bad name, neither or both rules, a SQL rule that is not
    one expression, and, when run, a SQL rule DuckDB cannot bind (naming the rule).

    Example::

        >>> CustomEvaluation("short", sql="length(output) <= 5").evaluate(output="cat").passed
        True
    """

    name = "custom"
    description = ("the user's own rule: a SQL expression (vlmscope eval --custom "
                   "NAME=EXPR) or a Python function, with a pass threshold")
    required_columns = ("row_id", "trace_id", "span_id", "llm_span_id")
    # A rule may read any column of the row, so a filtered run keeps them all.
    optional_columns = tuple(PIPELINE_ROW_SCHEMA.names)
    options = (
        Option("name", "str", REQUIRED, "the rule's name (letters, digits, _, . or -): its "
               "evaluations and summary are stored under it"),
        Option("sql", "str | None", None, "a SQL expression over pipeline_rows columns"),
        Option("fn", "RowRule | None", None, "a Python function of one row"),
        Option("threshold", "float", DEFAULT_THRESHOLD, "score at or above which a row passes"),
        Option("description", "str | None", None, "one line saying what the rule checks"),
        Option("rules", "list[str]", [], "SQL rules NAME=EXPR (NAME@THRESHOLD=EXPR sets the "
               "threshold), each a custom evaluator; repeatable", flag="--custom",
               kind="repeat", metavar="NAME=SQL", keyword=False, selects=True),
    )
    summary_metrics = (
        Metric("pass rate", "share of judged rows that pass", key="accuracy"),
        Metric("mean_score", "mean score of the judged rows"),
    )
    merged_from = "judged, passed and skipped rows, and the exact sum of the scores"
    summary_group = "custom"

    @classmethod
    def from_options(cls, values: Mapping[str, Any]) -> list[Evaluator]:
        """One evaluator per ``--custom`` rule; :class:`ValueError` without any."""
        rules = values.get("rules") or []
        if not rules:
            raise ValueError("the custom evaluator needs its rule: --custom NAME=SQL")
        return [parse_custom(rule) for rule in rules]

    def __init__(
        self,
        name: str,
        *,
        sql: str | None = None,
        fn: RowRule | None = None,
        threshold: float = DEFAULT_THRESHOLD,
        description: str | None = None,
    ) -> None:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"custom evaluator name {name!r} must start with a letter or _ "
                             "and use letters, digits, _, . or -")
        if (sql is None) == (fn is None):
            raise ValueError(f"custom evaluator {name!r} needs exactly one of sql= (a SQL "
                             "expression over pipeline_rows columns) or fn= (a function)")
        if sql is not None and (not sql.strip() or ";" in sql):
            raise ValueError(f"custom evaluator {name!r}: sql must be one non-empty SQL "
                             f"expression without ';', got {sql!r}")
        if fn is not None and not callable(fn):
            raise TypeError(f"custom evaluator {name!r}: fn must be callable")
        if not math.isfinite(threshold):
            raise ValueError(f"custom evaluator {name!r}: threshold must be a finite number")
        super().__init__()
        self.name = name  # type: ignore[misc]
        self.sql = sql
        self.fn = fn
        self.threshold = float(threshold)
        if description is not None:
            self.description = description  # type: ignore[misc]
        self._scores = f"_vlmscope_custom_{uuid.uuid4().hex}"

    def config(self) -> dict[str, Any]:
        """The rule (the SQL text, or the function's qualified name) and the threshold."""
        rule = self.sql if self.sql is not None else getattr(
            self.fn, "__qualname__", type(self.fn).__name__)
        return {"kind": "sql" if self.sql is not None else "python", "rule": rule,
                "threshold": self.threshold}

    def evaluate(self, **row: Any) -> EvalResult:
        """Judge one row given as ``pipeline_rows`` columns (``output=...``, ...)."""
        return self.evaluate_row({"row_id": "row", **row})

    def prepare(self, con: duckdb.DuckDBPyConnection) -> None:
        """The text macros (a SQL rule may use ``vlmscope_normalize`` and friends)."""
        install_macros(con)

    def skip_reason_sql(self) -> str:
        """Rows whose rule gives no score, or a NaN or infinite one."""
        return (f"CASE WHEN ({self._score_sql()}) IS NULL THEN 'the rule gave no score' "
                f"WHEN NOT isfinite({self._score_sql()}) THEN '{_NOT_FINITE}' || "
                f"printf('%g', {self._score_sql()}) || ')' END")

    def _score_sql(self) -> str:
        if self.sql is not None:
            return f"TRY_CAST(({self.sql}) AS DOUBLE)"
        return "_custom_score"

    def judge_sql(self, source: str) -> str:
        """Score, pass at the threshold, explain with the score (and the function's
        reason)."""
        reason = "coalesce('; ' || _custom_reason, '')" if self.fn is not None else "''"
        return f"""
        SELECT row_id, trace_id, coalesce(llm_span_id, span_id) AS span_id, score,
               score >= {self.threshold} AS passed,
               CASE WHEN score >= {self.threshold} THEN 'pass' ELSE 'fail' END AS label,
               '{self.name} scored ' || printf('%g', score) || CASE WHEN score >=
                   {self.threshold} THEN ' >= ' ELSE ' < ' END || 'threshold '
                   || printf('%g', {self.threshold}::DOUBLE) || {reason} AS explanation,
               json_object('score', score, 'threshold', {self.threshold}::DOUBLE) AS metadata
        FROM (SELECT *, {self._score_sql()} AS score FROM {source})
        WHERE isfinite(score)
        """

    def _call(self, row: Mapping[str, Any]) -> tuple[float | None, str | None]:
        """``fn`` on one row, as (score, reason)."""
        assert self.fn is not None
        value = self.fn(row)
        reason = None
        if isinstance(value, tuple):
            value, reason = value
        if value is not None and not isinstance(value, bool | int | float):
            raise TypeError(f"custom evaluator {self.name!r}: fn returned "
                            f"{type(value).__name__}; return a bool, a number, "
                            "(score, reason) or None")
        return (None if value is None else float(value),
                None if reason is None else str(reason))

    def _score_rows(self, con: duckdb.DuckDBPyConnection, source: str) -> str:
        """Call ``fn`` on every row of ``source``; return a temporary table of the rows with
        ``_custom_score`` and ``_custom_reason``."""
        rows = con.sql(f"SELECT * FROM {source}").to_arrow_table()
        scored = [self._call(row) for row in rows.to_pylist()]
        rows = rows.append_column("_custom_score", pa.array([s for s, _ in scored],
                                                            pa.float64()))
        rows = rows.append_column("_custom_reason", pa.array([r for _, r in scored],
                                                             pa.string()))
        con.register(f"{self._scores}_arrow", rows)
        try:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {self._scores} AS "
                        f"SELECT * FROM {self._scores}_arrow")
        finally:
            con.unregister(f"{self._scores}_arrow")
        return self._scores

    def run(self, con: duckdb.DuckDBPyConnection, source: str, run_id: str) -> dict[str, Any]:
        """Check the rule runs, score every row, store; the summary adds ``mean_score`` and
        ``threshold``."""
        self.prepare(con)
        if self.sql is not None:
            try:
                con.execute(f"SELECT {self._score_sql()} FROM {source} LIMIT 0").fetchall()
            except duckdb.Error as error:
                raise ValueError(f"custom evaluator {self.name!r}: the SQL rule {self.sql!r} "
                                 f"does not run over {source}: {error}") from error
            summary = super().run(con, source, run_id)
        else:
            try:
                summary = super().run(con, self._score_rows(con, source), run_id)
            finally:
                con.execute(f"DROP TABLE IF EXISTS {self._scores}")
        scores = con.execute(
            "SELECT score, count(*) FROM evaluations WHERE run_id = ? AND evaluator = ? "
            "GROUP BY score", [run_id, self.name]).fetchall()
        statistics = exact_sum_table(scores)
        if self.kept_statistics is not None:
            self.kept_statistics.append(statistics)
        summary.update(self._statistics_summary(statistics))
        return summary

    def summarise_statistics(self, con: duckdb.DuckDBPyConnection,
                             statistics: str) -> dict[str, Any]:
        """``mean_score`` (exact, from the parts' score sums) and ``threshold``."""
        return self._statistics_summary(con.sql(f"FROM {statistics}").to_arrow_table())

    def _statistics_summary(self, statistics: pa.Table) -> dict[str, Any]:
        parts = zip(*(statistics[c].to_pylist() for c in EXACT_SUM_SCHEMA.names), strict=True)
        return {"mean_score": exact_mean(parts), "threshold": self.threshold}

    def evaluate_rows(self, rows: Iterable[Mapping[str, Any]]) -> list[EvalResult]:
        """Judge rows: a SQL rule runs in DuckDB on all of them at once, a function is called
        on each (the same call :meth:`run` makes per row)."""
        if self.fn is None:
            return super().evaluate_rows(rows)
        return [self.evaluate_row(row) for row in rows]

    def evaluate_row(self, row: Mapping[str, Any]) -> EvalResult:
        """Judge one row: a SQL rule runs in DuckDB on it, a function is called on it (the
        same call :meth:`run` makes per row)."""
        if self.fn is None:
            return super().evaluate_row(row)
        full = rows_table([row], PIPELINE_ROW_SCHEMA).to_pylist()[0]
        score, reason = self._call(full)
        if score is None:
            return EvalResult(None, None, "skipped", "skipped: the rule gave no score")
        if not math.isfinite(score):
            return EvalResult(None, None, "skipped", f"skipped: {_NOT_FINITE}{score:g})")
        passed = score >= self.threshold
        explanation = (f"{self.name} scored {score:g} {'>=' if passed else '<'} threshold "
                       f"{self.threshold:g}" + (f"; {reason}" if reason else ""))
        return EvalResult(score, passed, "pass" if passed else "fail", explanation,
                          {"score": score, "threshold": self.threshold})


def parse_custom(spec: str, threshold: float = DEFAULT_THRESHOLD) -> CustomEvaluation:
    """A SQL rule from the CLI form ``NAME=EXPRESSION`` (``NAME@0.8=EXPRESSION`` sets the
    threshold); :class:`ValueError` says what was expected."""
    head, sep, expression = spec.partition("=")
    if not sep or not expression.strip():
        raise ValueError(f"--custom {spec!r}: expected NAME=SQL_EXPRESSION "
                         "(or NAME@THRESHOLD=SQL_EXPRESSION)")
    name, at, value = head.strip().partition("@")
    if at:
        try:
            threshold = float(value)
        except ValueError as error:
            raise ValueError(f"--custom {spec!r}: threshold {value!r} is not a number"
                             ) from error
    return CustomEvaluation(name, sql=expression.strip(), threshold=threshold)

