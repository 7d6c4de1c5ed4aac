"""ClassificationReport: how often the encoder is right, per class, and how well it knows it.

DuckDB reduces the rows to counts (one scan: expected label x top-1 label x confidence bin);
numpy turns the counts into the metrics. The metrics follow scikit-learn's definitions, with
``zero_division=0``, over the classes seen as expected or predicted (sorted):

* ``precision_c = TP_c / (TP_c + FP_c)``, ``recall_c = TP_c / (TP_c + FN_c)``,
  ``f1_c = 2 TP_c / (2 TP_c + FP_c + FN_c)``, ``support_c`` = rows whose expected label is c.
* averages: ``macro`` = unweighted mean over classes; ``weighted`` = mean weighted by
  support; ``micro`` = the same ratios over the summed counts (equals top-1 accuracy here).
* ``top1`` = share of rows whose top-1 label is the expected one; ``top5`` = share whose
  expected label is among the first ``k`` (default 5) top-k labels.
* calibration, with confidence = the top-1 softmax score and ``B`` = 15 equal-width bins:
  ``ECE = sum_b (n_b / N) |acc_b - conf_b|`` and ``MCE = max_b |acc_b - conf_b|`` over
  non-empty bins. The bins are torchmetrics' (``MulticlassCalibrationError``), so that ECE
  and MCE equal its ``l1`` and ``max`` norms: the confidence is rounded to float32 and
  falls in bin ``b`` when ``edge_b <= c < edge_{b+1}`` for the float32 edges of
  ``torch.linspace(0, 1, B + 1)`` (:func:`bin_edges`); a confidence of exactly 1 has a
  bin of its own (``B + 1`` bins in all), so ``c = 1`` and ``c = 0.97`` are not averaged
  together. A row whose confidence a float32 cannot hold (NaN, infinite, beyond 3.4e38)
  counts in every metric but the calibration, which it is left out of.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from vlmscope.evaluators.base import Evaluator
from vlmscope.evaluators.declaration import SUMMARY_AT_TOP, Metric, Option, comma_list
from vlmscope.evaluators.text import install_macros

DEFAULT_BINS = 15
"""Equal-width confidence bins for ECE and MCE."""

AVERAGES = ("macro", "micro", "weighted")
"""The averaging modes reported for precision, recall and F1."""

NOT_A_CLASS = "an expected label outside the classes"
"""Why a row is skipped when ``classes`` is set and its expected answer is none of them."""

NO_TOP_K = "no encoder top-k"
"""Why a row without an encoder record is skipped (here and by MultiLabelReport)."""

_CALIBRATED = "abs(top_k_scores[1]) <= 3.4028234663852886e38"
"""A top-1 score the calibration can bin: one a float32 holds (DuckDB orders NaN above every
number, so a NaN is out too)."""

_SKIP_REASON = (
    "CASE WHEN vlmscope_blank(expected) THEN 'no expected label' "
    f"WHEN len(coalesce(top_k_labels, []::VARCHAR[])) = 0 THEN '{NO_TOP_K}' "
    "WHEN NOT coalesce(list_contains((SELECT classes FROM _classes), expected), true) "
    f"THEN '{NOT_A_CLASS}' END"
)


def bin_edges(n_bins: int) -> list[float]:
    """The ``n_bins + 1`` confidence bin edges from 0 to 1 as float32 values, exactly as
    ``torch.linspace(0, 1, n_bins + 1, dtype=torch.float32)`` gives them: a float32 step,
    the first half counted up from 0 and the second down from 1, each rounded once."""
    step = float(np.float32(1.0) / np.float32(n_bins))
    half = (n_bins + 1) // 2
    return [float(np.float32(step * i if i < half else 1.0 - step * (n_bins - i)))
            for i in range(n_bins + 1)]


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` elementwise, 0 where the denominator is 0."""
    out = np.zeros(numerator.shape, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


@dataclass(frozen=True)
class ClassificationMetrics:
    """The metrics of one set of rows (all of a run, or one slice).

    ``labels`` are the classes (sorted), ``confusion[i, j]`` counts rows expected
    ``labels[i]`` and predicted (top-1) ``labels[j]``. Rates are in [0, 1].
    """

    labels: list[str]
    confusion: np.ndarray
    top_k_hits: int
    bin_rows: np.ndarray
    bin_confidence_sum: np.ndarray
    bin_correct: np.ndarray
    k: int

    @property
    def rows(self) -> int:
        """Rows scored."""
        return int(self.confusion.sum())

    @property
    def support(self) -> np.ndarray:
        """Rows expected to be each class."""
        return self.confusion.sum(axis=1)

    @property
    def predicted(self) -> np.ndarray:
        """Rows predicted (top-1) as each class."""
        return self.confusion.sum(axis=0)

    @property
    def precision(self) -> np.ndarray:
        """``TP / (TP + FP)`` per class (0 for a class never predicted)."""
        return _ratio(np.diag(self.confusion).astype(np.float64), self.predicted)

    @property
    def recall(self) -> np.ndarray:
        """``TP / (TP + FN)`` per class (0 for a class never expected)."""
        return _ratio(np.diag(self.confusion).astype(np.float64), self.support)

    @property
    def f1(self) -> np.ndarray:
        """``2 TP / (2 TP + FP + FN)`` per class."""
        tp = np.diag(self.confusion).astype(np.float64)
        return _ratio(2 * tp, (self.support + self.predicted).astype(np.float64))

    @property
    def top1(self) -> float | None:
        """Share of rows whose top-1 label is the expected label."""
        return float(np.trace(self.confusion) / self.rows) if self.rows else None

    @property
    def top5(self) -> float | None:
        """Share of rows whose expected label is among the first ``k`` top-k labels."""
        return self.top_k_hits / self.rows if self.rows else None

    def average(self, mode: str) -> dict[str, float | None]:
        """Precision, recall and F1 averaged by ``mode`` (``macro``, ``micro``, ``weighted``);
        None without a row scored, as top-1 is: not measured, rather than measured 0."""
        if mode not in AVERAGES:
            raise ValueError(f"unknown average {mode!r}; use one of {', '.join(AVERAGES)}")
        if not self.rows:
            return {"precision": None, "recall": None, "f1": None}
        if mode == "micro":
            tp = float(np.trace(self.confusion))
            fp = float(self.predicted.sum()) - tp
            fn = float(self.support.sum()) - tp
            precision = tp / (tp + fp) if tp + fp else 0.0
            recall = tp / (tp + fn) if tp + fn else 0.0
            f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
            return {"precision": precision, "recall": recall, "f1": f1}
        weights = self.support if mode == "weighted" else None
        if weights is not None and weights.sum() == 0:
            return {"precision": 0.0, "recall": 0.0, "f1": 0.0}
        return {name: float(np.average(values, weights=weights)) for name, values in
                (("precision", self.precision), ("recall", self.recall), ("f1", self.f1))}

    def _bin_gaps(self) -> np.ndarray:
        filled = self.bin_rows > 0
        accuracy = self.bin_correct[filled] / self.bin_rows[filled]
        confidence = self.bin_confidence_sum[filled] / self.bin_rows[filled]
        return np.abs(accuracy - confidence)

    @property
    def ece(self) -> float | None:
        """Expected calibration error: ``sum_b (n_b / N) |acc_b - conf_b|``."""
        total = self.bin_rows.sum()
        if not total:
            return None
        return float(np.sum(self.bin_rows[self.bin_rows > 0] / total * self._bin_gaps()))

    @property
    def mce(self) -> float | None:
        """Maximum calibration error: ``max_b |acc_b - conf_b|`` over non-empty bins."""
        gaps = self._bin_gaps()
        return float(gaps.max()) if gaps.size else None

    def confusion_table(self) -> list[dict[str, Any]]:
        """The non-zero cells of the confusion matrix: ``expected``, ``predicted``, ``count``
        and ``share`` (count over the expected class's support: the row-normalised matrix)."""
        support = self.support
        rows, cols = np.nonzero(self.confusion)
        return [
            {"expected": self.labels[i], "predicted": self.labels[j],
             "count": int(self.confusion[i, j]),
             "share": float(self.confusion[i, j] / support[i])}
            for i, j in zip(rows.tolist(), cols.tolist(), strict=True)
        ]


def _lowest(field: str, present_only: bool) -> Callable[[Mapping[str, Any]], float | None]:
    """The lowest ``field`` of any class (with support, when ``present_only``)."""
    def read(summary: Mapping[str, Any]) -> float | None:
        classes = [c for c in summary.get("per_class", {}).values()
                   if c["support"] or not present_only]
        if not any(c["support"] for c in summary.get("per_class", {}).values()):
            return None
        return min(c[field] for c in classes)
    return read


class ClassificationReport(Evaluator):
    """Top-1/top-k accuracy, per-class precision/recall/F1/support with macro, micro and
    weighted averages, the confusion matrix and calibration (ECE, MCE) of the encoder's top-k
    against the expected label; sliceable by any columns; warns about the accuracy paradox,
    class imbalance and classes never predicted.

    Rows without an expected label or without encoder top-k are skipped and counted. A run
    over mixed instructions (a label, a count, a yes/no) is a classification only on the
    rows that ask for a class: with ``classes`` (the encoder's class names) or
    ``classes_from_encoder=True`` (every label the encoder ranked in any row's top-k), rows
    whose expected answer is none of them are skipped too, with that reason; without
    either, every expected answer counts as a class, as scikit-learn counts it.

    Example::

        >>> report = ClassificationReport(slice_by=["cohort"])
        >>> summary = report.compute(con, "pipeline_rows")  # doctest: +SKIP
        >>> summary["top1"], summary["per_class"]["cat"]["recall"]  # doctest: +SKIP
    """

    name = "classification_report"
    description = ("encoder top-1/top-5 accuracy, per-class precision/recall/F1, confusion "
                   "matrix and calibration (ECE) against the expected label")
    base_columns = ("expected", "top_k_labels", "top_k_scores")
    options = (
        Option("k", "int", 5, "the k of top-k accuracy"),
        Option("slice_by", "Sequence[str]", (), "also report per slice of these columns",
               flag="--by", parse=comma_list, metavar="COLUMNS"),
        Option("n_bins", "int", DEFAULT_BINS, "calibration bins (ECE, MCE)"),
        Option("paradox_accuracy", "float", 0.9,
               "accuracy above which a low-recall class warns of the accuracy paradox"),
        Option("paradox_recall", "float", 0.5, "recall under which that class warns"),
        Option("imbalance_ratio", "float", 10.0,
               "largest/smallest class support that warns of class imbalance"),
        Option("classes", "Sequence[str] | None", None, "the encoder's classes: rows "
               "expecting none of them are skipped", flag="--classes", parse=comma_list,
               metavar="NAMES"),
        Option("classes_from_encoder", "bool", False, "the classes are the labels the "
               "encoder ranked in any row's top-k", flag="--classes-from-encoder",
               kind="switch"),
    )
    summary_metrics = (
        Metric("top1", "encoder top-1 accuracy", gated=True),
        Metric("top5", "encoder top-5 accuracy", gated=True),
        Metric("macro_f1", "macro-averaged F1 over classes", gated=True),
        Metric("micro_f1", "micro-averaged F1", key="averages.micro.f1", gated=True,
               headline=False),
        Metric("weighted_f1", "support-weighted F1", key="averages.weighted.f1", gated=True,
               headline=False),
        Metric("macro_precision", "macro-averaged precision", key="averages.macro.precision",
               gated=True, headline=False),
        Metric("macro_recall", "macro-averaged recall", key="averages.macro.recall",
               gated=True, headline=False),
        Metric("recall_min", "lowest recall of any class present",
               read=_lowest("recall", True), gated=True, headline=False),
        Metric("precision_min", "lowest precision of any class predicted or present",
               read=_lowest("precision", False), gated=True, headline=False),
        Metric("f1_min", "lowest F1 of any class", read=_lowest("f1", False), gated=True,
               headline=False),
        Metric("ece", "expected calibration error of the top-1 score (lower is better)"),
        Metric("mce", "maximum calibration error (lower is better)"),
    )
    merged_from = "rows per slice, expected, predicted and calibration bin"
    summary_key = SUMMARY_AT_TOP

    def __init__(
        self,
        *,
        k: int = 5,
        slice_by: Sequence[str] = (),
        n_bins: int = DEFAULT_BINS,
        paradox_accuracy: float = 0.9,
        paradox_recall: float = 0.5,
        imbalance_ratio: float = 10.0,
        classes: Sequence[str] | None = None,
        classes_from_encoder: bool = False,
    ) -> None:
        if classes is not None and classes_from_encoder:
            raise ValueError("give classes or classes_from_encoder=True, not both")
        if classes is not None and isinstance(classes, str):
            raise ValueError("classes is a list of class names, e.g. ['cat', 'dog']")
        if classes is not None and not classes:
            raise ValueError("classes is empty: give the encoder's class names")
        if k < 1 or n_bins < 1:
            raise ValueError(f"k and n_bins must be at least 1 (got k={k}, n_bins={n_bins})")
        if not 0 <= paradox_accuracy <= 1 or not 0 <= paradox_recall <= 1:
            raise ValueError("paradox_accuracy and paradox_recall are rates in [0, 1]")
        if imbalance_ratio <= 1:
            raise ValueError(f"imbalance_ratio must be > 1, got {imbalance_ratio}")
        self.k = k
        self.slice_by = tuple(slice_by)
        self.n_bins = n_bins
        self.paradox_accuracy = paradox_accuracy
        self.paradox_recall = paradox_recall
        self.imbalance_ratio = imbalance_ratio
        self.classes = None if classes is None else tuple(str(c) for c in classes)
        self.classes_from_encoder = classes_from_encoder

    @property
    def required_columns(self) -> tuple[str, ...]:  # type: ignore[override]
        """The label columns plus the slicing columns."""
        return self.base_columns + tuple(c for c in self.slice_by if c not in self.base_columns)

    def config(self) -> dict[str, Any]:
        """k, slicing columns, bins and warning thresholds."""
        return {"k": self.k, "slice_by": list(self.slice_by), "n_bins": self.n_bins,
                "paradox_accuracy": self.paradox_accuracy,
                "paradox_recall": self.paradox_recall, "imbalance_ratio": self.imbalance_ratio,
                "classes": None if self.classes is None else list(self.classes),
                "classes_from_encoder": self.classes_from_encoder}

    def run(self, con: duckdb.DuckDBPyConnection, source: str, run_id: str) -> dict[str, Any]:
        """The report of ``source`` (no per-row evaluation rows: see ground_truth_match)."""
        return self.compute(con, source)

    def unmergeable_reason(self) -> str | None:
        """None: the report follows from :meth:`count_table`'s counts; except with
        ``classes_from_encoder``, whose classes come from all rows at once."""
        if self.classes_from_encoder:
            return ("classification_report with classes_from_encoder=True reads the classes "
                    "from all rows at once: give classes= to evaluate parts")
        return None

    def compute(self, con: duckdb.DuckDBPyConnection, source: str) -> dict[str, Any]:
        """The report over the relation named ``source``, as a JSON-serialisable summary;
        with ``slice_by``, ``slices`` holds one summary per distinct slice value."""
        return self.report_counts(self._count_query(con, source).fetchnumpy())

    def count_table(self, con: duckdb.DuckDBPyConnection, source: str) -> pa.Table:
        """The additive counts the report is computed from (rows per slice, skip reason,
        expected, predicted and calibration bin): the tables of disjoint parts of the rows,
        concatenated, give the report of all of them (see :meth:`report_counts`)."""
        if self.classes_from_encoder:
            raise ValueError("classes_from_encoder=True reads the classes from all rows at "
                             "once; give classes= to count parts of the rows separately")
        return self._count_query(con, source).to_arrow_table()

    def report_counts(self, grouped: dict[str, np.ndarray] | pa.Table) -> dict[str, Any]:
        """The report from :meth:`count_table` rows (or their DuckDB ``fetchnumpy``)."""
        if isinstance(grouped, pa.Table):
            grouped = duckdb.connect().from_arrow(grouped).fetchnumpy()
        return self._report(grouped)

    def _count_query(self, con: duckdb.DuckDBPyConnection,
                     source: str) -> duckdb.DuckDBPyRelation:
        self.check_columns(con, source)
        install_macros(con)
        keys = [f'"{c}"' for c in self.slice_by]
        key_select = "".join(f"{k}, " for k in keys)
        # One scan: judged rows grouped by (expected, predicted, bin), skipped ones by reason.
        if self.classes_from_encoder:
            classes = (f"SELECT list(DISTINCT label) AS classes FROM "
                       f"(SELECT unnest(top_k_labels) AS label FROM {source})")
        else:  # NULL: every expected answer is a class
            classes = "SELECT $classes::VARCHAR[] AS classes"
        return con.sql(f"""
            WITH _classes AS ({classes}),
            rows AS (SELECT *, {_SKIP_REASON} AS _reason FROM {source})
            SELECT {key_select}_reason,
                   CASE WHEN _reason IS NULL THEN expected END AS expected,
                   CASE WHEN _reason IS NULL THEN top_k_labels[1] END AS predicted,
                   CASE WHEN _reason IS NULL AND {_CALIBRATED}
                        THEN {self._bin_sql("top_k_scores[1]")} END AS bin,
                   count(*) AS n,
                   count(*) FILTER (WHERE _reason IS NULL
                                    AND list_contains(top_k_labels[1:{self.k}], expected))
                       AS hits,
                   sum(CASE WHEN _reason IS NULL AND {_CALIBRATED}
                            THEN top_k_scores[1]::FLOAT::DOUBLE END) AS confidence_sum,
                   max(len(top_k_labels)) FILTER (WHERE _reason IS NULL) AS recorded_k
            FROM rows GROUP BY ALL
        """, params={} if self.classes_from_encoder else {
            "classes": None if self.classes is None else list(self.classes)})

    def _report(self, grouped: dict[str, np.ndarray]) -> dict[str, Any]:
        judged = np.array([r is None for r in grouped["_reason"].tolist()], dtype=bool)
        counts = {name: values[judged] for name, values in grouped.items()
                  if name != "_reason"}
        listed = {c: grouped[c].tolist() for c in (*self.slice_by, "_reason", "n")}
        skipped = [(*(listed[c][i] for c in self.slice_by), listed["_reason"][i],
                    int(listed["n"][i])) for i in np.flatnonzero(~judged)]
        overall = self._summary(counts, np.ones(len(counts["n"]), dtype=bool),
                                [(row[-2], row[-1]) for row in skipped])
        if not self.slice_by:
            return overall
        slice_values = {tuple(row[:-2]) for row in skipped}
        slice_values |= set(zip(*(counts[c].tolist() for c in self.slice_by), strict=True))
        slices = []
        for value in sorted(slice_values, key=lambda v: tuple((x is None, str(x)) for x in v)):
            mask = np.ones(len(counts["n"]), dtype=bool)
            for column, part in zip(self.slice_by, value, strict=True):
                mask &= np.array([x == part for x in counts[column].tolist()], dtype=bool)
            slice_skips = [(row[-2], row[-1]) for row in skipped if tuple(row[:-2]) == value]
            slices.append({**dict(zip(self.slice_by, value, strict=True)),
                           **self._summary(counts, mask, slice_skips)})
        return {**overall, "slice_by": list(self.slice_by), "slices": slices}

    def _bin_sql(self, score: str) -> str:
        """The calibration bin (0 to ``n_bins``) of a confidence, as torchmetrics bins it:
        the float32 confidence ``c`` is in bin ``b`` when ``edge_b <= c < edge_{b+1}``.
        ``floor(c * B)`` is off by one at most near an edge (float32 edges are not
        ``b / B``), which the two comparisons correct; below 0 is bin 0, 1 and above bin B."""
        edges = [repr(e) for e in bin_edges(self.n_bins)]
        x = f"least(greatest(({score})::FLOAT::DOUBLE, 0.0), 1.0)"
        g = f"least(floor({x} * {self.n_bins})::INTEGER, {self.n_bins})"
        edge = "list_value(" + ", ".join(edges) + ")[{} + 1]"
        return (f"CASE WHEN {x} < {edge.format(g)} THEN {g} - 1 "
                f"WHEN {g} < {self.n_bins} AND {x} >= {edge.format(g + ' + 1')} THEN {g} + 1 "
                f"ELSE {g} END")

    def metrics(self, counts: dict[str, np.ndarray], mask: np.ndarray) -> ClassificationMetrics:
        """The metrics of the count rows selected by ``mask`` (output of the count query)."""
        expected = counts["expected"][mask].astype(str)
        predicted = counts["predicted"][mask].astype(str)
        n = counts["n"][mask].astype(np.int64)
        labels = np.unique(np.concatenate([expected, predicted]))
        confusion = np.zeros((labels.size, labels.size), dtype=np.int64)
        np.add.at(confusion, (np.searchsorted(labels, expected),
                              np.searchsorted(labels, predicted)), n)
        bins = counts["bin"][mask]
        has_bin = ~np.ma.getmaskarray(bins)
        bin_index = np.asarray(np.ma.getdata(bins), dtype=np.int64)[has_bin]
        correct = np.where(expected == predicted, n, 0)[has_bin]
        confidence = np.asarray(np.ma.getdata(counts["confidence_sum"][mask]),
                                dtype=np.float64)[has_bin]
        return ClassificationMetrics(
            labels=labels.tolist(),
            confusion=confusion,
            top_k_hits=int(counts["hits"][mask].sum()),
            bin_rows=np.bincount(bin_index, weights=n[has_bin], minlength=self.n_bins + 1),
            bin_confidence_sum=np.bincount(bin_index, weights=confidence,
                                           minlength=self.n_bins + 1),
            bin_correct=np.bincount(bin_index, weights=correct, minlength=self.n_bins + 1),
            k=self.k,
        )

    def _summary(self, counts: dict[str, np.ndarray], mask: np.ndarray,
                 skips: list[tuple[str, int]]) -> dict[str, Any]:
        metrics = self.metrics(counts, mask)
        reasons: dict[str, int] = {}
        for reason, n in skips:
            reasons[reason] = reasons.get(reason, 0) + int(n)
        recorded = counts["recorded_k"][mask]
        recorded_k = int(recorded.max()) if recorded.size else None
        averages = {mode: metrics.average(mode) for mode in AVERAGES}
        per_class = {
            label: {"precision": float(p), "recall": float(r), "f1": float(f),
                    "support": int(s), "predicted": int(q)}
            for label, p, r, f, s, q in zip(metrics.labels, metrics.precision, metrics.recall,
                                            metrics.f1, metrics.support, metrics.predicted,
                                            strict=True)
        }
        return {
            "rows": metrics.rows,
            "skipped": sum(reasons.values()),
            "skipped_reasons": reasons,
            "k": self.k,
            "top_k_recorded": recorded_k,
            "top1": metrics.top1,
            "top5": metrics.top5,
            "top_k_metric": f"top{min(self.k, recorded_k) if recorded_k else self.k}",
            "macro_f1": averages["macro"]["f1"],
            "averages": averages,
            "ece": metrics.ece,
            "mce": metrics.mce,
            "per_class": per_class,
            "confusion": metrics.confusion_table(),
            "warnings": self._warnings(metrics, recorded_k),
        }

    def _warnings(self, metrics: ClassificationMetrics, recorded_k: int | None) -> list[str]:
        warnings = []
        present = metrics.support > 0
        recall, support = metrics.recall, metrics.support
        top1 = metrics.top1
        if top1 is not None and top1 >= self.paradox_accuracy:
            for i in np.flatnonzero(present & (recall < self.paradox_recall)):
                warnings.append(
                    f"accuracy paradox: top-1 accuracy {top1:.3f} while class "
                    f"'{metrics.labels[i]}' has recall {recall[i]:.3f} (support {support[i]})")
        if present.sum() >= 2:
            big, small = np.argmax(np.where(present, support, -1)), np.argmin(
                np.where(present, support, np.iinfo(np.int64).max))
            if support[big] >= self.imbalance_ratio * support[small]:
                warnings.append(
                    f"class imbalance: '{metrics.labels[big]}' has {support[big]} rows and "
                    f"'{metrics.labels[small]}' {support[small]} "
                    f"({support[big] / support[small]:.1f}x); read the macro average")
        never = [metrics.labels[i] for i in np.flatnonzero(present & (metrics.predicted == 0))]
        if never:
            warnings.append(f"{len(never)} class(es) never predicted: "
                            + ", ".join(f"'{label}'" for label in never))
        if recorded_k is not None and recorded_k < self.k:
            warnings.append(f"top5 is top-{recorded_k}: the encoder recorded only "
                            f"{recorded_k} labels per row")
        return warnings
