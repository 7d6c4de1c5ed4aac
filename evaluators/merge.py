"""Exact summaries of a run evaluated in parts (partitions of the rows, judged apart).

Each part runs the evaluator's own SQL on its rows (:func:`evaluate_part`) and returns the
evaluator's *sufficient statistics*: counts that add across disjoint parts (judged, passed
and skipped rows per reason; the classification report's rows per expected, predicted and
calibration bin; the blame counts per label, cohort, checkpoint and kind).
:func:`merge_parts` adds them and computes every rate once, after the merge, with the same
code the single-machine run uses, so the merged summary equals it to the last digit.

Every built-in evaluator merges: ``ground_truth_match`` (counts), ``classification_report``
(not with ``classes_from_encoder=True``, which reads the classes from all rows at once),
``failure_attribution`` (not with ``linear_probe=True``, whose probe is trained on all rows
at once), ``caption_hallucination`` (CHAIR and POPE counts), ``instruction_adherence`` (rows
per distinct score, instruction type and failed check; the judge's scores likewise),
``multilabel_report`` (rows per label, truth and reading; ranked cells per label, score and
truth, from which average precision is exact) and ``custom`` (counts and the exact sum of the
scores). Means are summed as fractions (:mod:`vlmscope.evaluators.exact`) and the
single-machine run computes its summary from the same statistics, so both agree by
construction. An evaluator of your own merges when its summary follows from additive
statistics: a :class:`RowEvaluator` whose ``run`` is the base one, or that keeps its
statistics in ``kept_statistics`` and gives ``summarise_statistics``; a
:class:`SummarisedRowEvaluator` with ``statistics_sql``. Any other is refused by
:func:`check_mergeable` with the reason (:meth:`Evaluator.unmergeable_reason`).
Calibration sums (ECE, MCE) are
float sums: they equal the one-machine sums exactly while each is exact in float64 (top-1
scores above 2^-10 and fewer than 2^19 rows per bin), as a multi-threaded DuckDB sum needs
too.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa

from vlmscope.evaluators.base import Evaluator, RowEvaluator
from vlmscope.evaluators.classification import ClassificationReport
from vlmscope.evaluators.multilabel import MultiLabelReport

COUNT_KEYS = ("judged", "passed", "skipped", "skipped_reasons")
"""The summary keys of :meth:`RowEvaluator.counts_summary` that add across parts."""

_STATISTICS = "_vlmscope_merged_statistics"


@dataclass
class PartSummary:
    """What one part contributes to an evaluator's summary: the additive row counts
    (:data:`COUNT_KEYS`) and the evaluator's statistics tables (empty for plain counts)."""

    evaluator: str
    counts: dict[str, Any]
    statistics: list[pa.Table] = field(default_factory=list)


def check_mergeable(evaluator: Evaluator) -> None:
    """Raise :class:`ValueError` saying why ``evaluator``'s summary cannot be merged exactly
    from parts of the rows (:meth:`Evaluator.unmergeable_reason`; nothing when it can)."""
    reason = evaluator.unmergeable_reason()
    if reason is not None:
        raise ValueError(reason)


def evaluate_part(con: duckdb.DuckDBPyConnection, evaluator: Evaluator, source: str,
                  run_id: str) -> PartSummary:
    """Run ``evaluator`` on the rows of ``source`` (one part), writing its evaluation rows
    under ``run_id`` on ``con`` as :meth:`Evaluator.run` does; return the part's counts."""
    check_mergeable(evaluator)
    if isinstance(evaluator, ClassificationReport):
        table = evaluator.count_table(con, source)
        return PartSummary(evaluator.name, {}, [table])
    if isinstance(evaluator, MultiLabelReport):
        return PartSummary(evaluator.name, {}, [evaluator.statistics(con, source)])
    assert isinstance(evaluator, RowEvaluator)
    collecting = copy.copy(evaluator)
    collecting.kept_statistics = []
    summary = collecting.run(con, source, run_id)
    return PartSummary(evaluator.name, {k: summary[k] for k in COUNT_KEYS},
                       collecting.kept_statistics)


def _add_counts(parts: Sequence[PartSummary]) -> dict[str, Any]:
    judged = sum(p.counts["judged"] for p in parts)
    passed = sum(p.counts["passed"] for p in parts)
    reasons: dict[str, int] = {}
    for part in parts:
        for reason, n in part.counts["skipped_reasons"].items():
            reasons[reason] = reasons.get(reason, 0) + n
    reasons = dict(sorted(reasons.items()))
    return {"judged": judged, "passed": passed,
            "accuracy": passed / judged if judged else None,
            "skipped": sum(reasons.values()), "skipped_reasons": reasons}


def merge_parts(evaluator: Evaluator, parts: Sequence[PartSummary]) -> dict[str, Any]:
    """``evaluator``'s summary of all the rows of ``parts`` (the :func:`evaluate_part`
    results of disjoint parts), equal to :meth:`Evaluator.run`'s over them at once."""
    if not parts:
        raise ValueError("merge needs the summary of at least one part")
    if isinstance(evaluator, ClassificationReport):
        return evaluator.report_counts(pa.concat_tables(
            [t for p in parts for t in p.statistics], promote_options="permissive"))
    if isinstance(evaluator, MultiLabelReport):
        return evaluator.summarise_statistics([t for p in parts for t in p.statistics])
    counts = _add_counts(parts)
    if not any(p.statistics for p in parts):
        return counts
    con = duckdb.connect()
    tables = [t for p in parts for t in p.statistics]
    con.register(_STATISTICS, pa.concat_tables(tables, promote_options="permissive"))
    try:
        return {**counts, **evaluator.summarise_statistics(con, _STATISTICS)}
    finally:
        con.close()
