"""``vlmscope eval``: run evaluators over a store, record the run, print a summary, gate CI.

Exit status: 0 when every ``--fail-under`` threshold holds, 1 when one fails, 2 on a usage
error (unknown evaluator, column or metric; no store).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vlmscope.cli import CommandError
from vlmscope.cli.output import render
from vlmscope.evaluators.classification import NO_TOP_K
from vlmscope.evaluators.declaration import SUMMARY_AT_TOP, Option
from vlmscope.settings import default_db

if TYPE_CHECKING:
    import duckdb

    from vlmscope.evaluators.base import Evaluator


class _Declared(Mapping[str, Any]):
    """A mapping read from the registered evaluators' declarations each time (an evaluator
    registered later is in it)."""

    def __init__(self, build: Callable[[], dict[str, Any]]) -> None:
        self._build = build

    def __getitem__(self, key: str) -> Any:
        return self._build()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._build())

    def __len__(self) -> int:
        return len(self._build())


def _registered() -> list[type[Evaluator]]:
    """The registered evaluators, the one whose summary is the combined summary's own first
    (its metrics head every list)."""
    from vlmscope.evaluators.runner import EVALUATORS

    return sorted(EVALUATORS.values(), key=lambda cls: cls.summary_key != SUMMARY_AT_TOP)


def _gated() -> dict[str, str]:
    return {m.name: m.help for cls in _registered() for m in cls.summary_metrics if m.gated}


def _reported() -> dict[str, tuple[str, ...]]:
    return {cls.name: tuple(m.name for m in cls.summary_metrics if m.headline)
            for cls in _registered() if cls.summary_metrics and cls.summary_group is None
            and cls.summary_key != SUMMARY_AT_TOP}


GATED_METRICS: Mapping[str, str] = _Declared(_gated)
"""Metrics ``--fail-under`` accepts (higher is better), with what each measures: the
registered evaluators' metrics declared ``gated``."""
REPORTED_METRICS: Mapping[str, tuple[str, ...]] = _Declared(_reported)
"""Summary keys each evaluator adds to the combined summary (its declared headline
metrics), by evaluator."""

_SELECTED_ROWS = ("(SELECT * FROM pipeline_rows WHERE ($cohort IS NULL OR cohort = $cohort) "
                  "AND ($checkpoint IS NULL OR starts_with(checkpoint_sha256, $checkpoint)) "
                  "AND ($run IS NULL OR run = $run))")

_WORST_CLASSES = 15
_TOP_CONFUSIONS = 10


def declared_flags() -> dict[str, list[tuple[type[Evaluator], Option]]]:
    """Every flag the registered evaluators declare, with each (evaluator, option) it sets,
    in registration order."""
    from vlmscope.evaluators.runner import EVALUATORS

    flags: dict[str, list[tuple[type[Evaluator], Option]]] = {}
    for cls in EVALUATORS.values():
        for option in cls.options:
            if option.flag is not None:
                flags.setdefault(option.flag, []).append((cls, option))
    return flags


def _add_declared_flags(parser: argparse.ArgumentParser) -> None:
    """One argument per declared flag; its help names what it sets in each evaluator."""
    for flag, users in declared_flags().items():
        option = users[0][1]
        shown = (",".join(option.default) if isinstance(option.default, tuple)
                 else option.default)
        default = "" if option.default in (None, (), [], False) else f" (default: {shown})"
        help_text = "; ".join(f"{cls.name}: {o.help}" for cls, o in users) + default
        dest = f"option_{flag[2:].replace('-', '_')}"
        if option.kind == "switch":
            parser.add_argument(flag, dest=dest, action="store_true", help=help_text)
        elif option.kind == "repeat":
            parser.add_argument(flag, dest=dest, action="append", default=[],
                                type=option.parse, metavar=option.metavar, help=help_text)
        else:
            parser.add_argument(flag, dest=dest, default=None, type=option.parse,
                                choices=option.choices, metavar=option.metavar,
                                help=help_text)


