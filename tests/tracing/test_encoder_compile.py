"""Compiled models: vlmscope's hooks stay out of Dynamo's graph (same graphs and graph
breaks as the bare model), the outputs are the same and every call is still recorded."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
timm = pytest.importorskip("timm")

import vlmscope  # noqa: E402
from tests.helpers import digit_images  # noqa: E402
from vlmscope import conventions as cv  # noqa: E402

CALLS = 3


MODELS = {
    "torchvision-resnet18": lambda: torchvision.models.resnet18(weights=None, num_classes=10),
    "timm-resnet18": lambda: timm.create_model("resnet18", num_classes=10),
}


def _compiled_run(model, images, backend: str) -> tuple[dict, int, list]:
    """Dynamo's graph and graph-break counts over ``CALLS`` calls, and the outputs."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    compiled = torch.compile(model, backend=backend)
    with torch.no_grad():
        outputs = [compiled(images) for _ in range(CALLS)]
    stats = {"graphs": counters["stats"]["unique_graphs"],
             "graph_breaks": sum(counters["graph_break"].values()),
             "recompiles": counters["recompiles"].copy()}
    return stats, len(counters["graph_break"]), outputs


@pytest.mark.parametrize("kind", list(MODELS))
def test_a_compiled_instrumented_model_has_the_graphs_of_the_bare_one(kind, memory):
    torch.manual_seed(0)
    model = MODELS[kind]().eval()
    images, _ = digit_images(2, size=32)
    bare_stats, _, bare_outputs = _compiled_run(model, images, "eager")
    handle = vlmscope.instrument_encoder(model)
    with vlmscope.trace_batch(["a", "b"]):
        stats, _, outputs = _compiled_run(model, images, "eager")
    explained = torch._dynamo.explain(model)(images)
    handle.uninstrument()
    assert bare_stats == {"graphs": 1, "graph_breaks": 0, "recompiles": bare_stats["recompiles"]}
    assert stats == bare_stats
    assert (explained.graph_count, explained.graph_break_count) == (1, 0)
    for bare, instrumented in zip(bare_outputs, outputs, strict=True):
        assert torch.equal(bare, instrumented)

    spans = [s for s in memory.get_finished_spans()
             if s.attributes.get(cv.VLMSCOPE_SPAN_ROLE) == cv.ROLE_ENCODER]
    assert len(spans) >= CALLS  # explain() runs the model too
    top1 = bare_outputs[0].argmax(dim=1).tolist()
    for span in spans[:CALLS]:
        attrs = span.attributes
        assert attrs[cv.VISION_ENCODER_EMBEDDING_DIM] == 512
        assert len(attrs[cv.VISION_ENCODER_EMBEDDING_L2_NORM]) == 2
        assert list(attrs[cv.VISION_ENCODER_TOP_K_CLASS_IDS][::5]) == top1
        assert cv.VLMSCOPE_INSTRUMENTATION_ERROR not in attrs


def test_a_compiled_model_records_the_same_reading_as_the_eager_one(memory):
    torch.manual_seed(0)
    model = MODELS["torchvision-resnet18"]().eval()
    images, _ = digit_images(2, size=32)
    handle = vlmscope.instrument_encoder(model, capture_embeddings=True)
    with vlmscope.trace_batch(["a", "b"]), torch.no_grad():
        model(images)
    torch._dynamo.reset()
    compiled = torch.compile(model, backend="aot_eager")
    with vlmscope.trace_batch(["c", "d"]), torch.no_grad():
        compiled(images)
    handle.uninstrument()
    eager, traced = [s.attributes for s in memory.get_finished_spans()
                     if s.attributes.get(cv.VLMSCOPE_SPAN_ROLE) == cv.ROLE_ENCODER]
    for key in (cv.VISION_ENCODER_TOP_K_LABELS, cv.VISION_ENCODER_TOP_K_CLASS_IDS,
                cv.VISION_ENCODER_EMBEDDING_DIM, cv.VISION_IMAGE_SHA256):
        assert eager[key] == traced[key]
    for key in (cv.VISION_ENCODER_TOP_K_SCORES, cv.embedding_vector_key(0)):
        torch.testing.assert_close(torch.tensor(eager[key]), torch.tensor(traced[key]))


@pytest.mark.slow
def test_an_inductor_compiled_instrumented_model_matches_the_bare_one(memory):
    torch.manual_seed(0)
    model = MODELS["torchvision-resnet18"]().eval()
    images, _ = digit_images(2, size=32)
    bare_stats, _, bare_outputs = _compiled_run(model, images, "inductor")
    handle = vlmscope.instrument_encoder(model)
    stats, _, outputs = _compiled_run(model, images, "inductor")
    handle.uninstrument()
    assert stats == bare_stats
    for bare, instrumented in zip(bare_outputs, outputs, strict=True):
        torch.testing.assert_close(bare, instrumented)
    spans = [s for s in memory.get_finished_spans()
             if s.attributes.get(cv.VLMSCOPE_SPAN_ROLE) == cv.ROLE_ENCODER]
    assert len(spans) == CALLS


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit is deprecated in torch 2.10+
@pytest.mark.parametrize("kind", ["script", "trace"])
def test_a_torchscript_module_is_refused_with_what_to_do_instead(kind):
    """A TorchScript module runs its layers outside Python: no hook would see them (and
    its submodules cannot even be looked up), so vlmscope says so and what works."""
    model = torchvision.models.resnet18(weights=None, num_classes=3).eval()
    scripted = torch.jit.script(model) if kind == "script" else torch.jit.trace(
        model, torch.randn(1, 3, 32, 32))
    for layers in ({}, {"layer": "avgpool", "classifier": "fc"}):
        with pytest.raises(TypeError, match="got a TorchScript module .* torch.compile"):
            vlmscope.instrument_encoder(scripted, **layers)
