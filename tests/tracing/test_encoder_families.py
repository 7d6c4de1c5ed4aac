"""The encoders people use, instrumented with no arguments: torchvision, timm, transformers
(ResNet models, backbones, timm wrappers) and open_clip's ModifiedResNet towers, and the
vision transformers of timm (ViT, DeiT, EVA, BEiT), open_clip and transformers (CLIP,
SigLIP and ViT vision models), all built from config. Each: outputs bit-identical to the
bare model, one record per image, its real name, depth and pooled dimension, a top-k only
when there is a real classifier, and no hook left after ``uninstrument()``."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
transformers = pytest.importorskip("transformers")
timm = pytest.importorskip("timm")
open_clip = pytest.importorskip("open_clip")

import vlmscope  # noqa: E402
from tests.helpers import digit_images  # noqa: E402
from vlmscope import conventions as cv  # noqa: E402

ROWS = ["a", "b", "c"]


def _all_hooks(model) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def _main_tensor(output):
    """The tensor a model's output stands for (logits, pooled output, last feature map)."""
    if isinstance(output, torch.Tensor):
        return output
    for key in ("logits", "pooler_output", "image_embeds"):
        if getattr(output, key, None) is not None:
            return getattr(output, key)
    return output.feature_maps[-1]


def _hf_config(**kwargs):
    return transformers.ResNetConfig(embedding_size=16, hidden_sizes=[16, 32, 64, 128],
                                     depths=[2, 2, 2, 2], layer_type="basic", **kwargs)


def _torchvision_headless():
    model = torchvision.models.resnet18(weights=None)
    model.fc = torch.nn.Identity()
    return model


def _open_clip_tower(name: str, image_size: int):
    """open_clip's vision tower for ``name``, built from open_clip's own config the way
    ``open_clip.create_model`` builds it (random weights, a small image size)."""
    from open_clip.modified_resnet import ModifiedResNet

    config = open_clip.get_model_config(name)
    vision = config["vision_cfg"]
    return ModifiedResNet(vision["layers"], config["embed_dim"], vision["width"] * 32 // 64,
                          image_size, vision["width"])


def _open_clip_vit_tower(name: str, image_size: int):
    """open_clip's ViT vision tower for ``name``, built from its config by open_clip's own
    builder (random weights, a small image size)."""
    from open_clip.model import CLIPVisionCfg, _build_vision_tower

    config = open_clip.get_model_config(name)
    vision = CLIPVisionCfg(**{**config["vision_cfg"], "image_size": image_size})
    return _build_vision_tower(config["embed_dim"], vision)


def _hf_vision(config_class, **kwargs):
    return config_class(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                        num_attention_heads=2, image_size=32, patch_size=8, **kwargs)


# Vision transformers: (model builder, image size, name, depth, pooled dimension, classes or
# None, the library's own pooled output of a batch).
VIT_FAMILIES: dict[str, tuple[Callable, int, str, int | None, int, int | None, Callable]] = {
    "timm-vit": (lambda: timm.create_model("vit_tiny_patch16_224", num_classes=7, img_size=32),
                 32, "timm/vit_tiny_patch16_224", 12, 192, 7,
                 lambda m, x: m.forward_head(m.forward_features(x), pre_logits=True)),
    "timm-deit-embedding": (
        lambda: timm.create_model("deit_tiny_patch16_224", num_classes=0, img_size=32), 32,
        "timm/deit_tiny_patch16_224", 12, 192, None,
        lambda m, x: m.forward_head(m.forward_features(x), pre_logits=True)),
    "timm-eva02": (lambda: timm.create_model("eva02_tiny_patch14_224", num_classes=3,
                                             img_size=28), 28,
                   "timm/eva02_tiny_patch14_224", 12, 192, 3,
                   lambda m, x: m.forward_head(m.forward_features(x), pre_logits=True)),
    "timm-beit": (lambda: timm.create_model("beit_base_patch16_224", num_classes=4,
                                            img_size=32), 32,
                  "timm/beit_base_patch16_224", 12, 768, 4,
                  lambda m, x: m.forward_head(m.forward_features(x), pre_logits=True)),
    # timm models that pool in a function with no module to hook: the classifier's input
    **{f"timm-{name}": (lambda name=name, options=options: timm.create_model(
        name, num_classes=3, **options), 64, f"timm/{name}", None, dim, 3,
        lambda m, x: m.forward_head(m.forward_features(x), pre_logits=True))
       for name, options, dim in [("pit_ti_224", {"img_size": 64}, 256),
                                  ("coat_tiny", {"img_size": 64}, 152),
                                  ("mambaout_femto", {}, 1152), ("repvit_m1", {}, 384)]},
    "open_clip-ViT-S-32": (lambda: _open_clip_vit_tower("ViT-S-32", 64), 64,
                           "open_clip/ViT-S-32", 12, 384, None, lambda m, x: m(x)),
    "hf-clip-vision": (lambda: transformers.CLIPVisionModel(_hf_vision(
        transformers.CLIPVisionConfig)), 32, "CLIPVisionModel", 2, 64, None,
        lambda m, x: m(x).pooler_output),
    "hf-clip-vision-projection": (lambda: transformers.CLIPVisionModelWithProjection(
        _hf_vision(transformers.CLIPVisionConfig, projection_dim=24)), 32,
        "CLIPVisionModelWithProjection", 2, 24, None, lambda m, x: m(x).image_embeds),
    "hf-siglip-vision": (lambda: transformers.SiglipVisionModel(_hf_vision(
        transformers.SiglipVisionConfig)), 32, "SiglipVisionModel", 2, 64, None,
        lambda m, x: m(x).pooler_output),
    "hf-vit-pooler": (lambda: transformers.ViTModel(_hf_vision(transformers.ViTConfig)), 32,
                      "ViTModel", 2, 64, None, lambda m, x: m(x).pooler_output),
}

