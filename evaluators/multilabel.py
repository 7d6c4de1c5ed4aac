"""MultiLabelReport: how well a multi-label encoder reads the set of objects in each image.

Over the rows with ground-truth ``objects`` and an encoder record, with labels ``L`` (the
``classes`` when given, else every object and top-k label seen, sorted), three ``N x |L|``
matrices: ``Y`` (the label is one of the row's objects), ``P`` (the label is in the encoder's
reading: the labels with score ``>= encoder_threshold`` of a multi-label encoder, the top-1
of a single-label one; :mod:`vlmscope.evaluators.reading`) and ``S`` (the label's score in
the row's top-k, 0 when not ranked or NaN). The metrics are scikit-learn's on indicator matrices
(``zero_division=0``):

* per label ``l``: ``precision = TP / (TP + FP)``, ``recall = TP / (TP + FN)``, ``f1 = 2 TP /
  (2 TP + FP + FN)``, ``support = sum_i Y[i, l]``, and average precision from the scores:
  ``AP = sum_k (R_k - R_{k-1}) P_k`` over the distinct scores in decreasing order (0 for a
  label with no positive row, as scikit-learn gives it);
* averages: ``micro`` (the ratios over the summed counts), ``macro`` (unweighted mean over
  labels), ``weighted`` (mean weighted by support);
* ``subset_accuracy`` = share of rows whose reading is exactly their object set;
  ``hamming_loss`` = share of (row, label) cells where reading and truth differ;
  ``mean_average_precision`` = the mean of the labels' AP (scikit-learn's
  ``average_precision_score(Y, S)``, macro).

DuckDB selects the rows and reads them (one scan); numpy builds the matrices and the metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from vlmscope.evaluators.base import Evaluator
from vlmscope.evaluators.classification import NO_TOP_K
from vlmscope.evaluators.declaration import Metric, Option, comma_list
from vlmscope.evaluators.reading import DEFAULT_ENCODER_THRESHOLD, install_reading_macros

_SKIP = ("CASE WHEN objects IS NULL THEN 'no ground-truth objects' "
         f"WHEN len(coalesce(top_k_labels, []::VARCHAR[])) = 0 THEN '{NO_TOP_K}' END")


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.zeros(np.shape(numerator), dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=np.asarray(denominator) != 0)
    return out


def average_precision(scores: np.ndarray, rows: np.ndarray, positives: np.ndarray) -> float:
    """Average precision of one label from its rows grouped by distinct score: ``rows[k]``
    rows, ``positives[k]`` of them with the label, scored ``scores[k]``. ``sum_k (R_k -
    R_{k-1}) P_k`` over the distinct scores in decreasing order, as scikit-learn's
    ``average_precision_score`` (ties share one threshold); 0 without positives."""
    total = positives.sum()
    if total == 0:
        return 0.0
    order = np.argsort(-scores, kind="mergesort")
    true_positives = np.cumsum(positives[order]).astype(np.float64)
    precision = true_positives / np.cumsum(rows[order])
    recall = true_positives / total
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def metrics_from_counts(labels: Sequence[str], rows: int, exact: int, counts: np.ndarray,
                        ap: np.ndarray) -> dict[str, Any]:
    """The metrics of the module docstring from additive counts: ``rows`` judged, ``exact``
    of them read exactly, ``counts`` (L x 5: TP, FP, FN, support, predicted per label) and
    each label's average precision ``ap``."""
    tp, fp, fn = (counts[:, k].astype(np.float64) for k in range(3))
    support, predicted = counts[:, 3], counts[:, 4]
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    micro_tp, micro_fp, micro_fn = tp.sum(), fp.sum(), fn.sum()
    averages = {
        "micro": {"precision": float(_ratio(micro_tp, micro_tp + micro_fp)),
                  "recall": float(_ratio(micro_tp, micro_tp + micro_fn)),
                  "f1": float(_ratio(2 * micro_tp, 2 * micro_tp + micro_fp + micro_fn))},
        "macro": {"precision": float(precision.mean()) if len(labels) else 0.0,
                  "recall": float(recall.mean()) if len(labels) else 0.0,
                  "f1": float(f1.mean()) if len(labels) else 0.0},
        "weighted": {name: float(np.average(values, weights=support))
                     if support.sum() else 0.0
                     for name, values in (("precision", precision), ("recall", recall),
                                          ("f1", f1))},
    }
    cells = rows * len(labels)
    return {
        "labels": list(labels),
        "per_label": {label: {"precision": float(p), "recall": float(r), "f1": float(f),
                              "support": int(s), "predicted": int(q),
                              "average_precision": float(a)}
                      for label, p, r, f, s, q, a in zip(
                          labels, precision, recall, f1, support, predicted, ap,
                          strict=True)},
        # Without a row judged nothing was measured (None), as for the subset accuracy.
        "averages": averages if rows else {
            mode: dict.fromkeys(("precision", "recall", "f1")) for mode in averages},
        "subset_accuracy": exact / rows if rows else None,
        "hamming_loss": float(micro_fp + micro_fn) / cells if cells else None,
        "mean_average_precision": float(ap.mean()) if len(labels) and rows else None,
    }


