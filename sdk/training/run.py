"""``TrainingRun``: what a plain PyTorch loop reports per step and per epoch, as spans.

One span per run, one child span per epoch (losses, accuracies, learning rate, per-stage
gradient norms, and the SHA-256 of the weights the epoch produced), and at the end one
EVALUATOR span per check. They land in the ``spans`` table of the configured store, next to
inference traces. An inference row leads back to the epoch that produced its encoder by a
join of ``encoder_records.checkpoint_sha256`` (or any encoder span's
:data:`~vlmscope.conventions.VISION_ENCODER_CHECKPOINT_SHA256`) on the epoch spans'
:data:`~vlmscope.conventions.VLMSCOPE_TRAINING_CHECKPOINT_SHA256`.

Nothing here raises into the training loop: a value that cannot be recorded is logged once
and marked on the span, and NaN losses are counted, flagged and left out of the means.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from vlmscope import conventions as cv
from vlmscope.rows import warn_once
from vlmscope.tracing import get_tracer
from vlmscope.training._checks import CheckReport, record_check
from vlmscope.training.curves import check_instability, check_overfitting
from vlmscope.training.gradients import (
    check_gradient_flow,
    stage_gradient_norms,
    stage_parameters,
)


@dataclass
class EpochRecord:
    """What one epoch recorded. Losses in the loss function's unit, accuracies in [0, 1],
    gradient norms as L2 norms averaged over the epoch's steps."""

    epoch: int
    steps: int
    train_loss: float
    train_accuracy: float | None
    val_loss: float | None
    val_accuracy: float | None
    learning_rate: float | None
    nonfinite_steps: int
    grad_norms: dict[str, float]
    checkpoint_sha256: str | None


@dataclass
class _EpochTally:
    """Running sums of the steps of the current epoch."""

    start_ns: int = field(default_factory=time.time_ns)
    steps: int = 0
    loss_sum: float = 0.0
    loss_weight: int = 0
    correct: int = 0
    seen: int = 0
    nonfinite_steps: int = 0
    grad_sums: dict[str, float] = field(default_factory=dict)
    grad_counts: dict[str, int] = field(default_factory=dict)


