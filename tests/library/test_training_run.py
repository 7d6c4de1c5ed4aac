"""TrainingRun inside real PyTorch loops on scikit-learn digits: epochs in the store, tied to
the checkpoints they produced; overfitting flagged; NaN losses recorded without a crash."""

from __future__ import annotations

import copy
import json
import math
import subprocess
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from torch import nn  # noqa: E402

import vlmscope  # noqa: E402
from tests.helpers import PYTHON, query  # noqa: E402
from vlmscope import conventions as cv  # noqa: E402
from vlmscope.training import TrainingRun  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images / 16.0, dtype=torch.float32).unsqueeze(1)
    return images, torch.tensor(digits.target)


def _small_cnn(dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(dropout), nn.Linear(512, 10))


def _train(
    *,
    train_size: int,
    epochs: int,
    weight_decay: float,
    dropout: float,
    nan_at_step: int | None = None,
    snapshots: list[dict[str, torch.Tensor]] | None = None,
) -> tuple[TrainingRun, nn.Module]:
    """A real training run on digits: the first ``train_size`` of 1,200 shuffled training
    images, validated on 300 others. ``nan_at_step`` replaces that step's loss by NaN."""
    torch.manual_seed(0)
    images, labels = _digits()
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    train_rows, val_rows = order[:train_size], order[1200:1500]
    model = _small_cnn(dropout)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=weight_decay)
    step = 0
    with TrainingRun("digits", model, optimizer) as run:
        for _ in range(epochs):
            model.train()
            for batch in train_rows[torch.randperm(len(train_rows))].split(32):
                optimizer.zero_grad()
                outputs = model(images[batch])
                loss = nn.functional.cross_entropy(outputs, labels[batch])
                if step == nan_at_step:
                    loss = loss * float("nan")
                loss.backward()
                run.step(loss, outputs=outputs, targets=labels[batch])
                if math.isfinite(loss.item()):
                    optimizer.step()
                step += 1
            model.eval()
            with torch.no_grad():
                val_outputs = model(images[val_rows])
            run.end_epoch(
                val_loss=float(nn.functional.cross_entropy(val_outputs, labels[val_rows])),
                val_accuracy=float((val_outputs.argmax(1) == labels[val_rows]).float().mean()))
            if snapshots is not None:
                snapshots.append(copy.deepcopy(model.state_dict()))
    return run, model


def _report(run: TrainingRun, name: str):
    return next(report for report in run.reports if report.name == name)


def test_a_run_on_a_tiny_training_subset_for_many_epochs_is_flagged_as_overfitting() -> None:
    run, _ = _train(train_size=30, epochs=40, weight_decay=0.0, dropout=0.0)
    report = _report(run, "overfitting")
    assert not report.passed and report.label == "overfitting"
    assert report.final_gap > report.thresholds["gap_threshold"]
    assert report.best_epoch is not None and report.best_epoch < 39
    assert run.history[report.best_epoch].val_loss == min(r.val_loss for r in run.history)
    assert any("stopped improving at epoch" in reason for reason in report.reasons)
    assert _report(run, "instability").passed


def test_a_well_regularised_run_on_the_full_training_set_is_not_flagged() -> None:
    run, _ = _train(train_size=1200, epochs=6, weight_decay=0.05, dropout=0.3)
    assert run.history[-1].val_accuracy > 0.9
    for report in run.reports:
        assert report.passed, (report.name, report.reasons)
    assert abs(_report(run, "overfitting").final_gap) < 0.3


