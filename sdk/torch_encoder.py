"""``instrument_encoder``: forward hooks on a torch image encoder (needs the ``torch`` extra).

Hooks only, no wrapping: a pre-hook on the model opens the encoder span, hooks on the feature
layer and the classifier keep their outputs, and a hook on the model (``always_call``, so it
runs when forward raises too) turns them into one reading per image and closes the span. The
hooks compute under ``torch.no_grad`` on detached tensors and return nothing, so the model's
outputs are bit-identical to the uninstrumented model's. Where the features and the classifier
of known models are is :mod:`vlmscope.encoder_families`' job.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from vlmscope import conventions as cv
from vlmscope._optional import require
from vlmscope.encoder import ZERO_SHOT_LOGIT_SCALE, EncoderSpan, ZeroShot, encoder_attributes
from vlmscope.encoder_families import (
    INPUT_SUFFIX,
    describe,
    has_parameters,
    image_tower,
    is_hf_pipeline,
    pooling_layers,
    unwrap,
)
from vlmscope.rows import warn_once
from vlmscope.tracing import get_tracer

_log = logging.getLogger("vlmscope")

_INSTRUMENTED_ATTR = "_vlmscope_encoder_handle"


def checkpoint_sha256(model: Any) -> str:
    """SHA-256 (hex) of a torch module's weights: every ``state_dict`` entry's name, dtype,
    shape and bytes, in order. Equal weights give equal hashes in any process, and a
    ``torch.compile``d or data-parallel model hashes as the model it wraps."""
    torch = require("torch", "checkpoint hashing")
    digest = hashlib.sha256()
    with torch.no_grad():
        for name, tensor in unwrap(model).state_dict().items():
            flat = tensor.detach().cpu().contiguous().reshape(-1)
            digest.update(f"{name}|{flat.dtype}|{tuple(tensor.shape)}|".encode())
            digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _weights_signature(model: Any) -> tuple[tuple[int, int], ...]:
    """Changes whenever a weight is modified in place (optimizer step, load_state_dict) or
    replaced: each tensor's storage address and version counter."""
    return tuple(
        (t.data_ptr(), t._version)
        for t in (*model.parameters(), *model.buffers())
    )


def _default_labels(model: Any, num_classes: int) -> list[str]:
    config = getattr(model, "config", None)
    id2label = getattr(config, "id2label", None) if config is not None else None
    if id2label and len(id2label) == num_classes:
        labels = [str(id2label[i]) for i in range(num_classes)]
        if labels[0] != "LABEL_0":
            return labels
    if num_classes == 1000:
        from vlmscope.labels import imagenet_labels

        names = imagenet_labels()
        if names is not None:
            return names
    return [f"class_{i}" for i in range(num_classes)]


@dataclass
class _Call:
    """State of one forward call between its pre-hook and its hook."""

    span: trace.Span
    token: object
    handle: EncoderSpan
    images: Any
    features: Any = None
    logits: Any = None
    feature_layer_ran: bool = False


