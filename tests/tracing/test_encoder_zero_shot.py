"""CLIP zero-shot readings on the encoder span, against open_clip's own encode_image /
encode_text on a CLIP RN50 built from config (random weights, 64x64 images)."""

from __future__ import annotations

import math

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

import vlmscope  # noqa: E402
from tests.helpers import digit_images  # noqa: E402
from vlmscope import conventions as cv  # noqa: E402

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@pytest.fixture(scope="module")
def clip():
    """One CLIP RN50 built from config for the module (building one takes seconds)."""
    torch.manual_seed(0)
    return open_clip.create_model("RN50", pretrained=None, force_image_size=64).eval()


@pytest.fixture(scope="module")
def tokenizer():
    return open_clip.get_tokenizer("RN50")


def _prompts(names):
    return [f"a photo of the digit {n}" for n in names]


@pytest.fixture(scope="module")
def text(clip, tokenizer):
    """The class text embeddings by open_clip's own ``encode_text`` (unnormalised)."""
    with torch.no_grad():
        return clip.encode_text(tokenizer(_prompts(DIGITS)))


def _encoder_span(memory: InMemorySpanExporter):
    (span,) = [s for s in memory.get_finished_spans()
               if s.attributes.get(cv.VLMSCOPE_SPAN_ROLE) == cv.ROLE_ENCODER]
    return span


def _reference(clip, text, images, scale):
    """CLIP's zero-shot probabilities, computed as open_clip's README does it."""
    with torch.no_grad():
        image = clip.encode_image(images, normalize=True)
    text = text / text.norm(dim=-1, keepdim=True)
    return (scale * image @ text.T).softmax(dim=-1)


def _recorded(span, n: int):
    k = span.attributes[cv.VISION_ENCODER_TOP_K]
    labels = list(span.attributes[cv.VISION_ENCODER_TOP_K_LABELS])
    scores = torch.tensor(span.attributes[cv.VISION_ENCODER_TOP_K_SCORES]).reshape(n, k)
    return [labels[i * k:(i + 1) * k] for i in range(n)], scores


def _assert_same_reading(span, reference, top_k: int) -> None:
    n = reference.shape[0]
    labels, scores = _recorded(span, n)
    ref_scores, ref_ids = reference.topk(top_k, dim=1)
    assert labels == [[DIGITS[c] for c in row] for row in ref_ids.tolist()]
    torch.testing.assert_close(scores, ref_scores.float(), rtol=0, atol=2e-6)
    entropy = -(reference * reference.log()).sum(dim=1)
    torch.testing.assert_close(torch.tensor(span.attributes[cv.VISION_ENCODER_ENTROPY]),
                               entropy.float(), rtol=0, atol=1e-5)


@pytest.mark.parametrize("seed, scale_of", [(0, "model"), (1, "model"), (2, "clip-trained")])
def test_zero_shot_readings_equal_open_clips_own(seed, scale_of, clip, text, memory):
    torch.manual_seed(seed)
    images, _ = digit_images(10, size=64)
    images = images + 0.2 * torch.randn_like(images)
    scale = clip.logit_scale.exp().item() if scale_of == "model" else 100.0
    _check_zero_shot(memory, clip, text, images, scale, top_k=4, name="open_clip/RN50")


def _check_zero_shot(memory, clip, text, images, scale, top_k, name) -> None:
    """The tower instrumented with no layer and ``zero_shot=``: its span's reading of
    ``images`` is open_clip's own, and the tower is named ``name``."""
    reference = _reference(clip, text, images, scale)
    handle = vlmscope.instrument_encoder(clip.visual, labels=DIGITS, top_k=top_k,
                                         zero_shot=vlmscope.ZeroShot(text, scale))
    with vlmscope.trace_batch([f"r{i}" for i in range(len(images))]), torch.no_grad():
        clip.encode_image(images)
    handle.uninstrument()
    span = _encoder_span(memory)
    assert span.attributes[cv.VISION_ENCODER_ZERO_SHOT] is True
    assert span.attributes[cv.EMBEDDING_MODEL_NAME] == name
    _assert_same_reading(span, reference, top_k=top_k)


