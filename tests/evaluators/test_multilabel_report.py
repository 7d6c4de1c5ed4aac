"""MultiLabelReport against scikit-learn's multilabel metrics on indicator matrices, over many
random stores, thresholds and encoders."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from vlmscope.collectors.schema import migrate
from vlmscope.evaluators import MultiLabelReport, run_evaluations
from vlmscope.evaluators.attribution import _ROW_SCHEMA

metrics = pytest.importorskip("sklearn.metrics")

LABELS = [f"label{i}" for i in range(7)]


def random_rows(seed: int, n: int, multi_label: bool, ranked: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        # label6 is never an object: a label without positives
        objects = sorted({LABELS[j] for j in range(6) if rng.random() < 0.3})
        scores = rng.random(len(LABELS)).round(2)  # rounding makes ties, as real scores have
        for label in objects:
            scores[LABELS.index(label)] = min(1.0, scores[LABELS.index(label)] + 0.4)
        order = np.argsort(-scores, kind="stable")[:ranked]
        rows.append({"row_id": f"r{i}", "trace_id": "t", "objects": objects,
                     "top_k_labels": [LABELS[j] for j in order],
                     "top_k_scores": [float(scores[j]) for j in order],
                     "encoder_multi_label": multi_label})
    return rows


def reference(rows: list[dict], threshold: float, multi_label: bool) -> dict:
    truth = np.array([[label in r["objects"] for label in LABELS] for r in rows])
    if multi_label:
        read = [{name for name, s in zip(r["top_k_labels"], r["top_k_scores"], strict=True)
                 if s >= threshold} for r in rows]
    else:
        read = [{r["top_k_labels"][0]} for r in rows]
    predicted = np.array([[label in chosen for label in LABELS] for chosen in read])
    scores = np.array([[dict(zip(r["top_k_labels"], r["top_k_scores"], strict=True)).get(
        label, 0.0) for label in LABELS] for r in rows])
    return {"truth": truth, "predicted": predicted, "scores": scores}


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize(("threshold", "multi_label", "ranked"), [
    (0.5, True, 7), (0.3, True, 7), (0.8, True, 4), (0.5, False, 3)])
def test_every_metric_equals_scikit_learns(seed: int, threshold: float, multi_label: bool,
                                           ranked: int) -> None:
    rows = random_rows(seed, 40 + 13 * seed, multi_label, ranked)
    con = duckdb.connect()
    migrate(con)
    con.register("arrow_rows", pa.Table.from_pylist(rows, schema=_ROW_SCHEMA))
    con.execute("CREATE TABLE rows AS SELECT * FROM arrow_rows")
    summary = MultiLabelReport(encoder_threshold=threshold).compute(con, "rows")
    ref = reference(rows, threshold, multi_label)
    y, p, s = ref["truth"], ref["predicted"], ref["scores"]
    assert summary["labels"] == LABELS and summary["rows"] == len(rows)
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        y, p, average=None, zero_division=0)
    with pytest.warns(UserWarning, match="No positive class"):
        ap = metrics.average_precision_score(y, s, average=None)
    for i, label in enumerate(LABELS):
        got = summary["per_label"][label]
        assert got["precision"] == pytest.approx(precision[i])
        assert got["recall"] == pytest.approx(recall[i])
        assert got["f1"] == pytest.approx(f1[i])
        assert got["support"] == support[i]
        assert got["average_precision"] == pytest.approx(np.nan_to_num(ap[i]))
    for mode in ("micro", "macro", "weighted"):
        expected = metrics.precision_recall_fscore_support(y, p, average=mode,
                                                           zero_division=0)
        assert [summary["averages"][mode][k] for k in ("precision", "recall", "f1")] == (
            pytest.approx(list(expected[:3])))
    assert summary["subset_accuracy"] == pytest.approx(metrics.accuracy_score(y, p))
    assert summary["hamming_loss"] == pytest.approx(metrics.hamming_loss(y, p))
    with pytest.warns(UserWarning, match="No positive class"):
        mean_ap = metrics.average_precision_score(y, s)
    assert summary["mean_average_precision"] == pytest.approx(np.nan_to_num(mean_ap))


def test_rows_without_objects_or_encoder_are_skipped_and_the_run_is_stored() -> None:
    rows = random_rows(0, 20, True, 7)
    rows += [{"row_id": "none", "trace_id": "t", "objects": None,
              "top_k_labels": ["label0"], "top_k_scores": [0.9]},
             {"row_id": "blind", "trace_id": "t", "objects": ["label1"]}]
    con = duckdb.connect()
    migrate(con)
    con.register("arrow_rows", pa.Table.from_pylist(rows, schema=_ROW_SCHEMA))
    con.execute("CREATE TABLE rows AS SELECT * FROM arrow_rows")
    run = run_evaluations(con, [MultiLabelReport(classes=LABELS[:3])], source="rows")
    summary = run.summaries["multilabel_report"]
    assert summary["rows"] == 20
    assert summary["skipped_reasons"] == {"no encoder top-k": 1,
                                          "no ground-truth objects": 1}
    assert summary["labels"] == LABELS[:3]
    with pytest.raises(ValueError, match="encoder_threshold"):
        MultiLabelReport(encoder_threshold=-0.1)
    # With every row skipped nothing is measured: no 0 stands for a metric never taken.
    con.execute("DELETE FROM rows WHERE row_id NOT IN ('none', 'blind')")
    empty = MultiLabelReport(classes=LABELS[:3]).compute(con, "rows")
    assert empty["rows"] == 0 and empty["skipped"] == 2
    assert [empty[k] for k in ("subset_accuracy", "hamming_loss", "mean_average_precision")
            ] == [None, None, None]
    assert all(v is None for mode in empty["averages"].values() for v in mode.values())


def test_vlmscope_eval_reports_the_multi_label_metrics_in_its_json_and_table(
        traced, capsys) -> None:
    import json

    import vlmscope
    from vlmscope.cli import main

    for row_id, objects, labels, scores in (
            ("a", ["cat", "dog"], ["cat", "dog", "bird"], [0.9, 0.7, 0.2]),
            ("b", ["bird"], ["cat", "bird", "dog"], [0.8, 0.6, 0.1])):
        with vlmscope.trace_row(row_id, expected="x", objects=objects):
            with vlmscope.encoder_span("enc") as enc:
                enc.record(top_k_labels=[labels], top_k_scores=[scores])
    vlmscope.shutdown()
    capsys.readouterr()
    assert main(["eval", "--db", str(traced), "--evaluators", "multilabel_report",
                 "--format", "json", "--encoder-threshold", "0.5"]) == 0
    summary = json.loads(capsys.readouterr().out)
    report = summary["multilabel_report"]
    # without the multi-label flag on the spans the reading is each row's top-1
    assert report["per_label"]["cat"] == {"precision": 0.5, "recall": 1.0,
                                          "f1": pytest.approx(2 / 3), "support": 1,
                                          "predicted": 2, "average_precision": 1.0}
    assert summary["subset_accuracy"] == 0.0
    assert summary["hamming_loss"] == pytest.approx(3 / 6)
    assert summary["mean_average_precision"] == pytest.approx(1.0)
    assert main(["eval", "--db", str(traced), "--evaluators", "multilabel_report"]) == 0
    assert "Multi-label reading, labels worst first (all 3)" in capsys.readouterr().out
