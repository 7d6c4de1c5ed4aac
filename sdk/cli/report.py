"""``vlmscope report``: write the self-contained HTML report of a store."""

from __future__ import annotations

import argparse

from vlmscope.cli import CommandError
from vlmscope.settings import default_db


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``report`` to the CLI."""
    parser = subparsers.add_parser(
        "report", help="write a self-contained HTML report of a store",
        description="One HTML file that opens offline: run summary, confusion matrices, "
        "per-class precision and recall, reliability diagrams, blame between encoder and "
        "language head, the regression diff, hallucination examples, trace waterfalls, and "
        "every evaluator's verdict for every failing row.",
    )
    parser.add_argument("--db", default=default_db(),
                        help="the DuckDB store (default: $VLMSCOPE_DB or vlmscope.duckdb)")
    parser.add_argument("-o", "--output", default="report.html", help="the HTML file to write")
    parser.add_argument("--base", help="base run of the regression diff")
    parser.add_argument("--candidate", help="candidate run of the regression diff")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handle ``vlmscope report``."""
    from vlmscope._optional import MissingExtraError
    from vlmscope.collectors.store import StoreLockedError

    if bool(args.base) != bool(args.candidate):
        raise CommandError("give both --base and --candidate, or neither")
    try:
        from vlmscope.report import build_report

        stats = build_report(args.db, args.output, base=args.base, candidate=args.candidate)
    except (MissingExtraError, FileNotFoundError, StoreLockedError, ValueError) as error:
        raise CommandError(str(error)) from error
    print(f"wrote {stats.path}: {len(stats.runs)} runs, {stats.failing_rows} failing rows, "
          f"{stats.changed_rows} changed rows in the diff, {stats.hallucination_examples} "
          "hallucination examples")
    return 0
