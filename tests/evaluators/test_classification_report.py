"""ClassificationReport against scikit-learn and torchmetrics on seeded random inputs."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pytest
import torch
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    precision_recall_fscore_support,
    top_k_accuracy_score,
)
from torchmetrics.classification import MulticlassCalibrationError

from vlmscope.evaluators import ClassificationReport
from vlmscope.evaluators.base import PIPELINE_ROW_SCHEMA
from vlmscope.evaluators.classification import NOT_A_CLASS, bin_edges


def rows_table(con: duckdb.DuckDBPyConnection, name: str, **columns: list) -> None:
    """Register a relation with every pipeline_rows column; those not given are NULL."""
    n = len(next(iter(columns.values())))
    data = {field.name: pa.array(columns.get(field.name, [None] * n), field.type)
            for field in PIPELINE_ROW_SCHEMA}
    con.register(name, pa.table(data, schema=PIPELINE_ROW_SCHEMA))


def random_classification(seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Expected labels and softmax scores with classes that are never expected and classes
    that are never predicted."""
    rng = np.random.default_rng(seed)
    n_classes = int(rng.integers(3, 9))
    classes = [f"class{i}" for i in range(n_classes)]
    rows = int(rng.integers(1, 400))
    present = rng.choice(n_classes, size=int(rng.integers(1, n_classes + 1)), replace=False)
    y_true = rng.choice(present, size=rows)
    logits = rng.normal(size=(rows, n_classes)) * rng.uniform(0.5, 4.0)
    logits[np.arange(rows), y_true] += rng.uniform(0, 3)
    muted = rng.choice(n_classes, size=int(rng.integers(0, n_classes - 1)), replace=False)
    logits[:, muted] -= 50.0
    scores = np.exp(logits - logits.max(axis=1, keepdims=True))
    scores /= scores.sum(axis=1, keepdims=True)
    return y_true, scores, classes


def store_of(y_true: np.ndarray, scores: np.ndarray, classes: list[str], k: int = 5):
    con = duckdb.connect()
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]  # ties: first class, as torch
    rows_table(
        con, "rows",
        expected=[classes[i] for i in y_true],
        top_k_labels=[[classes[j] for j in row] for row in order],
        top_k_scores=[scores[i, row].tolist() for i, row in enumerate(order)],
    )
    return con


@pytest.mark.filterwarnings("ignore:'k' .* greater than or equal to 'n_classes'")
@pytest.mark.parametrize("seed", range(30))
def test_metrics_equal_scikit_learn_on_random_inputs(seed: int) -> None:
    y_true, scores, classes = random_classification(seed)
    summary = ClassificationReport().compute(store_of(y_true, scores, classes), "rows")
    truth = np.array(classes)[y_true]
    predicted = np.array(classes)[scores.argmax(axis=1)]
    labels = sorted(set(truth) | set(predicted))

    assert summary["top1"] == accuracy_score(truth, predicted)
    assert summary["top5"] == top_k_accuracy_score(truth, scores, k=5, labels=classes)
    p, r, f, s = precision_recall_fscore_support(truth, predicted, labels=labels,
                                                 zero_division=0)
    assert list(summary["per_class"]) == labels
    for i, label in enumerate(labels):
        got = summary["per_class"][label]
        assert (got["precision"], got["recall"], got["f1"], got["support"]) == (
            p[i], r[i], f[i], s[i])
    for mode in ("macro", "micro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(truth, predicted, labels=labels,
                                                     average=mode, zero_division=0)
        assert summary["averages"][mode] == {"precision": p, "recall": r, "f1": f}
    assert summary["macro_f1"] == summary["averages"]["macro"]["f1"]
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for cell in summary["confusion"]:
        matrix[labels.index(cell["expected"]), labels.index(cell["predicted"])] = cell["count"]
        assert cell["share"] == cell["count"] / (truth == cell["expected"]).sum()
    np.testing.assert_array_equal(matrix, confusion_matrix(truth, predicted, labels=labels))