def _pooler_output(model, images):
    return model(images).pooler_output.flatten(1)  # RegNet's is N x C x 1 x 1


# transformers vision models that pool in their forward, recognised by their declared
# output (pooler_output): as VIT_FAMILIES; staged models (``depths``) have no depth.
HF_POOLED_FAMILIES: dict[str, tuple[Callable, int, str, int | None, int, None, Callable]] = {
    name: (build, 32, cls, depth, dim, None, _pooler_output)
    for name, build, cls, depth, dim in [
        ("hf-blip-vision", lambda: transformers.BlipVisionModel(
            _hf_vision(transformers.BlipVisionConfig)), "BlipVisionModel", 2, 64),
        ("hf-blip2-vision", lambda: transformers.Blip2VisionModel(
            _hf_vision(transformers.Blip2VisionConfig)), "Blip2VisionModel", 2, 64),
        ("hf-instructblip-vision", lambda: transformers.InstructBlipVisionModel(
            _hf_vision(transformers.InstructBlipVisionConfig)), "InstructBlipVisionModel",
         2, 64),
        ("hf-dinov2", lambda: transformers.Dinov2Model(_hf_vision(transformers.Dinov2Config)),
         "Dinov2Model", 2, 64),
        ("hf-deit", lambda: transformers.DeiTModel(_hf_vision(transformers.DeiTConfig)),
         "DeiTModel", 2, 64),
        ("hf-beit-mean-pooling", lambda: transformers.BeitModel(
            _hf_vision(transformers.BeitConfig, use_mean_pooling=True)), "BeitModel", 2, 64),
        ("hf-convnext", lambda: transformers.ConvNextModel(transformers.ConvNextConfig(
            hidden_sizes=[8, 16, 32, 64], depths=[1, 1, 1, 1])), "ConvNextModel", None, 64),
        ("hf-convnextv2", lambda: transformers.ConvNextV2Model(transformers.ConvNextV2Config(
            hidden_sizes=[8, 16, 32, 64], depths=[1, 1, 1, 1])), "ConvNextV2Model", None, 64),
        ("hf-swin", lambda: transformers.SwinModel(transformers.SwinConfig(
            image_size=32, patch_size=4, embed_dim=16, depths=[1, 1], num_heads=[1, 2],
            window_size=4)), "SwinModel", None, 32),
        ("hf-regnet", lambda: transformers.RegNetModel(transformers.RegNetConfig(
            hidden_sizes=[8, 16, 32, 64], depths=[1, 1, 1, 1], groups_width=8)),
         "RegNetModel", None, 64),
        ("hf-mobilevit", lambda: transformers.MobileViTModel(transformers.MobileViTConfig(
            image_size=32, hidden_sizes=[16, 24, 32],
            neck_hidden_sizes=[8, 8, 16, 16, 24, 24, 32])), "MobileViTModel", None, 32),
    ]
}

OWN_POOLED_FAMILIES = {**VIT_FAMILIES, **HF_POOLED_FAMILIES}
"""Encoders whose own output (or head's input) is the pooled embedding."""

# (model builder, image size, name, depth, pooled dimension, classes or None)
FAMILIES: dict[str, tuple[Callable, int, str, int, int, int | None]] = {
    "torchvision-resnet18": (lambda: torchvision.models.resnet18(weights=None, num_classes=10),
                             32, "resnet18", 18, 512, 10),
    "torchvision-headless": (_torchvision_headless, 32, "resnet18", 18, 512, None),
    "timm-resnet18": (lambda: timm.create_model("resnet18", num_classes=7), 32,
                      "timm/resnet18", 18, 512, 7),
    "timm-resnet50-embedding": (lambda: timm.create_model("resnet50", num_classes=0), 32,
                                "timm/resnet50", 50, 2048, None),
    "timm-resnetv2_50": (lambda: timm.create_model("resnetv2_50", num_classes=5), 32,
                         "timm/resnetv2_50", 50, 2048, 5),
    # its ``stages`` is a method, not a list of stages
    "timm-hrnet": (lambda: timm.create_model("hrnet_w18_small", num_classes=3), 64,
                   "timm/hrnet_w18_small", None, 2048, 3),
    "hf-resnet-model": (lambda: transformers.ResNetModel(_hf_config()), 32,
                        "resnet18", 18, 128, None),
    "hf-resnet-backbone": (lambda: transformers.ResNetBackbone(_hf_config()), 32,
                           "resnet18", 18, 128, None),
    "hf-classifier-without-labels": (
        lambda: transformers.ResNetForImageClassification(_hf_config(num_labels=0)), 32,
        "resnet18", 18, 128, None),
    "hf-timm-wrapper-classifier": (
        lambda: transformers.TimmWrapperForImageClassification(
            transformers.TimmWrapperConfig(architecture="resnet18", num_labels=4)), 32,
        "timm/resnet18", 18, 512, 4),
    "hf-timm-wrapper-model": (
        lambda: transformers.TimmWrapperModel(
            transformers.TimmWrapperConfig(architecture="resnet18")), 32,
        "timm/resnet18", 18, 512, None),
    "open_clip-RN50": (lambda: _open_clip_tower("RN50", 64), 64, "open_clip/RN50", 50, 1024,
                       None),
}

