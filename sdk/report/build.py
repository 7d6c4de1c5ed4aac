"""``vlmscope report``: one self-contained HTML file about everything in a store.

Sections: run summary (with each row's share of a batch's time, and the batch's own); each
evaluator's declared metrics from its latest stored run; per
run the confusion matrix heatmap, per-class precision and recall and a reliability diagram,
and the multi-label metrics of the encoder's reading; the blame breakdown per run, cohort and
checkpoint, per instruction kind and per object class; the regression
diff of two runs (fixed and broken rows); hallucination examples with the image and the
hallucinated words highlighted; a trace waterfall (row -> encoder -> LLM) per failing row;
and, for every failing row, every evaluator's verdict and reason.

Everything is inline (SVG charts, PNG thumbnails as data URIs, CSS): the file opens offline.
Every string that comes from the store is HTML-escaped: answers are model output.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from vlmscope import conventions as cv
from vlmscope.report import charts

RELIABILITY_BINS = 15
"""Equal-width confidence bins of the reliability diagram (as ECE uses)."""

ANSWER_EVALUATOR = "ground_truth_match"
"""The evaluator whose verdicts say whether an answer was right (the diff's rows)."""

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222}
header{background:#16324f;color:#fff;padding:18px 28px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;opacity:.85}nav{padding:8px 28px;background:#eef2f6;position:sticky;
top:0;z-index:2}nav a{margin-right:14px;color:#16324f;text-decoration:none;font-weight:600}
main{padding:8px 28px 40px}section{margin:26px 0}h2{border-bottom:2px solid #16324f;
padding-bottom:4px}table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border:1px solid #d5dbe1;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f6f9}.num{text-align:right;font-variant-numeric:tabular-nums}
.pass{color:#1a7f37;font-weight:600}.fail{color:#c62828;font-weight:600}
.charts{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
.charts svg{max-width:100%;height:auto}mark{background:#ffcdd2;padding:0 2px}
.verdict{font-size:16px;font-weight:700;padding:6px 10px;border-radius:4px;display:inline-block}
.verdict.bad{background:#ffebee;color:#b71c1c}.verdict.good{background:#e8f5e9;color:#1b5e20}
img.thumb{image-rendering:pixelated;height:48px;border:1px solid #ccc}
.wf{position:relative;height:18px;background:#f4f6f8;margin:2px 0;width:520px}
.wf span{position:absolute;top:2px;height:14px;border-radius:2px;font-size:10px;color:#fff;
padding-left:3px;overflow:hidden;white-space:nowrap}.wf .row{background:#546e7a}
.wf .encoder{background:#d62728}.wf .llm{background:#1f77b4}
details{margin:4px 0}summary{cursor:pointer}.muted{color:#666}
"""


@dataclass(frozen=True)
class ReportStats:
    """What went into a report: runs, failing rows, changed rows of the diff, examples."""

    path: Path
    runs: list[str]
    failing_rows: int
    changed_rows: int
    hallucination_examples: int
    images: int


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3f}"
    return _e(value)


def _table(columns: Sequence[str], rows: Sequence[Sequence[str]], table_id: str = "") -> str:
    """An HTML table from already-escaped cell HTML."""
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>"
                   for row in rows)
    ident = f' id="{table_id}"' if table_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?",
                       [name]).fetchall()[0][0] > 0


def _runs(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r for (r,) in con.execute(
        "SELECT coalesce(run, '(no run)') AS r FROM pipeline_rows GROUP BY r "
        "ORDER BY min(start_time)").fetchall()]


def _run_filter(run: str) -> str:
    if run == "(no run)":
        return "run IS NULL"
    return "run = '" + run.replace("'", "''") + "'"


# -- summary -------------------------------------------------------------------------------

def _summary(con: duckdb.DuckDBPyConnection, runs: list[str]) -> str:
    rows = []
    for run in runs:
        ((n, cohorts, checkpoints, errors, answered, right, mean_ms, batch, batch_ms),) = \
            con.execute(f"""
            SELECT count(*), string_agg(DISTINCT cohort, ', '),
                   list(DISTINCT left(checkpoint_sha256, 12)) FILTER (
                       WHERE checkpoint_sha256 IS NOT NULL),
                   count(*) FILTER (WHERE status = 'ERROR'),
                   count(e.passed), count(*) FILTER (WHERE e.passed),
                   -- a batched call's time is shared by its rows: each row counts its share
                   avg(coalesce(encoder_share_ms, encoder_ms, 0)
                       + coalesce(llm_share_ms, llm_ms, 0)),
                   avg(batch_size), avg(coalesce(encoder_ms, 0) + coalesce(llm_ms, 0))
                       FILTER (WHERE batch_size > 1)
            FROM pipeline_rows p LEFT JOIN _vlmscope_latest_evaluations e
              ON e.row_id = p.row_id AND e.trace_id = p.trace_id AND e.evaluator = ?
            WHERE {_run_filter(run)}""", [ANSWER_EVALUATOR]).fetchall()
        accuracy = right / answered if answered else None
        mixed = len(checkpoints or []) > 1
        rows.append([
            _e(run), _e(cohorts), f'<span class="num">{n}</span>',
            f'<span class="num">{_fmt(accuracy)}</span>',
            _e(", ".join(checkpoints or [])) + (' <b class="fail">mixed</b>' if mixed else ""),
            f'<span class="num">{errors}</span>', f'<span class="num">{_fmt(mean_ms)}</span>',
            f'<span class="num">{_fmt(batch)}</span>',
            f'<span class="num">{_fmt(batch_ms)}</span>',
        ])
    return _table(["run", "cohort", "rows", "answer accuracy", "encoder checkpoint(s)",
                   "errors", "mean encoder+LLM ms (the row's share)", "mean batch size",
                   "mean batch encoder+LLM ms (the whole batch)"], rows, "summary-table")


# -- evaluator metrics -----------------------------------------------------------------------

def _evaluator_metrics(con: duckdb.DuckDBPyConnection) -> str:
    """Each evaluator's declared summary metrics from its latest stored run per dataset run
    (an evaluator registered with :func:`vlmscope.evaluators.register` shows here too)."""
    from vlmscope.evaluators import CustomEvaluation
    from vlmscope.evaluators.runner import EVALUATORS

    stored = con.execute("""
        SELECT coalesce(run_name, '(all rows)'), evaluator, summary FROM (
            SELECT *, row_number() OVER (PARTITION BY run_name, evaluator
                                         ORDER BY created_at DESC) AS latest
            FROM eval_runs) WHERE latest = 1 ORDER BY 1, 2""").fetchall()
    rows = []
    for run, name, text in stored:
        summary = orjson.loads(text) if text else {}
        declared = EVALUATORS.get(name) or (
            CustomEvaluation if "threshold" in summary else None)
        for metric in declared.summary_metrics if declared else ():
            value = metric.value(summary)
            if value is not None:
                rows.append([_e(run), _e(name), _e(metric.name),
                             f'<span class="num">{_fmt(value)}</span>', _e(metric.help)])
    if not rows:
        return "<p>No evaluation run is stored (<code>vlmscope eval</code>).</p>"
    return _table(["run", "evaluator", "metric", "value", "what it measures"], rows,
                  "evaluator-metrics")


# -- classification ------------------------------------------------------------------------

def _classification(con: duckdb.DuckDBPyConnection, run: str) -> str:
    from vlmscope.evaluators import ClassificationReport

    label_rows = f"(SELECT * FROM pipeline_rows WHERE {_run_filter(run)} AND expected IS NOT " \
                 "NULL AND top_k_labels IS NOT NULL AND list_contains(" \
                 "(SELECT list(DISTINCT l) FROM (SELECT unnest(top_k_labels) AS l FROM " \
                 f"pipeline_rows WHERE {_run_filter(run)})), expected))"
    view = "_vlmscope_report_labels"
    con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM {label_rows}")
    ((count,),) = con.execute(f"SELECT count(*) FROM {view}").fetchall()
    if count == 0:
        return ('<p class="muted">No rows whose expected answer is one of the encoder\'s '
                "class labels: no classification view of this run.</p>")
    summary = ClassificationReport().compute(con, view)
    labels = sorted(summary["per_class"])
    index = {label: i for i, label in enumerate(labels)}
    counts = [[0] * len(labels) for _ in labels]
    for cell in summary["confusion"]:
        counts[index[cell["expected"]]][index[cell["predicted"]]] = cell["count"]
    bins = con.execute(f"""
        SELECT least(floor(top_k_scores[1] * {RELIABILITY_BINS}),
                     {RELIABILITY_BINS - 1})::INTEGER AS b,
               count(*), avg(top_k_scores[1]),
               avg(CASE WHEN top_k_labels[1] = expected THEN 1.0 ELSE 0.0 END)
        FROM {view} GROUP BY b""").fetchall()
    rows = [0] * RELIABILITY_BINS
    confidence: list[float | None] = [None] * RELIABILITY_BINS
    accuracy: list[float | None] = [None] * RELIABILITY_BINS
    for b, n, conf, acc in bins:
        rows[b], confidence[b], accuracy[b] = n, conf, acc
    per_class = summary["per_class"]
    warnings = "".join(f"<li>{_e(w)}</li>" for w in summary.get("warnings", []))
    return (
        f"<p>{count} rows whose expected answer is a class label: top-1 accuracy "
        f"<b>{_fmt(summary['top1'])}</b>, macro F1 {_fmt(summary['macro_f1'])}, "
        f"ECE {_fmt(summary['ece'])}, MCE {_fmt(summary['mce'])}.</p>"
        + (f"<ul>{warnings}</ul>" if warnings else "")
        + '<div class="charts">'
        + charts.confusion_heatmap(labels, counts, f"confusion: {run}")
        + charts.precision_recall_bars(labels, [per_class[x]["precision"] for x in labels],
                                       [per_class[x]["recall"] for x in labels],
                                       f"per-class precision and recall: {run}")
        + charts.reliability_diagram(confidence, accuracy, rows, f"reliability: {run}")
        + "</div>"
    )


# -- multi-label reading -------------------------------------------------------------------

def _multilabel(con: duckdb.DuckDBPyConnection, run: str) -> str:
    from vlmscope.evaluators import MultiLabelReport

    view = "_vlmscope_report_sets"
    con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM pipeline_rows "
                f"WHERE {_run_filter(run)}")
    summary = MultiLabelReport().compute(con, view)
    if not summary["rows"]:
        return ('<p class="muted">No rows with ground-truth objects and an encoder reading: '
                "no multi-label view of this run.</p>")
    averages = summary["averages"]
    head = (f"<p>{summary['rows']} rows (every row with objects and an encoder reading): "
            f"subset accuracy <b>{_fmt(summary['subset_accuracy'])}</b>, Hamming loss "
            f"{_fmt(summary['hamming_loss'])}, mAP {_fmt(summary['mean_average_precision'])}"
            f"; F1 micro {_fmt(averages['micro']['f1'])}, macro "
            f"{_fmt(averages['macro']['f1'])}, weighted {_fmt(averages['weighted']['f1'])} "
            f"(reading: labels scoring at least {_fmt(summary['encoder_threshold'])}, or the "
            "top-1 of a single-label encoder).</p>")
    rows = [[_e(label), *(f'<span class="num">{_fmt(m[key])}</span>' for key in (
                "precision", "recall", "f1", "average_precision", "support", "predicted"))]
            for label, m in summary["per_label"].items()]
    return head + _table(["label", "precision", "recall", "F1", "AP", "support",
                          "predicted"], rows, "multilabel-table")


# -- blame ---------------------------------------------------------------------------------

def _blame(con: duckdb.DuckDBPyConnection) -> str:
    groups = con.execute("""
        SELECT coalesce(p.run, '(no run)') AS run, p.cohort, left(p.checkpoint_sha256, 12),
               e.label, count(*)
        FROM _vlmscope_latest_evaluations e JOIN pipeline_rows p ON e.row_id = p.row_id
            AND e.trace_id = p.trace_id
        WHERE e.evaluator = 'failure_attribution' AND e.label <> 'correct'
        GROUP BY ALL ORDER BY ALL""").fetchall()
    if not groups:
        return '<p class="muted">No failure attribution in this store (run ' \
               '<code>vlmscope eval --evaluators failure_attribution</code>).</p>'
    keys = sorted({(r, c, k) for r, c, k, _, _ in groups})
    totals = {key: 0 for key in keys}
    counts: dict[str, dict[tuple, int]] = {}
    for run, cohort, checkpoint, label, n in groups:
        totals[(run, cohort, checkpoint)] += n
        counts.setdefault(label, {})[(run, cohort, checkpoint)] = n
    shares = {label: [by.get(key, 0) / totals[key] for key in keys]
              for label, by in sorted(counts.items())}
    names = [f"{r}\n{c} · {k}" for r, c, k in keys]
    table = _table(
        ["run", "cohort", "checkpoint", "failing rows", *sorted(counts)],
        [[_e(r), _e(c), _e(k), f'<span class="num">{totals[(r, c, k)]}</span>',
          *(f'<span class="num">{counts[label].get((r, c, k), 0)}</span>'
            for label in sorted(counts))] for r, c, k in keys],
        "blame-table")
    return (charts.blame_bars(names, shares, "who is to blame for the failing rows") + table
            + _blame_objects(con))


def _blame_objects(con: duckdb.DuckDBPyConnection) -> str:
    """Failing rows per instruction kind and blame, and objects per class, per run."""
    kinds = con.execute("""
        SELECT coalesce(p.run, '(no run)'), e.metadata->>'kind' AS kind, e.label, count(*)
        FROM _vlmscope_latest_evaluations e JOIN pipeline_rows p ON e.row_id = p.row_id
            AND e.trace_id = p.trace_id
        WHERE e.evaluator = 'failure_attribution' AND e.label <> 'correct'
        GROUP BY ALL ORDER BY ALL""").fetchall()
    objects = con.execute("""
        SELECT run, class, count(*) FROM (
            SELECT coalesce(p.run, '(no run)') AS run,
                   unnest(json_extract_string(e.metadata, '$.objects.*')) AS class
            FROM _vlmscope_latest_evaluations e JOIN pipeline_rows p ON e.row_id = p.row_id
                AND e.trace_id = p.trace_id
            WHERE e.evaluator = 'failure_attribution')
        GROUP BY ALL ORDER BY ALL""").fetchall()
    by_kind: dict[tuple[str, str], dict[str, int]] = {}
    for run, kind, label, n in kinds:
        by_kind.setdefault((run, kind or "—"), {})[label] = n
    blames = ("encoder", "language_head", "both", "unattributable")
    kind_table = _table(["run", "instruction kind", *blames], [
        [_e(run), _e(kind), *(f'<span class="num">{counts.get(b, 0)}</span>' for b in blames)]
        for (run, kind), counts in by_kind.items()], "blame-kind-table")
    classes = ("encoder_missed", "encoder_false_positive", "head_dropped", "head_invented",
               "head_recovered", "correct")
    per_run: dict[str, dict[str, int]] = {}
    for run, cls, n in objects:
        per_run.setdefault(run, {})[cls] = n
    object_table = _table(["run", *classes], [
        [_e(run), *(f'<span class="num">{counts.get(c, 0)}</span>' for c in classes)]
        for run, counts in per_run.items()], "blame-object-table")
    return ("<h3>Failing rows per instruction kind</h3>" + kind_table
            + "<h3>Objects per class (expected, read by the encoder, named by the answer)</h3>"
            + object_table)


# -- regression diff -----------------------------------------------------------------------

def _dataset_runs(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    if not _has_table(con, "dataset_runs"):
        return []
    return con.execute("SELECT run_name, dataset FROM dataset_runs ORDER BY created_at"
                       ).fetchall()


def pick_diff_runs(con: duckdb.DuckDBPyConnection, base: str | None,
                   candidate: str | None) -> tuple[str, str] | None:
    """The two runs to diff: the ones given, else the first and last dataset runs over the
    same dataset (None when there are no two such runs)."""
    if base and candidate:
        return base, candidate
    by_dataset: dict[str, list[str]] = {}
    for run, dataset in _dataset_runs(con):
        by_dataset.setdefault(dataset, []).append(run)
    for runs in by_dataset.values():
        if len(runs) >= 2:
            return runs[0], runs[-1]
    return None


def _regression(con: duckdb.DuckDBPyConnection, pair: tuple[str, str] | None) -> tuple[str, int]:
    if pair is None:
        return ('<p class="muted">No two runs over the same dataset to compare (make them '
                "with <code>Dataset.run</code>, or pass --base and --candidate).</p>", 0)
    from vlmscope.regression.diff import compare_runs, per_row_diff_sql

    base, candidate = pair
    report = compare_runs(con, base, candidate)
    changed = [row for row in con.execute(
        per_row_diff_sql(report["base"]["eval_run_id"], report["candidate"]["eval_run_id"])
    ).fetchall() if row[1] == ANSWER_EVALUATOR and row[2] in ("fixed", "broken")]
    changed.sort(key=lambda r: (r[2] != "broken", r[0]))
    verdict_class = "good" if report["verdict"] == "no significant regression" else "bad"
    stats = "".join(
        f"<li>{_e(s['evaluator'])}: pass rate {_fmt(s.get('base_pass_rate'))} → "
        f"{_fmt(s.get('candidate_pass_rate'))}, McNemar p {_fmt(s.get('mcnemar_p'))}"
        f"{' — <b>regressed</b>' if s.get('regressed') else ''}</li>"
        for s in report["evaluators"])
    rows = [[_e(r[0]), f'<span class="{"fail" if r[2] == "broken" else "pass"}">{_e(r[2])}'
             "</span>", _e(r[8]), _e(r[10])] for r in changed]
    return (
        f'<p><span class="verdict {verdict_class}">{_e(report["verdict"])}</span> '
        f"base <b>{_e(base)}</b> vs candidate <b>{_e(candidate)}</b>, "
        f"{report['rows'].get('compared_rows', '?')} rows compared.</p><ul>{stats}</ul>"
        f"<p>{len(changed)} rows changed their answer verdict "
        f"({sum(r[2] == 'broken' for r in changed)} broken, "
        f"{sum(r[2] == 'fixed' for r in changed)} fixed):</p>"
        + _table(["row", "transition", f"{base}: reason", f"{candidate}: reason"], rows,
                 "diff-table"),
        len(changed),
    )


# -- images, hallucinations, waterfalls, failures ------------------------------------------

def _register_keys(con: duckdb.DuckDBPyConnection, name: str,
                   keys: Sequence[tuple[str, str]]) -> None:
    """Make (trace id, row id) pairs queryable as ``name`` (an Arrow table, not row inserts)."""
    con.register(name, pa.table({"trace_id": pa.array([k[0] for k in keys], pa.string()),
                                 "row_id": pa.array([k[1] for k in keys], pa.string())}))


def _thumbnails(con: duckdb.DuckDBPyConnection, keys: Sequence[tuple[str, str]]
                ) -> dict[tuple[str, str], str]:
    """Data URIs of the images of (trace id, row id) pairs: a dataset's stored thumbnail,
    else the base64 image captured on the row span."""
    if not keys:
        return {}
    _register_keys(con, "_vlmscope_report_keys", keys)
    found: dict[tuple[str, str], str] = {}
    if _has_table(con, "dataset_rows"):
        for trace_id, row_id, png in con.execute("""
                SELECT k.trace_id, k.row_id, any_value(d.thumbnail)
                FROM _vlmscope_report_keys k JOIN pipeline_rows p USING (trace_id, row_id)
                JOIN dataset_rows d ON d.row_id = p.row_id AND d.dataset = p.cohort
                WHERE d.thumbnail IS NOT NULL GROUP BY ALL""").fetchall():
            found[(trace_id, row_id)] = "data:image/png;base64," + base64.b64encode(
                png).decode()
    for trace_id, row_id, encoded in con.execute(f"""
            SELECT k.trace_id, k.row_id, s.attributes->>'$."{cv.VISION_IMAGE_BASE64}"'
            FROM _vlmscope_report_keys k JOIN pipeline_rows p USING (trace_id, row_id)
            JOIN spans s ON s.span_id = p.span_id AND s.trace_id = p.trace_id
            WHERE s.attributes->>'$."{cv.VISION_IMAGE_BASE64}"' IS NOT NULL""").fetchall():
        found.setdefault((trace_id, row_id), "data:image/png;base64," + encoded)
    return found


def _img(uri: str | None) -> str:
    return f'<img class="thumb" alt="input image" src="{uri}">' if uri else ""


def _highlight(text: str, words: Sequence[str]) -> str:
    escaped = _e(text)
    for word in sorted({w for w in words if w}, key=len, reverse=True):
        pattern = re.compile(rf"\b({re.escape(html.escape(word))}s?)\b", re.IGNORECASE)
        escaped = pattern.sub(r"<mark>\1</mark>", escaped)
    return escaped


def _hallucinations(con: duckdb.DuckDBPyConnection, limit: int) -> tuple[str, int]:
    examples = con.execute("""
        SELECT p.trace_id, p.row_id, p.run, p.instruction, p.output, e.metadata,
               e.explanation
        FROM _vlmscope_latest_evaluations e JOIN pipeline_rows p ON e.row_id = p.row_id
            AND e.trace_id = p.trace_id
        WHERE e.evaluator = 'caption_hallucination' AND NOT e.passed
        -- captions with invented objects first, then failed yes/no probes
        ORDER BY coalesce(len(CAST(e.metadata->'$.hallucinated' AS VARCHAR[])), 0) = 0,
                 p.run, p.row_id
        LIMIT ?""", [limit]).fetchall()
    if not examples:
        return '<p class="muted">No hallucinated objects found (or CaptionHallucination ' \
               "was not run).</p>", 0
    images = _thumbnails(con, [(t, r) for t, r, *_ in examples])
    rows = []
    for trace_id, row_id, run, instruction, output, metadata, explanation in examples:
        meta = orjson.loads(metadata) if metadata else {}
        hallucinated = meta.get("hallucinated") or []
        rows.append([_img(images.get((trace_id, row_id))), _e(row_id), _e(run),
                     _e(instruction), _highlight(output or "", hallucinated),
                     _e(", ".join(hallucinated)), _e(explanation)])
    return _table(["image", "row", "run", "instruction", "answer (hallucinated words marked)",
                   "hallucinated", "reason"], rows, "hallucination-table"), len(examples)


def _failing(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute("""
        SELECT p.trace_id, p.row_id, p.run, p.expected, p.output, p.status, p.error,
               p.top_k_labels, p.span_id, p.encoder_span_id, p.llm_span_id
        FROM pipeline_rows p
        WHERE p.status = 'ERROR' OR EXISTS (
            SELECT 1 FROM _vlmscope_latest_evaluations e
            WHERE e.row_id = p.row_id AND e.trace_id = p.trace_id
              AND e.passed = false)
        ORDER BY p.run, p.row_id""").fetchall()


def _waterfalls(con: duckdb.DuckDBPyConnection, failing: list[tuple], limit: int) -> str:
    spans = {}
    ids = {s for row in failing[:limit] for s in row[8:11] if s}
    if ids:
        spans = {sid: (name, start, end) for sid, name, start, end in con.execute(
            "SELECT span_id, name, epoch_ns(start_time), epoch_ns(end_time) FROM spans "
            "WHERE list_contains(?, span_id)", [sorted(ids)]).fetchall()}
    blocks = []
    for trace_id, row_id, run, *_, row_span, encoder_span, llm_span in failing[:limit]:
        parts = [(kind, spans.get(sid)) for kind, sid in (
            ("row", row_span), ("encoder", encoder_span), ("llm", llm_span))]
        present = [(kind, s) for kind, s in parts if s]
        if not present:
            continue
        origin = min(s[1] for _, s in present)
        total = max(max(s[2] for _, s in present) - origin, 1)
        bars = "".join(
            f'<div class="wf" title="{_e(kind)}: {_e(name)}"><span class="{kind}" style="'
            f"left:{100 * (start - origin) / total:.1f}%;"
            f'width:{max(100 * (end - start) / total, 0.8):.1f}%">'
            f"{_e(kind)} {(end - start) / 1e6:.1f} ms</span></div>"
            for kind, (name, start, end) in present)
        blocks.append(f"<details><summary>{_e(run)} · {_e(row_id)} · trace "
                      f"<code>{_e(trace_id[:12])}</code></summary>{bars}</details>")
    if not blocks:
        return '<p class="muted">No failing rows.</p>'
    more = len(failing) - limit
    return "".join(blocks) + (f'<p class="muted">… and {more} more failing rows '
                              "(see the verdicts below).</p>" if more > 0 else "")


def _verdicts(con: duckdb.DuckDBPyConnection, failing: list[tuple]) -> str:
    if not failing:
        return '<p class="muted">No failing rows.</p>'
    keys = [(row[0], row[1]) for row in failing]
    _register_keys(con, "_vlmscope_report_failing", keys)
    verdicts: dict[tuple[str, str], list[tuple]] = {}
    for trace_id, row_id, evaluator, passed, label, score, explanation in con.execute("""
            SELECT e.trace_id, e.row_id, e.evaluator, e.passed, e.label, e.score,
                   e.explanation
            FROM _vlmscope_latest_evaluations e
            JOIN _vlmscope_report_failing f USING (trace_id, row_id)
            ORDER BY e.evaluator""").fetchall():
        verdicts.setdefault((trace_id, row_id), []).append(
            (evaluator, passed, label, score, explanation))
    images = _thumbnails(con, keys)
    blocks = []
    for trace_id, row_id, run, expected, output, status, error, top_k, *_ in failing:
        rows = [[_e(ev), f'<span class="{"pass" if ok else "fail"}">'
                 f'{"pass" if ok else "fail" if ok is not None else "—"}</span>',
                 _e(label), _fmt(score), _e(explanation)]
                for ev, ok, label, score, explanation in verdicts.get((trace_id, row_id), [])]
        if status == "ERROR":
            rows.insert(0, ["pipeline", '<span class="fail">error</span>', "", "", _e(error)])
        blocks.append(
            f'<details class="failing-row"><summary>{_img(images.get((trace_id, row_id)))} '
            f"<b>{_e(row_id)}</b> · {_e(run)} · expected <b>{_e(expected)}</b>, answer "
            f"<b>{_e(output)}</b>, encoder top-k {_e(', '.join(top_k or []))}</summary>"
            + _table(["evaluator", "verdict", "label", "score", "reason"], rows) + "</details>")
    return "".join(blocks)


def build_report(
    db: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    base: str | None = None,
    candidate: str | None = None,
    waterfalls: int = 25,
    hallucination_examples: int = 30,
) -> ReportStats:
    """Write the HTML report of the store ``db`` to ``output``; returns what went in.

    ``base``/``candidate`` name the runs to diff (default: the first and last dataset runs
    over the same dataset). ``waterfalls`` caps the failing rows drawn as trace waterfalls;
    every failing row gets its verdicts regardless.
    """
    from vlmscope.collectors.schema import LATEST_EVALUATIONS_SQL
    from vlmscope.collectors.store import read_connection

    output = Path(output)
    with read_connection(db) as con:
        con.execute("CREATE TEMP VIEW _vlmscope_latest_evaluations AS "
                    + LATEST_EVALUATIONS_SQL)
        runs = _runs(con)
        pair = pick_diff_runs(con, base, candidate)
        summary = _summary(con, runs)
        evaluator_metrics = _evaluator_metrics(con)
        classification = "".join(f"<h3>{_e(run)}</h3>{_classification(con, run)}"
                                 for run in runs)
        multilabel = "".join(f"<h3>{_e(run)}</h3>{_multilabel(con, run)}" for run in runs)
        blame = _blame(con)
        regression, changed = _regression(con, pair)
        hallucinations, examples = _hallucinations(con, hallucination_examples)
        failing = _failing(con)
        waterfall = _waterfalls(con, failing, waterfalls)
        verdicts = _verdicts(con, failing)
    images = hallucinations.count("<img") + verdicts.count("<img")
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    sections = [
        ("summary", "Runs", summary),
        ("evaluators", "Evaluator metrics (latest run of each)", evaluator_metrics),
        ("classification", "Encoder classification", classification),
        ("multilabel", "Encoder reading as a set (multi-label)", multilabel),
        ("blame", "Blame: encoder or language head", blame),
        ("regression", "Regression diff", regression),
        ("hallucinations", "Hallucinations", hallucinations),
        ("waterfalls", "Trace waterfalls of failing rows", waterfall),
        ("failures", f"Every failing row ({len(failing)})", verdicts),
    ]
    nav = "".join(f'<a href="#{key}">{_e(title.split(" (")[0])}</a>' for key, title, _ in sections)
    body = "".join(f'<section id="{key}"><h2>{_e(title)}</h2>{content}</section>'
                   for key, title, content in sections)
    document = (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>vlmscope report — {_e(Path(db).name)}</title><style>{_CSS}</style></head>"
        f"<body><header><h1>vlmscope report</h1><p>{_e(Path(db).name)} · {len(runs)} runs · "
        f"generated {generated}</p></header><nav>{nav}</nav><main>{body}</main></body></html>"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(document, encoding="utf-8")
    return ReportStats(output, runs, len(failing), changed, examples, images)
