"""Known image encoders: their real name and depth, and where their pooled features and
classifier are, so that ``instrument_encoder(model)`` needs no arguments for them.

Recognised: torchvision ResNets (and ResNeXt / wide variants) and torchvision's other
classifiers (ViT, Swin, ConvNeXt, EfficientNet, RegNet, MobileNet, DenseNet, VGG, ...: the
features are the last linear layer's input), timm models with timm's
classifier API (the ResNet family named and given a depth: ResNet, ResNeXt, wide, ResNet-D,
ResNet-RS, SE-ResNet, ResNetV2), transformers' ResNet models (``ResNetModel``,
``ResNetForImageClassification``, ``ResNetBackbone``) and timm wrappers
(``TimmWrapperModel``, ``TimmWrapperForImageClassification``), and open_clip's
``ModifiedResNet`` vision towers (RN50, RN101, RN50x4, ...). Vision transformers: timm's
(ViT, DeiT, EVA, BEiT: the pooled features are ``head_drop``'s output, the head's input;
any other timm model with one classifier and no pooling module, such as PiT, CoaT, VOLO or
MambaOut: the classifier's input, ``forward_head(pre_logits=True)``),
open_clip's ``VisionTransformer`` towers and its towers of a timm trunk (``TimmModel``:
SigLIP, EVA02, ConvNeXt, MobileCLIP, ...), and any transformers vision model that pools in
its forward (its declared output has ``pooler_output`` or ``image_embeds``: CLIP's, SigLIP's,
BLIP's and BLIP-2's vision models, DINOv2, ViT and DeiT with their pooler, Swin, ConvNeXt,
RegNet, MobileViT, ...), whose own output is the embedding (the layer ``""``, PyTorch's name
for the model itself). Any transformers ``*ForImageClassification`` with one head (its
``classifier``: ViT, Swin, ConvNeXt, DINOv2, ...; ``fc``: HGNetV2, TextNet; ``head``:
PP-LCNet): the features are the head's input (``"classifier:input"``), since such a model
may pool in its forward, with no module to hook. A ``torch.compile``d, ``DataParallel`` or
``DistributedDataParallel`` model is recognised as the model it wraps, its layers named
through the wrapper
(``_orig_mod.avgpool``); a model of several towers vlmscope does not know as a whole
(``CLIPModel``, BLIP's captioner, LLaVA, open_clip's ``CLIP``) is instrumented through its
image tower when it knows that (:func:`image_tower`). A library is only looked at when the
user's program already imported it: recognising a model imports nothing.

Depth counts weight layers the ResNet way: 2 per basic block or 3 per bottleneck, plus the
stem convolution and the final linear layer (so 18, 50, 101 for the classic ResNets); for a
vision transformer it is its number of blocks.
"""

from __future__ import annotations

import inspect
import logging
import sys
import typing
from dataclasses import dataclass
from typing import Any

_log = logging.getLogger("vlmscope")

POOL_TYPE_NAMES = ("AdaptiveAvgPool", "AdaptiveMaxPool", "SelectAdaptivePool",
                   "AttentionPool", "GlobalPool", "Pooler")
"""Module class-name fragments of layers that pool a feature map into one vector per image:
the layers suggested when the hooked layer gives something else."""

INPUT_SUFFIX = ":input"
"""A layer named ``"<module>:input"`` gives the features that go into ``<module>``."""


@dataclass(frozen=True)
class EncoderFamily:
    """What vlmscope knows of a model: ``architecture`` (its real name, e.g. ``resnet50``,
    ``timm/resnet50``, ``open_clip/RN50``), ``depth`` (None when unknown), ``layer`` (the
    qualified name of the layer giving the pooled features) and ``classifier`` (the
    qualified name of the classifier, None for an embedding-only encoder)."""

    architecture: str
    depth: int | None
    layer: str | None
    classifier: str | None
    known: bool = True


