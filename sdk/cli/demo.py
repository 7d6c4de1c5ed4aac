"""``vlmscope demo``: train (or load) the demo pipeline, trace three runs, score them, and
show what vlmscope found."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from vlmscope.cli import CommandError
from vlmscope.cli.output import render
from vlmscope.settings import default_db

DEMO_SERVICE = "vlmscope-demo"
"""``service.name`` of the demo's spans; a store holding only these may be replaced."""

SIZES = {"full": (300, 40), "small": (64, 16)}
"""Held-out rows, and held-out rows perturbed (x 3 corruptions x 3 severities), per --size."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``demo`` to the CLI."""
    parser = subparsers.add_parser(
        "demo", help="train, trace and score a real ResNet -> GPT-2 pipeline, offline",
        description="Train a ResNet-10 encoder and a GPT-2 head on scenes of real handwritten "
        "digits (scikit-learn's scans) on this CPU (cached after the first run), trace a "
        "held-out cohort, a perturbed cohort and a candidate checkpoint into a DuckDB store, "
        "score every run, and print what failed and why.",
    )
    parser.add_argument("--db", default=default_db(),
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
        from vlmscope.demo import SMALL_PLAN, TrainingPlan, load_or_train
        from vlmscope.demo.pipeline import BASE_RUN, CANDIDATE_RUN, HELDOUT, run_all

        _prepare_store(db)
        plan = SMALL_PLAN if args.size == "small" else TrainingPlan()
        _step("1/5 models: the cached checkpoints, or trained now on this CPU (first run only)")
        models = load_or_train(plan, Path(args.cache) if args.cache else None,
                               progress=_detail)
        _step(f"2/5 tracing and scoring three runs into {db}")
        vlmscope.configure(db=db, service_name=DEMO_SERVICE, capture_images=True)
        try:
            results = run_all(models, *SIZES[args.size], progress=_detail)
        finally:
            vlmscope.shutdown()
        stats = vlmscope.export_stats()
        _step("3/5 comparing the candidate checkpoint with the baseline")
        diff = _compare(db, BASE_RUN, CANDIDATE_RUN)
        _step("4/5 writing the HTML report")
        from vlmscope.report import build_report

        report = build_report(db, out / "report.html", base=BASE_RUN, candidate=CANDIDATE_RUN)
        _step("5/5 exporting the traces as OTLP JSON Lines")
        exported = _export(db, out / "traces.otlp.jsonl")
    except MissingExtraError as error:
        raise CommandError(str(error)) from error
    _print_summary(results, diff)
    print(f"\n{stats.exported_spans} spans in {db} ({stats.failed_spans} lost), "
          f"{time.perf_counter() - started:.0f} s in all"
          + (" (checkpoints trained now, cached for next time)." if models.trained_now
             else "."))
    print(f"Report:  {report.path}  ({report.failing_rows} failing rows explained)")
    print(f"Traces:  {out / 'traces.otlp.jsonl'}  ({exported} spans, OTLP JSON Lines)")
    print(f"Next:    vlmscope diff --db {db} --base {BASE_RUN} --candidate {CANDIDATE_RUN}\n"
          f"         vlmscope eval --db {db} --cohort {HELDOUT} --classes-from-encoder\n"
          f"         vlmscope report --db {db} -o report.html\n"
          f"         vlmscope sql --db {db} \"SELECT d.run_name, e.label AS blame, count(*) "
          "FROM evaluations e JOIN dataset_runs d ON e.run_id = d.eval_run_id "
          "WHERE e.evaluator = 'failure_attribution' GROUP BY ALL ORDER BY ALL\"")
    return 0


def _step(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _detail(text: str) -> None:
    print(f"    {text}", file=sys.stderr, flush=True)


def _compare(db: Path, base: str, candidate: str) -> dict:
    from vlmscope.collectors.store import read_connection
    from vlmscope.regression.diff import compare_runs

    with read_connection(db) as con:
        return compare_runs(con, base, candidate)


def _export(db: Path, path: Path) -> int:
    from vlmscope.collectors.interchange import export_otlp_jsonl
    from vlmscope.collectors.store import read_connection

    path.parent.mkdir(parents=True, exist_ok=True)
    with read_connection(db) as con:
        return export_otlp_jsonl(con, path).spans


def _blame_shares(evaluations: dict) -> tuple:
    blame = evaluations.get("failure_attribution", {})
    return (blame.get("blame_encoder"), blame.get("blame_language_head"), blame.get("blame_both"))


def _print_summary(results: list, diff: dict) -> None:
    columns = ["run", "dataset", "rows", "answer_accuracy", "hallucination_chair_s",
               "adherence", "blame_encoder", "blame_head", "blame_both"]
    rows = []
    for result in results:
        evaluations = result.summary.get("evaluations", {})
        rows.append([
            result.name, result.dataset, result.summary.get("rows"),
            evaluations.get("ground_truth_match", {}).get("accuracy"),
            evaluations.get("caption_hallucination", {}).get("chair_s"),
            evaluations.get("instruction_adherence", {}).get("adherence"),
            *_blame_shares(evaluations),
        ])
    print(render(columns, rows, "table"))
    regressed = ", ".join(diff.get("regressed", [])) or "none"
    print(f"\nRegression verdict, candidate vs baseline: {diff['verdict'].upper()} "
          f"(regressed evaluators: {regressed})")
