"""``vlmscope diff``: compare a candidate run with a base run on the same cohort, for CI.

Exit status: 0 when no evaluator regressed significantly, 1 when one did, when either run
has more failed rows than ``--max-failed`` or when no row was judged, 2 on a usage error (no
store, unknown run, runs over different rows without ``--intersect``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import Any

from vlmscope.cli import CommandError
from vlmscope.cli.output import render
from vlmscope.settings import default_db

_WORST_CLASSES = 10


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``diff`` to the CLI."""
    from vlmscope.regression import DEFAULT_ALPHA, DEFAULT_MAX_DROP
    from vlmscope.regression.diff import DEFAULT_CHANGED_ROWS, DEFAULT_MAX_FAILED

    parser = subparsers.add_parser(
        "diff", help="compare two runs row by row and gate on a significant regression",
        description="Pair the rows of two runs made with Dataset.run by row id; report per "
        "evaluator the transitions (fixed, broken, still passing, still failing), the pass-rate "
        "and score deltas with paired bootstrap 95% intervals, the exact McNemar p-value, "
        "per-class deltas and the shift in blame. Exit 1 when an evaluator's pass rate dropped "
        "by more than --max-drop with p < --alpha, when either run has more failed rows "
        "(pipeline errors, unreadable images) than --max-failed, or when no row was judged.",
    )
    parser.add_argument("--db", default=default_db(),
                        help="the DuckDB store (default: $VLMSCOPE_DB or vlmscope.duckdb)")
    parser.add_argument("--parquet", metavar="DIR", action="append",
                        help="compare runs under a Parquet dataset root instead (runs made "
                        "with vlmscope.distributed.run_on_ray); repeat it for runs under "
                        "two roots")
    parser.add_argument("--base", required=True, help="the production run's name")
    parser.add_argument("--candidate", required=True, help="the candidate run's name")
    parser.add_argument("--max-drop", type=float, default=DEFAULT_MAX_DROP,
                        help=f"largest tolerated drop, a share (default {DEFAULT_MAX_DROP})")
    parser.add_argument("--alpha", type=float, default=DEFAULT_ALPHA,
                        help=f"significance level (default {DEFAULT_ALPHA})")
    parser.add_argument("--max-failed", type=int, default=DEFAULT_MAX_FAILED, metavar="N",
                        help="failed rows a run may have and still pass (default "
                        f"{DEFAULT_MAX_FAILED})")
    parser.add_argument("--intersect", action="store_true",
                        help="compare the rows both runs share when their cohorts differ")
    parser.add_argument("--changed-rows", type=int, default=DEFAULT_CHANGED_ROWS, metavar="N",
                        help=f"list N changed rows, broken first (default "
                        f"{DEFAULT_CHANGED_ROWS})")
    parser.add_argument("--per-row", metavar="FILE.parquet",
                        help="also write the full per-row diff to this Parquet file")
    parser.add_argument("--format", choices=("table", "json"), default="table",
                        help="output format")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds to wait for a writing process to hand the file over")
    parser.set_defaults(handler=run)


