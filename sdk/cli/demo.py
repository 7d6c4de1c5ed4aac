"""``vlmscope demo``: train (or load) the demo pipeline, trace three runs, score them, and
show what vlmscope found."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from vlmscope.cli import CommandError
from vlmscope.cli.output import render
from vlmscope.cli.progress import ProgressBar
from vlmscope.settings import DEFAULT_DB

DEMO_SERVICE = "vlmscope-demo"
"""``service.name`` of the demo's spans; a store holding only these may be replaced."""

SIZES = {"full": 300, "small": 48}
"""Held-out rows per run for each ``--size``."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``demo`` to the CLI."""
    parser = subparsers.add_parser(
        "demo", help="train, trace and score a real ResNet -> GPT-2 pipeline, offline",
        description="Train a ResNet-10 encoder and a GPT-2 head on scenes of real handwritten "
        "digits (scikit-learn's scans) on this CPU (cached after the first run), trace a "
        "held-out cohort, a perturbed cohort and a candidate checkpoint into a DuckDB store, "
        "score every run, and print what failed and why.",
    )
    parser.add_argument("--db", default=os.environ.get("VLMSCOPE_DB", DEFAULT_DB),
                        help="the DuckDB store to write (default: vlmscope.duckdb); an "
                        "existing store is replaced only if the demo wrote it")
    parser.add_argument("--out", default="vlmscope-out",
                        help="folder for the report and the exports (default: vlmscope-out)")
    parser.add_argument("--size", choices=sorted(SIZES), default="full",
                        help="full: 300 held-out rows per run; small: a quick look")
    parser.add_argument("--cache", default=None,
                        help="where trained checkpoints are kept (default: $VLMSCOPE_CACHE "
                        "or ~/.cache/vlmscope)")
    parser.set_defaults(handler=run)


def _prepare_store(db: Path) -> None:
    """Remove a previous demo store at ``db``; refuse to touch any other file."""
    if not db.exists():
        return
    from vlmscope.collectors.store import read_connection

    try:
        with read_connection(db, timeout_s=5) as con:
            services = {s for (s,) in con.execute(
                "SELECT DISTINCT service_name FROM spans").fetchall()}
    except Exception as error:
        raise CommandError(f"{db} exists and is not a vlmscope demo store ({error}); "
                           "pass another --db") from error
    if services - {DEMO_SERVICE}:
        raise CommandError(f"{db} holds traces that are not the demo's "
                           f"({', '.join(sorted(s or '?' for s in services))}); "
                           "pass another --db so they are not replaced")
    for leftover in (db, Path(f"{db}.wal")):
        leftover.unlink(missing_ok=True)


def run(args: argparse.Namespace) -> int:
    """Handle ``vlmscope demo``."""
    from vlmscope._optional import MissingExtraError

    db, out = Path(args.db), Path(args.out)
    started = time.perf_counter()
    try:
        import vlmscope
        from vlmscope.demo import (
            SMALL_PLAN,
            TrainingPlan,
            evaluate_runs,
            load_or_train,
            plan_runs,
            trace_run,
        )

        _prepare_store(db)
        plan = SMALL_PLAN if args.size == "small" else TrainingPlan()
        print("1/4 models: loading the cached checkpoints, or training them on this CPU "
              "(first run only, about a minute)", file=sys.stderr, flush=True)
        models = load_or_train(plan, Path(args.cache) if args.cache else None,
                               progress=lambda line: print(f"    {line}", file=sys.stderr,
                                                           flush=True))
        runs = plan_runs(SIZES[args.size])
        print("2/4 tracing three runs into", db, file=sys.stderr, flush=True)
        vlmscope.configure(db=db, service_name=DEMO_SERVICE)
        try:
            for demo_run in runs:
                bar = ProgressBar(f"    {demo_run.name:<20}", stream=sys.stderr)
                trace_run(demo_run, models, progress=bar.update)
                bar.close()
        finally:
            vlmscope.shutdown()
        stats = vlmscope.export_stats()
        print("3/4 scoring every run", file=sys.stderr, flush=True)
        summaries = evaluate_runs(db, runs)
    except MissingExtraError as error:
        raise CommandError(str(error)) from error
    print("4/4 done\n", file=sys.stderr, flush=True)
    _print_summary(runs, summaries)
    print(f"\n{stats.exported_spans} spans in {db} ({stats.failed_spans} lost); "
          f"{time.perf_counter() - started:.0f} s in all"
          + (" (checkpoints trained now and cached)" if models.trained_now else ""))
    out.mkdir(parents=True, exist_ok=True)
    print(f"Runs: {', '.join(r.name for r in runs)}. Try:\n"
          f"  vlmscope sql --db {db} \"SELECT run, count(*) FROM pipeline_rows GROUP BY run\"\n"
          f"  vlmscope eval --db {db} --cohort heldout")
    return 0


def _print_summary(runs: list, summaries: dict[str, dict]) -> None:
    columns = ["run", "cohort", "rows", "answer_accuracy", "encoder_top1", "macro_f1", "ece"]
    rows = []
    for demo_run in runs:
        summary = summaries[demo_run.name]
        answers = summary.get("ground_truth_match", {})
        report = summary.get("classification_report", {})
        rows.append([
            demo_run.name, demo_run.cohort, len(demo_run.rows), answers.get("accuracy"),
            report.get("top1"), (report.get("averages") or {}).get("macro", {}).get("f1"),
            report.get("ece"),
        ])
    print(render(columns, rows, "table"))