def test_epochs_land_in_the_store_and_join_inference_rows_to_the_epoch_of_their_checkpoint(
    traced: Path,
) -> None:
    snapshots: list[dict[str, torch.Tensor]] = []
    run, model = _train(train_size=300, epochs=2, weight_decay=0.01, dropout=0.1,
                        snapshots=snapshots)
    images, _ = _digits()
    model.eval()
    encoder = vlmscope.instrument_encoder(model, layer="6", classifier="8", name="digits-cnn")
    with vlmscope.trace_row("after-epoch-1"):
        model(images[:1])
    model.load_state_dict(snapshots[0])
    with vlmscope.trace_row("after-epoch-0"):
        model(images[1:2])
    encoder.uninstrument()
    vlmscope.shutdown()

    epochs = query(traced, f"""
        SELECT (attributes->>'$."{cv.VLMSCOPE_TRAINING_EPOCH}"')::INT,
               (attributes->>'$."{cv.VLMSCOPE_TRAINING_TRAIN_LOSS}"')::DOUBLE,
               (attributes->>'$."{cv.VLMSCOPE_TRAINING_VAL_ACCURACY}"')::DOUBLE,
               (attributes->>'$."{cv.VLMSCOPE_TRAINING_LEARNING_RATE}"')::DOUBLE,
               attributes->'$."{cv.VLMSCOPE_TRAINING_GRAD_NORM_STAGES}"',
               parent_span_id
        FROM spans WHERE name = '{cv.TRAINING_EPOCH_SPAN_NAME}' ORDER BY 1""")
    assert [row[0] for row in epochs] == [0, 1]
    assert [row[1] for row in epochs] == pytest.approx([r.train_loss for r in run.history])
    assert [row[2] for row in epochs] == pytest.approx([r.val_accuracy for r in run.history])
    assert {row[3] for row in epochs} == {0.01}
    assert json.loads(epochs[0][4]) == ["0", "1", "3", "8"]
    run_span = query(traced, f"SELECT span_id FROM spans WHERE name = "
                             f"'{cv.TRAINING_RUN_SPAN_NAME}'")
    assert {row[5] for row in epochs} == {run_span[0][0]}

    joined = query(traced, f"""
        SELECT e.row_id, (t.attributes->>'$."{cv.VLMSCOPE_TRAINING_EPOCH}"')::INT
        FROM encoder_records e JOIN spans t
          ON t.attributes->>'$."{cv.VLMSCOPE_TRAINING_CHECKPOINT_SHA256}"' = e.checkpoint_sha256
        WHERE t.name = '{cv.TRAINING_EPOCH_SPAN_NAME}' ORDER BY 1""")
    assert joined == [("after-epoch-0", 0), ("after-epoch-1", 1)]


def test_the_checks_of_a_run_are_recorded_as_evaluator_spans_under_the_run(
    traced: Path,
) -> None:
    run, _ = _train(train_size=300, epochs=2, weight_decay=0.01, dropout=0.1)
    vlmscope.shutdown()
    rows = query(traced, f"""
        SELECT c.attributes->>'$."{cv.VLMSCOPE_TRAINING_CHECK_NAME}"',
               c.attributes->>'$."{cv.OPENINFERENCE_SPAN_KIND}"',
               (c.attributes->>'$."{cv.VLMSCOPE_TRAINING_CHECK_PASSED}"')::BOOLEAN,
               c.attributes->>'$."{cv.METADATA}"',
               c.attributes->>'$."{cv.VLMSCOPE_TRAINING_CHECKPOINT_SHA256}"'
        FROM spans c JOIN spans r ON c.parent_span_id = r.span_id
        WHERE c.name = '{cv.TRAINING_CHECK_SPAN_NAME}' AND r.name = '{cv.TRAINING_RUN_SPAN_NAME}'
        ORDER BY 1""")
    assert [row[0] for row in rows] == sorted(report.name for report in run.reports)
    assert {row[1] for row in rows} == {cv.SPAN_KIND_EVALUATOR}
    overfitting = next(row for row in rows if row[0] == "overfitting")
    metadata = json.loads(overfitting[3])
    assert metadata["thresholds"]["gap_threshold"] == 0.3
    assert metadata["final_gap"] == pytest.approx(_report(run, "overfitting").final_gap)
    assert {row[4] for row in rows} == {run.history[-1].checkpoint_sha256}
    at_start = json.loads(next(row[3] for row in rows if row[0] == "gradient_flow_at_start"))
    assert list(at_start["norms"]) == ["0", "1", "3", "8"]
    assert at_start["norms"] == pytest.approx(run.initial_grad_norms)
    assert all(value > 0 for value in run.initial_grad_norms.values())
    # the same verdicts are evaluation rows, judging the run span, next to vlmscope eval's
    evaluations = query(traced, f"""
        SELECT e.evaluator, e.passed, e.annotator_kind, e.explanation IS NOT NULL
        FROM evaluations e JOIN spans r ON e.span_id = r.span_id
        WHERE r.name = '{cv.TRAINING_RUN_SPAN_NAME}' ORDER BY 1""")
    assert [(e[0], e[1]) for e in evaluations] == [(row[0], row[2]) for row in rows]
    assert {(e[2], e[3]) for e in evaluations} == {("CODE", True)}