_STATISTICS_SCHEMA = pa.schema([
    ("kind", pa.string()), ("label", pa.string()), ("score", pa.float64()),
    ("truth", pa.bool_()), ("predicted", pa.bool_()), ("n", pa.int64())])
_COUNTS = {(True, True): 0, (False, True): 1, (True, False): 2}
"""Column of (truth, predicted) in the counts matrix: TP, FP, FN."""


class MultiLabelReport(Evaluator):
    """Per-label precision, recall, F1, support and average precision, micro/macro/weighted
    averages, subset accuracy, Hamming loss and mean average precision of the encoder's
    reading against each row's ground-truth objects (see the module docstring).

    ``encoder_threshold``: the score (0-1) at which a multi-label encoder's label is read;
    ``classes``: the encoder's labels (default: every object and top-k label seen).
    Rows without ``objects`` or without an encoder record are skipped and counted.

    Example::

        >>> summary = MultiLabelReport().compute(con, "pipeline_rows")  # doctest: +SKIP
        >>> summary["subset_accuracy"], summary["per_label"]["dog"]["f1"]  # doctest: +SKIP
    """

    name = "multilabel_report"
    description = ("the encoder's reading as a set against the ground-truth objects: per-label "
                   "precision/recall/F1/AP, micro/macro/weighted, subset accuracy, Hamming "
                   "loss, mAP")
    required_columns = ("objects", "top_k_labels", "top_k_scores")
    optional_columns = ("encoder_multi_label",)
    options = (
        Option("encoder_threshold", "float", DEFAULT_ENCODER_THRESHOLD, "the score at which "
               "a multi-label encoder's label is read", flag="--encoder-threshold",
               parse=float, metavar="SCORE"),
        Option("classes", "Sequence[str] | None", None, "the labels (default: every object "
               "and top-k label seen)", flag="--classes", parse=comma_list, metavar="NAMES"),
    )
    summary_metrics = (
        Metric("subset_accuracy", "share of rows whose reading is exactly their objects"),
        Metric("hamming_loss", "share of (row, label) cells read wrong (lower is better)"),
        Metric("mean_average_precision", "mean of the labels' average precision"),
    )
    merged_from = ("rows per label, truth and reading; ranked cells per label, score and "
                   "truth")

    def __init__(self, *, encoder_threshold: float = DEFAULT_ENCODER_THRESHOLD,
                 classes: Sequence[str] | None = None) -> None:
        if not 0.0 <= encoder_threshold <= 1.0:
            raise ValueError(f"encoder_threshold must be in [0, 1], got {encoder_threshold}")
        if isinstance(classes, str):
            raise ValueError("classes is a list of label names, e.g. ['cat', 'dog']")
        self.encoder_threshold = encoder_threshold
        self.classes = None if classes is None else tuple(classes)

    def config(self) -> dict[str, Any]:
        """Threshold and classes."""
        return {"encoder_threshold": self.encoder_threshold,
                "classes": None if self.classes is None else list(self.classes)}

    def run(self, con: duckdb.DuckDBPyConnection, source: str, run_id: str) -> dict[str, Any]:
        """The report of ``source`` (no per-row evaluation rows)."""
        return self.compute(con, source)

    def unmergeable_reason(self) -> str | None:
        """None: the report follows from additive counts (:meth:`statistics`)."""
        return None

    def compute(self, con: duckdb.DuckDBPyConnection, source: str) -> dict[str, Any]:
        """The report over the relation named ``source``, JSON-serialisable: computed from
        :meth:`statistics`, as a merge of parts computes it."""
        return self.summarise_statistics([self.statistics(con, source)])

    def statistics(self, con: duckdb.DuckDBPyConnection, source: str) -> pa.Table:
        """Additive counts of ``source``'s rows: rows judged and read exactly, skipped rows per
        reason, the labels seen, rows per (label, in the truth, in the reading) and the
        ranked cells per (label, score, in the truth), from which
        :meth:`summarise_statistics` gives every metric."""
        self.check_columns(con, source)
        install_reading_macros(con)
        present = {row[0] for row in con.execute(f"DESCRIBE {source}").fetchall()}
        multi = "encoder_multi_label" if "encoder_multi_label" in present else "NULL"
        if self.classes is None:
            labels = ("SELECT DISTINCT label FROM (SELECT unnest(objects) AS label FROM judged "
                      "UNION ALL SELECT unnest(ranked) FROM judged) WHERE label IS NOT NULL")
        else:
            labels = "SELECT unnest($classes::VARCHAR[]) AS label"
        query = f"""
        WITH judged AS MATERIALIZED (
            SELECT row_number() OVER () AS i, objects, top_k_labels AS ranked,
                   top_k_scores AS scores,
                   vlmscope_encoder_reading(top_k_labels, top_k_scores, {multi},
                                            $threshold::DOUBLE) AS reading
            FROM {source} WHERE ({_SKIP}) IS NULL
        ), labels AS MATERIALIZED ({labels}),
        truth AS (SELECT DISTINCT i, label FROM (SELECT i, unnest(objects) AS label
                  FROM judged) WHERE label IN (FROM labels)),
        reading AS (SELECT DISTINCT i, label FROM (SELECT i, unnest(reading) AS label
                    FROM judged) WHERE label IN (FROM labels)),
        cells AS MATERIALIZED (
            SELECT coalesce(t.i, r.i) AS i, coalesce(t.label, r.label) AS label,
                   t.i IS NOT NULL AS truth, r.i IS NOT NULL AS predicted
            FROM truth t FULL JOIN reading r ON t.i = r.i AND t.label = r.label),
        ranked AS (
            -- A NaN score is no score (as in the reading): 0, as for a label not ranked.
            SELECT i, label, max(CASE WHEN isnan(score) THEN 0.0 ELSE coalesce(score, 0.0)
                                 END) AS score FROM (
                SELECT i, unnest(ranked) AS label, unnest(scores) AS score FROM judged)
            WHERE label IN (FROM labels) GROUP BY i, label)
        SELECT 'rows' AS kind, NULL::VARCHAR AS label, NULL::DOUBLE AS score,
               NULL::BOOLEAN AS truth, NULL::BOOLEAN AS predicted, count(*) AS n FROM judged
        UNION ALL SELECT 'exact', NULL, NULL, NULL, NULL,
               (SELECT count(*) FROM judged) - count(DISTINCT i) FROM cells
               WHERE truth <> predicted
        UNION ALL SELECT 'skipped', reason, NULL, NULL, NULL, count(*) FROM (
            SELECT {_SKIP} AS reason FROM {source}) WHERE reason IS NOT NULL GROUP BY reason
        UNION ALL SELECT 'label', label, NULL, NULL, NULL, 0 FROM labels
        UNION ALL SELECT 'cell', label, NULL, truth, predicted, count(*) FROM cells
        GROUP BY ALL
        UNION ALL SELECT 'ranked', r.label, r.score, t.i IS NOT NULL, NULL, count(*)
        FROM ranked r LEFT JOIN truth t ON t.i = r.i AND t.label = r.label GROUP BY ALL
        """
        parameters: dict[str, Any] = {"threshold": self.encoder_threshold}
        if self.classes is not None:
            parameters["classes"] = list(self.classes)
        return con.sql(query, params=parameters).to_arrow_table().cast(_STATISTICS_SCHEMA)

    def summarise_statistics(self, parts: Sequence[pa.Table]) -> dict[str, Any]:
        """The report from the :meth:`statistics` of disjoint parts of the rows."""
        stacked = pa.concat_tables(parts).group_by(
            ["kind", "label", "score", "truth", "predicted"], use_threads=False,
        ).aggregate([("n", "sum")]).to_pylist()
        total = {kind: 0 for kind in ("rows", "exact")}
        reasons: dict[str, int] = {}
        seen: set[str] = set()
        for row in stacked:
            if row["kind"] in total:
                total[row["kind"]] += row["n_sum"]
            elif row["kind"] == "skipped":
                reasons[row["label"]] = row["n_sum"]
            elif row["kind"] == "label":
                seen.add(row["label"])
        labels = (list(dict.fromkeys(self.classes)) if self.classes is not None
                  else sorted(seen))
        index = {label: j for j, label in enumerate(labels)}
        counts = np.zeros((len(labels), 5), dtype=np.int64)
        ranked: list[list[tuple[float, int, int]]] = [[] for _ in labels]
        for row in stacked:
            n = row["n_sum"]
            if row["kind"] == "cell":
                j = index[row["label"]]
                counts[j, _COUNTS[row["truth"], row["predicted"]]] += n
                counts[j, 3] += n if row["truth"] else 0
                counts[j, 4] += n if row["predicted"] else 0
            elif row["kind"] == "ranked":
                ranked[index[row["label"]]].append((row["score"], n, n if row["truth"] else 0))
        rows = total["rows"]
        ap = np.zeros(len(labels), dtype=np.float64)
        for j, cells in enumerate(ranked):
            # Rows that do not rank the label score it 0.
            cells.append((0.0, rows - sum(c[1] for c in cells),
                          int(counts[j, 3]) - sum(c[2] for c in cells)))
            by_score: dict[float, list[int]] = {}
            for score, n, positives in cells:
                entry = by_score.setdefault(float(score), [0, 0])
                entry[0] += n
                entry[1] += positives
            kept = [(score, n, p) for score, (n, p) in by_score.items() if n]
            if kept:
                ap[j] = average_precision(*(np.array(c) for c in zip(*kept, strict=True)))
        return {"rows": rows, "judged": rows, "skipped": sum(reasons.values()),
                "skipped_reasons": dict(sorted(reasons.items())),
                "encoder_threshold": self.encoder_threshold,
                **metrics_from_counts(labels, rows, total["exact"], counts, ap)}
