"""``vlmscope eval``: run evaluators over a store, record the run, print a summary, gate CI.

Exit status: 0 when every ``--fail-under`` threshold holds, 1 when one fails, 2 on a usage
error (unknown evaluator, column or metric; no store).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vlmscope.cli import CommandError
from vlmscope.cli.output import render
from vlmscope.settings import default_db

if TYPE_CHECKING:
    import duckdb

GATED_METRICS = {
    "top1": "encoder top-1 accuracy",
    "top5": "encoder top-5 accuracy",
    "answer_accuracy": "share of final answers matching the expected label",
    "macro_f1": "macro-averaged F1 over classes",
    "micro_f1": "micro-averaged F1",
    "weighted_f1": "support-weighted F1",
    "macro_precision": "macro-averaged precision",
    "macro_recall": "macro-averaged recall",
    "recall_min": "lowest recall of any class present",
    "precision_min": "lowest precision of any class predicted or present",
    "f1_min": "lowest F1 of any class",
    "coverage": "share of ground-truth objects the captions mention (caption_hallucination)",
    "pope_accuracy": "share of yes/no object probes answered right (caption_hallucination)",
    "pope_f1": "F1 of the yes answers to object probes (caption_hallucination)",
    "adherence": "mean share of instruction checks passed (instruction_adherence)",
}
"""Metrics ``--fail-under`` accepts (higher is better), with what each measures."""

_SELECTED_ROWS = ("(SELECT * FROM pipeline_rows WHERE ($cohort IS NULL OR cohort = $cohort) "
                  "AND ($checkpoint IS NULL OR starts_with(checkpoint_sha256, $checkpoint)) "
                  "AND ($run IS NULL OR run = $run))")
REPORTED_METRICS = {
    "caption_hallucination": ("chair_i", "chair_s", "coverage", "pope_accuracy",
                              "pope_precision", "pope_recall", "pope_f1", "pope_yes_ratio"),
    "failure_attribution": ("blame_encoder", "blame_language_head", "blame_both",
                            "blame_unattributable", "disagreement_rate"),
    "instruction_adherence": ("adherence",),
    "multilabel_report": ("subset_accuracy", "hamming_loss", "mean_average_precision"),
}
"""Summary keys each evaluator adds to the combined summary (and the printed metrics)."""

_WORST_CLASSES = 15
_TOP_CONFUSIONS = 10


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eval`` to the CLI."""
    from vlmscope.evaluators.ground_truth import MODES

    parser = subparsers.add_parser(
        "eval", help="score the stored pipeline rows and record the run",
        description="Run evaluators over the pipeline rows of a store (one cohort and/or "
        "checkpoint if asked), write one evaluations row per judged row and one eval_runs row "
        "per evaluator, and print a summary with the worst classes first. With --fail-under, "
        "exit 1 when a metric is below its threshold (for CI gates).",
    )
    parser.add_argument("--db", default=default_db(),
                        help="the DuckDB store (default: $VLMSCOPE_DB or vlmscope.duckdb)")
    parser.add_argument("--parquet", type=Path, metavar="DIR",
                        help="score a folder written by `vlmscope export --format parquet` "
                        "instead (results are printed, not stored)")
    parser.add_argument("--engine", choices=("duckdb", "ray"), default="duckdb",
                        help="with --parquet: duckdb (one process, default) or ray (one Ray "
                        "task per partition, summaries merged exactly, evaluation rows "
                        "written back under the folder)")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="--engine ray: partitions evaluated at once (default: as many "
                        "as the cluster's CPUs)")
    parser.add_argument("--ray-address", default=None, metavar="ADDRESS",
                        help="--engine ray: the Ray cluster (default: $RAY_ADDRESS, else a "
                        "local one)")
    parser.add_argument("--evaluators", default="ground_truth_match,classification_report",
                        help="comma-separated evaluator names (see --list)")
    parser.add_argument("--cohort", help="only rows of this cohort")
    parser.add_argument("--run", metavar="NAME",
                        help="only rows of this named run (a vlmscope.Dataset run, e.g. "
                        "candidate); recorded in eval_runs.run_name")
    parser.add_argument("--checkpoint", metavar="SHA",
                        help="only rows whose encoder checkpoint SHA-256 starts with SHA")
    parser.add_argument("--by", metavar="COLUMNS",
                        help="also report per slice of these comma-separated columns")
    parser.add_argument("--mode", choices=MODES, default="normalized",
                        help="how ground_truth_match compares answers (default: normalized)")
    parser.add_argument("--custom", action="append", default=[], metavar="NAME=SQL",
                        help="a custom SQL rule over pipeline_rows columns, scored per row "
                        "(true/1 passes); NAME@THRESHOLD=SQL sets the pass threshold "
                        "(default 0.5); repeatable")
    parser.add_argument("--vocabulary", default="coco", metavar="NAMES",
                        help="comma-separated object vocabularies for caption_hallucination "
                        "and instruction_adherence: coco, imagenet or a file of "
                        "'canonical: synonym, ...' lines (default: coco)")
    parser.add_argument("--objects-from-encoder", action="store_true",
                        help="caption_hallucination: rows without objects take the "
                        "encoder's confident labels as ground truth")
    parser.add_argument("--classes", metavar="NAMES",
                        help="the encoder's classes, comma-separated: labels the answers "
                        "may name for failure_attribution, the labels of multilabel_report; "
                        "classification_report skips rows expecting none of them")
    parser.add_argument("--encoder-threshold", type=float, default=None, metavar="SCORE",
                        help="failure_attribution and multilabel_report: the score at which "
                        "a multi-label encoder's label is read (default 0.5)")
    parser.add_argument("--classes-from-encoder", action="store_true",
                        help="classification_report: the classes are the labels the encoder "
                        "ranked in any row's top-k; rows expecting anything else are skipped")
    parser.add_argument("--format", choices=("table", "json"), default="table",
                        help="output format")
    parser.add_argument("--fail-under", metavar="NAME=VALUE,...",
                        help="thresholds, e.g. top1=0.9,recall_min=0.5; metrics: "
                        + ", ".join(GATED_METRICS))
    parser.add_argument("--list", action="store_true", help="list evaluators and exit")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds to wait for a writing process to hand the file over")
    parser.set_defaults(handler=run)


