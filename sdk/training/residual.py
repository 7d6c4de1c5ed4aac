"""``check_residual_paths``: does every residual block really add its input to its branch?

A residual block computes ``activation(branch(x) + shortcut(x))``, where ``shortcut`` is the
identity or a projection. With the branch's output forced to zero the block must therefore
return ``activation(shortcut(x))``; a block whose skip connection is missing returns
``activation(0)``, one wired to the wrong tensor returns something else. The check also makes
sure the branch counts (a block that ignores it returns the same thing either way).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from vlmscope import conventions as cv
from vlmscope._optional import require
from vlmscope.training._checks import CheckReport, record_check

DEFAULT_ATOL = 1e-5
"""Absolute tolerance when comparing a block's output with its expected shortcut output."""

DEFAULT_RTOL = 1e-4
"""Tolerance relative to the largest expected value, for the same comparison."""

DEFAULT_PROBE_SIZE = 64
"""Height and width, in pixels, of the seeded random probe images when no example is given."""

_TRANSFORMERS_BLOCKS = ("ResNetBasicLayer", "ResNetBottleNeckLayer")


@dataclass(frozen=True)
class ResidualBlock:
    """How one residual block computes ``activation(branch(x) + shortcut(x))``, by the names
    of its parts inside the block.

    ``branch_end`` is the submodule whose output ends the residual branch (``bn2`` in a
    torchvision BasicBlock), ``shortcut`` the submodule projecting the input (None: the
    identity), ``activation`` the function applied to the sum (None: none).
    """

    branch_end: str
    shortcut: str | None = None
    activation: Callable[[Any], Any] | None = None


@dataclass(kw_only=True)
class BlockFinding:
    """What the check found in one block. ``skip_error`` is the largest absolute difference
    between the block's output with its branch zeroed and ``activation(shortcut(x))``."""

    name: str
    block_type: str
    intact: bool
    skip_error: float
    branch_used: bool
    reason: str


@dataclass(kw_only=True)
class ResidualPathReport(CheckReport):
    """Verdict of :func:`check_residual_paths`; ``score`` is the fraction of blocks intact.

    ``broken`` lists the qualified names of the blocks whose skip connection is missing or
    wrong (or whose branch is ignored), ``unchecked`` the blocks that did not run on the
    probe input.
    """

    blocks: list[BlockFinding]
    broken: list[str]
    unchecked: list[str]


def known_block(module: Any) -> ResidualBlock | None:
    """The :class:`ResidualBlock` description of a torchvision ``BasicBlock``/``Bottleneck``
    or a transformers ``ResNetBasicLayer``/``ResNetBottleNeckLayer``; None for anything
    else."""
    torch = require("torch", "check_residual_paths")
    resnet = require("torchvision.models.resnet", "check_residual_paths")
    shortcut = "downsample" if getattr(module, "downsample", None) is not None else None
    if isinstance(module, resnet.BasicBlock):
        return ResidualBlock("bn2", shortcut, torch.relu)
    if isinstance(module, resnet.Bottleneck):
        return ResidualBlock("bn3", shortcut, torch.relu)
    if type(module).__name__ in _TRANSFORMERS_BLOCKS and all(
            hasattr(module, part) for part in ("layer", "shortcut", "activation")):
        return ResidualBlock("layer", "shortcut", module.activation)
    return None


def check_residual_paths(
    model: Any,
    blocks: Mapping[str, ResidualBlock] | None = None,
    *,
    example_input: Any = None,
    atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL,
    record: bool = True,
) -> ResidualPathReport:
    """Check that every residual block of ``model`` adds its (projected) input to its branch.

    Blocks are found by type (torchvision ``BasicBlock``/``Bottleneck``, transformers
    ``ResNetBasicLayer``/``ResNetBottleNeckLayer``) plus those named in ``blocks`` (qualified
    name -> :class:`ResidualBlock`). Each block is run, in eval mode and without gradients, on
    the input it receives when the model runs ``example_input`` (default: two seeded random
    images of :data:`DEFAULT_PROBE_SIZE` pixels with as many channels as the first
    convolution takes). The model's weights and train/eval modes are left as they were.
    With ``record`` the report is also recorded as an EVALUATOR span.

    Raises ``ValueError`` when the model has no recognisable residual block.
    """
    torch = require("torch", "check_residual_paths")
    specs = _find_blocks(model, blocks or {})
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        with torch.no_grad():
            inputs = _block_inputs(torch, model, specs, example_input)
            findings = [_check_block(torch, name, model.get_submodule(name), spec,
                                     inputs[name], atol, rtol)
                        for name, spec in specs.items() if name in inputs]
    finally:
        for module, training in modes.items():
            module.training = training
    unchecked = [name for name in specs if name not in inputs]
    broken = [f.name for f in findings if not f.intact]
    reasons = [f"{f.name}: {f.reason}" for f in findings if not f.intact]
    reasons += [f"{name}: did not run on the probe input, so it was not checked"
                for name in unchecked]
    if not reasons:
        reasons = [f"all {len(findings)} residual blocks add their input to their branch "
                   f"(largest deviation {max(f.skip_error for f in findings):.2g}, tolerance "
                   f"{atol:g} + {rtol:g} x the largest value)"]
    report = ResidualPathReport(
        name="residual_paths", passed=not broken and not unchecked,
        score=(len(findings) - len(broken)) / len(specs),
        label="broken" if broken else ("unchecked" if unchecked else "ok"),
        reasons=reasons, thresholds={"atol": atol, "rtol": rtol},
        blocks=findings, broken=broken, unchecked=unchecked)
    if record:
        from vlmscope.torch_encoder import checkpoint_sha256

        record_check(report, extra={
            cv.VLMSCOPE_TRAINING_CHECKPOINT_SHA256: checkpoint_sha256(model)})
    return report