def test_a_nan_loss_is_recorded_and_flagged_and_the_training_loop_goes_on(traced: Path) -> None:
    run, _ = _train(train_size=300, epochs=3, weight_decay=0.01, dropout=0.1, nan_at_step=5)
    assert len(run.history) == 3
    assert [r.nonfinite_steps for r in run.history] == [1, 0, 0]
    assert math.isfinite(run.history[0].train_loss)
    instability = _report(run, "instability")
    assert not instability.passed and instability.nonfinite_epochs == [0]
    assert "epoch 0: 1 steps with a NaN or infinite loss" in instability.reasons
    vlmscope.shutdown()
    counts = query(traced, f"""
        SELECT (attributes->>'$."{cv.VLMSCOPE_TRAINING_NONFINITE_STEPS}"')::INT FROM spans
        WHERE name = '{cv.TRAINING_EPOCH_SPAN_NAME}'
        ORDER BY (attributes->>'$."{cv.VLMSCOPE_TRAINING_EPOCH}"')::INT""")
    assert [row[0] for row in counts] == [1, 0, 0]


def test_values_that_cannot_be_recorded_never_raise_into_the_loop(traced: Path) -> None:
    with TrainingRun("bad-values") as run:
        run.step("not a loss")
        run.step(0.5, outputs="not logits", targets=[1, 2])
        record = run.end_epoch(val_loss="not a number")
    assert record is None and run.history == []
    vlmscope.shutdown()
    errors = query(traced, f"""
        SELECT attributes->>'$."{cv.VLMSCOPE_INSTRUMENTATION_ERROR}"' FROM spans
        WHERE name = '{cv.TRAINING_RUN_SPAN_NAME}'""")
    assert errors[0][0].startswith("epoch:")


def test_a_loop_that_raises_inside_the_run_ends_its_span_with_the_error(traced: Path) -> None:
    with pytest.raises(RuntimeError, match="out of memory"), TrainingRun("crashing") as run:
        run.step(1.0)
        run.end_epoch()
        raise RuntimeError("out of memory")
    assert [report.name for report in run.reports] == ["instability"]
    vlmscope.shutdown()
    status = query(traced, f"SELECT status_code, status_message FROM spans "
                           f"WHERE name = '{cv.TRAINING_RUN_SPAN_NAME}'")
    assert status == [("ERROR", "RuntimeError: out of memory")]


def test_the_training_loop_example_runs_offline_and_records_its_epochs(tmp_path: Path) -> None:
    db = tmp_path / "example.duckdb"
    result = subprocess.run(
        [PYTHON, str(REPO / "examples" / "training_loop.py"), "--db", str(db), "--epochs", "2"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "epoch 1: train loss" in result.stdout
    assert "overfitting: ok" in result.stdout
    epochs = query(db, f"SELECT count(*) FROM spans WHERE name = '{cv.TRAINING_EPOCH_SPAN_NAME}'")
    assert epochs == [(2,)]