def build_evaluators(names: Sequence[str], args: argparse.Namespace) -> list[Evaluator]:
    """The evaluators ``names`` (and those a selecting flag asks for), each built by its
    :meth:`~vlmscope.evaluators.Evaluator.from_options` from the declared flags given;
    :class:`ValueError` for an unknown name or a bad option."""
    from vlmscope.evaluators import resolve_evaluators

    classes = resolve_evaluators(names)
    given: dict[type[Evaluator], dict[str, Any]] = {}
    for flag, users in declared_flags().items():
        value = getattr(args, f"option_{flag[2:].replace('-', '_')}", None)
        if value is None or value is False or value == []:
            continue
        for cls, option in users:
            given.setdefault(cls, {})[option.name] = value
            if option.selects and cls not in classes:
                classes.append(cls)
    return [evaluator for cls in classes for evaluator in cls.from_options(given.get(cls, {}))]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eval`` to the CLI."""
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
    _add_declared_flags(parser)
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


def _classes(summaries: Mapping[str, Any],
             evaluators: Sequence[Evaluator] | None) -> dict[str, type[Evaluator] | None]:
    """The evaluator class of each summary: the run's evaluators when given, else the
    registered one of that name (a custom rule's summary is named by its user)."""
    from vlmscope.evaluators import CustomEvaluation
    from vlmscope.evaluators.runner import EVALUATORS

    known = {ev.name: type(ev) for ev in evaluators or ()}
    return {name: known.get(name) or EVALUATORS.get(name)
            or (CustomEvaluation if "threshold" in summary else None)
            for name, summary in summaries.items()}


def combined_summary(run_id: str, summaries: dict[str, dict[str, Any]],
                     evaluators: Sequence[Evaluator] | None = None) -> dict[str, Any]:
    """One summary from the evaluators' summaries: the keys of the one whose summary is at
    the top (the classification report), each other summary under its declared
    :attr:`~vlmscope.evaluators.Evaluator.summary_key` (grouped ones, the custom rules,
    under their group), and every declared headline metric at the top level."""
    classes = _classes(summaries, evaluators)
    summary: dict[str, Any] = {"run_id": run_id}
    top = [n for n, cls in classes.items() if cls and cls.summary_key == SUMMARY_AT_TOP]
    if top:
        summary.update(summaries[top[0]])
    elif summaries:
        first = summaries.get("ground_truth_match") or next(iter(summaries.values()))
        summary.update(rows=first["judged"], skipped=first["skipped"],
                       skipped_reasons=first["skipped_reasons"])
    for name, own in summaries.items():
        cls = classes[name]
        if cls is None:
            summary[name] = own
        elif cls.summary_group is not None:
            summary.setdefault(cls.summary_group, {})[name] = own
        elif cls.summary_key != SUMMARY_AT_TOP:
            summary.update({m.name: m.value(own) for m in cls.summary_metrics if m.headline})
            summary[cls.summary_key or name] = own
    return summary


def _own_summaries(summary: Mapping[str, Any]) -> Iterator[tuple[type[Evaluator], str, Any]]:
    """``(evaluator class, display name, its summary)`` of every evaluator in the combined
    ``summary``, in registration order (the one at the top first)."""
    for cls in _registered():
        if cls.summary_group is not None:
            for name, own in (summary.get(cls.summary_group) or {}).items():
                yield cls, f"{cls.summary_group} {name}", own
        elif cls.summary_key == SUMMARY_AT_TOP:
            yield cls, cls.name, summary
        elif isinstance(summary.get(cls.summary_key or cls.name), Mapping):
            yield cls, cls.name, summary[cls.summary_key or cls.name]


def metric_values(summary: dict[str, Any]) -> dict[str, float | None]:
    """The value of every gated metric in ``summary`` (None when not measured)."""
    values: dict[str, float | None] = dict.fromkeys(GATED_METRICS)
    for cls, _, own in _own_summaries(summary):
        if cls.summary_group is None:
            values.update({m.name: m.value(own) for m in cls.summary_metrics if m.gated})
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


def _llm_calls_outside_rows(con: duckdb.DuckDBPyConnection) -> int:
    """LLM calls that no pipeline row holds: an app traced by an instrumentor alone, without
    ``trace_row``, or a head asked per image inside ``trace_batch`` without
    ``trace_row(row_id)`` around each call; they are stored, but none is scored."""
    ((count,),) = con.execute(
        "SELECT count(*) FROM llm_records l WHERE NOT EXISTS (SELECT 1 FROM row_records r "
        "WHERE r.trace_id = l.trace_id AND r.row_id = l.row_id)").fetchall()
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
    if summary.get("skipped_reasons", {}).get(NO_TOP_K) == summary["skipped"] > 0:
        # An LLM-only store (answers traced, no encoder): say what the counts above are of.
        parts.append("  (these counts are the encoder's: record it with "
                     "vlmscope.instrument_encoder\n   or encoder_span; the answers' metrics "
                     "below do not need it)")
    # The top-k metric is named for the k the encoder recorded (the gate's key stays top5).
    top_k = summary.get("top_k_metric", "top5")
    metrics = [(f"{top_k} (gated as top5)" if name == "top5" and top_k != "top5" else name,
                _fmt(value)) for name, value in metric_values(summary).items()
               if value is not None]
    shown = {name for name, _ in metrics} | {"top5"}
    for cls, label, own in _own_summaries(summary):
        for metric in cls.summary_metrics:
            name = metric.name if cls.summary_group is None else f"{label} ({metric.name})"
            value = metric.value(own)
            if name not in shown and value is not None:
                metrics.append((name, _fmt(value)))
                shown.add(name)
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


def _unanswered_rows(con: duckdb.DuckDBPyConnection, filters: dict[str, Any]) -> int:
    """Selected rows whose answering LLM call succeeded but recorded no answer (an
    instrumentation recording metadata only, or hidden outputs): their output is NULL."""
    ((count,),) = con.execute(f"""
        SELECT count(*) FROM {_SELECTED_ROWS} p JOIN llm_records l
            ON l.trace_id = p.trace_id AND l.span_id = p.llm_span_id AND l.row_id = p.row_id
        WHERE p.output IS NULL AND l.status_code IS DISTINCT FROM 'ERROR'""",
        filters).fetchall()
    return count


def _evaluate_here(args: argparse.Namespace,
                   evaluators: list[Any]) -> tuple[Any, Any, int, int, int]:
    """The evaluation run, its checkpoint mix, the unranked rows, the LLM calls outside any
    row and the rows whose LLM call recorded no answer, in this process."""
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
            outside = 0 if args.parquet else _llm_calls_outside_rows(con)
            unanswered = _unanswered_rows(con, filters)
    except (FileNotFoundError, StoreError, ValueError) as error:
        raise CommandError(str(error)) from error
    except duckdb.Error as error:
        raise CommandError(f"evaluation failed: {error}") from error
    return result, mix, unranked, outside, unanswered


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


def _option_line(option: Option) -> str:
    default = f" = {option.default!r}" if option.keyword else ""
    flag = f" [{option.flag}]" if option.flag else ""
    return f"{option.name}: {option.type}{default}{flag} - {option.help}"


def list_evaluators(verbose: bool = True) -> str:
    """The evaluators, each a line with its name and one-line description, then (when
    ``verbose``) its declared options, metrics and what it merges from."""
    from vlmscope.evaluators.runner import EVALUATORS

    width = max(len(name) for name in EVALUATORS) + 2
    lines = []
    for name, cls in EVALUATORS.items():
        lines.append(f"{name:<{width}}{cls.description}")
        if not verbose:
            continue
        lines += [f"    option  {_option_line(o)}" for o in cls.options]
        lines += [f"    metric  {m.name}{' (gated)' if m.gated else ''} - {m.help}"
                  for m in cls.summary_metrics]
        lines.append(f"    merges  {cls.merged_from}" if cls.merged_from
                     else "    merges  no: its summary needs all rows at once")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Handle ``vlmscope eval``."""
    if args.list:
        print(list_evaluators())
        return 0
    thresholds = parse_thresholds(args.fail_under)
    names = [n.strip() for n in args.evaluators.split(",") if n.strip()]
    try:
        evaluators = build_evaluators(names, args)
    except ValueError as error:
        raise CommandError(str(error)) from error
    print(f"evaluating {args.parquet or args.db} ...", file=sys.stderr)
    outside = unanswered = 0
    if args.engine == "ray":
        result, mix, unranked = _evaluate_on_ray(args, evaluators)
    else:
        result, mix, unranked, outside, unanswered = _evaluate_here(args, evaluators)
    summary = combined_summary(result.run_id, result.summaries, evaluators)
    summary.update(cohort=args.cohort, run=args.run, checkpoints=result.checkpoints,
                   mixed_checkpoints=mix.mixed, checkpoint_rows=mix.checkpoints)
    if mix.mixed:
        summary.setdefault("warnings", []).append(mix.describe())
    if outside:
        summary.setdefault("warnings", []).append(
            f"{outside} LLM calls in this store belong to no pipeline row (traced with no "
            "vlmscope.trace_row or trace_batch around them, or made once per image inside "
            "trace_batch), so none of them is scored: wrap each image's encoder and LLM calls "
            "in vlmscope.trace_row(row_id, expected=...), and inside a batch each call in "
            "trace_row(row_id)")
    if unanswered:
        from vlmscope.tracing import CONTENT_SWITCHES

        summary.setdefault("warnings", []).append(
            f"{unanswered} rows have no answer although their LLM call succeeded: the call "
            "recorded none (its instrumentation records metadata only or does not assemble a "
            "streamed answer, or outputs are hidden), so each counts as a missing answer; "
            + "; ".join(dict.fromkeys(hint for _, hint in CONTENT_SWITCHES)))
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