def parse_thresholds(text: str | None) -> dict[str, float]:
    """``"top1=0.9,recall_min=0.5"`` as a dict; :class:`CommandError` lists valid metrics."""
    thresholds: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in GATED_METRICS:
            raise CommandError(
                f"--fail-under {item!r} names no metric; use NAME=VALUE with NAME one of "
                f"{', '.join(GATED_METRICS)}")
        try:
            thresholds[name] = float(value)
        except ValueError as error:
            raise CommandError(f"--fail-under {name}: {value!r} is not a number") from error
    return thresholds


def combined_summary(run_id: str, summaries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One summary from the evaluators' summaries: the classification report's keys, plus
    ``answer_accuracy`` (and ``answers``) from ground_truth_match, plus the gated metrics."""
    report = summaries.get("classification_report")
    match = summaries.get("ground_truth_match")
    summary: dict[str, Any] = {"run_id": run_id}
    if report is not None:
        summary.update(report)
    elif match is not None:
        summary.update(rows=match["judged"], skipped=match["skipped"],
                       skipped_reasons=match["skipped_reasons"])
    elif summaries:
        first = next(iter(summaries.values()))
        summary.update(rows=first["judged"], skipped=first["skipped"],
                       skipped_reasons=first["skipped_reasons"])
    if match is not None:
        summary["answer_accuracy"] = match["accuracy"]
        summary["answers"] = match
    for name, keys in REPORTED_METRICS.items():
        if name in summaries:
            summary.update({key: summaries[name][key] for key in keys})
            summary[name] = summaries[name]
    custom = {name: s for name, s in summaries.items() if "threshold" in s}
    if custom:
        summary["custom"] = custom
    return summary


def metric_values(summary: dict[str, Any]) -> dict[str, float | None]:
    """The value of every gated metric in ``summary`` (None when not measured)."""
    values: dict[str, float | None] = dict.fromkeys(GATED_METRICS)
    values["answer_accuracy"] = summary.get("answer_accuracy")
    for name in ("coverage", "pope_accuracy", "pope_f1", "adherence"):
        values[name] = summary.get(name)
    if "top1" not in summary:
        return values
    values.update(top1=summary["top1"], top5=summary["top5"], macro_f1=summary["macro_f1"])
    for mode in ("micro", "weighted"):
        values[f"{mode}_f1"] = summary["averages"][mode]["f1"]
    values["macro_precision"] = summary["averages"]["macro"]["precision"]
    values["macro_recall"] = summary["averages"]["macro"]["recall"]
    classes = summary["per_class"].values()
    present = [c for c in classes if c["support"]]
    if present:
        values["recall_min"] = min(c["recall"] for c in present)
        values["f1_min"] = min(c["f1"] for c in classes)
        values["precision_min"] = min(c["precision"] for c in classes)
    return values


def check_thresholds(summary: dict[str, Any],
                     thresholds: dict[str, float]) -> list[dict[str, Any]]:
    """Each threshold with the measured value and whether it holds (an unmeasured metric
    fails: a gate must not pass on missing data)."""
    values = metric_values(summary)
    return [{"metric": name, "threshold": threshold, "value": values[name],
             "passed": values[name] is not None and values[name] >= threshold}
            for name, threshold in thresholds.items()]


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _check_filter(con: duckdb.DuckDBPyConnection, column: str, value: str, flag: str) -> None:
    """Raise :class:`CommandError` listing what exists when no row has ``column`` =
    ``value`` (a checkpoint matches by its prefix)."""
    match = "starts_with({c}, ?)" if column == "checkpoint_sha256" else "{c} = ?"
    ((found,),) = con.execute(f"SELECT count(*) FROM pipeline_rows WHERE "
                              f"{match.format(c=column)}", [value]).fetchall()
    if found:
        return
    ((known,),) = con.execute(f"SELECT coalesce(list(DISTINCT {column} ORDER BY {column}), []) "
                              f"FROM pipeline_rows WHERE {column} IS NOT NULL").fetchall()
    shown = [k[:12] if column == "checkpoint_sha256" else k for k in known[:20]]
    more = f" (and {len(known) - 20} more)" if len(known) > 20 else ""
    raise CommandError(f"no rows with {flag} {value!r}; "
                       + (f"those here: {', '.join(shown)}{more}" if known else
                          f"no row here has a {flag[2:]}"))


def _check_run(con: duckdb.DuckDBPyConnection, run: str) -> None:
    """Raise :class:`CommandError` listing the store's runs when none is called ``run``."""
    ((runs,),) = con.execute("SELECT coalesce(list(DISTINCT run ORDER BY run), []) "
                             "FROM pipeline_rows WHERE run IS NOT NULL").fetchall()
    if run not in runs:
        raise CommandError(
            f"no rows of run {run!r}; " + (f"the runs here: {', '.join(runs)}" if runs else
                                           "no row here belongs to a named run "
                                           "(vlmscope.Dataset.run names them)"))


def _unranked_expected(con: duckdb.DuckDBPyConnection, filters: dict[str, Any]) -> int:
    """Selected rows with an encoder reading whose expected answer is none of the labels the
    encoder ranked in any selected row (what ``--classes-from-encoder`` would skip)."""
    ((count,),) = con.execute(f"""
        WITH selected AS (SELECT expected, top_k_labels FROM {_SELECTED_ROWS}
                          WHERE len(coalesce(top_k_labels, []::VARCHAR[])) > 0),
             ranked AS (SELECT DISTINCT unnest(top_k_labels) AS label FROM selected)
        SELECT count(*) FROM selected
        WHERE nullif(trim(expected), '') IS NOT NULL
          AND expected NOT IN (SELECT label FROM ranked)""", filters).fetchall()
    return count


def _shown(shown: int, total: int) -> str:
    """How much of a list a table shows: all of it, or that it is cut."""
    return f"all {total}" if shown >= total else f"{shown} of {total} shown, truncated"


def render_summary(summary: dict[str, Any]) -> str:
    """The human-readable summary: counts, metrics, worst classes, confusions, warnings."""
    parts = [f"run {summary['run_id']}: {summary['rows']} rows scored, "
             f"{summary['skipped']} skipped"]
    parts += [f"  {n} rows had {reason}"
              for reason, n in summary.get("skipped_reasons", {}).items()]
    # The top-k metric is named for the k the encoder recorded (the gate's key stays top5).
    top_k = summary.get("top_k_metric", "top5")
    metrics = [(f"{top_k} (gated as top5)" if name == "top5" and top_k != "top5" else name,
                _fmt(value)) for name, value in metric_values(summary).items()
               if value is not None]
    if summary.get("ece") is not None:
        metrics += [("ece", _fmt(summary["ece"])), ("mce", _fmt(summary["mce"]))]
    shown = {name for name, _ in metrics}
    metrics += [(key, _fmt(summary[key])) for keys in REPORTED_METRICS.values()
                for key in keys if key not in shown and summary.get(key) is not None]
    metrics += [(f"custom {name} (pass rate)", _fmt(s["accuracy"]))
                for name, s in summary.get("custom", {}).items()]
    parts.append("\nMetrics (averages name their mode):\n" + render(
        ["metric", "value"], metrics, "table"))
    if summary.get("per_class"):
        worst = sorted(summary["per_class"].items(),
                       key=lambda item: (item[1]["f1"], item[1]["recall"], item[0]))
        rows = [(label, _fmt(c["precision"]), _fmt(c["recall"]), _fmt(c["f1"]),
                 c["support"], c["predicted"]) for label, c in worst[:_WORST_CLASSES]]
        parts.append(f"\nClasses, worst first ({_shown(len(rows), len(worst))}):\n" + render(
            ["class", "precision", "recall", "f1", "support", "predicted"], rows, "table"))
        confusions = sorted((c for c in summary["confusion"] if c["expected"] != c["predicted"]),
                            key=lambda c: -c["count"])[:_TOP_CONFUSIONS]
        if confusions:
            parts.append("\nMost frequent confusions (share = of the expected class):\n"
                         + render(["expected", "predicted", "count", "share"],
                                  [(c["expected"], c["predicted"], c["count"],
                                    _fmt(c["share"])) for c in confusions], "table"))
    for piece in summary.get("slices", []):
        key = ", ".join(f"{column}={piece[column]}" for column in summary["slice_by"])
        parts.append(f"  slice {key}: rows {piece['rows']}, top1 {_fmt(piece['top1'])}, "
                     f"macro_f1 {_fmt(piece['macro_f1'])}, ece {_fmt(piece['ece'])}")
    labels = (summary.get("multilabel_report") or {}).get("per_label", {})
    if labels:
        worst = sorted(labels.items(), key=lambda item: (item[1]["f1"], item[0]))
        parts.append(f"\nMulti-label reading, labels worst first "
                     f"({_shown(min(len(worst), _WORST_CLASSES), len(worst))}):\n"
                     + render(["label", "precision", "recall", "f1", "support", "ap"],
                              [(label, _fmt(c["precision"]), _fmt(c["recall"]),
                                _fmt(c["f1"]), c["support"], _fmt(c["average_precision"]))
                               for label, c in worst[:_WORST_CLASSES]], "table"))
    blame = summary.get("failure_attribution")
    if blame and blame["by_cohort_checkpoint"]:
        parts.append("\nBlame of the failing rows per cohort and checkpoint:\n" + render(
            ["cohort", "checkpoint", "rows", "failing", "encoder", "language_head", "both",
             "unattributable"],
            [(p["cohort"], (p["checkpoint_sha256"] or "")[:12], p["rows"], p["failing"],
              p["encoder"], p["language_head"], p["both"], p["unattributable"])
             for p in blame["by_cohort_checkpoint"]], "table"))
    parts += [f"warning: {w}" for w in summary.get("warnings", [])]
    for check in summary.get("thresholds", []):
        verdict = "ok  " if check["passed"] else "FAIL"
        parts.append(f"{verdict} {check['metric']} = {_fmt(check['value'])} "
                     f"(fail under {check['threshold']:g})")
    return "\n".join(parts)


def _evaluate_here(args: argparse.Namespace, evaluators: list[Any]) -> tuple[Any, Any, int]:
    """The evaluation run, its checkpoint mix and the unranked rows, in this process."""
    import duckdb

    from vlmscope.collectors.shards import open_root
    from vlmscope.collectors.store import StoreError, write_connection
    from vlmscope.evaluators import ClassificationReport, run_evaluations
    from vlmscope.pinning import checkpoint_mix

    try:
        with (contextlib.closing(open_root(args.parquet)) if args.parquet
              else write_connection(args.db, timeout_s=args.timeout)) as con:
            if args.run is not None:
                _check_run(con, args.run)
            if args.cohort is not None:
                _check_filter(con, "cohort", args.cohort, "--cohort")
            if args.checkpoint is not None:
                _check_filter(con, "checkpoint_sha256", args.checkpoint, "--checkpoint")
            result = run_evaluations(con, evaluators, cohort=args.cohort,
                                     checkpoint=args.checkpoint, run=args.run)
            filters = {"cohort": args.cohort, "checkpoint": args.checkpoint, "run": args.run}
            mix = checkpoint_mix(con, _SELECTED_ROWS, filters)
            unranked = _unranked_expected(con, filters) if any(
                isinstance(e, ClassificationReport) and e.classes is None
                and not e.classes_from_encoder for e in evaluators) else 0
    except (FileNotFoundError, StoreError, ValueError) as error:
        raise CommandError(str(error)) from error
    except duckdb.Error as error:
        raise CommandError(f"evaluation failed: {error}") from error
    return result, mix, unranked


def _evaluate_on_ray(args: argparse.Namespace, evaluators: list[Any]) -> tuple[Any, Any, int]:
    """The same, one Ray task per partition of the --parquet folder, merged exactly."""
    from vlmscope.evaluators import ClassificationReport

    if args.parquet is None:
        raise CommandError("--engine ray evaluates a Parquet dataset root: give --parquet DIR")
    from vlmscope.distributed import evaluate_on_ray

    try:
        result = evaluate_on_ray(args.parquet, evaluators, cohort=args.cohort,
                                 checkpoint=args.checkpoint, run=args.run,
                                 num_workers=args.workers, address=args.ray_address)
    except (FileNotFoundError, ValueError, ImportError) as error:
        raise CommandError(str(error)) from error
    chosen = {"--run": args.run, "--cohort": args.cohort, "--checkpoint": args.checkpoint}
    named = [f"{flag} {value!r}" for flag, value in chosen.items() if value is not None]
    if named and not result.rows:
        raise CommandError(f"no rows with {' and '.join(named)} in {args.parquet}")
    unranked = result.unranked_expected if any(
        isinstance(e, ClassificationReport) and e.classes is None
        and not e.classes_from_encoder for e in evaluators) else 0
    return result, result.checkpoint_mix, unranked


def list_evaluators() -> str:
    """The evaluators, one per line: name and one-line description."""
    from vlmscope.evaluators.runner import EVALUATORS

    width = max(len(name) for name in EVALUATORS) + 2
    return "\n".join(f"{name:<{width}}{cls.description}" for name, cls in EVALUATORS.items())


def run(args: argparse.Namespace) -> int:
    """Handle ``vlmscope eval``."""
    from vlmscope.evaluators import (
        CaptionHallucination,
        ClassificationReport,
        CustomEvaluation,
        FailureAttribution,
        GroundTruthMatch,
        ImageInstructionAdherence,
        MultiLabelReport,
        Vocabulary,
        resolve_evaluators,
    )
    from vlmscope.evaluators.custom import parse_custom

    if args.list:
        print(list_evaluators())
        return 0
    thresholds = parse_thresholds(args.fail_under)
    names = [n.strip() for n in args.evaluators.split(",") if n.strip()]
    slice_by = [c.strip() for c in (args.by or "").split(",") if c.strip()]
    vocabularies: list[str | Vocabulary] = [
        v.strip() for v in args.vocabulary.split(",") if v.strip()]
    encoder_classes = ([c.strip() for c in args.classes.split(",") if c.strip()]
                       if args.classes else None)
    threshold = ({} if args.encoder_threshold is None
                 else {"encoder_threshold": args.encoder_threshold})
    try:
        classes = resolve_evaluators(names)
        custom = [parse_custom(spec) for spec in args.custom]
        if CustomEvaluation in classes and not custom:
            raise ValueError("the custom evaluator needs its rule: --custom NAME=SQL")
        evaluators = [
            GroundTruthMatch(mode=args.mode) if cls is GroundTruthMatch
            else ClassificationReport(slice_by=slice_by, classes=encoder_classes,
                                      classes_from_encoder=args.classes_from_encoder)
            if cls is ClassificationReport
            else CaptionHallucination(vocabularies,
                                      objects_from_encoder=args.objects_from_encoder)
            if cls is CaptionHallucination
            else ImageInstructionAdherence(vocabularies) if cls is ImageInstructionAdherence
            else FailureAttribution(classes=encoder_classes, **threshold)
            if cls is FailureAttribution
            else MultiLabelReport(classes=encoder_classes, **threshold)
            if cls is MultiLabelReport
            else cls() for cls in classes if cls is not CustomEvaluation]
        evaluators += custom
    except ValueError as error:
        raise CommandError(str(error)) from error
    print(f"evaluating {args.parquet or args.db} ...", file=sys.stderr)
    if args.engine == "ray":
        result, mix, unranked = _evaluate_on_ray(args, evaluators)
    else:
        result, mix, unranked = _evaluate_here(args, evaluators)
    summary = combined_summary(result.run_id, result.summaries)
    summary.update(cohort=args.cohort, run=args.run, checkpoints=result.checkpoints,
                   mixed_checkpoints=mix.mixed, checkpoint_rows=mix.checkpoints)
    if mix.mixed:
        summary.setdefault("warnings", []).append(mix.describe())
    if unranked:
        summary.setdefault("warnings", []).append(
            f"{unranked} rows expect an answer the encoder never ranks (a count, a yes/no, a "
            "caption?) and count as classes of their own here: pass --classes-from-encoder "
            "or --classes NAMES to report only the rows that ask for a class")
    summary["thresholds"] = check_thresholds(summary, thresholds)
    if args.format == "json":
        print(json.dumps(summary, indent=2))
    else:
        print(render_summary(summary))
    return 0 if all(check["passed"] for check in summary["thresholds"]) else 1