def _find_blocks(model: Any, marked: Mapping[str, ResidualBlock]) -> dict[str, ResidualBlock]:
    modules = dict(model.named_modules())
    missing = [name for name in marked if name not in modules]
    if missing:
        raise ValueError(f"{type(model).__name__} has no submodules {missing} (named in blocks=)")
    specs = {}
    for name, module in modules.items():
        spec = marked.get(name) or known_block(module)
        if spec is not None:
            specs[name] = spec
    if not specs:
        raise ValueError(
            f"found no residual blocks in {type(model).__name__}: looked for torchvision "
            f"BasicBlock/Bottleneck and transformers {'/'.join(_TRANSFORMERS_BLOCKS)} modules "
            "and for blocks named in blocks=; mark yours with blocks={'<qualified name>': "
            "ResidualBlock(branch_end='<last module of the branch>', shortcut='<projection "
            "or None>', activation=<function applied after the sum or None>)}")
    return specs


def _probe_input(torch: Any, model: Any) -> Any:
    first_conv = next((m for m in model.modules() if isinstance(m, torch.nn.Conv2d)), None)
    if first_conv is None:
        raise ValueError(f"{type(model).__name__} has no Conv2d to size a probe image by; "
                         "pass example_input=")
    generator = torch.Generator().manual_seed(0)
    parameter = next(model.parameters())
    probe = torch.randn(2, first_conv.in_channels, DEFAULT_PROBE_SIZE, DEFAULT_PROBE_SIZE,
                        generator=generator)
    return probe.to(device=parameter.device, dtype=parameter.dtype)


def _block_inputs(torch: Any, model: Any, specs: Mapping[str, ResidualBlock],
                  example_input: Any) -> dict[str, Any]:
    """Run the model once and keep the first input each block receives."""
    inputs: dict[str, Any] = {}

    def keeper(name: str) -> Callable[..., None]:
        def keep(module: Any, args: tuple[Any, ...]) -> None:
            if args and name not in inputs:
                inputs[name] = args[0].detach().clone()
        return keep

    handles = [model.get_submodule(name).register_forward_pre_hook(keeper(name))
               for name in specs]
    try:
        model(_probe_input(torch, model) if example_input is None else example_input)
    finally:
        for handle in handles:
            handle.remove()
    return inputs


def _check_block(torch: Any, name: str, block: Any, spec: ResidualBlock, x: Any,
                 atol: float, rtol: float) -> BlockFinding:
    block_type = type(block).__name__
    try:
        branch_end = block.get_submodule(spec.branch_end)
    except AttributeError:
        return BlockFinding(name=name, block_type=block_type, intact=False,
                            skip_error=math.nan, branch_used=False,
                            reason=f"has no submodule {spec.branch_end!r} to end its branch")
    fired = []

    def zero_branch(module: Any, args: Any, output: Any) -> Any:
        fired.append(True)
        return torch.zeros_like(output)

    handle = branch_end.register_forward_hook(zero_branch)
    try:
        zeroed = block(x.clone())
    finally:
        handle.remove()
    full = block(x.clone())
    projected = block.get_submodule(spec.shortcut)(x.clone()) if spec.shortcut else x.clone()
    expected = spec.activation(projected) if spec.activation is not None else projected
    if not fired:
        return BlockFinding(name=name, block_type=block_type, intact=False,
                            skip_error=math.nan, branch_used=False,
                            reason=f"its branch end {spec.branch_end!r} did not run")
    branch_used = zeroed.shape != full.shape or not torch.equal(zeroed, full)
    if zeroed.shape != expected.shape:
        return BlockFinding(
            name=name, block_type=block_type, intact=False, skip_error=math.inf,
            branch_used=branch_used,
            reason=f"with its branch zeroed it returned shape {tuple(zeroed.shape)}, not the "
                   f"shape of its (projected) input {tuple(expected.shape)}")
    error = float((zeroed - expected).abs().max())
    tolerance = atol + rtol * float(expected.abs().max())
    if error > tolerance:
        reason = (f"skip connection missing or wrong: with its branch zeroed it should return "
                  f"its {'projected ' if spec.shortcut else ''}input, but differs from it by up "
                  f"to {error:.3g} (tolerance {tolerance:.3g})")
    elif not branch_used:
        reason = "its output does not depend on its residual branch"
    else:
        reason = "intact"
    return BlockFinding(name=name, block_type=block_type, intact=reason == "intact",
                        skip_error=error, branch_used=branch_used, reason=reason)
