"""check_residual_paths on real torchvision and transformers ResNets, intact and with a skip
connection patched out; per-stage gradient norms and the gradient-flow check."""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

from torch import nn  # noqa: E402

import vlmscope  # noqa: E402
from tests.helpers import query  # noqa: E402
from vlmscope import conventions as cv  # noqa: E402
from vlmscope.training import (  # noqa: E402
    ResidualBlock,
    check_gradient_flow,
    check_residual_paths,
    stage_gradient_norms,
)

PROBE = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def _resnet18() -> nn.Module:
    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None, num_classes=10)


def _forward_without_skip(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = self.relu(self.bn1(self.conv1(x)))
    return self.relu(self.bn2(self.conv2(out)))


def test_an_intact_resnet18_has_no_broken_residual_blocks() -> None:
    report = check_residual_paths(_resnet18(), example_input=PROBE, record=False)
    assert report.passed and report.broken == [] and report.label == "ok"
    assert len(report.blocks) == 8 and all(block.branch_used for block in report.blocks)


def test_a_resnet18_block_whose_skip_connection_was_removed_is_caught_by_name() -> None:
    model = _resnet18()
    block = model.layer3[1]
    block.forward = types.MethodType(_forward_without_skip, block)
    report = check_residual_paths(model, example_input=PROBE, record=False)
    assert report.broken == ["layer3.1"]
    assert not report.passed and report.label == "broken" and report.score == 7 / 8
    finding = next(b for b in report.blocks if b.name == "layer3.1")
    assert "skip connection missing or wrong" in finding.reason
    assert any(reason.startswith("layer3.1:") for reason in report.reasons)


def test_a_projection_block_that_adds_the_unprojected_branch_input_is_caught() -> None:
    torch.manual_seed(0)
    model = torchvision.models.resnet50(weights=None, num_classes=10)
    block = model.layer2[0]

    def wrong_shortcut(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.downsample(x).flip(1))  # channels of the projection mixed up

    block.forward = types.MethodType(wrong_shortcut, block)
    report = check_residual_paths(model, example_input=PROBE[:1], record=False)
    assert report.broken == ["layer2.0"]
    assert len(report.blocks) == 16


def test_a_block_that_ignores_its_residual_branch_is_reported() -> None:
    model = _resnet18()
    block = model.layer1[0]
    block.forward = types.MethodType(lambda self, x: self.relu(x + 0 * self.bn2(self.conv2(
        self.relu(self.bn1(self.conv1(x)))))), block)
    report = check_residual_paths(model, example_input=PROBE, record=False)
    assert report.broken == ["layer1.0"]
    assert "does not depend on its residual branch" in report.blocks[0].reason


def test_the_check_leaves_weights_and_train_modes_as_they_were() -> None:
    model = _resnet18()
    model.train()
    model.layer2[0].bn1.eval()
    before = vlmscope.checkpoint_sha256(model)
    check_residual_paths(model, example_input=PROBE, record=False)
    assert vlmscope.checkpoint_sha256(model) == before
    assert model.training and model.layer1[0].bn1.training
    assert not model.layer2[0].bn1.training


def test_transformers_resnet_layers_are_recognised_and_checked() -> None:
    transformers = pytest.importorskip("transformers")
    config = transformers.ResNetConfig(embedding_size=16, hidden_sizes=[16, 32], depths=[1, 2],
                                       layer_type="bottleneck", num_labels=10)
    torch.manual_seed(0)
    model = transformers.ResNetForImageClassification(config)
    report = check_residual_paths(model, example_input=PROBE, record=False)
    assert report.passed and len(report.blocks) == 3
    model.resnet.encoder.stages[1].layers[1].shortcut = nn.Identity().requires_grad_()
    model.resnet.encoder.stages[1].layers[1].forward = types.MethodType(
        lambda self, x: self.activation(self.layer(x)), model.resnet.encoder.stages[1].layers[1])
    assert check_residual_paths(model, example_input=PROBE, record=False).broken == [
        "resnet.encoder.stages.1.layers.1"]


class _Residual(nn.Module):
    """A user's own residual block: x + tanh-branch, no activation after the sum."""

    def __init__(self, width: int, skip: bool = True) -> None:
        super().__init__()
        self.branch = nn.Sequential(nn.Linear(width, width), nn.Tanh(), nn.Linear(width, width))
        self.skip = skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.branch(x) + x if self.skip else self.branch(x)


def test_blocks_the_user_marks_are_checked_by_their_description() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(_Residual(8), _Residual(8, skip=False), nn.Linear(8, 2))
    marked = {name: ResidualBlock(branch_end="branch") for name in ("0", "1")}
    report = check_residual_paths(model, marked, example_input=torch.randn(4, 8), record=False)
    assert report.broken == ["1"]


def test_a_model_without_residual_blocks_gets_a_message_saying_what_was_looked_for() -> None:
    plain = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(10))
    with pytest.raises(ValueError) as error:
        check_residual_paths(plain, record=False)
    message = str(error.value)
    assert "found no residual blocks in Sequential" in message
    for looked_for in ("BasicBlock", "Bottleneck", "ResNetBasicLayer", "blocks="):
        assert looked_for in message
    with pytest.raises(ValueError, match="no submodules \\['encoder'\\]"):
        check_residual_paths(plain, {"encoder": ResidualBlock("conv")}, record=False)


