"""Encoder instrumentation: bit-identical outputs, clean removal, checkpoint hashes."""

from __future__ import annotations

import json
import subprocess

import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
transformers = pytest.importorskip("transformers")

import vlmscope  # noqa: E402
from tests.helpers import PYTHON, digit_images, query  # noqa: E402
from vlmscope import conventions as cv  # noqa: E402


def _all_hooks(model) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def _hf_resnet():
    torch.manual_seed(0)
    config = transformers.ResNetConfig(embedding_size=16, hidden_sizes=[16, 32, 64, 128],
                                       depths=[2, 2, 2, 2], layer_type="basic", num_labels=10,
                                       id2label={i: f"digit {i}" for i in range(10)},
                                       label2id={f"digit {i}": i for i in range(10)})
    return transformers.ResNetForImageClassification(config).eval()


class _Custom(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(),
                                        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
        self.head = torch.nn.Linear(8, 4)

    def forward(self, x):
        return self.head(self.body(x))


@pytest.mark.parametrize("kind", ["resnet18", "resnet50", "hf-resnet", "custom"])
def test_instrumented_outputs_are_bit_identical_and_no_hook_remains(kind, traced):
    torch.manual_seed(0)
    images, _ = digit_images(4, size=48)
    options = {}
    if kind == "resnet18":
        model = torchvision.models.resnet18(weights=None).eval()
    elif kind == "resnet50":
        model = torchvision.models.resnet50(weights=None, num_classes=10).eval()
    elif kind == "hf-resnet":
        model = _hf_resnet()
    else:
        model = _Custom().eval()
        options = {"layer": "body", "classifier": "head", "labels": ["a", "b", "c", "d"]}
    hooks_before = _all_hooks(model)

    def run():
        out = model(images)
        return out.logits if hasattr(out, "logits") else out

    plain = run()
    handle = vlmscope.instrument_encoder(model, **options)
    assert _all_hooks(model) > hooks_before
    with vlmscope.trace_batch([f"i{i}" for i in range(4)]):
        traced_out = run()
    assert torch.equal(plain, traced_out)
    handle.uninstrument()
    handle.uninstrument()  # twice is harmless
    assert _all_hooks(model) == hooks_before
    assert torch.equal(plain, run())
    vlmscope.shutdown()
    rows = query(traced, "SELECT encoder_model, top_k_labels[1], embedding_dim "
                         "FROM pipeline_rows ORDER BY row_id")
    assert len(rows) == 4
    expected_top1 = plain.argmax(dim=1).tolist()
    if kind == "hf-resnet":
        assert [r[1] for r in rows] == [f"digit {c}" for c in expected_top1]
        assert rows[0][0] == "resnet18" and rows[0][2] == 128
    elif kind == "custom":
        assert [r[1] for r in rows] == ["abcd"[c] for c in expected_top1]
        assert rows[0][2] == 8
    else:
        assert rows[0][0] == kind


def test_instrumenting_twice_leaves_one_set_of_hooks():
    model = torchvision.models.resnet18(weights=None)
    base = _all_hooks(model)
    first = vlmscope.instrument_encoder(model)
    count = _all_hooks(model)
    second = vlmscope.instrument_encoder(model, top_k=2)
    assert _all_hooks(model) == count
    second.uninstrument()
    first.uninstrument()
    assert _all_hooks(model) == base


def test_an_unknown_module_without_named_layers_is_a_clear_error():
    with pytest.raises(ValueError, match="pass layer="):
        vlmscope.instrument_encoder(_Custom())
    with pytest.raises(ValueError, match="has no submodule 'nope'"):
        vlmscope.instrument_encoder(_Custom(), layer="nope", classifier="head")


def test_an_encoder_that_raises_is_recorded_and_the_error_reaches_the_caller(traced):
    model = torchvision.models.resnet18(weights=None).eval()
    handle = vlmscope.instrument_encoder(model)
    with pytest.raises(RuntimeError), vlmscope.trace_row("broken"):
        model(torch.zeros(1, 5, 32, 32))  # wrong channel count
    handle.uninstrument()
    vlmscope.shutdown()
    (status,), = query(traced, "SELECT status_code FROM spans WHERE name = ?",
                       [cv.ENCODER_SPAN_NAME])
    assert status == "ERROR"


_HASH_SCRIPT = """
import torch, torchvision, vlmscope
torch.manual_seed(7)
print(vlmscope.checkpoint_sha256(torchvision.models.resnet18(weights=None)))
"""


def test_checkpoint_hash_is_the_same_across_two_processes_and_changes_after_one_step(traced):
    runs = [subprocess.run([PYTHON, "-c", _HASH_SCRIPT], capture_output=True, text=True,
                           check=True).stdout.strip() for _ in range(2)]
    assert runs[0] == runs[1] and len(runs[0]) == 64
    torch.manual_seed(7)
    model = torchvision.models.resnet18(weights=None)
    assert vlmscope.checkpoint_sha256(model) == runs[0]

    handle = vlmscope.instrument_encoder(model.eval())
    images, labels = digit_images(2)
    with vlmscope.trace_row("before"):
        model(images[:1])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    model.train()
    loss = torch.nn.functional.cross_entropy(model(images), torch.tensor(labels))
    loss.backward()
    optimizer.step()
    model.eval()
    with vlmscope.trace_row("after"):
        model(images[:1])
    handle.uninstrument()
    vlmscope.shutdown()
    after = vlmscope.checkpoint_sha256(model)
    assert after != runs[0]
    rows = dict(query(traced, "SELECT row_id, checkpoint_sha256 FROM pipeline_rows"))
    assert rows == {"before": runs[0], "after": after}


def test_checkpoint_hash_is_computed_once_while_weights_stay_the_same(monkeypatch):
    from vlmscope import torch_encoder

    calls = []
    real = torch_encoder.checkpoint_sha256
    monkeypatch.setattr(torch_encoder, "checkpoint_sha256",
                        lambda m: calls.append(1) or real(m))
    model = torchvision.models.resnet18(weights=None).eval()
    handle = vlmscope.instrument_encoder(model)
    images, _ = digit_images(1, size=32)
    for _ in range(3):
        model(images)
    with torch.no_grad():
        model.fc.bias.add_(1.0)
    model(images)
    handle.uninstrument()
    assert len(calls) == 2


def test_labels_default_to_torchvision_imagenet_names_without_weights():
    from vlmscope.labels import imagenet_labels

    names = imagenet_labels()
    assert len(names) == 1000 and names[281] == "tabby"
    assert json.dumps(names)  # plain strings