def resnet_depth(blocks_per_stage: Any, bottleneck: bool) -> int:
    """Depth of a ResNet with ``blocks_per_stage`` blocks: 3 layers per bottleneck block or
    2 per basic block, plus the stem convolution and the final linear layer."""
    return (3 if bottleneck else 2) * sum(int(b) for b in blocks_per_stage) + 2


def has_parameters(module: Any) -> bool:
    """False for a module that cannot be a classifier (``nn.Identity``, ``nn.Flatten``, a
    ``Sequential`` of those): a model built with ``num_classes=0`` has one."""
    return next(iter(module.parameters()), None) is not None


_WRAPPERS = {"OptimizedModule": "_orig_mod", "DataParallel": "module",
             "DistributedDataParallel": "module"}
"""Module wrappers (``torch.compile``'s, data parallel's) and the attribute holding the
model they wrap: a wrapped model is the model it wraps, its layers named through it."""


def is_hf_pipeline(obj: Any) -> bool:
    """Whether ``obj`` is a transformers ``Pipeline`` (``pipeline("image-classification",
    ...)``): it is instrumented through its ``model``."""
    pipeline = getattr(_module("transformers"), "Pipeline", None)
    return isinstance(pipeline, type) and isinstance(obj, pipeline)


IMAGE_TOWERS = ("vision_model", "vision_tower", "model.vision_tower", "model.vision_model",
                "visual")
"""Where a model that is more than an image tower keeps its tower (transformers'
``CLIPModel``, ``SiglipModel``, BLIP's captioner: ``vision_model``; LLaVA:
``model.vision_tower``; open_clip's ``CLIP``: ``visual``, which ``encode_image`` runs)."""


def image_tower(model: Any) -> Any | None:
    """The image tower of a model vlmscope does not know but whose tower it does
    (``CLIPModel.vision_model``, which both ``forward`` and ``get_image_features`` run), or
    None."""
    if describe(model).known:
        return None
    for name in IMAGE_TOWERS:
        tower = model
        for part in name.split("."):
            tower = getattr(tower, part, None)
        if tower is not None and tower is not model and describe(tower).known:
            return tower
    return None


def _wrapped(model: Any) -> tuple[str, Any] | None:
    """``(attribute, wrapped model)`` when ``model`` is a wrapper of :data:`_WRAPPERS`."""
    attribute = _WRAPPERS.get(type(model).__name__)
    inner = getattr(model, attribute, None) if attribute else None
    return None if inner is None or inner is model else (attribute, inner)


def unwrap(model: Any) -> Any:
    """The model a ``torch.compile`` or data-parallel wrapper wraps (``model`` itself when
    it is none): its weights are the wrapped model's, under names with a prefix."""
    wrapped = _wrapped(model)
    return model if wrapped is None else unwrap(wrapped[1])


def describe(model: Any) -> EncoderFamily:
    """The family of ``model``, or an unknown family named after its class."""
    wrapped = _wrapped(model)
    if wrapped is not None:
        attribute, inner = wrapped
        family = describe(inner)
        if not family.known:
            return family
        return EncoderFamily(
            family.architecture, family.depth,
            None if family.layer is None else f"{attribute}.{family.layer}".rstrip("."),
            None if family.classifier is None else f"{attribute}.{family.classifier}")
    for recognise in (_torchvision, _torchvision_classifier, _timm_wrapper,
                      _transformers_resnet, _transformers_vision,
                      _transformers_image_classifier, _open_clip, _timm):
        try:
            family = recognise(model)
        except Exception as error:  # a library's class shaped as no rule here expects
            _log.debug("%s: %s does not recognise it (%r)", type(model).__name__,
                       recognise.__name__, error)
            continue
        if family is not None:
            return family
    return EncoderFamily(type(model).__name__, None, None, None, known=False)


def pooling_layers(model: Any, limit: int = 6) -> list[str]:
    """Qualified names of the layers of ``model`` that pool a map into a vector per image."""
    names = [name for name, module in model.named_modules()
             if name and any(f in type(module).__name__ for f in POOL_TYPE_NAMES)]
    return names[-limit:]