SLOW_FAMILIES: dict[str, tuple[Callable, int, str, int, int, int | None]] = {
    "torchvision-resnext50": (lambda: torchvision.models.resnext50_32x4d(weights=None), 32,
                              "resnext50_32x4d", 50, 2048, 1000),
    "torchvision-wide50": (lambda: torchvision.models.wide_resnet50_2(weights=None), 32,
                           "wide_resnet50_2", 50, 2048, 1000),
    "timm-resnext50": (lambda: timm.create_model("resnext50_32x4d", num_classes=3), 32,
                       "timm/resnext50_32x4d", 50, 2048, 3),
    "timm-wide50": (lambda: timm.create_model("wide_resnet50_2", num_classes=3), 32,
                    "timm/wide_resnet50_2", 50, 2048, 3),
    "timm-resnet50d": (lambda: timm.create_model("resnet50d", num_classes=3), 32,
                       "timm/resnet50d", 50, 2048, 3),
    "timm-resnetrs50": (lambda: timm.create_model("resnetrs50", num_classes=3), 32,
                        "timm/resnetrs50", 50, 2048, 3),
    "timm-seresnet50": (lambda: timm.create_model("seresnet50", num_classes=3), 32,
                        "timm/seresnet50", 50, 2048, 3),
    "timm-resnet101": (lambda: timm.create_model("resnet101", num_classes=3), 32,
                       "timm/resnet101", 101, 2048, 3),
    "open_clip-RN101": (lambda: _open_clip_tower("RN101", 64), 64, "open_clip/RN101", 101,
                        512, None),
    "open_clip-RN50x4": (lambda: _open_clip_tower("RN50x4", 64), 64, "open_clip/RN50x4", 80,
                         640, None),
}


def _assert_vectors(attributes, expected) -> None:
    """Each image's recorded vector equals its row of ``expected``, to 1e-6."""
    for i, row in enumerate(expected):
        vector = torch.tensor(attributes[cv.embedding_vector_key(i)])
        torch.testing.assert_close(vector, row.float(), rtol=0, atol=1e-6)


def _encoder_spans(memory: InMemorySpanExporter) -> list:
    return [s for s in memory.get_finished_spans()
            if s.attributes.get(cv.VLMSCOPE_SPAN_ROLE) == cv.ROLE_ENCODER]


def _check_family(memory, build, size, name, depth, dim, classes) -> None:
    torch.manual_seed(0)
    model = build().eval()
    images, _ = digit_images(len(ROWS), size=size)
    hooks_before = _all_hooks(model)
    with torch.no_grad():
        bare = _main_tensor(model(images))
    handle = vlmscope.instrument_encoder(model)
    with vlmscope.trace_batch(ROWS), torch.no_grad():
        instrumented = _main_tensor(model(images))
    handle.uninstrument()
    assert _all_hooks(model) == hooks_before
    assert torch.equal(bare, instrumented)

    (span,) = _encoder_spans(memory)
    attrs = span.attributes
    assert attrs[cv.EMBEDDING_MODEL_NAME] == name
    assert attrs[cv.VISION_ENCODER_ARCHITECTURE] == name
    assert attrs.get(cv.VISION_ENCODER_DEPTH) == depth
    assert attrs[cv.VISION_ENCODER_EMBEDDING_DIM] == dim
    assert attrs[cv.VISION_ENCODER_BATCH_SIZE] == len(ROWS)
    assert list(attrs[cv.VLMSCOPE_ROW_IDS]) == ROWS
    assert len(attrs[cv.VISION_ENCODER_EMBEDDING_L2_NORM]) == len(ROWS)
    assert len(attrs[cv.VISION_IMAGE_SHA256]) == len(ROWS)
    assert cv.VLMSCOPE_INSTRUMENTATION_ERROR not in attrs
    if classes is None:  # embedding only: no fake classes from the pooled features
        assert cv.VISION_ENCODER_TOP_K_LABELS not in attrs
        assert cv.VISION_ENCODER_CLASSIFIER not in attrs
    else:
        top1 = bare.flatten(1).argmax(dim=1).tolist()
        assert list(attrs[cv.VISION_ENCODER_TOP_K_CLASS_IDS][::attrs[cv.VISION_ENCODER_TOP_K]]
                    ) == top1
        assert attrs[cv.VISION_ENCODER_TOP_K] == min(5, classes)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_a_known_encoder_is_instrumented_without_arguments(family, memory):
    _check_family(memory, *FAMILIES[family])


@pytest.mark.parametrize("family", list(OWN_POOLED_FAMILIES))
def test_a_known_vision_transformer_is_instrumented_without_arguments(family, memory):
    _check_family(memory, *OWN_POOLED_FAMILIES[family][:6])


@pytest.mark.parametrize("family", list(OWN_POOLED_FAMILIES))
def test_a_vision_transformers_embedding_is_its_librarys_own_pooled_output(family, memory):
    """The recorded vector of each image is what the library itself calls the pooled
    features: timm's ``forward_head(pre_logits=True)``, open_clip's tower output
    (``encode_image``), transformers' ``pooler_output`` or ``image_embeds``."""
    build, size, *_, pooled_of = OWN_POOLED_FAMILIES[family]
    torch.manual_seed(1)
    model = build().eval()
    images, _ = digit_images(2, size=size)
    with torch.no_grad():
        expected = pooled_of(model, images)
    handle = vlmscope.instrument_encoder(model, capture_embeddings=True)
    with vlmscope.trace_batch(["a", "b"]), torch.no_grad():
        model(images)
    handle.uninstrument()
    (span,) = _encoder_spans(memory)
    assert expected.shape[0] == 2
    _assert_vectors(span.attributes, expected)


