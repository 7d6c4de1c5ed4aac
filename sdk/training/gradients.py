"""Per-stage gradient norms, and the check that says whether early stages' gradients vanish."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vlmscope._optional import require
from vlmscope.training._checks import CheckReport

DEFAULT_VANISHING_RATIO = 1e-3
"""A stage whose gradient norm is below this fraction of the largest stage's has vanishing
gradients."""


def default_stages(model: Any) -> dict[str, str]:
    """The stages of ``model``: its top-level children that hold parameters, in order, each
    named after itself (``conv1``, ``bn1``, ``layer1`` ... ``layer4``, ``fc`` for a torchvision
    ResNet)."""
    return {name: name for name, child in model.named_children()
            if any(True for _ in child.parameters())}


def stage_parameters(model: Any, stages: Mapping[str, str] | None = None) -> dict[str, list[Any]]:
    """Parameters of each stage; ``stages`` maps a stage name to a qualified submodule name
    (default :func:`default_stages`)."""
    stages = default_stages(model) if stages is None else stages
    found = {}
    for stage, qualified in stages.items():
        try:
            module = model.get_submodule(qualified)
        except AttributeError as error:
            raise ValueError(f"stage {stage!r}: {type(model).__name__} has no submodule "
                             f"{qualified!r}") from error
        found[stage] = list(module.parameters())
    return found


def stage_gradient_norms(
    model: Any,
    stages: Mapping[str, str] | None = None,
    *,
    parameters: Mapping[str, list[Any]] | None = None,
) -> dict[str, float]:
    """L2 norm of each stage's gradient as it is now (call after ``loss.backward()``).

    ``stages`` maps stage names to qualified submodule names (default: the top-level children
    with parameters); ``parameters`` (from :func:`stage_parameters`) skips that lookup. A stage
    none of whose parameters has a gradient gets NaN.
    """
    torch = require("torch", "gradient norms")
    groups = parameters if parameters is not None else stage_parameters(model, stages)
    with torch.no_grad():
        stage_norms = {}
        for stage, params in groups.items():
            grads = [p.grad.detach().float().norm() for p in params if p.grad is not None]
            if grads:
                stage_norms[stage] = torch.stack(grads).norm()
        values: dict[str, float] = {}
        if stage_norms:
            # one transfer for all stages: a GPU loop synchronises once per call, not per stage
            device = next(iter(stage_norms.values())).device
            stacked = torch.stack([norm.to(device) for norm in stage_norms.values()])
            values = dict(zip(stage_norms, stacked.tolist(), strict=True))
    return {stage: values.get(stage, math.nan) for stage in groups}


@dataclass(kw_only=True)
class GradientFlowReport(CheckReport):
    """Verdict of :func:`check_gradient_flow`; ``score`` is the smallest stage's gradient
    norm divided by the largest's (1 means even flow, near 0 vanishing)."""

    norms: dict[str, float]
    vanishing: list[str]


def check_gradient_flow(
    norms: Mapping[str, float],
    *,
    vanishing_ratio: float = DEFAULT_VANISHING_RATIO,
    name: str = "gradient_flow",
) -> GradientFlowReport:
    """Flag the stages whose gradient norm is below ``vanishing_ratio`` times the largest.

    ``norms`` maps stage names to gradient L2 norms, from :func:`stage_gradient_norms`;
    stages without a gradient (NaN) are left out. ``name`` names the report (and its span).

    >>> check_gradient_flow({"stem": 1e-9, "head": 1.0}).vanishing
    ['stem']
    """
    finite = {stage: value for stage, value in norms.items() if math.isfinite(value)}
    thresholds = {"vanishing_ratio": vanishing_ratio}
    largest = max(finite.values(), default=0.0)
    if largest <= 0:
        return GradientFlowReport(
            name=name, passed=True, score=math.nan, label="undetermined",
            reasons=["no stage has a non-zero finite gradient norm; call loss.backward() first"],
            thresholds=thresholds, norms=dict(norms), vanishing=[])
    vanishing = [stage for stage, value in finite.items() if value < vanishing_ratio * largest]
    ratio = min(finite.values()) / largest
    if vanishing:
        reasons = [f"stage {stage!r}: gradient norm {finite[stage]:.3g} is "
                   f"{finite[stage] / largest:.2g} of the largest ({largest:.3g}), below "
                   f"{vanishing_ratio:g}" for stage in vanishing]
    else:
        reasons = [f"every stage's gradient norm is at least {ratio:.2g} of the largest "
                   f"({largest:.3g}); threshold {vanishing_ratio:g}"]
    return GradientFlowReport(
        name=name, passed=not vanishing, score=ratio,
        label="vanishing" if vanishing else "ok", reasons=reasons, thresholds=thresholds,
        norms=dict(norms), vanishing=vanishing)