def _module(name: str) -> Any:
    """A library module if the user's program imported it, else None (nothing is imported)."""
    return sys.modules.get(name)


def _classifier(model: Any, name: str, prefix: str = "") -> str | None:
    try:
        module = model.get_submodule(prefix + name)
    except AttributeError:
        return None
    return prefix + name if has_parameters(module) else None


def _torchvision(model: Any) -> EncoderFamily | None:
    models = _module("torchvision.models.resnet")
    if models is None or not isinstance(model, models.ResNet):
        return None
    first = model.layer1[0]
    bottleneck = isinstance(first, models.Bottleneck)
    depth = resnet_depth((len(getattr(model, f"layer{i}")) for i in range(1, 5)), bottleneck)
    name = f"resnet{depth}"
    if bottleneck:
        groups = first.conv2.groups
        width = first.conv1.out_channels  # 64 * width_per_group / 64 * groups
        if groups > 1:
            name = f"resnext{depth}_{groups}x{width // groups}d"
        elif width != 64:
            name = f"wide_resnet{depth}_{width // 64}"
    return EncoderFamily(name, depth, "avgpool", _classifier(model, "fc"))


_TORCHVISION_NOT_CLASSIFIERS = ("detection", "segmentation", "video", "optical_flow",
                                "quantization")
"""torchvision's model packages whose models are not image classifiers (or not float ones)."""

TORCHVISION_HEADS = ("classifier", "heads", "head", "fc")
"""Where torchvision's classifiers keep their head: ``classifier`` (ConvNeXt, EfficientNet,
MobileNet, DenseNet, VGG, MaxViT, SqueezeNet, ...), ``heads`` (ViT), ``head`` (Swin), ``fc``
(RegNet, ShuffleNet, GoogLeNet, Inception)."""


def _torchvision_classifier(model: Any) -> EncoderFamily | None:
    """Any other torchvision classification model (ViT, Swin, MaxViT, ConvNeXt,
    EfficientNet, RegNet, MobileNet, DenseNet, VGG, Inception, ...): its logits are the last
    linear layer of its head (:data:`TORCHVISION_HEADS`), and its features that layer's
    input, however the model pools (its class token, an ``avgpool``, a mean in the forward).
    SqueezeNet, whose head is a convolution, reads the head's input map. A head replaced by
    ``nn.Identity`` (the usual way to get embeddings) leaves the head's input and no
    classifier. A ViT's depth is its blocks."""
    parts = type(model).__module__.split(".")
    if len(parts) != 3 or parts[:2] != ["torchvision", "models"] \
            or parts[2] in _TORCHVISION_NOT_CLASSIFIERS:
        return None
    attribute = next((name for name in TORCHVISION_HEADS if _has_submodule(model, name)), None)
    if attribute is None:
        return None
    linears = [name for name, module in model.get_submodule(attribute).named_modules()
               if type(module).__name__ == "Linear"]
    head = f"{attribute}.{linears[-1]}".rstrip(".") if linears else attribute
    layers = getattr(getattr(model, "encoder", None), "layers", None)
    depth = len(layers) if type(model).__name__ == "VisionTransformer" \
        and hasattr(layers, "__len__") else None
    return EncoderFamily(type(model).__name__, depth, head + INPUT_SUFFIX,
                         _classifier(model, head))


def _timm_depth(model: Any) -> int | None:
    """Depth of a timm ResNet (``layer1``..``layer4``) or ResNetV2 (``stages``)."""
    if all(hasattr(model, f"layer{i}") for i in range(1, 5)):
        stages = [getattr(model, f"layer{i}") for i in range(1, 5)]
    elif hasattr(getattr(model, "stages", None), "__iter__") \
            and all(hasattr(s, "blocks") for s in model.stages):  # HRNet's is a method
        stages = [s.blocks for s in model.stages]
    else:
        return None
    blocks = [type(block).__name__ for stage in stages for block in stage]
    if not blocks or not all(("Bottleneck" in b) or ("Basic" in b) for b in blocks):
        return None
    return resnet_depth([len(stage) for stage in stages], "Bottleneck" in blocks[0])


