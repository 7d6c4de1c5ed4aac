"""The overfitting and instability rules on loss curves with known answers."""

from __future__ import annotations

import math
import subprocess

import pytest

from tests.helpers import PYTHON
from vlmscope.training import check_instability, check_overfitting


def test_a_growing_gap_after_validation_loss_bottoms_out_is_overfitting() -> None:
    report = check_overfitting([1.0, 0.6, 0.3, 0.1, 0.05, 0.02], [1.0, 0.7, 0.6, 0.7, 0.9, 1.2])
    assert report.label == "overfitting" and not report.passed
    assert report.best_epoch == 2 and report.epochs_since_best == 3
    assert report.final_gap == pytest.approx(1.18)
    assert report.val_loss_rise == pytest.approx(1.0)
    assert report.gap_trend > 0
    assert report.thresholds == {"gap_threshold": 0.3, "rise_threshold": 0.1, "rise_min": 0.05,
                                 "patience": 3.0}


def test_curves_that_fall_together_are_not_overfitting() -> None:
    report = check_overfitting([1.0, 0.6, 0.4, 0.3, 0.25], [1.1, 0.7, 0.5, 0.4, 0.33])
    assert report.passed and report.label == "ok"
    assert "final gap 0.080" in report.explanation


def test_jitter_of_a_validation_loss_near_zero_is_not_a_rise() -> None:
    # +40 % relative, but only 0.02 nats: below rise_min
    report = check_overfitting([0.5, 0.1, 0.05, 0.04, 0.04, 0.03],
                               [0.4, 0.08, 0.05, 0.06, 0.07, 0.07])
    assert report.passed
    assert not check_overfitting([0.5, 0.1, 0.05, 0.04, 0.04, 0.03],
                                 [0.4, 0.08, 0.05, 0.06, 0.07, 0.07], rise_min=0.01).passed


def test_a_gap_that_is_large_but_closing_is_not_overfitting_by_the_gap_rule() -> None:
    report = check_overfitting([2.0, 1.5, 1.2, 1.0], [3.0, 2.3, 1.8, 1.5])
    assert report.passed and report.gap_trend < 0 and report.final_gap > 0.3


def test_epochs_with_nan_losses_are_left_out_of_the_overfitting_rules() -> None:
    report = check_overfitting([1.0, math.nan, 0.5], [1.0, 0.9, math.nan])
    assert report.label == "undetermined" and math.isnan(report.score)
    with pytest.raises(ValueError, match="one of each per epoch"):
        check_overfitting([1.0, 0.5], [1.0])


def test_nan_losses_and_nonfinite_steps_are_flagged_as_instability() -> None:
    report = check_instability([2.0, math.nan, 1.0, 0.8], [2.1, 1.5, math.inf, 0.9],
                               nonfinite_steps=[0, 3, 0, 2])
    assert not report.passed and report.label == "unstable"
    assert report.nonfinite_epochs == [1, 2, 3]
    assert report.reasons[0] == "epoch 1: 3 steps with a NaN or infinite loss, training loss nan"
    assert report.reasons[1] == "epoch 2: validation loss inf"


def test_a_training_loss_that_jumps_above_its_best_is_a_spike() -> None:
    report = check_instability([2.0, 1.0, 0.5, 1.6, 0.6, 0.55])
    assert report.spike_epochs == [3] and report.score == 1.0
    assert "spiked to 1.600" in report.explanation


def test_small_rises_of_a_tiny_training_loss_are_not_spikes() -> None:
    assert check_instability([1.0, 0.01, 0.001, 0.004, 0.002]).passed
    assert check_instability([1.0, 0.5, 0.45, 0.6, 0.4], [None] * 5).passed


def test_importing_the_training_checks_does_not_import_torch() -> None:
    code = "import sys, vlmscope.training; print('torch' in sys.modules)"
    result = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False", result.stderr