@pytest.mark.parametrize("seed", range(30))
def test_ece_equals_torchmetrics_multiclass_calibration_error(seed: int) -> None:
    y_true, scores, classes = random_classification(seed)
    summary = ClassificationReport().compute(store_of(y_true, scores, classes), "rows")
    reference = MulticlassCalibrationError(num_classes=len(classes), n_bins=15, norm="l1")
    expected = reference(torch.tensor(scores, dtype=torch.float64), torch.tensor(y_true))
    assert summary["ece"] == pytest.approx(float(expected), abs=1e-6)
    worst = MulticlassCalibrationError(num_classes=len(classes), n_bins=15, norm="max")
    expected_mce = worst(torch.tensor(scores, dtype=torch.float64), torch.tensor(y_true))
    assert summary["mce"] == pytest.approx(float(expected_mce), abs=1e-6)


def edge_confidences(seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Scores whose top-1 sits where binning is delicate: exactly 0 (an all-zero row) and
    exactly 1, on the bin edges b/15 (as float64 and as torch's float32 edges), a hair
    either side of them, and just under 1 (rounds to 1.0 in float32)."""
    rng = np.random.default_rng(1000 + seed)
    n_classes, rows = int(rng.integers(2, 7)), int(rng.integers(1, 300))
    classes = [f"class{i}" for i in range(n_classes)]
    edges = np.array(bin_edges(15))
    special = np.concatenate([
        [0.0, 1.0, 1.0 - 1e-9, 1.0 - 1e-7, np.nextafter(1.0, 0.0)],
        np.arange(16) / 15, edges, np.nextafter(edges, 0.0), np.nextafter(edges, 2.0),
        edges + 3e-8, edges - 3e-8])
    special = special[(special >= 0) & (special <= 1)]
    top = np.where(rng.random(rows) < 0.7, rng.choice(special, size=rows),
                   rng.uniform(0, 1, size=rows))
    scores = rng.dirichlet(np.ones(n_classes - 1), size=rows) * (1.0 - top)[:, None]
    scores = np.concatenate([top[:, None], scores], axis=1)
    for i in range(rows):
        rng.shuffle(scores[i])
    y_true = rng.integers(0, n_classes, size=rows)
    return y_true, scores, classes


def test_bin_edges_are_torch_linspace_in_float32() -> None:
    for n_bins in range(1, 200):
        assert bin_edges(n_bins) == torch.linspace(0, 1, n_bins + 1).tolist()


@pytest.mark.parametrize("n_bins", [15, 10, 7])
@pytest.mark.parametrize("seed", range(40))
def test_ece_and_mce_equal_torchmetrics_on_confidences_of_0_1_and_bin_edges(
        seed: int, n_bins: int) -> None:
    y_true, scores, classes = edge_confidences(seed)
    summary = ClassificationReport(n_bins=n_bins).compute(store_of(y_true, scores, classes),
                                                          "rows")
    preds, target = torch.tensor(scores, dtype=torch.float64), torch.tensor(y_true)
    for norm, key in (("l1", "ece"), ("max", "mce")):
        reference = MulticlassCalibrationError(num_classes=len(classes), n_bins=n_bins,
                                               norm=norm)(preds, target)
        # torchmetrics sums in float32 (off by ~1e-7 per row); one row in another bin moves
        # the result by ~1e-3.
        assert summary[key] == pytest.approx(float(reference), abs=1e-6), norm


def test_a_confidence_of_exactly_1_is_not_averaged_with_the_last_bin() -> None:
    # Bins of 1/15: 0.95 (wrong) and 1.0 (right) in one bin would give |0.5 - 0.975|.
    scores = np.array([[0.95, 0.05], [1.0, 0.0]])
    summary = ClassificationReport().compute(store_of(np.array([1, 0]), scores,
                                                      ["a", "b"]), "rows")
    assert summary["ece"] == pytest.approx(0.5 * 0.95 + 0.5 * 0.0)
    assert summary["mce"] == pytest.approx(0.95)


def two_class_rows(con: duckdb.DuckDBPyConnection, counts: dict[tuple[str, str], int],
                   **extra: list) -> None:
    expected, top = [], []
    for (truth, guess), n in counts.items():
        expected += [truth] * n
        top += [[guess, "dog" if guess == "cat" else "cat"]] * n
    rows_table(con, "rows", expected=expected, top_k_labels=top,
               top_k_scores=[[0.8, 0.2]] * len(top), **extra)


def test_the_two_class_example_gives_the_textbook_precision_and_recall() -> None:
    con = duckdb.connect()
    two_class_rows(con, {("cat", "cat"): 45, ("cat", "dog"): 5, ("dog", "cat"): 3,
                         ("dog", "dog"): 47})
    per_class = ClassificationReport().compute(con, "rows")["per_class"]
    assert per_class["cat"]["precision"] == 0.9375
    assert per_class["cat"]["recall"] == 0.9
    assert round(per_class["dog"]["precision"], 3) == 0.904
    assert per_class["dog"]["recall"] == 0.94
    assert per_class["cat"]["support"] == 50 and per_class["dog"]["support"] == 50


def test_high_accuracy_with_a_weak_class_warns_of_the_accuracy_paradox() -> None:
    con = duckdb.connect()
    two_class_rows(con, {("dog", "dog"): 980, ("cat", "cat"): 2, ("cat", "dog"): 18})
    warnings = ClassificationReport().compute(con, "rows")["warnings"]
    assert any("accuracy paradox" in w and "'cat' has recall 0.100" in w for w in warnings)
    assert any(w.startswith("class imbalance: 'dog' has 980 rows and 'cat' 20") for w in warnings)


def test_a_class_never_predicted_is_named_in_a_warning() -> None:
    con = duckdb.connect()
    two_class_rows(con, {("dog", "dog"): 10, ("cat", "dog"): 10})
    warnings = ClassificationReport().compute(con, "rows")["warnings"]
    assert "1 class(es) never predicted: 'cat'" in warnings


def test_balanced_accurate_rows_raise_no_warning() -> None:
    con = duckdb.connect()
    two_class_rows(con, {("dog", "dog"): 10, ("cat", "cat"): 10})
    assert ClassificationReport(k=2).compute(con, "rows")["warnings"] == []


def test_rows_without_expected_label_or_top_k_are_skipped_and_counted() -> None:
    con = duckdb.connect()
    rows_table(con, "rows", expected=["cat", None, " ", "dog"],
               top_k_labels=[["cat"], ["cat"], ["dog"], None], top_k_scores=[[0.9]] * 4)
    summary = ClassificationReport().compute(con, "rows")
    assert summary["rows"] == 1
    assert summary["skipped"] == 3
    assert summary["skipped_reasons"] == {"no expected label": 2, "no encoder top-k": 1}


def test_the_report_slices_by_any_column() -> None:
    con = duckdb.connect()
    two_class_rows(con, {("cat", "cat"): 3, ("dog", "cat"): 1},
                   cohort=["a", "a", "b", "b"], checkpoint_sha256=["x", "y", "x", "y"])
    summary = ClassificationReport(slice_by=["cohort", "checkpoint_sha256"]).compute(con, "rows")
    assert summary["top1"] == 0.75
    slices = {(s["cohort"], s["checkpoint_sha256"]): s for s in summary["slices"]}
    assert set(slices) == {("a", "x"), ("a", "y"), ("b", "x"), ("b", "y")}
    assert slices[("b", "y")]["top1"] == 0.0 and slices[("a", "x")]["top1"] == 1.0


def test_a_slice_of_only_skipped_rows_is_reported_with_its_reasons() -> None:
    """Skipped rows are counted per slice, also where the slice value is NULL."""
    con = duckdb.connect()
    rows_table(con, "rows", expected=["cat", "dog", None, "cat"],
               top_k_labels=[["cat"], ["cat"], ["dog"], None], top_k_scores=[[0.9]] * 4,
               cohort=["a", "a", None, None])
    summary = ClassificationReport(slice_by=["cohort"]).compute(con, "rows")
    slices = {s["cohort"]: s for s in summary["slices"]}
    assert set(slices) == {"a", None}
    assert slices["a"]["rows"] == 2 and slices["a"]["skipped"] == 0
    assert slices[None]["rows"] == 0
    assert slices[None]["skipped_reasons"] == {"no expected label": 1, "no encoder top-k": 1}


def test_slicing_by_an_unknown_column_lists_the_valid_ones() -> None:
    con = duckdb.connect()
    two_class_rows(con, {("cat", "cat"): 1})
    with pytest.raises(ValueError, match="lacks.*pipeline_rows columns"):
        ClassificationReport(slice_by=["colour"]).compute(con, "rows")


MIXED = {"expected": ["cat", "dog", "yes", "2", "cat", "a picture of a dog"],
         "top_k_labels": [["cat", "dog"], ["cat", "dog"], ["dog", "cat"], ["cat", "dog"],
                          ["dog", "cat"], ["dog", "cat"]],
         "top_k_scores": [[0.9, 0.1]] * 6}


def test_with_classes_only_rows_asking_for_a_class_are_scored() -> None:
    """Mixed instructions: answers that are no class are skipped with that reason, and the
    metrics equal scikit-learn's on the rows that remain."""
    con = duckdb.connect()
    rows_table(con, "rows", **MIXED)
    everything = ClassificationReport().compute(con, "rows")
    assert "yes" in everything["per_class"] and everything["rows"] == 6
    for report in (ClassificationReport(classes=["cat", "dog"]),
                   ClassificationReport(classes_from_encoder=True)):
        summary = report.compute(con, "rows")
        assert summary["rows"] == 3 and summary["skipped"] == 3
        assert summary["skipped_reasons"] == {NOT_A_CLASS: 3}
        assert sorted(summary["per_class"]) == ["cat", "dog"]
        truth, predicted = ["cat", "dog", "cat"], ["cat", "cat", "dog"]
        assert summary["top1"] == accuracy_score(truth, predicted)
        p, r, f, s = precision_recall_fscore_support(truth, predicted, labels=["cat", "dog"],
                                                     zero_division=0)
        for i, label in enumerate(["cat", "dog"]):
            got = summary["per_class"][label]
            assert (got["precision"], got["recall"], got["f1"], got["support"]) == (
                p[i], r[i], f[i], s[i])
        assert not any("never predicted" in w for w in summary["warnings"])


def test_classes_keep_other_skip_reasons_first_and_slice() -> None:
    con = duckdb.connect()
    rows_table(con, "rows", expected=["cat", None, "yes", "cat"],
               top_k_labels=[["cat"], ["cat"], ["cat"], None], top_k_scores=[[0.9]] * 4,
               cohort=["a", "a", "b", "b"])
    summary = ClassificationReport(classes=["cat"], slice_by=["cohort"]).compute(con, "rows")
    assert summary["skipped_reasons"] == {"no expected label": 1, NOT_A_CLASS: 1,
                                          "no encoder top-k": 1}
    slices = {s["cohort"]: s for s in summary["slices"]}
    assert slices["b"]["skipped_reasons"] == {NOT_A_CLASS: 1, "no encoder top-k": 1}
    assert ClassificationReport(classes=["cat"]).config()["classes"] == ["cat"]


def test_bad_classes_settings_say_what_to_give() -> None:
    with pytest.raises(ValueError, match="not both"):
        ClassificationReport(classes=["cat"], classes_from_encoder=True)
    with pytest.raises(ValueError, match="list of class names"):
        ClassificationReport(classes="cat")
    with pytest.raises(ValueError, match="empty"):
        ClassificationReport(classes=[])