def _hf_small(config_class, **kwargs):
    return config_class(num_labels=5, **kwargs)


def _classifier_reading(model, images, head: str, depth, memory, logits_of=lambda o: o):
    """``model`` instrumented with no arguments and run on ``images`` (its output unchanged
    by the hooks): its encoder span's attributes, checked to name the model's class,
    ``depth`` and ``head``'s input as the layer, and the model's logits."""
    with torch.no_grad():
        logits = logits_of(model(images))
    handle = vlmscope.instrument_encoder(model, capture_embeddings=True)
    with vlmscope.trace_batch(ROWS), torch.no_grad():
        assert torch.equal(logits_of(model(images)), logits)
    handle.uninstrument()
    (span,) = _encoder_spans(memory)
    attrs = span.attributes
    assert attrs[cv.VISION_ENCODER_ARCHITECTURE] == type(model).__name__
    assert attrs.get(cv.VISION_ENCODER_DEPTH) == depth
    assert attrs[cv.VISION_ENCODER_LAYER] == f"{head}:input"
    return attrs, logits


def _randomised(model):
    """``model`` with every parameter drawn from N(0, 0.1): HGNetV2 and PP-LCNet start with
    logits of 1e-12, all tied in the softmax, and a tie has no argmax to compare."""
    for parameter in model.parameters():
        torch.nn.init.normal_(parameter, std=0.1)
    return model


# transformers' image classifiers: (model builder, its pooled features of a batch, depth,
# the head whose input they are)
HF_CLASSIFIERS: dict[str, tuple[Callable, Callable, int | None, str]] = {
    "vit": (lambda: transformers.ViTForImageClassification(
        _hf_vision(transformers.ViTConfig, num_labels=5)),
        lambda m, x: m.vit(x).last_hidden_state[:, 0], 2, "classifier"),
    "deit": (lambda: transformers.DeiTForImageClassification(
        _hf_vision(transformers.DeiTConfig, num_labels=5)),
        lambda m, x: m.deit(x).last_hidden_state[:, 0], 2, "classifier"),
    "dinov2": (lambda: transformers.Dinov2ForImageClassification(
        _hf_vision(transformers.Dinov2Config, num_labels=5)),
        lambda m, x: torch.cat([m.dinov2(x).last_hidden_state[:, 0],
                                m.dinov2(x).last_hidden_state[:, 1:].mean(dim=1)], dim=1), 2,
        "classifier"),
    "swin": (lambda: transformers.SwinForImageClassification(_hf_small(
        transformers.SwinConfig, image_size=32, patch_size=4, embed_dim=16, depths=[1, 1],
        num_heads=[2, 2], window_size=2)), lambda m, x: m.swin(x).pooler_output, None,
        "classifier"),
    "convnext": (lambda: transformers.ConvNextForImageClassification(_hf_small(
        transformers.ConvNextConfig, hidden_sizes=[8, 16], depths=[1, 1], num_stages=2)),
        lambda m, x: m.convnext(x).pooler_output, None, "classifier"),
    # ``classifier`` is a list of the pooling layers there; ``fc`` gives the logits
    "hgnet_v2": (lambda: _randomised(transformers.HGNetV2ForImageClassification(
        _hf_small(transformers.HGNetV2Config))),
        lambda m, x: m.flatten(m.avg_pool(m.encoder(m.embedder(x)).last_hidden_state)), None,
        "fc"),
    "textnet": (lambda: transformers.TextNetForImageClassification(
        _hf_small(transformers.TextNetConfig)),
        lambda m, x: m.flatten(m.avg_pool(m.textnet(x).last_hidden_state)), None, "fc"),
    # its output names the logits last_hidden_state
    "pp_lcnet": (lambda: _randomised(transformers.PPLCNetForImageClassification(
        _hf_small(transformers.PPLCNetConfig))),
        lambda m, x: m.flatten(m.act_fn(m.last_convolution(m.avg_pool(
            m.encoder(x).last_hidden_state))) * (1 - m.hidden_dropout_prob)), None, "head"),
}


@pytest.mark.parametrize("family", list(HF_CLASSIFIERS))
def test_a_transformers_image_classifier_records_its_classifiers_input(family, memory):
    """However the model pools (the first token, a pooler, DINOv2's token and patch mean),
    the recorded vector is what its head reads, computed here from the backbone's own
    output, and the top-1 is the logits' argmax."""
    build, pooled_of, depth, head = HF_CLASSIFIERS[family]
    torch.manual_seed(4)
    model = build().eval()
    images, _ = digit_images(3, size=32)
    with torch.no_grad():
        expected = pooled_of(model, images)
    attrs, logits = _classifier_reading(
        model, images, head, depth, memory,
        lambda output: output.logits if "logits" in output else output.last_hidden_state)
    assert attrs[cv.VISION_ENCODER_EMBEDDING_DIM] == expected.shape[1]
    for i in range(len(ROWS)):
        vector = torch.tensor(attrs[cv.embedding_vector_key(i)])
        torch.testing.assert_close(vector, expected[i].float(), rtol=0, atol=1e-5)
    k = attrs[cv.VISION_ENCODER_TOP_K]
    assert list(attrs[cv.VISION_ENCODER_TOP_K_CLASS_IDS][::k]) == logits.argmax(dim=1).tolist()