def test_the_residual_check_is_recorded_as_an_evaluator_span_with_the_checkpoint(
    traced: Path,
) -> None:
    model = _resnet18()
    block = model.layer4[0]
    block.forward = types.MethodType(_forward_without_skip, block)
    check_residual_paths(model, example_input=PROBE)
    vlmscope.shutdown()
    rows = query(traced, f"""
        SELECT attributes->>'$."{cv.OPENINFERENCE_SPAN_KIND}"',
               attributes->>'$."{cv.VLMSCOPE_TRAINING_CHECK_LABEL}"',
               attributes->>'$."{cv.VLMSCOPE_TRAINING_CHECKPOINT_SHA256}"',
               attributes->>'$."{cv.METADATA}"'
        FROM spans WHERE name = '{cv.TRAINING_CHECK_SPAN_NAME}'""")
    assert len(rows) == 1
    kind, label, checkpoint, metadata = rows[0]
    assert (kind, label) == (cv.SPAN_KIND_EVALUATOR, "broken")
    assert checkpoint == vlmscope.checkpoint_sha256(model)
    assert json.loads(metadata)["broken"] == ["layer4.0"]


def _stage_norms_after_one_backward(model: nn.Module, inputs: torch.Tensor) -> dict[str, float]:
    model.zero_grad()
    loss = nn.functional.cross_entropy(model(inputs), torch.arange(len(inputs)) % 10)
    loss.backward()
    return stage_gradient_norms(model)


def test_gradient_norms_of_a_resnet_are_reported_per_stage_and_do_not_vanish() -> None:
    # 16 images, so that batch norm over layer4's 1x1 maps has enough values per channel
    batch = torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    norms = _stage_norms_after_one_backward(_resnet18(), batch)
    assert list(norms) == ["conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "fc"]
    assert all(value > 0 for value in norms.values())
    assert check_gradient_flow(norms).passed


def test_vanishing_gradients_in_the_early_stages_of_a_deep_plain_network_are_flagged() -> None:
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Flatten()]
    for width_in in [3 * 32 * 32] + [32] * 15:
        layers += [nn.Linear(width_in, 32), nn.Sigmoid()]
    model = nn.Sequential(*layers, nn.Linear(32, 10))
    report = check_gradient_flow(_stage_norms_after_one_backward(model, PROBE))
    assert not report.passed and report.label == "vanishing"
    assert report.vanishing[:3] == ["1", "3", "5"]  # the earliest Linear layers
    assert "33" not in report.vanishing  # the classifier's gradient is fine
