"""RegressionEval: compare two runs of a pipeline over the same cohort, row by row.

``compare_runs`` pairs the rows of a base run (production) and a candidate run by row id,
and for every evaluator both runs have:

* the transition of each row: ``fixed`` (fail -> pass), ``broken`` (pass -> fail),
  ``still_passing``, ``still_failing``, or ``not_judged`` (skipped in either run);
* the pass-rate delta ``(fixed - broken) / n`` and the mean score delta, each with a paired
  bootstrap 95% interval (:mod:`vlmscope.regression.stats`), and the exact McNemar p-value;
* each evaluator's declared summary metrics in both runs (``metrics``: base, candidate,
  delta; :attr:`vlmscope.evaluators.Evaluator.summary_metrics`);
* per-class pass rates (class = the row's expected label) and the shift in blame of the
  failures: the ``failure_attribution`` evaluator's labels when both runs have them, else
  ``encoder`` (the encoder's top-1 label is not the expected one), ``language_head`` (it
  is, yet the answer failed), ``pipeline_error`` (the row raised) or ``unknown`` (no
  encoder reading).

An evaluator *regressed* when its pass rate dropped by more than ``max_drop`` (a share, e.g.
0.01 = one point) and McNemar's p < ``alpha``; for an evaluator without pass/fail verdicts,
when the score dropped by more than ``max_drop`` and the whole bootstrap interval is below 0.
The verdict is ``regression`` when any evaluator regressed.

All counting happens in DuckDB; Python sees only per-evaluator and per-class counts and the
grouped score differences. Every list is sorted and every statistic seeded, so the same
store gives byte-identical reports.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import duckdb
import orjson

from vlmscope.evaluators.text import install_macros
from vlmscope.regression.stats import (
    DEFAULT_CONFIDENCE,
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    bootstrap_mean_interval,
    mcnemar_exact_p,
)

DEFAULT_MAX_DROP = 0.01
"""Largest tolerated drop of a pass rate or mean score (a share: 0.01 = one point)."""

DEFAULT_ALPHA = 0.05
"""Significance level of the regression test."""

DEFAULT_CHANGED_ROWS = 50
"""Changed rows (broken first) listed in a report."""

TRANSITIONS = ("fixed", "broken", "still_passing", "still_failing", "not_judged")
"""Per-row transitions between the base and the candidate run."""

BLAME_EVALUATOR = "failure_attribution"
"""Evaluator whose labels, when both runs have them, give the blame of each failure."""

_ROWS = "_vlmscope_diff_rows"
_PAIRS = "_vlmscope_diff_pairs"

DEFAULT_MAX_FAILED = 0
"""Failed rows (pipeline errors, unreadable images) a run may have and still pass the gate."""
_EXAMPLES = 5


class RunMismatchError(ValueError):
    """The two runs were not over the same rows (and the intersection was not asked for)."""


def _run_info(con: duckdb.DuckDBPyConnection, name: str) -> dict[str, Any]:
    found = con.execute(
        "SELECT dataset, eval_run_id, num_rows, failed_rows, checkpoints, mixed_checkpoints "
        "FROM dataset_runs WHERE run_name = ?", [name]).fetchall()
    if not found:
        known = [n for (n,) in con.execute(
            "SELECT run_name FROM dataset_runs ORDER BY created_at, run_name").fetchall()]
        raise ValueError(f"no run named {name!r} in the store; runs made with "
                         f"Dataset.run: {', '.join(known) or 'none'}")
    dataset, run_id, rows, failed, checkpoints, mixed = found[0]
    return {"run": name, "dataset": dataset, "eval_run_id": run_id, "rows": rows,
            "failed": failed, "checkpoints": orjson.loads(checkpoints or "{}"),
            "mixed_checkpoints": bool(mixed)}


def _pair_rows(con: duckdb.DuckDBPyConnection, base: dict[str, Any],
               candidate: dict[str, Any], intersect: bool) -> dict[str, Any]:
    """Build the table of compared rows; report the rows that are not in both runs."""
    if base["dataset"] == candidate["dataset"]:  # one cohort: nothing to match up
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_ROWS} AS "
                    "SELECT row_id, expected FROM dataset_rows WHERE dataset = ?",
                    [base["dataset"]])
        ((count,),) = con.execute(f"SELECT count(*) FROM {_ROWS}").fetchall()
        return {"compared_rows": count}
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_ROWS} AS "
        "SELECT coalesce(a.row_id, b.row_id) AS row_id, a.row_id IS NOT NULL AS in_base, "
        "b.row_id IS NOT NULL AS in_candidate, "
        "a.image_sha256 IS NOT DISTINCT FROM b.image_sha256 AS same_image, "
        "coalesce(a.expected, b.expected) AS expected "
        "FROM (SELECT row_id, image_sha256, expected FROM dataset_rows WHERE dataset = $a) a "
        "FULL JOIN (SELECT row_id, image_sha256 , expected FROM dataset_rows "
        "WHERE dataset = $b) b ON a.row_id = b.row_id",
        {"a": base["dataset"], "b": candidate["dataset"]})
    groups = con.execute(
        f"SELECT CASE WHEN NOT in_candidate THEN 'only_in_base' "
        "WHEN NOT in_base THEN 'only_in_candidate' WHEN NOT same_image THEN 'different_image' "
        "ELSE 'compared' END AS kind, count(*), "
        f"list(row_id ORDER BY row_id)[1:{_EXAMPLES}] FROM {_ROWS} GROUP BY 1 ORDER BY 1"
    ).fetchall()
    found = {kind: (n, examples) for kind, n, examples in groups}
    mismatch = {kind: found[kind] for kind in ("only_in_base", "only_in_candidate",
                                               "different_image") if kind in found}
    if mismatch and not intersect:
        details = "; ".join(f"{n} {kind.replace('_', ' ')} (e.g. {', '.join(examples)})"
                            for kind, (n, examples) in mismatch.items())
        raise RunMismatchError(
            f"runs {base['run']!r} (dataset {base['dataset']!r}) and {candidate['run']!r} "
            f"(dataset {candidate['dataset']!r}) are not over the same rows: {details}. "
            "Compare the rows they share with --intersect (intersect=True)")
    con.execute(f"DELETE FROM {_ROWS} WHERE NOT (in_base AND in_candidate AND same_image)")
    return {"compared_rows": found.get("compared", (0, []))[0],
            **{kind: n for kind, (n, _) in mismatch.items()}}


def _evaluators(con: duckdb.DuckDBPyConnection, run_id: str) -> list[str]:
    return [name for (name,) in con.execute(
        "SELECT DISTINCT evaluator FROM evaluations WHERE run_id = ? ORDER BY 1",
        [run_id]).fetchall()]


def _build_pairs(con: duckdb.DuckDBPyConnection, base_id: str, candidate_id: str,
                 evaluators: Sequence[str]) -> None:
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_PAIRS} AS "
        "WITH a AS (SELECT row_id, evaluator, passed, score FROM evaluations "
        "           WHERE run_id = $a AND list_contains($evaluators, evaluator)), "
        "b AS (SELECT row_id, evaluator, passed, score FROM evaluations "
        "      WHERE run_id = $b AND list_contains($evaluators, evaluator)), "
        "ev AS (SELECT unnest($evaluators) AS evaluator) "
        "SELECT r.row_id, r.expected, ev.evaluator, a.passed AS base_passed, "
        "b.passed AS candidate_passed, a.score AS base_score, b.score AS candidate_score, "
        "CASE WHEN a.passed IS NULL OR b.passed IS NULL THEN 'not_judged' "
        "     WHEN a.passed AND b.passed THEN 'still_passing' "
        "     WHEN a.passed THEN 'broken' WHEN b.passed THEN 'fixed' "
        "     ELSE 'still_failing' END AS transition "
        f"FROM {_ROWS} r CROSS JOIN ev "
        "LEFT JOIN a ON a.row_id = r.row_id AND a.evaluator = ev.evaluator "
        "LEFT JOIN b ON b.row_id = r.row_id AND b.evaluator = ev.evaluator",
        {"a": base_id, "b": candidate_id, "evaluators": list(evaluators)})


def _rate(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _evaluator_stats(con: duckdb.DuckDBPyConnection, evaluators: Sequence[str],
                     max_drop: float, alpha: float, resamples: int, confidence: float,
                     seed: int) -> list[dict[str, Any]]:
    counts: dict[str, dict[str, int]] = {e: dict.fromkeys(TRANSITIONS, 0) for e in evaluators}
    for evaluator, transition, n in con.execute(
            f"SELECT evaluator, transition, count(*) FROM {_PAIRS} GROUP BY ALL").fetchall():
        counts[evaluator][transition] = n
    grouped: dict[str, dict[str, tuple[list[float], list[int]]]] = {
        e: {"delta": ([], []), "base": ([], []), "candidate": ([], [])} for e in evaluators}
    scored = "base_score IS NOT NULL AND candidate_score IS NOT NULL"
    for kind, expression in (("delta", "candidate_score - base_score"),
                             ("base", "base_score"), ("candidate", "candidate_score")):
        for evaluator, value, n in con.execute(
                f"SELECT evaluator, {expression} AS v, count(*) FROM {_PAIRS} WHERE {scored} "
                "GROUP BY ALL ORDER BY evaluator, v").fetchall():
            grouped[evaluator][kind][0].append(value)
            grouped[evaluator][kind][1].append(n)
    results = []
    for evaluator in evaluators:
        t = counts[evaluator]
        judged = sum(t[k] for k in TRANSITIONS if k != "not_judged")
        base_pass = t["still_passing"] + t["broken"]
        candidate_pass = t["still_passing"] + t["fixed"]
        pass_interval = bootstrap_mean_interval(
            [-1.0, 0.0, 1.0], [t["broken"], judged - t["broken"] - t["fixed"], t["fixed"]],
            resamples=resamples, confidence=confidence, seed=seed) if judged else None
        values, weights = grouped[evaluator]["delta"]
        score_interval = bootstrap_mean_interval(values, weights, resamples=resamples,
                                                 confidence=confidence, seed=seed)
        scored_rows = sum(weights)
        means = {kind: (math.fsum(v * w for v, w in zip(*grouped[evaluator][kind],
                                                        strict=True)) / scored_rows
                        if scored_rows else None) for kind in ("base", "candidate")}
        p_value = mcnemar_exact_p(t["broken"], t["fixed"]) if judged else None
        if judged:
            drop = (base_pass - candidate_pass) / judged
            regressed = drop > max_drop and p_value is not None and p_value < alpha
        elif score_interval is not None:
            regressed = -score_interval.mean > max_drop and score_interval.high < 0
        else:
            regressed = False
        results.append({
            "evaluator": evaluator,
            "judged_rows": judged,
            "transitions": t,
            "base_pass_rate": _rate(base_pass, judged),
            "candidate_pass_rate": _rate(candidate_pass, judged),
            "pass_rate_delta": pass_interval.mean if pass_interval else None,
            "pass_rate_ci": [pass_interval.low, pass_interval.high] if pass_interval else None,
            "scored_rows": scored_rows,
            "base_mean_score": means["base"],
            "candidate_mean_score": means["candidate"],
            "score_delta": score_interval.mean if score_interval else None,
            "score_ci": [score_interval.low, score_interval.high] if score_interval else None,
            "mcnemar_p": p_value,
            "regressed": regressed,
        })
    return results


def _per_class(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    rows = con.execute(
        "SELECT evaluator, coalesce(expected, '(none)') AS class, count(*) AS n, "
        "count(*) FILTER (WHERE base_passed) AS a, count(*) FILTER (WHERE candidate_passed) "
        f"AS b FROM {_PAIRS} WHERE transition <> 'not_judged' GROUP BY ALL "
        "ORDER BY evaluator, class").fetchall()
    classes = [{"evaluator": evaluator, "class": label, "rows": n,
                "base_pass_rate": a / n, "candidate_pass_rate": b / n, "delta": (b - a) / n}
               for evaluator, label, n, a, b in rows]
    return sorted(classes, key=lambda c: (c["evaluator"], c["delta"], c["class"]))


def _blame(con: duckdb.DuckDBPyConnection, base: dict[str, Any], candidate: dict[str, Any],
           evaluators: Sequence[str]) -> dict[str, Any] | None:
    if BLAME_EVALUATOR in evaluators:
        # Each side counted on its own, so a run compared with itself counts twice.
        counts = [(side, label, n) for side, run_id in (
            ("base", base["eval_run_id"]), ("candidate", candidate["eval_run_id"]))
            for label, n in con.execute(
                f"SELECT e.label, count(*) FROM evaluations e JOIN {_ROWS} r USING (row_id) "
                "WHERE e.run_id = $run AND e.evaluator = $ev AND e.label <> 'correct' "
                "GROUP BY ALL", {"run": run_id, "ev": BLAME_EVALUATOR}).fetchall()]
        source = BLAME_EVALUATOR
    else:
        judge = "ground_truth_match" if "ground_truth_match" in evaluators else (
            evaluators[0] if evaluators else None)
        if judge is None:
            return None
        install_macros(con)
        # The last encoder reading of each failed row, read from the per-row records
        # directly: the pipeline_rows view would rank every encoder record in the store.
        counts = con.execute(
            "WITH failed AS ("
            f"  SELECT 'base' AS side, $ra AS run, row_id FROM {_PAIRS} "
            "   WHERE evaluator = $judge AND base_passed = false UNION ALL "
            f"  SELECT 'candidate', $rb, row_id FROM {_PAIRS} "
            "   WHERE evaluator = $judge AND candidate_passed = false), "
            "rows AS (SELECT f.side, f.run, r.trace_id, r.row_id, r.status_code, r.expected "
            "         FROM failed f JOIN row_records r "
            "         ON r.run_name = f.run AND r.row_id = f.row_id), "
            "readings AS (SELECT rows.trace_id, rows.row_id, "
            "             arg_max(e.top_k_labels[1], e.start_time) AS top1 "
            "             FROM rows JOIN encoder_records e "
            "             ON e.trace_id = rows.trace_id AND e.row_id = rows.row_id "
            "             GROUP BY ALL), "
            # Labels repeat: normalise each distinct (top-1, expected) case once.
            "cases AS (SELECT rows.side, rows.status_code, readings.top1, rows.expected, "
            "          count(*) AS n FROM rows LEFT JOIN readings USING (trace_id, row_id) "
            "          GROUP BY ALL) "
            "SELECT side, "
            "  CASE WHEN status_code = 'ERROR' THEN 'pipeline_error' "
            "  WHEN top1 IS NULL THEN 'unknown' "
            "  WHEN vlmscope_normalize(top1) = vlmscope_normalize(expected) "
            "  THEN 'language_head' ELSE 'encoder' END AS blame, sum(n)::BIGINT "
            "FROM cases GROUP BY ALL",
            {"judge": judge, "ra": base["run"], "rb": candidate["run"]}).fetchall()
        source = f"{judge} failures by encoder top-1"
    table: dict[str, dict[str, int]] = {"base": {}, "candidate": {}}
    for side, label, n in counts:
        table[side][str(label)] = n
    labels = sorted(set(table["base"]) | set(table["candidate"]))
    return {"source": source, "labels": [
        {"blame": label, "base": table["base"].get(label, 0),
         "candidate": table["candidate"].get(label, 0),
         "shift": table["candidate"].get(label, 0) - table["base"].get(label, 0)}
        for label in labels]}


def _changed_rows(con: duckdb.DuckDBPyConnection, base_id: str, candidate_id: str,
                  limit: int) -> list[dict[str, Any]]:
    rows = con.execute(
        "SELECT p.row_id, p.evaluator, p.transition, a.label, a.explanation, b.label, "
        f"b.explanation FROM (SELECT * FROM {_PAIRS} WHERE transition IN ('broken', 'fixed') "
        "ORDER BY transition = 'fixed', evaluator, row_id LIMIT $limit) p "
        "JOIN evaluations a ON a.run_id = $a AND a.row_id = p.row_id "
        "AND a.evaluator = p.evaluator "
        "JOIN evaluations b ON b.run_id = $b AND b.row_id = p.row_id "
        "AND b.evaluator = p.evaluator "
        "ORDER BY p.transition = 'fixed', p.evaluator, p.row_id",
        {"a": base_id, "b": candidate_id, "limit": limit}).fetchall()
    return [{"row_id": row_id, "evaluator": evaluator, "transition": transition,
             "base_label": base_label, "base_reason": base_reason,
             "candidate_label": candidate_label, "candidate_reason": candidate_reason}
            for row_id, evaluator, transition, base_label, base_reason, candidate_label,
            candidate_reason in rows]


def _declared_metrics(con: duckdb.DuckDBPyConnection, base: dict[str, Any],
                      candidate: dict[str, Any]) -> list[dict[str, Any]]:
    """Each registered evaluator's declared summary metrics in both runs' stored summaries,
    with ``delta`` = candidate - base (None where either lacks it)."""
    from vlmscope.evaluators.runner import EVALUATORS

    stored: dict[str, dict[str, Any]] = {}
    for side, run in (("base", base), ("candidate", candidate)):
        for evaluator, summary in con.execute(
                "SELECT evaluator, summary FROM eval_runs WHERE run_id = ? ORDER BY evaluator",
                [run["eval_run_id"]]).fetchall():
            stored.setdefault(evaluator, {})[side] = orjson.loads(summary or "{}")
    compared = []
    for evaluator, sides in sorted(stored.items()):
        declared = EVALUATORS.get(evaluator)
        if declared is None or len(sides) < 2:
            continue
        for metric in declared.summary_metrics:
            a, b = metric.value(sides["base"]), metric.value(sides["candidate"])
            if a is None and b is None:
                continue
            compared.append({"evaluator": evaluator, "metric": metric.name, "base": a,
                             "candidate": b, "delta": None if a is None or b is None
                             else b - a, "gated": metric.gated})
    return compared


def compare_runs(
    con: duckdb.DuckDBPyConnection,
    base: str,
    candidate: str,
    *,
    max_drop: float = DEFAULT_MAX_DROP,
    alpha: float = DEFAULT_ALPHA,
    intersect: bool = False,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = DEFAULT_SEED,
    changed_rows: int = DEFAULT_CHANGED_ROWS,
    max_failed: int = DEFAULT_MAX_FAILED,
) -> dict[str, Any]:
    """Compare the runs named ``base`` and ``candidate`` (made by
    :meth:`vlmscope.Dataset.run`) in the store behind ``con``; return the report (a dict that
    serialises to JSON; see the module docstring for its contents).

    The gate also fails (``report["failed_checks"]`` says why) when either run has more
    than ``max_failed`` failed rows (pipeline errors, undecodable images) or no evaluator
    judged any row: a run that could not be judged never passes.

    Raises :class:`ValueError` for an unknown run or bad thresholds, and
    :class:`RunMismatchError` when the runs are over different rows and not ``intersect``.
    Leaves temporary tables on ``con`` that :func:`per_row_diff` reads.
    """
    if not 0.0 <= max_drop <= 1.0:
        raise ValueError(f"max_drop is a share in [0, 1], got {max_drop}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    con.execute("SET enable_progress_bar = false")
    base_run, candidate_run = _run_info(con, base), _run_info(con, candidate)
    rows = _pair_rows(con, base_run, candidate_run, intersect)
    base_evaluators = _evaluators(con, base_run["eval_run_id"])
    candidate_evaluators = _evaluators(con, candidate_run["eval_run_id"])
    evaluators = [e for e in base_evaluators if e in candidate_evaluators]
    _build_pairs(con, base_run["eval_run_id"], candidate_run["eval_run_id"], evaluators)
    stats = _evaluator_stats(con, evaluators, max_drop, alpha, resamples, confidence, seed)
    warnings = [f"{side} run {run['run']!r} saw mixed checkpoints: "
                + ", ".join(f"{sha[:12]} ({n} rows)" for sha, n in run["checkpoints"].items())
                for side, run in (("base", base_run), ("candidate", candidate_run))
                if run["mixed_checkpoints"]]
    warnings += [f"evaluator {e!r} judged only the {side} run; not compared"
                 for side, names, other in (("base", base_evaluators, candidate_evaluators),
                                            ("candidate", candidate_evaluators,
                                             base_evaluators))
                 for e in names if e not in other]
    if not evaluators:
        warnings.append("the runs share no evaluator: nothing was compared")
    regressed = [s["evaluator"] for s in stats if s["regressed"]]
    failed_checks = [f"the {side} run {run['run']!r} has {run['failed']} failed rows "
                     f"(pipeline errors or unreadable images; at most {max_failed} allowed)"
                     for side, run in (("base", base_run), ("candidate", candidate_run))
                     if (run["failed"] or 0) > max_failed]
    if not any(s["judged_rows"] for s in stats):
        failed_checks.append("no row was judged by an evaluator both runs share")
    if regressed:
        verdict = "regression"
    elif failed_checks:
        verdict = "gate failed"
    else:
        verdict = "no significant regression"
    return {
        "base": base_run,
        "candidate": candidate_run,
        "rows": rows,
        "settings": {"max_drop": max_drop, "alpha": alpha, "intersect": intersect,
                     "resamples": resamples, "confidence": confidence, "seed": seed},
        "evaluators": stats,
        "per_class": _per_class(con),
        "metrics": _declared_metrics(con, base_run, candidate_run),
        "blame": _blame(con, base_run, candidate_run, evaluators),
        "changed_rows": _changed_rows(con, base_run["eval_run_id"],
                                      candidate_run["eval_run_id"], changed_rows),
        "warnings": warnings,
        "regressed": regressed,
        "failed_checks": failed_checks,
        "verdict": verdict,
    }


def per_row_diff_sql(base_run_id: str, candidate_run_id: str) -> str:
    """A query over the tables :func:`compare_runs` left on its connection: one row per
    compared row and evaluator with both verdicts, labels, reasons and the transition, in
    row id then evaluator order (for ``COPY ... TO 'diff.parquet'``)."""
    for run_id in (base_run_id, candidate_run_id):
        if not run_id.isalnum():
            raise ValueError(f"not a run id: {run_id!r}")
    return (
        "SELECT p.row_id, p.evaluator, p.transition, p.base_passed, p.candidate_passed, "
        "p.base_score, p.candidate_score, a.label AS base_label, "
        "a.explanation AS base_reason, b.label AS candidate_label, "
        f"b.explanation AS candidate_reason FROM {_PAIRS} p "
        f"LEFT JOIN evaluations a ON a.run_id = '{base_run_id}' AND a.row_id = p.row_id "
        "AND a.evaluator = p.evaluator "
        f"LEFT JOIN evaluations b ON b.run_id = '{candidate_run_id}' "
        "AND b.row_id = p.row_id AND b.evaluator = p.evaluator "
        "ORDER BY p.row_id, p.evaluator")