def _timm(model: Any, prefix: str = "") -> EncoderFamily | None:
    if _module("timm") is None or not (hasattr(model, "get_classifier")
                                       and hasattr(model, "forward_head")):
        return None
    config = getattr(model, "pretrained_cfg", None) or {}
    architecture = config.get("architecture") or type(model).__name__
    layer = next((name for name in ("global_pool", "head.global_pool")
                  if _has_submodule(model, name)), None)
    depth = _timm_depth(model)
    if layer is None and _has_submodule(model, "head_drop") and _has_submodule(model,
                                                                               "blocks"):
        # A vision transformer (ViT, DeiT, EVA, BEiT): it pools in a function, not a module;
        # head_drop's output is forward_head(pre_logits=True), the head's input.
        layer, depth = "head_drop", len(model.blocks)
    classifier = None
    head = model.get_classifier()
    if isinstance(head, tuple | list):
        # Two heads averaged in the forward (distilled DeiT, LeViT): no one module gives the
        # features or the logits; the user names the layer.
        return None
    if has_parameters(head):
        classifier = next((name for name, module in model.named_modules() if module is head),
                          None)
    if layer is None and classifier is not None:
        # Pooled in a function (PiT, CoaT, VOLO, MambaOut, RepViT): what goes into the
        # classifier is forward_head(pre_logits=True).
        layer = classifier + INPUT_SUFFIX
    if layer is None:
        return None
    return EncoderFamily(f"timm/{architecture}", depth, prefix + layer,
                         None if classifier is None else prefix + classifier)


def _timm_wrapper(model: Any) -> EncoderFamily | None:
    config = getattr(model, "config", None)
    if getattr(config, "model_type", None) != "timm_wrapper" or not hasattr(model,
                                                                             "timm_model"):
        return None
    inner = _timm(model.timm_model, prefix="timm_model.")
    if inner is None:
        return None
    architecture = f"timm/{getattr(config, 'architecture', None) or inner.architecture[5:]}"
    return EncoderFamily(architecture, inner.depth, inner.layer, inner.classifier)


def _transformers_resnet(model: Any) -> EncoderFamily | None:
    config = getattr(model, "config", None)
    if getattr(config, "model_type", None) != "resnet":
        return None
    depth = resnet_depth(getattr(config, "depths", ()),
                         getattr(config, "layer_type", "basic") == "bottleneck")
    architecture = f"resnet{depth}"
    if hasattr(model, "out_features") and hasattr(model, "stage_names"):  # ResNetBackbone
        stage = model.out_features[-1]
        index = model.stage_names.index(stage)
        layer = "embedder" if index == 0 else f"encoder.stages.{index - 1}"
        return EncoderFamily(architecture, depth, layer, None)
    prefix = "resnet." if hasattr(model, "resnet") else ""
    return EncoderFamily(architecture, depth, f"{prefix}pooler",
                         _classifier(model, "classifier"))


HF_CLASSIFIER_HEADS = ("classifier", "fc", "head")
"""Where a transformers ``*ForImageClassification`` keeps the layer that gives its logits, in
the order they are tried: ``classifier`` for most (ViT, Swin, ConvNeXt, DINOv2, ...),
``fc`` where ``classifier`` is a list of the pooling layers (HGNetV2, TextNet), ``head``
(PP-LCNet). A list or dict of modules is never the head: it is not called."""