def test_a_callable_makes_the_text_embeddings_from_the_labels_with_the_text_tower(
        clip, text, memory, tokenizer):
    images, _ = digit_images(4, size=64)
    asked = []

    def class_texts(names):
        asked.append(list(names))
        return clip.encode_text(tokenizer(_prompts(names)))

    scale = clip.logit_scale.exp()
    handle = vlmscope.instrument_encoder(clip.visual, labels=DIGITS, top_k=3,
                                         zero_shot=vlmscope.ZeroShot(class_texts, scale))
    assert asked == [DIGITS]
    with vlmscope.trace_batch(["a", "b", "c", "d"]), torch.no_grad():
        clip.visual(images)
    handle.uninstrument()
    reference = _reference(clip, text, images, scale.item())
    _assert_same_reading(_encoder_span(memory), reference, top_k=3)


def test_plain_text_embeddings_use_clips_trained_logit_scale(clip, text, memory):
    images, _ = digit_images(3, size=64)
    handle = vlmscope.instrument_encoder(clip.visual, labels=DIGITS, top_k=2,
                                         zero_shot=text.numpy())  # an array works too
    with vlmscope.trace_batch(["a", "b", "c"]), torch.no_grad():
        clip.visual(images)
    handle.uninstrument()
    reference = _reference(clip, text, images, 100.0)
    _assert_same_reading(_encoder_span(memory), reference, top_k=2)


def test_the_language_head_span_carries_the_zero_shot_reading_of_its_rows(clip, text, memory):
    images, _ = digit_images(2, size=64)
    handle = vlmscope.instrument_encoder(clip.visual, labels=DIGITS, top_k=2, zero_shot=text)
    with vlmscope.trace_batch(["a", "b"]):
        with torch.no_grad():
            clip.visual(images)
        with vlmscope.llm_span("head", instruction=["what digit?"] * 2) as llm:
            llm.set_output(["one", "two"])
    handle.uninstrument()
    encoder = _encoder_span(memory)
    (head,) = [s for s in memory.get_finished_spans()
               if s.attributes.get(cv.VLMSCOPE_SPAN_ROLE) == cv.ROLE_LLM]
    assert head.attributes[cv.VISION_ENCODER_TOP_K_LABELS] == \
        encoder.attributes[cv.VISION_ENCODER_TOP_K_LABELS]
    assert head.attributes[cv.VISION_ENCODER_SPAN_ID] == \
        format(encoder.context.span_id, "016x")


def test_bad_zero_shot_arguments_are_refused_with_what_was_expected(clip):
    text = torch.randn(10, 1024)
    with pytest.raises(ValueError, match="zero_shot needs labels"):
        vlmscope.instrument_encoder(clip.visual, zero_shot=text)
    with pytest.raises(ValueError, match=r"must be 10 x D, one per label; got shape \(3, 1024\)"):
        vlmscope.instrument_encoder(clip.visual, labels=DIGITS, zero_shot=text[:3])
    with pytest.raises(ValueError, match="takes no classifier="):
        vlmscope.instrument_encoder(clip.visual, labels=DIGITS, zero_shot=text,
                                    classifier="attnpool.c_proj")
    # CLIP's softmax over the labels is not a multi-label reading; SigLIP's sigmoids are
    with pytest.raises(ValueError, match="multi_label=True only with a logit_bias"):
        vlmscope.instrument_encoder(clip.visual, labels=DIGITS, zero_shot=text,
                                    multi_label=True)
    with pytest.raises(ValueError, match="logit bias must be a finite number, got nan"):
        vlmscope.instrument_encoder(clip.visual, labels=DIGITS, zero_shot=vlmscope.ZeroShot(
            text, 10.0, logit_bias=float("nan")))
    with pytest.raises(ValueError, match="logit scale must be positive"):
        vlmscope.instrument_encoder(clip.visual, labels=DIGITS,
                                    zero_shot=vlmscope.ZeroShot(text, 0.0))


def test_text_embeddings_of_the_wrong_width_are_marked_on_the_span_not_raised(clip, memory):
    images, _ = digit_images(2, size=64)
    handle = vlmscope.instrument_encoder(clip.visual, labels=DIGITS,
                                         zero_shot=torch.randn(10, 512))
    with vlmscope.trace_batch(["a", "b"]), torch.no_grad():
        out = clip.visual(images)
    handle.uninstrument()
    assert out.shape == (2, 1024)
    span = _encoder_span(memory)
    assert "1024 dimensions" in span.attributes[cv.VLMSCOPE_INSTRUMENTATION_ERROR]