def _first_tensor(value: Any, torch: Any, keys: Sequence[str]) -> Any:
    """The tensor a hooked output stands for: itself; a ``ModelOutput``'s (or dict's) first
    present key of ``keys`` (the last map of ``feature_maps``), else its first tensor; a
    tuple's or list's first tensor; else None."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, Mapping):
        for key in keys:
            found = value.get(key)
            if key == "feature_maps" and isinstance(found, list | tuple) and found:
                found = found[-1]
            found = _first_tensor(found, torch, keys)
            if found is not None:
                return found
        value = list(value.values())
    if isinstance(value, list | tuple):
        for item in value:
            found = _first_tensor(item, torch, keys)
            if found is not None:
                return found
    return None


_FEATURE_KEYS = ("pooler_output", "image_embeds", "last_hidden_state", "feature_maps")
_LOGIT_KEYS = ("logits",)


def _shape(tensor: Any) -> str:
    """The per-image shape of a batched tensor, as ``CxHxW``."""
    return "x".join(str(d) for d in tensor.shape[1:])


@dataclass(frozen=True)
class _ZeroShotHead:
    """Unit-norm class text embeddings (T x D, float32), the logit scale and SigLIP's logit
    bias (None for CLIP's softmax reading)."""

    text: Any
    logit_scale: float
    logit_bias: float | None = None


def _zero_shot_head(zero_shot: Any, labels: list[str], torch: Any) -> _ZeroShotHead:
    """The text side of a zero-shot reading, checked against the class names."""
    source, scale, bias = zero_shot, ZERO_SHOT_LOGIT_SCALE, None
    if isinstance(zero_shot, ZeroShot):
        source, scale, bias = zero_shot.text_embeddings, zero_shot.logit_scale, \
            zero_shot.logit_bias
    scale = float(scale.item() if hasattr(scale, "item") else scale)
    if not scale > 0:
        raise ValueError(f"the zero-shot logit scale must be positive, got {scale}")
    if bias is not None:
        bias = float(bias.item() if hasattr(bias, "item") else bias)
        if not math.isfinite(bias):
            raise ValueError(f"the zero-shot logit bias must be a finite number, got {bias}")
    if callable(source) and not isinstance(source, torch.Tensor):
        with torch.no_grad():
            source = source(list(labels))
    try:
        text = torch.as_tensor(
            source.detach() if isinstance(source, torch.Tensor) else source
        ).to("cpu", torch.float32)
    except (TypeError, ValueError, RuntimeError) as error:
        raise ValueError(f"zero_shot must be class text embeddings (a T x D tensor or array) "
                         f"or a callable making them from the labels: {error}") from error
    if text.dim() != 2 or text.shape[0] != len(labels):
        raise ValueError(f"zero_shot text embeddings must be {len(labels)} x D, one per label; "
                         f"got shape {tuple(text.shape)}")
    return _ZeroShotHead(torch.nn.functional.normalize(text, dim=1), scale, bias)


def _label_list(labels: Sequence[str] | Mapping[int, str]) -> list[str]:
    if isinstance(labels, Mapping):
        return [str(labels[i]) for i in sorted(labels)]
    return [str(x) for x in labels]


class EncoderInstrumentation:
    """The hooks on one model; :meth:`uninstrument` removes them all (safe to call twice).

    The hooks on the model itself run outside ``torch.compile``'s graph
    (``torch.compiler.disable``); the hooks on the feature layer and the classifier only
    append their output to a list when Dynamo traces them, which it records without a graph
    break, so a compiled model compiles to the same graphs instrumented or not. (That list is
    one per instrumentation, not per thread: one compiled model called from several threads
    at once may mix its calls' readings; eager calls keep theirs apart per thread.)
    """

    def __init__(
        self,
        model: Any,
        labels: Sequence[str] | Mapping[int, str] | None,
        top_k: int,
        layer: str | None,
        classifier: str | None,
        capture_embeddings: bool,
        name: str | None,
        hash_images: bool,
        multi_label: bool = False,
        zero_shot: Any = None,
        projection: Any = None,
    ) -> None:
        torch = require("torch", "instrument_encoder")
        if not isinstance(model, torch.nn.Module):
            raise TypeError(
                f"instrument_encoder needs a torch.nn.Module, got {type(model).__name__}")
        if isinstance(model, torch.jit.ScriptModule):
            raise TypeError(
                f"instrument_encoder needs an eager model, got a TorchScript module "
                f"({type(model).__name__}, from torch.jit.script or torch.jit.trace): it runs "
                f"its layers outside Python, where no hook sees them; instrument the model "
                f"before scripting it, or compile it with torch.compile, which vlmscope "
                f"instruments")
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        self._torch = torch
        self.model = model
        # A dual encoder's projection of the tower's pooled output (CLIPModel's
        # visual_projection): applied to each reading, and hashed with the tower's weights.
        self._projection = projection
        self._weights = model if projection is None else torch.nn.ModuleDict(
            {"tower": model, "projection": projection})
        self.family = describe(model)
        self.architecture = self.family.architecture
        self.depth = self.family.depth
        self.layer = layer if layer is not None else self.family.layer
        self.multi_label = bool(multi_label)
        self._zero_shot: _ZeroShotHead | None = None
        if zero_shot is not None:
            if labels is None:
                raise ValueError("zero_shot needs labels=[class names], one per text embedding")
            labels = _label_list(labels)  # the text embeddings' order names the classes
            self._zero_shot = _zero_shot_head(zero_shot, labels, torch)
            sigmoid = self._zero_shot.logit_bias is not None  # SigLIP: a sigmoid per label
            if classifier is not None or (self.multi_label and not sigmoid):
                raise ValueError("zero_shot reads the image embedding against class texts; it "
                                 "takes no classifier=, and multi_label=True only with a "
                                 "logit_bias (SigLIP's sigmoid per label)")
            self.multi_label = sigmoid
            self.classifier = None
        else:
            self.classifier = classifier or self.family.classifier
        if self.layer is None and self.classifier is None:
            raise ValueError(
                f"vlmscope does not know where the pooled features of a {type(model).__name__} "
                f"are: pass layer='<qualified name of the layer giving one feature vector per "
                f"image>' (and classifier='<its classifier>' if it has one); "
                + (f"layers that pool here: {pooling_layers(model)}" if pooling_layers(model)
                   else f"no layer pools here; its top-level layers: "
                        f"{[n for n, _ in model.named_children()]}")
            )
        if self._zero_shot is not None and self.layer is None:
            raise ValueError("zero_shot needs the image embedding: pass layer=")
        self.name = name or self.architecture
        self.top_k = top_k
        self.capture_embeddings = capture_embeddings
        self.hash_images = hash_images
        self._labels_given = labels
        self._labels: list[str] | None = None
        self._signature: tuple[tuple[int, int], ...] | None = None
        self._checkpoint: str | None = None
        self._local = threading.local()
        self._traced_outputs: list[tuple[str, Any]] = []
        self._layer_checked = False
        self._handles: list[Any] = []
        modules = {}
        # "<name>:input": the features are what goes into that module (a classifier's input
        # is the pooled vector even when no module gives it, as in a ViT taking its first
        # token in the forward).
        layer_input = self.layer is not None and self.layer.endswith(INPUT_SUFFIX)
        hooked_layer = self.layer[:-len(INPUT_SUFFIX)] if layer_input else self.layer
        for role, qualified in (("layer", hooked_layer), ("classifier", self.classifier)):
            if qualified is None:
                continue
            try:
                modules[role] = model.get_submodule(qualified)
            except AttributeError as error:
                raise ValueError(
                    f"{type(model).__name__} has no submodule {qualified!r}; layers that pool "
                    f"here: {pooling_layers(model)}; all: "
                    f"{[n for n, _ in model.named_modules() if n][:12]} ..."
                ) from error
        if "classifier" in modules and not has_parameters(modules["classifier"]):
            _log.warning("classifier %r of %s has no weights (%s): recording no top-k, only "
                         "the embedding", self.classifier, self.architecture,
                         type(modules["classifier"]).__name__)
            del modules["classifier"]
            self.classifier = None
        outside_graph = getattr(getattr(torch, "compiler", None), "disable", lambda f: f)
        self._handles.append(model.register_forward_pre_hook(
            outside_graph(self._pre_hook), with_kwargs=True))
        if "layer" in modules and layer_input:
            self._handles.append(modules["layer"].register_forward_pre_hook(
                self._feature_input_hook))
        elif "layer" in modules:
            self._handles.append(modules["layer"].register_forward_hook(self._feature_hook))
        if "classifier" in modules:
            self._handles.append(modules["classifier"].register_forward_hook(self._logits_hook))
        self._handles.append(model.register_forward_hook(
            outside_graph(self._post_hook), with_kwargs=True, always_call=True))

    # -- checkpoint and labels -----------------------------------------------------------

    @property
    def checkpoint_sha256(self) -> str:
        """The SHA-256 of the weights now, recomputed only when they changed."""
        signature = _weights_signature(self._weights)
        if signature != self._signature or self._checkpoint is None:
            self._checkpoint = checkpoint_sha256(self._weights)
            self._signature = signature
        return self._checkpoint

    def _label_names(self, num_classes: int) -> list[str]:
        if self._labels is None or len(self._labels) != num_classes:
            given = self._labels_given
            if given is None:
                self._labels = _default_labels(self.model, num_classes)
            elif isinstance(given, Mapping):
                self._labels = [str(given.get(i, f"class_{i}")) for i in range(num_classes)]
            else:
                names = [str(x) for x in given]
                if len(names) != num_classes:
                    warn_once("labels-size", "%d labels given for %d classes; missing ones are "
                              "named class_N", len(names), num_classes)
                    names = (names + [f"class_{i}" for i in range(len(names), num_classes)])
                self._labels = names[:num_classes]
        return self._labels

    # -- hooks -----------------------------------------------------------------------------

    def _stack(self) -> list[_Call]:
        stack = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack

    def _pre_hook(self, module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        try:
            self._traced_outputs.clear()
            images = args[0] if args else next(
                (kwargs[k] for k in ("pixel_values", "x", "input", "images") if k in kwargs), None)
            checkpoint = self.checkpoint_sha256
            attrs = encoder_attributes(self.name, checkpoint, self.architecture, self.depth,
                                       self.layer, self.classifier,
                                       multi_label=self.multi_label)
            if self._zero_shot is not None:
                attrs[cv.VISION_ENCODER_ZERO_SHOT] = True
            span = get_tracer().start_span(cv.ENCODER_SPAN_NAME, attributes=attrs)
            token = otel_context.attach(trace.set_span_in_context(span))
            handle = EncoderSpan(span, self.name, checkpoint, None, self.capture_embeddings)
            self._stack().append(_Call(span, token, handle, images))
        except Exception as error:
            warn_once("encoder-pre", "vlmscope could not open the encoder span: %s", error)

    # The two hooks below run inside the model's forward, so Dynamo traces them: while it
    # does, they only append to a list (a side effect it replays after the graph).

    def _feature_hook(self, module: Any, args: Any, output: Any) -> None:
        if self._torch.compiler.is_compiling():
            self._traced_outputs.append(("features", output))
            return
        stack = self._stack()
        if stack:
            stack[-1].features = output
            stack[-1].feature_layer_ran = True

    def _feature_input_hook(self, module: Any, args: Any) -> None:
        self._feature_hook(module, args, args[0] if args else None)

    def _logits_hook(self, module: Any, args: Any, output: Any) -> None:
        if self._torch.compiler.is_compiling():
            self._traced_outputs.append(("logits", output))
            return
        stack = self._stack()
        if stack:
            stack[-1].logits = output

    def _post_hook(self, module: Any, args: Any, kwargs: Any, output: Any) -> None:
        stack = self._stack()
        if not stack:
            self._traced_outputs.clear()
            return
        call = stack.pop()
        try:
            for role, value in self._traced_outputs:
                if role == "features":
                    call.features, call.feature_layer_ran = value, True
                else:
                    call.logits = value
            self._traced_outputs.clear()
            if output is None and call.logits is None and call.features is None:
                call.span.set_status(Status(StatusCode.ERROR, "the encoder's forward raised"))
            else:
                with self._torch.no_grad():
                    self._record(call, output)
        except Exception as error:
            warn_once("encoder-post", "vlmscope could not record the encoder's reading: %s",
                      error)
            call.span.set_attribute(cv.VLMSCOPE_INSTRUMENTATION_ERROR, str(error))
        finally:
            try:
                otel_context.detach(call.token)
            finally:
                call.span.end()

    # -- the reading -------------------------------------------------------------------------

    def _pooled_features(self, call: _Call, n: int | None) -> tuple[Any, str | None]:
        """One feature vector per image (N x D, float32), and what is wrong when there is
        none. Feature maps (N x C x H x W) are averaged over H and W (global average
        pooling); a ``ModelOutput`` gives its pooled output, else its last hidden state."""
        torch = self._torch
        if self.layer is None:
            return None, None
        where = f"layer {self.layer!r} of {self.architecture}"
        if not call.feature_layer_ran:
            return None, f"{where} did not run during the forward"
        features = _first_tensor(call.features, torch, _FEATURE_KEYS)
        if features is None:
            return None, f"{where} gives {type(call.features).__name__}, not a tensor"
        if features.dim() == 4:
            pooled = features.detach().float().mean(dim=(2, 3))
        elif features.dim() == 2:
            pooled = features.detach().float()
        else:
            return None, (f"{where} gives {features.dim()}-d outputs of shape "
                          f"{tuple(features.shape)}, not N x C vectors or N x C x H x W maps")
        if n is not None and pooled.shape[0] != n:
            return None, (f"{where} gives {pooled.shape[0]} rows for {n} images, not one "
                          "feature vector per image")
        if not self._layer_checked:
            self._layer_checked = True
            if self.family.known and self.layer != self.family.layer:
                _log.warning("%s gives %s per image (recorded as %d pooled values); the pooled "
                             "features of %s are at layer %r", where, _shape(features),
                             pooled.shape[1], self.architecture, self.family.layer)
        if self._projection is not None:
            with torch.no_grad():
                weight = next(self._projection.parameters())
                pooled = self._projection(pooled.to(weight.device, weight.dtype)).float()
        return pooled, None

    def _wrong_layer(self, call: _Call, problem: str) -> None:
        would_do = ([self.family.layer] if self.family.known and self.family.layer
                    else pooling_layers(self.model))
        message = f"{problem}; layers that give one pooled vector per image: {would_do}"
        if not self._layer_checked:
            self._layer_checked = True
            _log.warning("vlmscope records no embedding: %s", message)
        call.span.set_attribute(cv.VLMSCOPE_INSTRUMENTATION_ERROR, message)

    def _record(self, call: _Call, output: Any) -> None:
        torch = self._torch
        logits = _first_tensor(call.logits, torch, _LOGIT_KEYS)
        if logits is None and self.classifier is not None:
            logits = _first_tensor(output, torch, _LOGIT_KEYS)
        images = call.images
        n_images = (images.shape[0] if isinstance(images, torch.Tensor) and images.dim() == 4
                    else None)
        pooled, problem = self._pooled_features(call, n_images)
        if problem is not None:
            self._wrong_layer(call, problem)
        reading: dict[str, Any] = {}
        n = None
        if self._zero_shot is not None and pooled is not None:
            logits = self._zero_shot_logits(pooled)
        if isinstance(logits, torch.Tensor) and logits.dim() >= 2:
            logits = logits.detach().float().flatten(1)
            n = logits.shape[0]
            k = min(self.top_k, logits.shape[1])
            if self.multi_label:
                # Independent labels: each score is its own sigmoid; no softmax, no entropy.
                scores, class_ids = torch.sigmoid(logits).topk(k, dim=1)
            else:
                log_probs = torch.log_softmax(logits, dim=1)
                probs = log_probs.exp()
                scores, class_ids = probs.topk(k, dim=1)
                reading["entropy"] = (-(probs * log_probs).sum(dim=1)).tolist()
            names = self._label_names(logits.shape[1])
            ids = class_ids.tolist()
            reading["top_k_labels"] = [[names[c] for c in row] for row in ids]
            reading["top_k_scores"] = scores.tolist()
            reading["top_k_class_ids"] = ids
        if pooled is not None:
            n = n or pooled.shape[0]
            reading["embedding_dim"] = pooled.shape[1]
            reading["embedding_l2_norm"] = pooled.norm(dim=1).tolist()
            reading["embedding_mean"] = pooled.mean(dim=1).tolist()
            reading["embedding_std"] = pooled.std(dim=1, unbiased=False).tolist()
            reading["embeddings"] = pooled.tolist() if (
                self.capture_embeddings or _capture_embeddings_setting()) else None
        if n_images is not None and n == n_images:
            if self.hash_images:
                from vlmscope.images import image_sha256

                reading["image_sha256"] = [image_sha256(img) for img in images]
            reading["image_sizes"] = [tuple(images.shape[2:4])] * n
        call.handle.record(**reading)

    def _zero_shot_logits(self, pooled: Any) -> Any:
        """CLIP's zero-shot logits: cosine similarity of the image embedding with each
        class text embedding, times the logit scale (softmaxed by the caller); SigLIP's add
        the logit bias (each one's sigmoid taken by the caller)."""
        head = self._zero_shot
        text = head.text if head.text.device == pooled.device else head.text.to(pooled.device)
        if pooled.shape[1] != text.shape[1]:
            raise ValueError(f"the image embedding has {pooled.shape[1]} dimensions and the "
                             f"zero-shot text embeddings {text.shape[1]}")
        image = self._torch.nn.functional.normalize(pooled, dim=1)
        logits = head.logit_scale * image @ text.T
        return logits if head.logit_bias is None else logits + head.logit_bias

    def uninstrument(self) -> None:
        """Remove every hook this instrumentation added; the model is as it was."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        if getattr(self.model, _INSTRUMENTED_ATTR, None) is self:
            delattr(self.model, _INSTRUMENTED_ATTR)


def _capture_embeddings_setting() -> bool:
    from vlmscope.tracing import get_settings

    return get_settings().capture_embeddings


def instrument_encoder(
    model: Any,
    labels: Sequence[str] | Mapping[int, str] | None = None,
    top_k: int = 5,
    layer: str | None = None,
    classifier: str | None = None,
    capture_embeddings: bool = False,
    name: str | None = None,
    zero_shot: Any = None,
    multi_label: bool = False,
    *,
    hash_images: bool = True,
) -> EncoderInstrumentation:
    """Trace every forward call of an image encoder; returns a handle with ``uninstrument()``.

    Needs no arguments for torchvision ResNets, timm models (the ResNet family named with
    its depth, e.g. ``timm/resnet50``), transformers' ``ResNetModel`` /
    ``ResNetForImageClassification`` / ``ResNetBackbone`` and timm wrappers, and open_clip's
    ``ModifiedResNet`` towers (``open_clip/RN50``), and the vision transformers and image
    classifiers of :mod:`vlmscope.encoder_families`. For any other ``nn.Module`` name the
    feature ``layer`` (a qualified submodule name giving one vector or one feature map per
    image; ``"name:input"`` for what goes into that module, e.g. ``"head:input"``; ``""``
    for the model's own output) and, when it has one, the ``classifier``.

    Each forward records one reading per image: the pooled feature vector's dimension, norm,
    mean and standard deviation (a feature map N x C x H x W is averaged over H and W; a
    ``ModelOutput`` gives its ``pooler_output``, else its last hidden state), the vector
    itself when ``capture_embeddings`` (or ``VLMSCOPE_CAPTURE_EMBEDDINGS``), the image content
    hash, and, when there is a real classifier (one with weights: an ``nn.Identity`` head is
    none), the top-``top_k`` labels with softmax scores and the entropy (nats). ``labels``
    name the classes (a list, or a dict index -> name); by default transformers'
    ``id2label``, else torchvision's ImageNet names for 1,000 classes, else ``class_N``. A
    hooked layer that gives no per-image features is logged with the layers that would do,
    and the span carries the problem in ``vlmscope.instrumentation.error``. The checkpoint
    SHA-256 is computed once and again whenever the weights change.

    ``zero_shot`` makes a CLIP-style tower's reading: class text embeddings (T x D, one per
    label, as a tensor or array), a callable making them from the list of ``labels`` (e.g.
    with the user's text tower), or :class:`vlmscope.ZeroShot` to give the logit scale too.
    The top-k are then ``softmax(logit_scale * cos(image embedding, text embedding))`` over
    the labels, as CLIP computes them, recorded on the same encoder span; with a
    ``ZeroShot(..., logit_bias=)`` (SigLIP) each label's
    ``sigmoid(logit_scale * cos + logit_bias)``, read as a multi-label encoder's.

    ``multi_label=True`` is for heads trained with one sigmoid per label (multi-label
    tagging): the logits are read as independent sigmoid scores, the top-k are those scores
    sorted descending (no entropy), and the span says so (``vision.encoder.multi_label``).

    A transformers ``Pipeline`` (``pipeline("image-classification", ...)``) is instrumented
    through its ``model``; a model of several towers that vlmscope does not know as a whole
    (``CLIPModel``, ``SiglipModel``, BLIP's captioner, LLaVA, open_clip's ``CLIP``) through
    its image tower (``vision_model``, ``model.vision_tower``, ``visual``): each reading is
    the tower's pooled output, projected as the model projects it when it has a
    ``visual_projection`` (``CLIPModel``: what ``get_image_features`` gives, so that
    ``zero_shot`` takes ``get_text_features``' embeddings), and the checkpoint is the
    tower's and the projection's weights.
    Instrumenting a model twice replaces the first instrumentation.
    """
    if is_hf_pipeline(model):
        model = model.model
    tower = image_tower(model) if layer is None and classifier is None else None
    projection = None
    if tower is not None:
        _log.info("instrumenting the image tower of %s (%s)", type(model).__name__,
                  type(tower).__name__)
        projection = getattr(model, "visual_projection", None)  # CLIP's, after the tower
        model = tower
    previous = getattr(model, _INSTRUMENTED_ATTR, None)
    if previous is not None:
        previous.uninstrument()
    handle = EncoderInstrumentation(
        model, labels, top_k, layer, classifier, capture_embeddings, name, hash_images,
        multi_label, zero_shot, projection,
    )
    setattr(model, _INSTRUMENTED_ATTR, handle)
    return handle