def _transformers_image_classifier(model: Any) -> EncoderFamily | None:
    """Any transformers ``*ForImageClassification`` with one head (:data:`HF_CLASSIFIER_HEADS`:
    ViT, DeiT, BEiT, Swin, ConvNeXt, DINOv2, EfficientNet, HGNetV2, ...): the pooled
    features are the head's input, however the model pools (a first token, a pooler, a
    mean). Not a model that averages two heads in its forward (SwiftFormer's ``head`` and
    ``dist_head``): no module gives its logits."""
    config = getattr(model, "config", None)
    if config is None or not type(model).__name__.endswith("ForImageClassification"):
        return None
    head = next((name for name in HF_CLASSIFIER_HEADS if _has_submodule(model, name)
                 and type(model.get_submodule(name)).__name__ not in ("ModuleList",
                                                                       "ModuleDict")), None)
    labels = getattr(config, "num_labels", None)
    heads = [child for child in model.children()
             if type(child).__name__ == "Linear" and getattr(child, "out_features", None)
             == labels]
    if head is None or len(heads) > 1:
        return None
    # A transformer's depth is its blocks; a staged model's (Swin, ConvNeXt: ``depths``)
    # num_hidden_layers counts stages, not layers, so it has none here.
    depth = None if hasattr(config, "depths") else getattr(config, "num_hidden_layers", None)
    architecture = getattr(config, "_name_or_path", None) or type(model).__name__
    return EncoderFamily(architecture, depth if isinstance(depth, int) else None,
                         head + INPUT_SUFFIX, _classifier(model, head))


def _open_clip(model: Any) -> EncoderFamily | None:
    modified = _module("open_clip.modified_resnet")
    if modified is not None and isinstance(model, modified.ModifiedResNet):
        layers = [len(getattr(model, f"layer{i}")) for i in range(1, 5)]
        width = model.conv1.out_channels * 2
        name = _open_clip_name({"layers": layers, "width": width}, model.output_dim,
                               "ModifiedResNet")
        return EncoderFamily(f"open_clip/{name}", resnet_depth(layers, bottleneck=True),
                             "attnpool", None)
    transformer = _module("open_clip.transformer")
    if transformer is not None and isinstance(model, transformer.VisionTransformer):
        # The tower pools and projects in its forward (the projection is a parameter, not a
        # module): its own output, encode_image's, is the embedding, so the hooked layer is
        # the tower itself ("", PyTorch's name for the root module).
        blocks = len(model.transformer.resblocks)
        tower = {"layers": blocks, "width": model.transformer.width,
                 "patch_size": model.patch_size[0]}
        name = _open_clip_name(tower, model.output_dim, "VisionTransformer")
        return EncoderFamily(f"open_clip/{name}", blocks, "", None)
    timm_tower = _module("open_clip.timm_model")
    if timm_tower is not None and isinstance(model, timm_tower.TimmModel):
        # A timm trunk and open_clip's pooling or projection head (SigLIP, SigLIP 2, EVA02,
        # ConvNeXt, MobileCLIP, PE-Core, ViTamin): the tower's own output, encode_image's,
        # is the embedding, as for a VisionTransformer tower.
        trunk = model.trunk
        timm_name = (getattr(trunk, "pretrained_cfg", None) or {}).get("architecture") \
            or type(trunk).__name__
        trunk_family = _timm(trunk)
        depth = trunk_family.depth if trunk_family is not None else None
        return EncoderFamily(f"open_clip/{_open_clip_timm_name(timm_name, model)}", depth,
                             "", None)
    return None


def _open_clip_timm_name(timm_name: str, tower: Any) -> str:
    """The open_clip model config whose timm image tower is ``timm_name`` with ``tower``'s
    output dimension (the shortest name when several are), else ``timm/<timm_name>``."""
    open_clip = _module("open_clip")
    projections = [m for m in tower.head.modules() if type(m).__name__ == "Linear"]
    trunk = tower.trunk
    output_dim = projections[-1].out_features if projections else (
        getattr(trunk, "num_classes", 0) or getattr(trunk, "num_features", None))
    matches = []
    for name in getattr(open_clip, "list_models", list)():
        config = open_clip.get_model_config(name) or {}
        if (config.get("vision_cfg", {}).get("timm_model_name") == timm_name
                and config.get("embed_dim") == output_dim):
            matches.append(name)
    return min(matches, key=lambda n: (len(n), n)) if matches else f"timm/{timm_name}"


