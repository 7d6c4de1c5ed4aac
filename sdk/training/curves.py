"""Overfitting and instability checks over a training run's loss curves (one value per epoch).

Losses are in the unit the user's loss function returns (nats for cross-entropy); the
thresholds below are in that unit too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from vlmscope.training._checks import CheckReport

DEFAULT_GAP_THRESHOLD = 0.3
"""Generalisation gap (validation minus training loss, loss units) above which a growing gap
means overfitting."""

DEFAULT_RISE_THRESHOLD = 0.1
"""Relative rise of the last validation loss above its best (0.1 = 10 %) that, held for
:data:`DEFAULT_PATIENCE` epochs, means overfitting."""

DEFAULT_RISE_MIN = 0.05
"""Smallest rise of the validation loss above its best, in loss units, that counts (a loss
near zero jitters by more than 10 %)."""

DEFAULT_PATIENCE = 3
"""Epochs without a new best validation loss before its rise counts."""

DEFAULT_SPIKE_FACTOR = 1.0
"""A training loss that rises above its best so far by more than this fraction of it (1.0:
it doubled) is a spike ..."""

DEFAULT_SPIKE_MIN_RISE = 0.1
"""... provided the rise is also larger than this, in loss units (tiny losses jitter)."""


@dataclass(kw_only=True)
class OverfittingReport(CheckReport):
    """Verdict of :func:`check_overfitting`; ``score`` is the final generalisation gap.

    ``gaps`` holds validation minus training loss per usable epoch, ``gap_trend`` its
    least-squares slope over the second half of the run (the whole run when it has fewer
    than 4 usable epochs; loss units per epoch),
    ``best_epoch`` the epoch whose validation loss was lowest (where it stopped improving),
    ``val_loss_rise`` the last validation loss's rise above that best, relative to it.
    """

    final_gap: float
    gap_trend: float
    best_epoch: int | None
    epochs_since_best: int
    val_loss_rise: float
    gaps: list[float]


@dataclass(kw_only=True)
class InstabilityReport(CheckReport):
    """Verdict of :func:`check_instability`; ``score`` counts the unstable epochs.

    ``nonfinite_epochs`` had a NaN or infinite loss (in a step, the training mean or the
    validation loss), ``spike_epochs`` a training loss that jumped above its best so far.
    """

    nonfinite_epochs: list[int]
    spike_epochs: list[int]


def _slope(values: Sequence[float]) -> float:
    n = len(values)
    if n < 2:
        return 0.0
    mean_x = (n - 1) / 2
    mean_y = sum(values) / n
    covariance = sum((i - mean_x) * (v - mean_y) for i, v in enumerate(values))
    variance = sum((i - mean_x) ** 2 for i in range(n))
    return covariance / variance


def check_overfitting(
    train_losses: Sequence[float],
    val_losses: Sequence[float],
    *,
    gap_threshold: float = DEFAULT_GAP_THRESHOLD,
    rise_threshold: float = DEFAULT_RISE_THRESHOLD,
    rise_min: float = DEFAULT_RISE_MIN,
    patience: int = DEFAULT_PATIENCE,
) -> OverfittingReport:
    """Say whether a run overfits, from its per-epoch training and validation losses.

    A run overfits when its final gap (validation minus training loss) exceeds
    ``gap_threshold`` while the gap still grows, or when the validation loss has not improved
    for ``patience`` epochs and ended more than ``rise_threshold`` (relative) and more than
    ``rise_min`` (loss units) above its best.
    Epochs where either loss is not finite are left out (:func:`check_instability` flags them).

    >>> check_overfitting([1.0, 0.5, 0.2, 0.05, 0.01], [1.0, 0.8, 0.9, 1.1, 1.3]).label
    'overfitting'
    """
    if len(train_losses) != len(val_losses):
        raise ValueError(f"got {len(train_losses)} training losses for {len(val_losses)} "
                         "validation losses; pass one of each per epoch")
    thresholds = {"gap_threshold": gap_threshold, "rise_threshold": rise_threshold,
                  "rise_min": rise_min, "patience": float(patience)}
    epochs = [(i, float(t), float(v)) for i, (t, v) in enumerate(zip(train_losses, val_losses,
                                                                      strict=True))
              if math.isfinite(t) and math.isfinite(v)]
    if len(epochs) < 2:
        return OverfittingReport(
            name="overfitting", passed=True, score=math.nan, label="undetermined",
            reasons=[f"only {len(epochs)} epochs with finite training and validation losses; "
                     "at least 2 are needed"],
            thresholds=thresholds, final_gap=math.nan, gap_trend=math.nan, best_epoch=None,
            epochs_since_best=0, val_loss_rise=math.nan, gaps=[])
    gaps = [v - t for _, t, v in epochs]
    gap_trend = _slope(gaps[len(gaps) // 2:]) if len(gaps) >= 4 else _slope(gaps)
    best_index = min(range(len(epochs)), key=lambda i: epochs[i][2])
    best_epoch, _, best_val = epochs[best_index]
    epochs_since_best = epochs[-1][0] - best_epoch
    last_val = epochs[-1][2]
    if best_val > 0:
        rise = (last_val - best_val) / best_val
    else:  # a loss that reached zero: any later rise is infinitely large relative to it
        rise = math.inf if last_val > best_val else 0.0
    final_gap = gaps[-1]

    reasons = []
    gap_rule = final_gap > gap_threshold and gap_trend > 0
    rise_rule = (epochs_since_best >= patience and rise > rise_threshold
                 and last_val - best_val > rise_min)
    if gap_rule:
        reasons.append(f"the generalisation gap reached {final_gap:.3f} (> {gap_threshold}) "
                       f"and still grows by {gap_trend:.3f} per epoch")
    if rise_rule:
        reasons.append(f"validation loss stopped improving at epoch {best_epoch} "
                       f"({best_val:.3f}) and ended {rise:.0%} higher ({last_val:.3f}) after "
                       f"{epochs_since_best} epochs (> {rise_threshold:.0%} and > {rise_min} "
                       f"after {patience})")
    if not reasons:
        reasons.append(f"final gap {final_gap:.3f} (threshold {gap_threshold}, trend "
                       f"{gap_trend:+.3f} per epoch); best validation loss at epoch "
                       f"{best_epoch}, last one {rise:+.0%} from it (thresholds "
                       f"{rise_threshold:.0%} and {rise_min} after {patience} epochs)")
    overfitting = gap_rule or rise_rule
    return OverfittingReport(
        name="overfitting", passed=not overfitting, score=final_gap,
        label="overfitting" if overfitting else "ok", reasons=reasons, thresholds=thresholds,
        final_gap=final_gap, gap_trend=gap_trend, best_epoch=best_epoch,
        epochs_since_best=epochs_since_best, val_loss_rise=rise, gaps=gaps)


def check_instability(
    train_losses: Sequence[float],
    val_losses: Sequence[float | None] | None = None,
    *,
    nonfinite_steps: Sequence[int] | None = None,
    spike_factor: float = DEFAULT_SPIKE_FACTOR,
    spike_min_rise: float = DEFAULT_SPIKE_MIN_RISE,
) -> InstabilityReport:
    """Find NaN or infinite losses and loss spikes in a run's per-epoch losses.

    ``val_losses`` may hold None for epochs without validation. ``nonfinite_steps`` counts,
    per epoch, the steps whose loss was not finite (a mean over
    finite steps can hide them). A training loss spikes when it rises above its best so far
    by more than ``spike_factor`` times that best and by more than ``spike_min_rise``.

    >>> check_instability([2.0, 1.0, float("nan"), 0.5]).nonfinite_epochs
    [2]
    """
    n = len(train_losses)
    vals = list(val_losses) if val_losses is not None else [None] * n
    steps = list(nonfinite_steps) if nonfinite_steps is not None else [0] * n
    if len(vals) != n or len(steps) != n:
        raise ValueError("train_losses, val_losses and nonfinite_steps need one value per "
                         f"epoch; got {n}, {len(vals)} and {len(steps)}")
    thresholds = {"spike_factor": spike_factor, "spike_min_rise": spike_min_rise}
    reasons = []
    nonfinite = []
    for epoch, (train, val, bad_steps) in enumerate(zip(train_losses, vals, steps,
                                                        strict=True)):
        problems = []
        if bad_steps:
            problems.append(f"{bad_steps} steps with a NaN or infinite loss")
        if not math.isfinite(train):
            problems.append(f"training loss {train}")
        if val is not None and not math.isfinite(val):
            problems.append(f"validation loss {val}")
        if problems:
            nonfinite.append(epoch)
            reasons.append(f"epoch {epoch}: " + ", ".join(problems))
    spikes = []
    best = math.inf
    for epoch, loss in enumerate(train_losses):
        if not math.isfinite(loss):
            continue
        rise = loss - best
        if math.isfinite(best) and rise > spike_factor * best and rise > spike_min_rise:
            spikes.append(epoch)
            reasons.append(f"epoch {epoch}: training loss spiked to {loss:.3f}, {rise:.3f} "
                           f"above its best so far {best:.3f} (more than {spike_factor:g}x "
                           f"the best and more than {spike_min_rise})")
        best = min(best, loss)
    unstable = bool(nonfinite or spikes)
    if not unstable:
        reasons.append(f"all {n} epochs had finite losses and no training-loss spike "
                       f"(rise > {spike_factor:g}x the best so far and > {spike_min_rise})")
    return InstabilityReport(
        name="instability", passed=not unstable, score=float(len(set(nonfinite + spikes))),
        label="unstable" if unstable else "ok", reasons=reasons, thresholds=thresholds,
        nonfinite_epochs=nonfinite, spike_epochs=spikes)
