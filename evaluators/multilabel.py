"""MultiLabelReport: how well a multi-label encoder reads the set of objects in each image.

Over the rows with ground-truth ``objects`` and an encoder record, with labels ``L`` (the
``classes`` when given, else every object and top-k label seen, sorted), three ``N x |L|``
matrices: ``Y`` (the label is one of the row's objects), ``P`` (the label is in the encoder's
reading: the labels with score ``>= encoder_threshold`` of a multi-label encoder, the top-1
of a single-label one; :mod:`vlmscope.evaluators.reading`) and ``S`` (the label's score in
the row's top-k, 0 when not ranked). The metrics are scikit-learn's on indicator matrices
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
import pyarrow.compute as pc

from vlmscope.evaluators.base import Evaluator
from vlmscope.evaluators.reading import DEFAULT_ENCODER_THRESHOLD, install_reading_macros

_SKIP = ("CASE WHEN objects IS NULL THEN 'no ground-truth objects' "
         "WHEN len(coalesce(top_k_labels, []::VARCHAR[])) = 0 THEN 'no encoder top-k' END")


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.zeros(np.shape(numerator), dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=np.asarray(denominator) != 0)
    return out


def average_precision(truth: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Average precision of each column of ``scores`` (N x L) against the 0/1 ``truth``:
    ``sum_k (R_k - R_{k-1}) P_k`` over the distinct scores in decreasing order, as
    scikit-learn's ``average_precision_score``; 0 for a column without positives."""
    result = np.zeros(truth.shape[1], dtype=np.float64)
    for j in range(truth.shape[1]):
        order = np.argsort(-scores[:, j], kind="mergesort")
        y, s = truth[order, j].astype(np.float64), scores[order, j]
        positives = y.sum()
        if positives == 0:
            continue
        ends = np.r_[np.flatnonzero(np.diff(s)), y.size - 1]
        true_positives = np.cumsum(y)[ends]
        precision = true_positives / (ends + 1)
        recall = true_positives / positives
        result[j] = float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
    return result


def multilabel_metrics(truth: np.ndarray, predicted: np.ndarray, scores: np.ndarray,
                       labels: Sequence[str]) -> dict[str, Any]:
    """The metrics of the module docstring from the N x L indicator matrices ``truth``,
    ``predicted`` and the score matrix ``scores`` (columns in the order of ``labels``)."""
    truth, predicted = truth.astype(bool), predicted.astype(bool)
    tp = (truth & predicted).sum(axis=0).astype(np.float64)
    fp = (~truth & predicted).sum(axis=0).astype(np.float64)
    fn = (truth & ~predicted).sum(axis=0).astype(np.float64)
    support = truth.sum(axis=0)
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    ap = average_precision(truth, scores)
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
    rows = truth.shape[0]
    return {
        "labels": list(labels),
        "per_label": {label: {"precision": float(p), "recall": float(r), "f1": float(f),
                              "support": int(s), "predicted": int(q),
                              "average_precision": float(a)}
                      for label, p, r, f, s, q, a in zip(
                          labels, precision, recall, f1, support, predicted.sum(axis=0), ap,
                          strict=True)},
        "averages": averages,
        "subset_accuracy": float(np.mean(np.all(truth == predicted, axis=1))) if rows else None,
        "hamming_loss": float(np.mean(truth != predicted)) if truth.size else None,
        "mean_average_precision": float(ap.mean()) if len(labels) and rows else None,
    }


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

    def compute(self, con: duckdb.DuckDBPyConnection, source: str) -> dict[str, Any]:
        """The report over the relation named ``source``, JSON-serialisable."""
        self.check_columns(con, source)
        install_reading_macros(con)
        present = {row[0] for row in con.execute(f"DESCRIBE {source}").fetchall()}
        multi = "encoder_multi_label" if "encoder_multi_label" in present else "NULL"
        reasons = dict(con.execute(
            f"SELECT reason, count(*) FROM (SELECT {_SKIP} AS reason FROM {source}) "
            "WHERE reason IS NOT NULL GROUP BY reason ORDER BY reason").fetchall())
        table = con.sql(f"""
            SELECT objects, top_k_labels AS ranked,
                   list_transform(top_k_scores, lambda x: coalesce(x, 0.0)) AS scores,
                   vlmscope_encoder_reading(top_k_labels, top_k_scores, {multi},
                                            {self.encoder_threshold}::DOUBLE) AS reading
            FROM {source} WHERE ({_SKIP}) IS NULL
        """).to_arrow_table()
        labels = self._labels(table)
        shape = (table.num_rows, len(labels))
        truth = np.zeros(shape, dtype=bool)
        predicted = np.zeros(shape, dtype=bool)
        scores = np.zeros(shape, dtype=np.float64)
        for matrix, column in ((truth, "objects"), (predicted, "reading")):
            rows, columns = self._cells(table[column], labels)
            matrix[rows, columns] = True
        rows, columns = self._cells(table["ranked"], labels)
        values = pc.list_flatten(table["scores"].combine_chunks()).to_numpy(
            zero_copy_only=False)
        keep = self._kept(table["ranked"], labels)
        np.maximum.at(scores, (rows, columns), values[keep])
        return {"rows": table.num_rows, "judged": table.num_rows,
                "skipped": sum(reasons.values()),
                "skipped_reasons": reasons, "encoder_threshold": self.encoder_threshold,
                **multilabel_metrics(truth, predicted, scores, labels)}

    def _labels(self, table: pa.Table) -> list[str]:
        if self.classes is not None:
            return list(dict.fromkeys(self.classes))
        seen = set(pc.list_flatten(table["objects"].combine_chunks()).to_pylist())
        seen |= set(pc.list_flatten(table["ranked"].combine_chunks()).to_pylist())
        return sorted(s for s in seen if s is not None)

    @staticmethod
    def _kept(column: pa.ChunkedArray, labels: list[str]) -> np.ndarray:
        """Which elements of the flattened lists of ``column`` are one of ``labels``."""
        flat = pc.list_flatten(column.combine_chunks())
        found = pc.index_in(flat, value_set=pa.array(labels, pa.string()))
        return found.is_valid().to_numpy(zero_copy_only=False)

    @staticmethod
    def _cells(column: pa.ChunkedArray, labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(row, label index) of every element of the lists of ``column`` that is a label."""
        lists = column.combine_chunks()
        parents = pc.list_parent_indices(lists).to_numpy()
        found = pc.index_in(pc.list_flatten(lists), value_set=pa.array(labels, pa.string()))
        keep = found.is_valid().to_numpy(zero_copy_only=False)
        return parents[keep], found.fill_null(0).to_numpy()[keep]