def _fmt(value: float | None, *, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def _interval(pair: list[float] | None) -> str:
    return "n/a" if pair is None else f"[{pair[0]:+.4f}, {pair[1]:+.4f}]"


def render_report(report: dict[str, Any]) -> str:
    """The human-readable report: rows compared, per-evaluator statistics, transitions,
    worst classes, blame shift, changed rows, warnings and the verdict."""
    base, candidate, rows = report["base"], report["candidate"], report["rows"]
    parts = [f"base {base['run']!r} ({base['dataset']}, {base['rows']} rows, "
             f"{base['failed']} failed) vs candidate {candidate['run']!r} "
             f"({candidate['dataset']}, {candidate['rows']} rows, {candidate['failed']} failed)",
             f"{rows['compared_rows']} rows compared"
             + "".join(f", {n} {kind.replace('_', ' ')} left out" for kind, n in rows.items()
                       if kind != "compared_rows")]
    stats = report["evaluators"]
    parts.append("\nEvaluators (delta = candidate - base; 95% paired bootstrap interval):\n"
                 + render(["evaluator", "rows", "base", "candidate", "delta", "interval",
                           "mcnemar_p", "regressed"],
                          [(s["evaluator"], s["judged_rows"], _fmt(s["base_pass_rate"]),
                            _fmt(s["candidate_pass_rate"]), _fmt(s["pass_rate_delta"], signed=True),
                            _interval(s["pass_rate_ci"]),
                            "n/a" if s["mcnemar_p"] is None else f"{s['mcnemar_p']:.3g}",
                            "YES" if s["regressed"] else "no") for s in stats], "table"))
    parts.append("\nTransitions:\n" + render(
        ["evaluator", "fixed", "broken", "still_passing", "still_failing", "not_judged"],
        [(s["evaluator"], *s["transitions"].values()) for s in stats], "table"))
    if report.get("metrics"):
        parts.append("\nSummary metrics (each evaluator's declared ones):\n" + render(
            ["evaluator", "metric", "base", "candidate", "delta"],
            [(m["evaluator"], m["metric"], _fmt(m["base"]), _fmt(m["candidate"]),
              _fmt(m["delta"], signed=True)) for m in report["metrics"]], "table"))
    worst = [c for c in report["per_class"] if c["delta"] < 0][:_WORST_CLASSES]
    if worst:
        parts.append("\nClasses that lost most:\n" + render(
            ["evaluator", "class", "rows", "base", "candidate", "delta"],
            [(c["evaluator"], c["class"], c["rows"], _fmt(c["base_pass_rate"]),
              _fmt(c["candidate_pass_rate"]), f"{c['delta']:+.4f}") for c in worst], "table"))
    if report["blame"]:
        blame = report["blame"]
        parts.append(f"\nBlame of failures ({blame['source']}):\n" + render(
            ["blame", "base", "candidate", "shift"],
            [(b["blame"], b["base"], b["candidate"], f"{b['shift']:+d}")
             for b in blame["labels"]], "table"))
    if report["changed_rows"]:
        changed = sum(s["transitions"]["fixed"] + s["transitions"]["broken"] for s in stats)
        listed = len(report["changed_rows"])
        cut = (f"; {listed} of {changed} shown, truncated (--changed-rows N shows more)"
               if listed < changed else "")
        parts.append(f"\nChanged rows (broken first{cut}):\n" + render(
            ["row_id", "evaluator", "transition", "base", "candidate"],
            [(c["row_id"], c["evaluator"], c["transition"], c["base_reason"],
              c["candidate_reason"]) for c in report["changed_rows"]], "table"))
    parts += [f"warning: {w}" for w in report["warnings"]]
    parts += [f"gate: {c}" for c in report["failed_checks"]]
    settings = report["settings"]
    parts.append(f"\nverdict: {report['verdict']}"
                 + (f" ({', '.join(report['regressed'])})" if report["regressed"] else "")
                 + f" [max drop {settings['max_drop']:g}, alpha {settings['alpha']:g}]")
    return "\n".join(parts)


def run(args: argparse.Namespace) -> int:
    """Handle ``vlmscope diff``."""
    import duckdb

    from vlmscope.collectors.shards import open_root
    from vlmscope.collectors.store import StoreError, read_connection
    from vlmscope.regression import compare_runs, per_row_diff_sql

    if args.changed_rows < 0 or args.max_failed < 0:
        raise CommandError("--changed-rows and --max-failed must be >= 0")
    try:
        with (contextlib.closing(open_root(args.parquet)) if args.parquet
              else read_connection(args.db, timeout_s=args.timeout)) as con:
            report = compare_runs(con, args.base, args.candidate, max_drop=args.max_drop,
                                  alpha=args.alpha, intersect=args.intersect,
                                  changed_rows=args.changed_rows, max_failed=args.max_failed)
            if args.per_row:
                query = per_row_diff_sql(report["base"]["eval_run_id"],
                                         report["candidate"]["eval_run_id"])
                target = args.per_row.replace("'", "''")
                con.execute(f"COPY ({query}) TO '{target}' (FORMAT parquet)")
    except (FileNotFoundError, StoreError, ValueError) as error:
        raise CommandError(str(error)) from error
    except duckdb.CatalogException as error:
        raise CommandError(f"{args.db} has no dataset runs (schema older than v3?): "
                           f"{error}") from error
    if args.format == "json":
        print(json.dumps(report, indent=2))
    else:
        print(render_report(report))
    if args.per_row:
        print(f"per-row diff written to {args.per_row}", file=sys.stderr)
    return 1 if report["regressed"] or report["failed_checks"] else 0