def _open_clip_name(tower: dict[str, Any], output_dim: int, fallback: str) -> str:
    """The open_clip model config whose vision tower has these ``tower`` settings (stages or
    blocks, width, and for a ViT the patch size) and output dimension (the shortest name
    when several share one tower: ``RN50`` before ``RN50-quickgelu``, ``ViT-B-32`` before
    ``ViT-B-32-256``, which differs only in image size); ``fallback`` when none does."""
    open_clip = _module("open_clip")
    matches = []
    for name in getattr(open_clip, "list_models", list)():
        config = open_clip.get_model_config(name) or {}
        vision = config.get("vision_cfg", {})
        stages = vision.get("layers")
        if isinstance(stages, list | tuple):
            stages = list(stages)
        given = {"layers": stages, "width": vision.get("width", 64),
                 "patch_size": vision.get("patch_size")}
        if (all(given[key] == value for key, value in tower.items())
                and config.get("embed_dim") == output_dim):
            matches.append(name)
    return min(matches, key=lambda n: (len(n), n)) if matches else fallback


_POOLED_FIELDS = ("pooler_output", "image_embeds")
"""Fields of a transformers output that hold one pooled embedding per image."""


def _declared_output_fields(model: Any) -> set[str]:
    """The fields of the output class(es) ``model``'s forward declares it returns (its
    return annotation: a ``ModelOutput`` dataclass, or ``tuple | ModelOutput``); empty when
    the annotation cannot be read."""
    forward = getattr(type(model), "forward", None)
    try:
        declared = inspect.signature(forward).return_annotation
        if isinstance(declared, str):
            declared = typing.get_type_hints(forward).get("return")
    except (NameError, TypeError, ValueError):
        return set()
    fields: set[str] = set()
    for kind in typing.get_args(declared) or (declared,):
        fields.update(getattr(kind, "__dataclass_fields__", {}))
    return fields


def _transformers_vision(model: Any) -> EncoderFamily | None:
    """A transformers vision model that pools in its forward: one taking ``pixel_values``
    whose declared output holds a pooled embedding (``pooler_output``, or ``image_embeds``
    with a projection): CLIP's, SigLIP's, BLIP's and BLIP-2's vision models, DINOv2, ViT,
    DeiT, BEiT, Swin, ConvNeXt, RegNet, MobileViT, ... Its own output holds the
    embedding, so the hooked layer is the model itself. Not one built without its pooler
    (``add_pooling_layer=False``), nor a classifier (see
    :func:`_transformers_image_classifier`), nor a vision-language model (one with a
    ``text_config``: BLIP's captioner declares ``image_embeds``, its tower's patch tokens;
    :func:`image_tower` finds its tower)."""
    config = getattr(model, "config", None)
    if getattr(config, "model_type", None) is None or hasattr(config, "text_config") \
            or getattr(model, "main_input_name", None) != "pixel_values" \
            or _has_submodule(model, "classifier") \
            or (hasattr(model, "pooler") and model.pooler is None):
        return None
    if not _declared_output_fields(model) & set(_POOLED_FIELDS):
        return None
    architecture = getattr(config, "_name_or_path", None) or type(model).__name__
    # A staged model's (Swin, ConvNeXt: ``depths``) num_hidden_layers counts stages.
    depth = None if hasattr(config, "depths") else getattr(config, "num_hidden_layers", None)
    return EncoderFamily(architecture, depth if isinstance(depth, int) else None, "", None)


def _has_submodule(model: Any, name: str) -> bool:
    try:
        model.get_submodule(name)
    except AttributeError:
        return False
    return True