# torchvision's other classifiers: (builder name, extra arguments, the head whose input is
# recorded, depth); each built with 5 classes, run on 64x64 digits
TORCHVISION_CLASSIFIERS = [
    ("vit_b_16", {"image_size": 64}, "heads.head", 12),
    ("swin_t", {}, "head", None),
    ("convnext_tiny", {}, "classifier.2", None),
    ("efficientnet_b0", {}, "classifier.1", None),
    ("regnet_y_400mf", {}, "fc", None),
    ("mobilenet_v3_small", {}, "classifier.3", None),
    ("densenet121", {}, "classifier", None),
    ("googlenet", {"aux_logits": False, "init_weights": True}, "fc", None),
    ("vgg11", {}, "classifier.6", None),
    ("squeezenet1_0", {}, "classifier", None),
]


@pytest.mark.parametrize(("name", "options", "head", "depth"), TORCHVISION_CLASSIFIERS,
                         ids=[c[0] for c in TORCHVISION_CLASSIFIERS])
def test_a_torchvision_classifier_records_its_last_layers_input(name, options, head, depth,
                                                               memory):
    """torchvision's ViT, Swin, ConvNeXt, EfficientNet, RegNet, MobileNet, DenseNet,
    GoogLeNet and VGG, instrumented with no arguments: each recorded vector, put through the
    model's last linear layer, gives the model's own logits (so it is that layer's input),
    and the top-k scores are the logits' softmax, sorted. SqueezeNet's classifier is a
    convolution: its vector is the mean of the map going into it."""
    torch.manual_seed(6)
    model = torchvision.models.get_model(name, weights=None, num_classes=5, **options).eval()
    images, _ = digit_images(3, size=64)
    attrs, logits = _classifier_reading(model, images, head, depth, memory)
    vectors = torch.tensor([attrs[cv.embedding_vector_key(i)] for i in range(len(ROWS))])
    layer = model.get_submodule(head)
    with torch.no_grad():
        if name == "squeezenet1_0":
            torch.testing.assert_close(vectors, model.features(images).mean(dim=(2, 3)),
                                       rtol=0, atol=1e-5)
        else:
            torch.testing.assert_close(layer(vectors), logits, rtol=1e-4, atol=1e-5)
    k = attrs[cv.VISION_ENCODER_TOP_K]
    scores = torch.tensor(attrs[cv.VISION_ENCODER_TOP_K_SCORES]).reshape(len(ROWS), k)
    torch.testing.assert_close(scores, logits.softmax(dim=1).sort(dim=1, descending=True)
                               .values[:, :k], rtol=0, atol=1e-6)


@pytest.mark.parametrize(("name", "head", "features_of"), [
    ("vit_b_16", "heads",
     lambda m, x: m.encoder(torch.cat([m.class_token.expand(x.shape[0], -1, -1),
                                       m._process_input(x)], dim=1))[:, 0]),
    ("efficientnet_b0", "classifier", lambda m, x: m.avgpool(m.features(x)).flatten(1))])
def test_a_torchvision_model_whose_head_is_an_identity_records_its_embedding(
        name, head, features_of, memory):
    """The usual way to embed images with torchvision: the head replaced by
    ``nn.Identity``. The recorded vector is the model's own output (the head's input), with
    no top-k, not a layer inside the backbone taken for the head."""
    torch.manual_seed(7)
    options = {"image_size": 64} if name == "vit_b_16" else {}
    model = torchvision.models.get_model(name, weights=None, **options).eval()
    setattr(model, head, torch.nn.Identity())
    images, _ = digit_images(2, size=64)
    with torch.no_grad():
        embeddings = model(images)
        torch.testing.assert_close(features_of(model, images), embeddings)
    handle = vlmscope.instrument_encoder(model, capture_embeddings=True)
    with vlmscope.trace_batch(["a", "b"]), torch.no_grad():
        model(images)
    handle.uninstrument()
    (span,) = _encoder_spans(memory)
    assert span.attributes[cv.VISION_ENCODER_LAYER] == f"{head}:input"
    assert cv.VISION_ENCODER_TOP_K_LABELS not in span.attributes
    _assert_vectors(span.attributes, embeddings)


def test_a_torchvision_detector_is_not_taken_for_a_classifier():
    """A detection model's last linear layer boxes or scores regions, not the image: it is
    asked for its layer."""
    model = torchvision.models.detection.fasterrcnn_mobilenet_v3_large_fpn(
        weights=None, weights_backbone=None, num_classes=3)
    with pytest.raises(ValueError, match="does not know where the pooled features"):
        vlmscope.instrument_encoder(model)


def test_a_transformers_classifier_averaging_two_heads_asks_for_its_layer():
    """SwiftFormer averages ``head`` and ``dist_head`` in its forward: no module gives its
    logits, so vlmscope asks for the layer rather than read one head as the model's."""
    model = transformers.SwiftFormerForImageClassification(
        _hf_small(transformers.SwiftFormerConfig)).eval()
    with pytest.raises(ValueError, match="does not know where the pooled features"):
        vlmscope.instrument_encoder(model)


