"""``instrument_encoder``: forward hooks on a torch image encoder (needs the ``torch`` extra).

Hooks only, no wrapping: a pre-hook on the model opens the encoder span, hooks on the feature
layer and the classifier keep their outputs, and a hook on the model (``always_call``, so it
runs when forward raises too) turns them into one reading per image and closes the span. The
hooks compute under ``torch.no_grad`` on detached tensors and return nothing, so the model's
outputs are bit-identical to the uninstrumented model's.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from vlmscope import conventions as cv
from vlmscope._optional import require
from vlmscope.encoder import EncoderSpan, encoder_attributes
from vlmscope.rows import warn_once
from vlmscope.tracing import get_tracer

_log = logging.getLogger("vlmscope")

# (block type, blocks per stage) -> depth, for torchvision and transformers ResNets.
_RESNET_DEPTHS = {
    ("basic", (2, 2, 2, 2)): 18,
    ("basic", (3, 4, 6, 3)): 34,
    ("bottleneck", (3, 4, 6, 3)): 50,
    ("bottleneck", (3, 4, 23, 3)): 101,
    ("bottleneck", (3, 8, 36, 3)): 152,
}

_INSTRUMENTED_ATTR = "_vlmscope_encoder_handle"


def checkpoint_sha256(model: Any) -> str:
    """SHA-256 (hex) of a torch module's weights: every ``state_dict`` entry's name, dtype,
    shape and bytes, in order. Equal weights give equal hashes in any process."""
    torch = require("torch", "checkpoint hashing")
    digest = hashlib.sha256()
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
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


def _describe(model: Any) -> tuple[str, int | None, str | None, str | None]:
    """(architecture, depth, feature layer, classifier) guessed for known ResNets."""
    torchvision_models = _maybe_import("torchvision.models")
    if torchvision_models is not None and isinstance(model, torchvision_models.ResNet):
        block = "bottleneck" if isinstance(
            model.layer1[0], torchvision_models.resnet.Bottleneck) else "basic"
        counts = tuple(len(getattr(model, f"layer{i}")) for i in range(1, 5))
        depth = _RESNET_DEPTHS.get((block, counts))
        return (f"resnet{depth}" if depth else "resnet"), depth, "avgpool", "fc"
    config = getattr(model, "config", None)
    if config is not None and getattr(config, "model_type", None) == "resnet":
        counts = tuple(getattr(config, "depths", ()))
        depth = _RESNET_DEPTHS.get((getattr(config, "layer_type", "basic"), counts))
        arch = f"resnet{depth}" if depth else "resnet"
        prefix = "resnet." if hasattr(model, "resnet") else ""
        classifier = "classifier" if hasattr(model, "classifier") else None
        return arch, depth, f"{prefix}pooler", classifier
    return type(model).__name__, None, None, None


def _maybe_import(name: str) -> Any:
    try:
        return require(name)
    except ImportError:
        return None


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
    extra: dict[str, Any] = field(default_factory=dict)


class EncoderInstrumentation:
    """The hooks on one model; :meth:`uninstrument` removes them all (safe to call twice)."""

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
    ) -> None:
        torch = require("torch", "instrument_encoder")
        if not isinstance(model, torch.nn.Module):
            raise TypeError(
                f"instrument_encoder needs a torch.nn.Module, got {type(model).__name__}")
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        self._torch = torch
        self.model = model
        arch, depth, guessed_layer, guessed_classifier = _describe(model)
        self.architecture = arch
        self.depth = depth
        self.layer = layer or guessed_layer
        self.classifier = classifier or guessed_classifier
        if self.layer is None and self.classifier is None:
            raise ValueError(
                f"vlmscope does not know where the features and the classifier of a "
                f"{type(model).__name__} are: pass layer='<qualified name of the feature "
                f"layer>' and classifier='<qualified name of the classifier>' (any of "
                f"{[n for n, _ in model.named_modules() if n][:8]} ...)"
            )
        self.name = name or arch
        self.top_k = top_k
        self.capture_embeddings = capture_embeddings
        self.hash_images = hash_images
        self.multi_label = bool(multi_label)
        self._labels_given = labels
        self._labels: list[str] | None = None
        self._signature: tuple[tuple[int, int], ...] | None = None
        self._checkpoint: str | None = None
        self._local = threading.local()
        self._handles: list[Any] = []
        self._handles.append(model.register_forward_pre_hook(self._pre_hook, with_kwargs=True))
        for qualified, hook in ((self.layer, self._feature_hook),
                                (self.classifier, self._logits_hook)):
            if qualified is None:
                continue
            try:
                module = model.get_submodule(qualified)
            except AttributeError as error:
                self.uninstrument()
                raise ValueError(
                    f"{type(model).__name__} has no submodule {qualified!r}; name one of "
                    f"{[n for n, _ in model.named_modules() if n][:12]} ..."
                ) from error
            self._handles.append(module.register_forward_hook(hook))
        self._handles.append(
            model.register_forward_hook(self._post_hook, with_kwargs=True, always_call=True)
        )

    # -- checkpoint and labels -----------------------------------------------------------

    @property
    def checkpoint_sha256(self) -> str:
        """The SHA-256 of the weights now, recomputed only when they changed."""
        signature = _weights_signature(self.model)
        if signature != self._signature or self._checkpoint is None:
            self._checkpoint = checkpoint_sha256(self.model)
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
            images = args[0] if args else next(
                (kwargs[k] for k in ("pixel_values", "x", "input", "images") if k in kwargs), None)
            checkpoint = self.checkpoint_sha256
            attrs = encoder_attributes(self.name, checkpoint, self.architecture, self.depth,
                                       self.layer, self.classifier,
                                       multi_label=self.multi_label)
            span = get_tracer().start_span(cv.ENCODER_SPAN_NAME, attributes=attrs)
            token = otel_context.attach(trace.set_span_in_context(span))
            handle = EncoderSpan(span, self.name, checkpoint, None, self.capture_embeddings)
            self._stack().append(_Call(span, token, handle, images))
        except Exception as error:
            warn_once("encoder-pre", "vlmscope could not open the encoder span: %s", error)

    def _feature_hook(self, module: Any, args: Any, output: Any) -> None:
        stack = self._stack()
        if stack:
            stack[-1].features = output[0] if isinstance(output, tuple) else output

    def _logits_hook(self, module: Any, args: Any, output: Any) -> None:
        stack = self._stack()
        if stack:
            stack[-1].logits = getattr(output, "logits", output)

    def _post_hook(self, module: Any, args: Any, kwargs: Any, output: Any) -> None:
        stack = self._stack()
        if not stack:
            return
        call = stack.pop()
        try:
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

    def _record(self, call: _Call, output: Any) -> None:
        torch = self._torch
        logits = call.logits
        if logits is None and self.classifier is not None:
            logits = getattr(output, "logits", output)
        reading: dict[str, Any] = {}
        n = None
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
        features = call.features
        if isinstance(features, torch.Tensor) and features.dim() >= 1:
            flat = features.detach().float().reshape(features.shape[0], -1)
            n = n or flat.shape[0]
            reading["embedding_dim"] = flat.shape[1]
            reading["embedding_l2_norm"] = flat.norm(dim=1).tolist()
            reading["embedding_mean"] = flat.mean(dim=1).tolist()
            reading["embedding_std"] = flat.std(dim=1, unbiased=False).tolist()
            reading["embeddings"] = flat.tolist() if (
                self.capture_embeddings or _capture_embeddings_setting()) else None
        images = call.images
        if isinstance(images, torch.Tensor) and images.dim() == 4 and n == images.shape[0]:
            if self.hash_images:
                from vlmscope.images import image_sha256

                reading["image_sha256"] = [image_sha256(img) for img in images]
            reading["image_sizes"] = [tuple(images.shape[2:4])] * n
        call.handle.record(**reading)

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
    multi_label: bool = False,
    *,
    hash_images: bool = True,
) -> EncoderInstrumentation:
    """Trace every forward call of an image encoder; returns a handle with ``uninstrument()``.

    Works out of the box for torchvision ResNets (18/34/50/101/152: features at ``avgpool``,
    classifier ``fc``) and transformers' ResNet models (``resnet.pooler``, ``classifier``);
    for any other ``nn.Module`` name the feature ``layer`` and the ``classifier`` (qualified
    submodule names). ``labels`` name the classes (a list, or a dict index -> name); by
    default transformers' ``id2label``, else torchvision's ImageNet names for 1,000 classes,
    else ``class_N``. Each forward records one reading per image: top-``top_k`` labels and
    softmax scores, entropy (nats), feature norm/mean/std, image content hash, and the
    feature vector itself when ``capture_embeddings`` (or ``VLMSCOPE_CAPTURE_EMBEDDINGS``).
    The checkpoint SHA-256 is computed once and again whenever the weights change.

    ``multi_label=True`` is for heads trained with one sigmoid per label (multi-label
    tagging): the logits are read as independent sigmoid scores, the top-k are those scores
    sorted descending (no entropy), and the span says so (``vision.encoder.multi_label``).

    Instrumenting a model twice replaces the first instrumentation.
    """
    previous = getattr(model, _INSTRUMENTED_ATTR, None)
    if previous is not None:
        previous.uninstrument()
    handle = EncoderInstrumentation(
        model, labels, top_k, layer, classifier, capture_embeddings, name, hash_images,
        multi_label,
    )
    setattr(model, _INSTRUMENTED_ATTR, handle)
    return handle