class TrainingRun:
    """Record a training loop: call :meth:`step` after each ``loss.backward()``,
    :meth:`end_epoch` after each validation, and :meth:`end` (or leave the ``with`` block)
    at the end, which runs the overfitting, instability and gradient-flow checks.

    ``model`` (a ``torch.nn.Module``) gives per-stage gradient norms and the checkpoint
    SHA-256 of each epoch; ``optimizer`` gives the learning rate; ``stages`` maps stage names
    to qualified submodule names (default: the model's top-level children with parameters);
    ``record_checkpoints=False`` skips hashing the weights at each epoch's end (one pass over
    them). Call :func:`vlmscope.configure` first so the spans land in the store.

    >>> with TrainingRun("digits-cnn", model, optimizer) as run:  # doctest: +SKIP
    ...     for epoch in range(10):
    ...         for x, y in loader:
    ...             optimizer.zero_grad(); out = model(x); loss = loss_fn(out, y)
    ...             loss.backward(); run.step(loss, outputs=out, targets=y); optimizer.step()
    ...         run.end_epoch(val_loss=val_loss, val_accuracy=val_accuracy)
    """

    def __init__(
        self,
        name: str = "training",
        model: Any = None,
        optimizer: Any = None,
        *,
        stages: Mapping[str, str] | None = None,
        record_checkpoints: bool = True,
    ) -> None:
        self.name = name
        self.model = model
        self.optimizer = optimizer
        self.record_checkpoints = record_checkpoints and model is not None
        self._parameters = stage_parameters(model, stages) if model is not None else {}
        self.history: list[EpochRecord] = []
        self.initial_grad_norms: dict[str, float] = {}
        self.reports: list[CheckReport] = []
        self._tally = _EpochTally()
        self._ended = False
        self._span = get_tracer().start_span(cv.TRAINING_RUN_SPAN_NAME, attributes={
            cv.VLMSCOPE_SPAN_ROLE: cv.ROLE_TRAINING_RUN,
            cv.OPENINFERENCE_SPAN_KIND: cv.SPAN_KIND_CHAIN,
            cv.VLMSCOPE_TRAINING_RUN_NAME: name,
        })

    def __enter__(self) -> TrainingRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is not None:
            self._span.record_exception(exc)
            self._span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        self.end()

    # -- steps and epochs ----------------------------------------------------------------

    def step(
        self,
        loss: Any,
        *,
        outputs: Any = None,
        targets: Any = None,
        batch_size: int | None = None,
    ) -> None:
        """Record one optimisation step: its ``loss`` (a float or a 0-d tensor), and, with
        ``outputs`` (logits, N x classes) and ``targets`` (N class indices), its accuracy.
        The epoch's loss is the mean over steps weighted by ``batch_size`` (default: the
        number of targets, else 1). Call it after ``loss.backward()`` so the gradients are
        there. Never raises."""
        tally = self._tally
        tally.steps += 1
        try:
            value = float(loss.detach() if hasattr(loss, "detach") else loss)
            n = batch_size or (len(targets) if targets is not None else 1)
            if math.isfinite(value):
                tally.loss_sum += value * n
                tally.loss_weight += n
            else:
                tally.nonfinite_steps += 1
            if outputs is not None and targets is not None:
                tally.correct += int((outputs.detach().argmax(dim=1) == targets).sum())
                tally.seen += len(targets)
            if self._parameters:
                norms = stage_gradient_norms(self.model, parameters=self._parameters)
                if not self.initial_grad_norms:
                    self.initial_grad_norms = norms
                for stage, norm in norms.items():
                    if math.isfinite(norm):
                        tally.grad_sums[stage] = tally.grad_sums.get(stage, 0.0) + norm
                        tally.grad_counts[stage] = tally.grad_counts.get(stage, 0) + 1
        except Exception as error:  # the user's loop must go on
            warn_once("training-step", "vlmscope could not record a training step: %s", error)
            self._span.set_attribute(cv.VLMSCOPE_INSTRUMENTATION_ERROR, f"step: {error}")

    def end_epoch(
        self,
        *,
        val_loss: float | None = None,
        val_accuracy: float | None = None,
        train_loss: float | None = None,
        train_accuracy: float | None = None,
        learning_rate: float | None = None,
    ) -> EpochRecord | None:
        """Close the current epoch and record its span; returns what it recorded (None if
        recording failed, which is logged). ``train_loss``/``train_accuracy`` override the
        means of the steps; ``learning_rate`` overrides the optimizer's. Never raises."""
        tally, self._tally = self._tally, _EpochTally()
        try:
            record = self._epoch_record(tally, val_loss, val_accuracy, train_loss,
                                        train_accuracy, learning_rate)
            self.history.append(record)
            self._record_epoch_span(record, tally.start_ns)
            return record
        except Exception as error:  # the user's loop must go on
            warn_once("training-epoch", "vlmscope could not record a training epoch: %s", error)
            self._span.set_attribute(cv.VLMSCOPE_INSTRUMENTATION_ERROR, f"epoch: {error}")
            return None

    def _epoch_record(
        self,
        tally: _EpochTally,
        val_loss: float | None,
        val_accuracy: float | None,
        train_loss: float | None,
        train_accuracy: float | None,
        learning_rate: float | None,
    ) -> EpochRecord:
        if train_loss is None:
            train_loss = tally.loss_sum / tally.loss_weight if tally.loss_weight else math.nan
        if train_accuracy is None and tally.seen:
            train_accuracy = tally.correct / tally.seen
        if learning_rate is None and self.optimizer is not None:
            learning_rate = float(self.optimizer.param_groups[0]["lr"])
        grad_norms = {stage: tally.grad_sums[stage] / tally.grad_counts[stage]
                      for stage in tally.grad_sums}
        checkpoint = None
        if self.record_checkpoints:
            from vlmscope.torch_encoder import checkpoint_sha256

            checkpoint = checkpoint_sha256(self.model)
        return EpochRecord(
            epoch=len(self.history), steps=tally.steps, train_loss=float(train_loss),
            train_accuracy=_optional_float(train_accuracy), val_loss=_optional_float(val_loss),
            val_accuracy=_optional_float(val_accuracy),
            learning_rate=_optional_float(learning_rate),
            nonfinite_steps=tally.nonfinite_steps, grad_norms=grad_norms,
            checkpoint_sha256=checkpoint)

    def _record_epoch_span(self, record: EpochRecord, start_ns: int) -> None:
        attrs: dict[str, Any] = {
            cv.VLMSCOPE_SPAN_ROLE: cv.ROLE_TRAINING_EPOCH,
            cv.OPENINFERENCE_SPAN_KIND: cv.SPAN_KIND_CHAIN,
            cv.VLMSCOPE_TRAINING_RUN_NAME: self.name,
            cv.VLMSCOPE_TRAINING_EPOCH: record.epoch,
            cv.VLMSCOPE_TRAINING_STEPS: record.steps,
            cv.VLMSCOPE_TRAINING_TRAIN_LOSS: record.train_loss,
            cv.VLMSCOPE_TRAINING_NONFINITE_STEPS: record.nonfinite_steps,
        }
        for key, value in ((cv.VLMSCOPE_TRAINING_TRAIN_ACCURACY, record.train_accuracy),
                           (cv.VLMSCOPE_TRAINING_VAL_LOSS, record.val_loss),
                           (cv.VLMSCOPE_TRAINING_VAL_ACCURACY, record.val_accuracy),
                           (cv.VLMSCOPE_TRAINING_LEARNING_RATE, record.learning_rate),
                           (cv.VLMSCOPE_TRAINING_CHECKPOINT_SHA256, record.checkpoint_sha256)):
            if value is not None:
                attrs[key] = value
        if record.grad_norms:
            attrs[cv.VLMSCOPE_TRAINING_GRAD_NORM_STAGES] = list(record.grad_norms)
            attrs[cv.VLMSCOPE_TRAINING_GRAD_NORM_VALUES] = list(record.grad_norms.values())
        get_tracer().start_span(
            cv.TRAINING_EPOCH_SPAN_NAME, context=trace.set_span_in_context(self._span),
            attributes=attrs, start_time=start_ns,
        ).end()

    # -- checks ---------------------------------------------------------------------------

    def check(self) -> list[CheckReport]:
        """Run the checks over the epochs so far (nothing is recorded): instability always,
        overfitting when every epoch has a validation loss, gradient flow at the first step
        and over the last epoch when gradient norms were recorded."""
        history = self.history
        train = [r.train_loss for r in history]
        val = [r.val_loss for r in history]
        reports: list[CheckReport] = [check_instability(
            train, val, nonfinite_steps=[r.nonfinite_steps for r in history])]
        measured = [v for v in val if v is not None]
        if history and len(measured) == len(history):
            reports.append(check_overfitting(train, measured))
        if self.initial_grad_norms:
            reports.append(check_gradient_flow(self.initial_grad_norms,
                                               name="gradient_flow_at_start"))
        if history and history[-1].grad_norms:
            reports.append(check_gradient_flow(history[-1].grad_norms,
                                               name="gradient_flow_at_end"))
        return reports

    def end(self) -> list[CheckReport]:
        """Run :meth:`check`, record each report as an EVALUATOR span and close the run's
        span; returns the reports. Safe to call twice; never raises."""
        if self._ended:
            return self.reports
        self._ended = True
        try:
            self.reports = self.check()
            last = self.history[-1].checkpoint_sha256 if self.history else None
            extra = {cv.VLMSCOPE_TRAINING_RUN_NAME: self.name}
            if last is not None:
                extra[cv.VLMSCOPE_TRAINING_CHECKPOINT_SHA256] = last
            for report in self.reports:
                record_check(report, parent=self._span, extra=extra)
        except Exception as error:  # the user's program must go on
            warn_once("training-end", "vlmscope could not check the training run: %s", error)
            self._span.set_attribute(cv.VLMSCOPE_INSTRUMENTATION_ERROR, f"checks: {error}")
        finally:
            self._span.end()
        return self.reports


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)