def test_a_layer_named_with_input_records_what_goes_into_that_module(memory):
    torch.manual_seed(5)
    model = timm.create_model("vit_tiny_patch16_224", num_classes=3, img_size=32).eval()
    images, _ = digit_images(2, size=32)
    with torch.no_grad():
        expected = model.forward_head(model.forward_features(images), pre_logits=True)
    handle = vlmscope.instrument_encoder(model, layer="head:input", capture_embeddings=True)
    with vlmscope.trace_batch(["a", "b"]), torch.no_grad():
        model(images)
    handle.uninstrument()
    (span,) = _encoder_spans(memory)
    assert span.attributes[cv.VISION_ENCODER_LAYER] == "head:input"
    _assert_vectors(span.attributes, expected)


@pytest.mark.parametrize("wrap", ["torch.compile", "DataParallel"])
def test_a_compiled_or_wrapped_encoder_is_the_model_it_wraps(wrap, memory):
    """``torch.compile(model)`` (Dynamo with its eager backend: the same graph capture and
    hook handling without generating code) and ``nn.DataParallel(model)`` are recognised as
    the model inside, their layers named through the wrapper; the reading and the
    checkpoint are the bare model's."""
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=10).eval()
    images, _ = digit_images(2, size=32)
    with torch.no_grad():
        bare = model(images)
        pooled = torch.flatten(model.avgpool(model.layer4(model.layer3(model.layer2(
            model.layer1(model.maxpool(model.relu(model.bn1(model.conv1(images))))))))), 1)
    wrapped = (torch.compile(model, backend="eager") if wrap == "torch.compile"
               else torch.nn.DataParallel(model))
    handle = vlmscope.instrument_encoder(wrapped, capture_embeddings=True)
    with vlmscope.trace_batch(["a", "b"]), torch.no_grad():
        out = wrapped(images)
    handle.uninstrument()
    assert torch.equal(out, bare)
    (span,) = _encoder_spans(memory)
    attrs = span.attributes
    assert attrs[cv.VISION_ENCODER_ARCHITECTURE] == "resnet18"
    assert attrs[cv.VISION_ENCODER_DEPTH] == 18
    assert cv.VLMSCOPE_INSTRUMENTATION_ERROR not in attrs
    # the same weights are the same checkpoint, wrapped or not
    assert attrs[cv.VISION_ENCODER_CHECKPOINT_SHA256] == vlmscope.checkpoint_sha256(wrapped) \
        == vlmscope.checkpoint_sha256(model)
    assert list(attrs[cv.VISION_ENCODER_TOP_K_CLASS_IDS][::attrs[cv.VISION_ENCODER_TOP_K]]) \
        == bare.argmax(dim=1).tolist()
    _assert_vectors(attrs, pooled)


def _hf_clip():
    torch.manual_seed(0)
    config = transformers.CLIPConfig(
        vision_config={"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                       "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
        text_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "vocab_size": 50}, projection_dim=16)
    return transformers.CLIPModel(config).eval()


def test_a_dual_encoder_is_instrumented_through_its_image_tower(memory):
    """``instrument_encoder(CLIPModel)``: CLIP's users embed images with
    ``get_image_features``, which runs the model's ``vision_model``, not its ``forward``; the
    tower is instrumented, each image's vector is ``get_image_features``' (the tower's
    pooled output through ``visual_projection``), and the checkpoint covers both."""
    model = _hf_clip()
    images, _ = digit_images(2, size=32)
    with torch.no_grad():
        projected = model.get_image_features(pixel_values=images).pooler_output
    handle = vlmscope.instrument_encoder(model, capture_embeddings=True)
    assert handle.model is model.vision_model
    with vlmscope.trace_batch(["a", "b"]), torch.no_grad():
        features = model.get_image_features(pixel_values=images).pooler_output
    checkpoint = handle.checkpoint_sha256
    with torch.no_grad():
        model.visual_projection.weight.mul_(2)  # a fine-tuned projection: another checkpoint
    assert handle.checkpoint_sha256 != checkpoint
    handle.uninstrument()
    torch.testing.assert_close(features, projected, rtol=0, atol=0)
    (span,) = _encoder_spans(memory)
    assert span.attributes[cv.VISION_ENCODER_ARCHITECTURE] == "CLIPVisionModel"
    assert span.attributes[cv.VISION_ENCODER_EMBEDDING_DIM] == 16
    assert span.attributes[cv.VISION_ENCODER_CHECKPOINT_SHA256] == checkpoint
    _assert_vectors(span.attributes, projected)


def test_a_clip_models_zero_shot_reading_is_its_own(memory):
    """Zero-shot through ``instrument_encoder(CLIPModel, zero_shot=...)`` with the class
    texts' ``get_text_features`` and CLIP's logit scale: the recorded top-k are the softmax of
    the model's own ``logits_per_image``."""
    model = _hf_clip()
    images, _ = digit_images(2, size=32)
    texts = torch.tensor([[1, 5, 9, 2], [1, 7, 3, 2], [1, 8, 8, 2]])
    with torch.no_grad():
        reference = model(input_ids=texts, pixel_values=images).logits_per_image.softmax(1)
        text_embeddings = model.get_text_features(input_ids=texts).pooler_output
    handle = vlmscope.instrument_encoder(
        model, labels=["cat", "dog", "fox"], top_k=3,
        zero_shot=vlmscope.ZeroShot(text_embeddings, logit_scale=model.logit_scale.exp()))
    with vlmscope.trace_batch(["a", "b"]), torch.no_grad():
        model.get_image_features(pixel_values=images)
    handle.uninstrument()
    (span,) = _encoder_spans(memory)
    scores = torch.tensor(span.attributes[cv.VISION_ENCODER_TOP_K_SCORES]).reshape(2, 3)
    ids = torch.tensor(span.attributes[cv.VISION_ENCODER_TOP_K_CLASS_IDS]).reshape(2, 3)
    torch.testing.assert_close(scores, reference.gather(1, ids), rtol=0, atol=1e-5)
    assert ids[:, 0].tolist() == reference.argmax(1).tolist()


