"""Multi-label heads (a sigmoid per label) and the batch size on trace_batch's spans."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

import vlmscope  # noqa: E402
from tests.helpers import digit_images  # noqa: E402
from vlmscope import conventions as cv  # noqa: E402

LABELS = ["person", "dog", "car", "tree", "sky", "road"]


def _spans(memory: InMemorySpanExporter, role: str) -> list:
    return [s for s in memory.get_finished_spans()
            if s.attributes.get(cv.VLMSCOPE_SPAN_ROLE) == role]


def _tagger():
    torch.manual_seed(3)
    return torchvision.models.resnet18(weights=None, num_classes=len(LABELS)).eval()


def test_a_multi_label_head_is_read_with_a_sigmoid_per_label_sorted_descending(memory):
    model = _tagger()
    images, _ = digit_images(3, size=32)
    with torch.no_grad():
        logits = model(images)
    handle = vlmscope.instrument_encoder(model, labels=LABELS, top_k=4, multi_label=True)
    with vlmscope.trace_batch(["a", "b", "c"]), torch.no_grad():
        out = model(images)
    handle.uninstrument()
    assert torch.equal(out, logits)
    (span,) = _spans(memory, cv.ROLE_ENCODER)
    attrs = span.attributes
    assert attrs[cv.VISION_ENCODER_MULTI_LABEL] is True
    assert attrs[cv.VISION_ENCODER_TOP_K] == 4
    assert cv.VISION_ENCODER_ENTROPY not in attrs  # softmax entropy means nothing here
    scores = torch.tensor(attrs[cv.VISION_ENCODER_TOP_K_SCORES]).reshape(3, 4)
    labels = list(attrs[cv.VISION_ENCODER_TOP_K_LABELS])
    sigmoid = torch.sigmoid(logits.double())
    for i in range(3):
        order = sorted(range(len(LABELS)), key=lambda c: -sigmoid[i, c].item())[:4]
        assert labels[i * 4:(i + 1) * 4] == [LABELS[c] for c in order]
        torch.testing.assert_close(scores[i].double(), sigmoid[i, order], rtol=0, atol=1e-6)
        assert scores[i].tolist() == sorted(scores[i].tolist(), reverse=True)
    # Independent scores: unlike softmax probabilities they do not sum to one over labels.
    assert abs(sigmoid[0].sum().item() - 1.0) > 0.1


def test_a_single_label_head_keeps_softmax_and_is_not_marked_multi_label(memory):
    model = _tagger()
    images, _ = digit_images(2, size=32)
    handle = vlmscope.instrument_encoder(model, labels=LABELS, top_k=len(LABELS))
    with vlmscope.trace_batch(["a", "b"]), torch.no_grad():
        logits = model(images)
    handle.uninstrument()
    (span,) = _spans(memory, cv.ROLE_ENCODER)
    assert cv.VISION_ENCODER_MULTI_LABEL not in span.attributes
    scores = torch.tensor(span.attributes[cv.VISION_ENCODER_TOP_K_SCORES]).reshape(2, -1)
    torch.testing.assert_close(scores.sum(dim=1), torch.ones(2), rtol=0, atol=1e-5)
    top1 = torch.softmax(logits, dim=1).max(dim=1).values
    torch.testing.assert_close(scores[:, 0], top1, rtol=0, atol=1e-6)


def test_the_manual_encoder_span_can_say_its_head_is_multi_label(memory):
    with vlmscope.trace_row("r"), vlmscope.encoder_span("tagger", multi_label=True) as enc:
        enc.record(top_k_labels=[["dog", "person"]], top_k_scores=[[0.9, 0.8]])
    (span,) = _spans(memory, cv.ROLE_ENCODER)
    assert span.attributes[cv.VISION_ENCODER_MULTI_LABEL] is True


def test_images_with_different_numbers_of_labels_are_cut_to_one_k_with_a_warning(
        memory, caplog):
    """A tagger that lists only each image's own tags gives ragged lists: one k per span
    keeps each image's labels with its scores, and the user is told what was dropped."""
    from vlmscope import rows

    rows._warned.discard("encoder-ragged-top-k")
    with caplog.at_level("WARNING", logger="vlmscope"), vlmscope.trace_batch(["a", "b"]), \
            vlmscope.encoder_span("tagger", multi_label=True) as enc:
        enc.record(top_k_labels=[["dog", "person"], ["cat"]],
                   top_k_scores=[[0.9, 0.8], [0.7]])
    (span,) = _spans(memory, cv.ROLE_ENCODER)
    assert list(span.attributes[cv.VISION_ENCODER_TOP_K_LABELS]) == ["dog", "cat"]
    assert list(span.attributes[cv.VISION_ENCODER_TOP_K_SCORES]) == pytest.approx([0.9, 0.7])
    (message,) = [r.getMessage() for r in caplog.records if "top-k" in r.getMessage()]
    assert "from 1 to 2" in message and "the same number of labels" in message


def test_trace_batch_puts_its_size_on_row_encoder_and_llm_spans(memory):
    model = _tagger()
    images, _ = digit_images(3, size=32)
    handle = vlmscope.instrument_encoder(model, labels=LABELS)
    with vlmscope.trace_batch(["a", "b", "c"]):
        with torch.no_grad():
            model(images)
        with vlmscope.llm_span("head", instruction=["q"] * 3) as llm:
            llm.set_output(["x", "y", "z"])
    with vlmscope.trace_batch(["d"]):
        with torch.no_grad():
            model(images[:1])
    with vlmscope.trace_row("e"):
        with torch.no_grad():
            model(images[:1])
        with vlmscope.llm_span("head", instruction="q") as llm:
            llm.set_output("x")
    handle.uninstrument()
    sizes = {role: [s.attributes.get(cv.VLMSCOPE_BATCH_SIZE) for s in _spans(memory, role)]
             for role in (cv.ROLE_ROW, cv.ROLE_ENCODER, cv.ROLE_LLM, cv.ROLE_BATCH)}
    assert sorted(sizes[cv.ROLE_ROW], key=str) == [1, 3, 3, 3, None]
    assert sizes[cv.ROLE_ENCODER] == [3, 1, None]
    assert sizes[cv.ROLE_LLM] == [3, None]
    assert sizes[cv.ROLE_BATCH] == [3, 1]