def test_zero_shot_on_a_vit_tower_equals_open_clips_own(tokenizer, memory):
    """The ViT tower (instrumented without a layer: its output is the embedding) gives the
    same zero-shot reading as open_clip's encode_image / encode_text."""
    torch.manual_seed(3)
    vit = open_clip.create_model("ViT-S-32", pretrained=None, force_image_size=64).eval()
    with torch.no_grad():
        text = vit.encode_text(tokenizer(_prompts(DIGITS)))
    images, _ = digit_images(6, size=64)
    _check_zero_shot(memory, vit, text, images, vit.logit_scale.exp().item(), top_k=3,
                     name="open_clip/ViT-S-32")


def test_siglips_zero_shot_reading_is_a_sigmoid_per_label_as_open_clip_computes_it(memory):
    """open_clip's SigLIP (a timm tower) with ``ZeroShot(..., logit_bias=)``: each label's
    score is ``sigmoid(logit_scale * cos + logit_bias)``, as open_clip's README computes
    SigLIP's probabilities, sorted; the reading is multi-label, so each score stands alone
    (no softmax: they need not sum to one)."""
    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-16-SigLIP", pretrained=None).eval()
    images, _ = digit_images(3, size=model.visual.image_size[0])
    # SigLIP's tokenizer is a download: the class texts are token ids drawn at random
    tokens = torch.randint(1, model.text.vocab_size, (len(DIGITS), model.context_length))
    with torch.no_grad():
        # a scale and bias that spread the scores (the init's give every label 5e-5)
        model.logit_scale.fill_(math.log(10.0))
        model.logit_bias.fill_(0.0)
        image = model.encode_image(images, normalize=True)
        text = model.encode_text(tokens, normalize=True)
        scale, bias = model.logit_scale.exp(), model.logit_bias
        reference = torch.sigmoid(image @ text.T * scale + bias)
    handle = vlmscope.instrument_encoder(
        model, labels=DIGITS, top_k=10,
        zero_shot=vlmscope.ZeroShot(text, logit_scale=scale, logit_bias=bias))
    assert handle.multi_label
    with vlmscope.trace_batch(["a", "b", "c"]), torch.no_grad():
        model.encode_image(images)
    handle.uninstrument()
    span = _encoder_span(memory)
    assert span.attributes[cv.VISION_ENCODER_MULTI_LABEL] is True
    labels, scores = _recorded(span, 3)
    expected, order = reference.sort(dim=1, descending=True)
    torch.testing.assert_close(scores, expected, rtol=0, atol=1e-5)
    assert labels == [[DIGITS[i] for i in row] for row in order.tolist()]
    assert not torch.allclose(scores.sum(dim=1), torch.ones(3))


def test_a_siglip_models_zero_shot_reading_is_its_own(memory):
    """transformers' ``SiglipModel`` (built from config) with its own text features, scale
    and bias: the recorded scores are the sigmoid of the model's ``logits_per_image``."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.SiglipConfig(
        vision_config={"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                       "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
        text_config={"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "vocab_size": 50})
    model = transformers.SiglipModel(config).eval()
    with torch.no_grad():  # a bias and scale of a trained model, not the init's
        model.logit_scale.fill_(2.0)
        model.logit_bias.fill_(-1.5)
    images, _ = digit_images(2, size=32)
    texts = torch.tensor([[1, 5, 9, 2], [1, 7, 3, 2], [1, 8, 8, 2]])
    with torch.no_grad():
        reference = torch.sigmoid(model(input_ids=texts, pixel_values=images).logits_per_image)
        text_embeddings = model.get_text_features(input_ids=texts)
        text_embeddings = getattr(text_embeddings, "pooler_output", text_embeddings)
    handle = vlmscope.instrument_encoder(
        model, labels=["cat", "dog", "fox"], top_k=3, zero_shot=vlmscope.ZeroShot(
            text_embeddings, logit_scale=model.logit_scale.exp(), logit_bias=model.logit_bias))
    with vlmscope.trace_batch(["a", "b"]), torch.no_grad():
        model.get_image_features(pixel_values=images)
    handle.uninstrument()
    span = _encoder_span(memory)
    _, scores = _recorded(span, 2)
    ids = torch.tensor(span.attributes[cv.VISION_ENCODER_TOP_K_CLASS_IDS]).reshape(2, 3)
    torch.testing.assert_close(scores, reference.gather(1, ids), rtol=0, atol=1e-5)
    assert ids[:, 0].tolist() == reference.argmax(1).tolist()