def test_an_open_clip_model_is_instrumented_through_its_visual_tower(memory):
    """``open_clip.create_model(...)`` as users hold it: ``encode_image`` runs the model's
    ``visual`` tower, which is instrumented; each vector is ``encode_image``'s."""
    torch.manual_seed(0)
    model = open_clip.create_model("ViT-S-32", pretrained=None, force_image_size=64).eval()
    images, _ = digit_images(2, size=64)
    with torch.no_grad():
        expected = model.encode_image(images)
    handle = vlmscope.instrument_encoder(model, capture_embeddings=True)
    assert handle.model is model.visual
    with vlmscope.trace_batch(["a", "b"]), torch.no_grad():
        model.encode_image(images)
    handle.uninstrument()
    (span,) = _encoder_spans(memory)
    assert span.attributes[cv.VISION_ENCODER_ARCHITECTURE] == "open_clip/ViT-S-32"
    _assert_vectors(span.attributes, expected)


@pytest.mark.parametrize(("name", "depth"), [("ViT-B-16-SigLIP", 12), ("convnext_tiny", None),
                                           ("MobileCLIP2-S0", None)])
def test_an_open_clip_model_with_a_timm_tower_is_instrumented_through_it(name, depth, memory):
    """SigLIP, ConvNeXt and MobileCLIP in open_clip have a timm trunk and open_clip's own
    pooling or projection head (``TimmModel``): the tower's output is ``encode_image``'s
    (before its normalising), and the architecture is open_clip's config name."""
    torch.manual_seed(0)
    model = open_clip.create_model(name, pretrained=None).eval()
    size = model.visual.image_size[0]
    images, _ = digit_images(2, size=size)
    with torch.no_grad():
        expected = model.encode_image(images)
    handle = vlmscope.instrument_encoder(model, capture_embeddings=True)
    assert handle.model is model.visual
    with vlmscope.trace_batch(["a", "b"]), torch.no_grad():
        model.encode_image(images, normalize=True)
    handle.uninstrument()
    (span,) = _encoder_spans(memory)
    assert span.attributes[cv.VISION_ENCODER_ARCHITECTURE] == f"open_clip/{name}"
    assert span.attributes.get(cv.VISION_ENCODER_DEPTH) == depth
    _assert_vectors(span.attributes, expected)


def test_a_transformers_model_built_without_its_pooler_is_asked_for_its_layer():
    """ViT declares a pooled output, but built with ``add_pooling_layer=False`` it gives
    none: it is not taken for a pooling model."""
    model = transformers.ViTModel(_hf_vision(transformers.ViTConfig), add_pooling_layer=False)
    with pytest.raises(ValueError, match="pooled features of a ViTModel"):
        vlmscope.instrument_encoder(model)


def test_a_timm_model_with_two_heads_is_asked_for_its_layer_not_crashed_on():
    """A distilled DeiT averages two heads in its forward (``get_classifier`` gives both):
    no module is its classifier, and vlmscope asks for the layer instead of failing on the
    pair."""
    model = timm.create_model("deit_tiny_distilled_patch16_224", num_classes=3, img_size=32)
    with pytest.raises(ValueError, match="pooled features of a VisionTransformerDistilled"):
        vlmscope.instrument_encoder(model)


def test_an_encoder_with_no_pooling_layer_is_asked_for_its_layer_with_its_top_level_layers():
    model = torch.nn.Sequential()
    model.add_module("stem", torch.nn.Conv2d(3, 4, 3))
    model.add_module("body", torch.nn.ReLU())
    with pytest.raises(ValueError, match=r"pass layer=.*no layer pools here; its top-level "
                                         r"layers: \['stem', 'body'\]"):
        vlmscope.instrument_encoder(model)


@pytest.mark.slow
@pytest.mark.parametrize("family", list(SLOW_FAMILIES))
def test_a_bigger_known_encoder_is_instrumented_without_arguments(family, memory):
    _check_family(memory, *SLOW_FAMILIES[family])


def test_pooled_features_are_the_global_average_of_the_hooked_map(memory):
    torch.manual_seed(0)
    model = transformers.ResNetBackbone(_hf_config()).eval()
    images, _ = digit_images(2, size=64)  # stage 4 gives a 2x2 map per image
    handle = vlmscope.instrument_encoder(model, capture_embeddings=True)
    with vlmscope.trace_batch(["a", "b"]), torch.no_grad():
        feature_map = model(images).feature_maps[-1]
    handle.uninstrument()
    assert feature_map.shape[2:] == (2, 2)
    (span,) = _encoder_spans(memory)
    expected = feature_map.mean(dim=(2, 3))
    _assert_vectors(span.attributes, expected)
    assert span.attributes[cv.VISION_ENCODER_EMBEDDING_DIM] == 128


