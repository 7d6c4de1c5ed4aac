"""Row evaluators whose run summary needs more than pass counts (CHAIR rates, blame shares).

:class:`SummarisedRowEvaluator` judges the rows once into a temporary table that keeps the
numeric columns the summary needs next to the evaluation columns, inserts the evaluation
rows from it, and lets the subclass aggregate it: one pass over the source, no JSON
re-parsing of the stored metadata.
"""

from __future__ import annotations

import uuid
from abc import abstractmethod
from typing import Any

import duckdb

from vlmscope.evaluators.base import RowEvaluator


class SummarisedRowEvaluator(RowEvaluator):
    """A :class:`RowEvaluator` whose :meth:`judge_sql` may give extra columns after the
    evaluation ones, which :meth:`summarise` aggregates into the run summary."""

    @abstractmethod
    def summarise(self, con: duckdb.DuckDBPyConnection, judged: str) -> dict[str, Any]:
        """The evaluator's own summary keys, from the table ``judged`` (the rows of
        :meth:`judge_sql`)."""

    def statistics_sql(self, judged: str) -> str | None:
        """A query over ``judged`` of additive counts from which
        :meth:`~RowEvaluator.summarise_statistics` gives :meth:`summarise`'s keys (None: the
        summary cannot be computed from parts of the rows)."""
        return None

    def unmergeable_reason(self) -> str | None:
        """None when :meth:`statistics_sql` gives additive counts; else why not."""
        if type(self).statistics_sql is SummarisedRowEvaluator.statistics_sql:
            return (f"{self.name}'s summary has no additive statistics (statistics_sql): it "
                    "cannot be merged from parts")
        return None

    def after_judging(self, con: duckdb.DuckDBPyConnection, judged: str, source: str) -> None:
        """Revise the judged rows in place before they are stored (default: nothing)."""

    def run(self, con: duckdb.DuckDBPyConnection, source: str, run_id: str) -> dict[str, Any]:
        """Judge, store and summarise: the keys of :meth:`RowEvaluator.run` (``judged``,
        ``passed``, ``accuracy``, ``skipped``, ``skipped_reasons``) plus :meth:`summarise`'s."""
        self.check_columns(con, source)
        self.prepare(con)
        judged = f"_vlmscope_judged_{uuid.uuid4().hex}"
        con.execute(f"CREATE TEMP TABLE {judged} AS {self.judge_sql(source)}")
        try:
            self.after_judging(con, judged, source)
            con.execute(
                "INSERT INTO evaluations SELECT $run_id, row_id, trace_id, span_id, $evaluator, "
                f"score, passed, label, explanation, metadata, $kind FROM {judged}",
                {"run_id": run_id, "evaluator": self.name, "kind": self.annotator_kind},
            )
            ((count, passed),) = con.execute(
                f"SELECT count(*), count(*) FILTER (WHERE passed) FROM {judged}").fetchall()
            summary = self.summarise(con, judged)
            statistics = self.statistics_sql(judged)
            if self.kept_statistics is not None and statistics is not None:
                self.kept_statistics.append(con.sql(statistics).to_arrow_table())
        finally:
            con.execute(f"DROP TABLE IF EXISTS {judged}")
        return {**self.counts_summary(con, source, count, passed), **summary}