def test_a_model_output_from_a_named_layer_is_unwrapped_and_pooled(memory):
    model = transformers.AutoBackbone.from_config(_hf_config()).eval()
    images, _ = digit_images(2, size=64)
    handle = vlmscope.instrument_encoder(model, layer="encoder")  # gives a ModelOutput
    with vlmscope.trace_batch(["a", "b"]), torch.no_grad():
        model(images)
    handle.uninstrument()
    (span,) = _encoder_spans(memory)
    assert span.attributes[cv.VISION_ENCODER_EMBEDDING_DIM] == 128
    assert len(span.attributes[cv.VISION_ENCODER_EMBEDDING_L2_NORM]) == 2


def test_the_clip_stem_pool_is_recorded_with_a_warning_naming_the_attention_pool(
        memory, caplog):
    model = _open_clip_tower("RN50", 64).eval()
    images, _ = digit_images(2, size=64)
    handle = vlmscope.instrument_encoder(model, layer="avgpool")
    with caplog.at_level(logging.WARNING, logger="vlmscope"):
        with vlmscope.trace_batch(["a", "b"]), torch.no_grad():
            model(images)
    handle.uninstrument()
    (message,) = [r.getMessage() for r in caplog.records if "avgpool" in r.getMessage()]
    assert "64x16x16" in message and "'attnpool'" in message
    (span,) = _encoder_spans(memory)
    assert span.attributes[cv.VISION_ENCODER_EMBEDDING_DIM] == 64


class _Tokens(torch.nn.Module):
    """A toy encoder whose ``body`` gives N x L x C tokens and ``norm`` a scalar loss."""

    def __init__(self) -> None:
        super().__init__()
        self.patch = torch.nn.Conv2d(3, 8, 8, stride=8)
        self.body = torch.nn.Identity()
        self.pool = torch.nn.AdaptiveAvgPool1d(1)
        self.unused = torch.nn.Linear(8, 8)

    def forward(self, x):
        tokens = self.body(self.patch(x).flatten(2).transpose(1, 2))
        return self.pool(tokens.transpose(1, 2)).flatten(1)


@pytest.mark.parametrize("layer, problem", [
    ("body", "gives 3-d outputs of shape (2, 16, 8)"),
    ("unused", "did not run during the forward"),
])
def test_a_layer_that_gives_no_per_image_vector_is_warned_about_and_marked_on_the_span(
        layer, problem, memory, caplog):
    model = _Tokens().eval()
    images, _ = digit_images(2, size=32)
    handle = vlmscope.instrument_encoder(model, layer=layer)
    with caplog.at_level(logging.WARNING, logger="vlmscope"):
        with vlmscope.trace_batch(["a", "b"]), torch.no_grad():
            model(images)
    handle.uninstrument()
    (message,) = [r.getMessage() for r in caplog.records if problem in r.getMessage()]
    assert "layers that give one pooled vector per image: ['pool']" in message
    (span,) = _encoder_spans(memory)
    assert problem in span.attributes[cv.VLMSCOPE_INSTRUMENTATION_ERROR]
    assert cv.VISION_ENCODER_EMBEDDING_DIM not in span.attributes


def test_an_unknown_encoder_is_asked_for_its_layer_only_with_the_pooling_layers_named():
    with pytest.raises(ValueError, match=r"pass layer=.*\(and classifier=.*if it has one\)"
                       r".*\['pool'\]"):
        vlmscope.instrument_encoder(_Tokens())
    handle = vlmscope.instrument_encoder(_Tokens(), layer="pool")  # no classifier needed
    handle.uninstrument()


def test_a_classifier_without_weights_gives_no_top_k(memory, caplog):
    model = _torchvision_headless().eval()
    images, _ = digit_images(2, size=32)
    with caplog.at_level(logging.WARNING, logger="vlmscope"):
        handle = vlmscope.instrument_encoder(model, classifier="fc")
    assert any("has no weights" in r.getMessage() for r in caplog.records)
    with vlmscope.trace_batch(["a", "b"]), torch.no_grad():
        model(images)
    handle.uninstrument()
    (span,) = _encoder_spans(memory)
    assert cv.VISION_ENCODER_TOP_K_LABELS not in span.attributes
    assert span.attributes[cv.VISION_ENCODER_EMBEDDING_DIM] == 512


def test_an_open_clip_tower_of_no_known_config_keeps_the_class_name_and_its_depth(memory):
    from open_clip.modified_resnet import ModifiedResNet

    tower = ModifiedResNet([1, 1, 1, 1], output_dim=48, heads=2, image_size=32, width=16)
    handle = vlmscope.instrument_encoder(tower.eval())
    images, _ = digit_images(2, size=32)
    with vlmscope.trace_batch(["a", "b"]), torch.no_grad():
        tower(images)
    handle.uninstrument()
    (span,) = _encoder_spans(memory)
    assert span.attributes[cv.EMBEDDING_MODEL_NAME] == "open_clip/ModifiedResNet"
    assert span.attributes[cv.VISION_ENCODER_DEPTH] == 14
    assert span.attributes[cv.VISION_ENCODER_EMBEDDING_DIM] == 48


_NO_IMPORT_SCRIPT = """
import sys, torchvision, vlmscope
handle = vlmscope.instrument_encoder(torchvision.models.resnet18(weights=None))
handle.uninstrument()
print(sorted(m for m in ("timm", "open_clip", "transformers") if m in sys.modules))
"""


def test_recognising_a_model_imports_no_other_model_library():
    import subprocess

    from tests.helpers import PYTHON

    done = subprocess.run([PYTHON, "-c", _NO_IMPORT_SCRIPT], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"
