"""Encoder spans: what the image encoder read, one record per image.

:func:`encoder_span` is the manual API, for any encoder (ONNX, a hosted vision API, a model
vlmscope cannot hook); :func:`vlmscope.instrument_encoder` uses the same
:class:`EncoderSpan` from torch forward hooks.
"""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import Span as _SdkSpan

from vlmscope import conventions as cv
from vlmscope.rows import EncoderReading, batch_attributes, current_rows, warn_once
from vlmscope.tracing import get_settings, get_tracer

ZERO_SHOT_LOGIT_SCALE = 100.0
"""The logit scale of a zero-shot reading when none is given: what CLIP's trained models use
(their learned scale is clamped to 100)."""


@dataclass(frozen=True)
class ZeroShot:
    """Class text embeddings for a CLIP-style zero-shot reading, with the model's logit scale.

    ``text_embeddings`` is T x D (one row per label, in the order of ``labels``; a tensor or
    an array) or a callable that makes them from the list of labels; ``logit_scale`` is the
    multiplier of the cosine similarities (``clip.logit_scale.exp()``). ``logit_bias`` is
    SigLIP's (``siglip.logit_bias``): with it, each label's score is its own sigmoid of the
    scaled similarity plus the bias, as SigLIP computes it, and the reading is multi-label
    (the labels scoring at least the threshold); without it, CLIP's softmax over the labels.

    >>> zs = vlmscope.ZeroShot(text_features, clip.logit_scale.exp())  # doctest: +SKIP
    >>> vlmscope.instrument_encoder(clip.visual, labels=names, zero_shot=zs)  # doctest: +SKIP
    """

    text_embeddings: Any
    logit_scale: float = ZERO_SHOT_LOGIT_SCALE
    logit_bias: float | None = None


def resolve_row_ids(n: int, explicit: Sequence[str] | None = None) -> list[str] | None:
    """Row ids for ``n`` items of a call: explicit ones, else the current rows when they
    align (N rows for N items, or one row owning every item), else None (unknown)."""
    if explicit is not None:
        if len(explicit) != n:
            raise ValueError(f"got {len(explicit)} row ids for {n} items")
        return [str(r) for r in explicit]
    rows = current_rows()
    if rows is None:
        return None
    if len(rows.row_ids) == n:
        return list(rows.row_ids)
    if len(rows.row_ids) == 1:
        return [rows.row_ids[0]] * n
    warn_once(
        "row-mismatch",
        "a call over %d items ran inside a batch of %d rows; its records are not tied to rows",
        n, len(rows.row_ids),
    )
    return None


class EncoderSpan:
    """Handle of an open encoder span; :meth:`record` sets what the encoder read."""

    def __init__(
        self,
        span: trace.Span,
        model: str,
        checkpoint_sha256: str | None,
        row_ids: Sequence[str] | None,
        capture_embeddings: bool,
    ) -> None:
        self.span = span
        self.model = model
        self.checkpoint_sha256 = checkpoint_sha256
        self._row_ids = row_ids
        self._capture_embeddings = capture_embeddings

    def record(
        self,
        *,
        top_k_labels: Sequence[Sequence[str]] | None = None,
        top_k_scores: Sequence[Sequence[float]] | None = None,
        top_k_class_ids: Sequence[Sequence[int]] | None = None,
        entropy: Sequence[float] | None = None,
        embeddings: Sequence[Sequence[float]] | None = None,
        embedding_dim: int | None = None,
        embedding_l2_norm: Sequence[float] | None = None,
        embedding_mean: Sequence[float] | None = None,
        embedding_std: Sequence[float] | None = None,
        image_sha256: Sequence[str] | None = None,
        image_sizes: Sequence[tuple[int, int]] | None = None,
    ) -> None:
        """Record one reading per image (lists aligned over the N images of the call).

        ``top_k_labels``/``top_k_scores`` are per image, best first, scores as softmax
        probabilities in [0, 1] (sigmoid scores per label for a multi-label head); a flat
        list (``["cat", "dog"]``, ``[0.9, 0.1]``) is one image's. A call keeps the same
        number of labels for every image, the shortest list's (a warning names what the
        longer ones lose). A missing score (None, or
        an image with fewer scores than labels) is recorded as NaN, which no reading counts
        as read. ``entropy`` in nats; ``embeddings`` are kept only when
        embedding capture is on (argument or ``VLMSCOPE_CAPTURE_EMBEDDINGS``), their norms,
        means and standard deviations always.
        """
        top_k_labels = _one_image_if_flat(top_k_labels, str)
        top_k_scores = _one_image_if_flat(top_k_scores, numbers.Real)
        n = _batch_size(top_k_labels, embeddings, embedding_l2_norm, image_sha256)
        attrs: dict[str, Any] = {cv.VISION_ENCODER_BATCH_SIZE: n}
        row_ids = resolve_row_ids(n, self._row_ids)
        if row_ids is not None:
            attrs[cv.VLMSCOPE_ROW_IDS] = row_ids
        k = 0
        if top_k_labels is not None:
            k = min((len(labels) for labels in top_k_labels), default=0)
            longest = max((len(labels) for labels in top_k_labels), default=0)
            if longest > k:
                # One k per span: the labels past it cannot be stored for this image alone.
                warn_once("encoder-ragged-top-k",
                          "encoder_span.record: images of one call have from %d to %d top-k "
                          "labels; the first %d of each are recorded, the rest are dropped "
                          "(give each image the same number of labels and scores, e.g. "
                          "every label with its score)", k, longest, k)
            attrs[cv.VISION_ENCODER_TOP_K] = k
            attrs[cv.VISION_ENCODER_TOP_K_LABELS] = [
                str(label) for labels in top_k_labels for label in labels[:k]
            ]
            attrs[cv.VISION_ENCODER_TOP1_LABEL] = [str(labels[0]) if k else ""
                                                   for labels in top_k_labels]
        if top_k_scores is not None:
            # Exactly k per image, or the flat list would pair the next image's labels
            # with this one's scores.
            padded = [[_score(s) for s in scores[:k]] + [math.nan] * (k - len(scores[:k]))
                      for scores in top_k_scores]
            attrs[cv.VISION_ENCODER_TOP_K_SCORES] = [s for scores in padded for s in scores]
            attrs[cv.VISION_ENCODER_TOP1_SCORE] = [s[0] if k else 0.0 for s in padded]
        if top_k_class_ids is not None:
            attrs[cv.VISION_ENCODER_TOP_K_CLASS_IDS] = [
                int(c) for ids in top_k_class_ids for c in ids[:k]
            ]
        if entropy is not None:
            attrs[cv.VISION_ENCODER_ENTROPY] = [float(h) for h in entropy]
        if embedding_dim is None and embeddings is not None and n:
            embedding_dim = len(embeddings[0])
        if embedding_dim is not None:
            attrs[cv.VISION_ENCODER_EMBEDDING_DIM] = int(embedding_dim)
        for key, values in (
            (cv.VISION_ENCODER_EMBEDDING_L2_NORM, embedding_l2_norm),
            (cv.VISION_ENCODER_EMBEDDING_MEAN, embedding_mean),
            (cv.VISION_ENCODER_EMBEDDING_STD, embedding_std),
        ):
            if values is not None:
                attrs[key] = [float(v) for v in values]
        if image_sha256 is not None:
            attrs[cv.VISION_IMAGE_SHA256] = list(image_sha256)
        if image_sizes is not None:
            attrs[cv.VISION_IMAGE_HEIGHT] = [int(h) for h, _ in image_sizes]
            attrs[cv.VISION_IMAGE_WIDTH] = [int(w) for _, w in image_sizes]
        self.span.set_attributes(attrs)
        if embeddings is not None and (
            self._capture_embeddings or get_settings().capture_embeddings
        ):
            set_vectors(self.span, {cv.embedding_vector_key(i): vector
                                    for i, vector in enumerate(embeddings)})
        self._share_with_rows(row_ids, top_k_labels, top_k_scores, k)

    def _share_with_rows(
        self,
        row_ids: list[str] | None,
        top_k_labels: Sequence[Sequence[str]] | None,
        top_k_scores: Sequence[Sequence[float]] | None,
        k: int,
    ) -> None:
        """Leave each row's reading where its LLM span will look for it."""
        rows = current_rows()
        if rows is None or row_ids is None:
            return
        context = self.span.get_span_context()
        for i, row_id in enumerate(row_ids):
            rows.readings[row_id] = EncoderReading(
                span_context=context,
                model=self.model,
                checkpoint_sha256=self.checkpoint_sha256,
                top_k_labels=tuple(str(x) for x in top_k_labels[i][:k]) if top_k_labels else (),
                top_k_scores=tuple(_score(x) for x in top_k_scores[i][:k])
                if top_k_scores else (),
            )


_SDK_SET_ATTRIBUTES = _SdkSpan.set_attributes


def _float_tuple(vector: Any) -> tuple[float, ...]:
    """A vector (list, tuple, numpy array or tensor) as a tuple of Python floats."""
    tolist = getattr(vector, "tolist", None)
    values = tolist() if tolist is not None else vector
    if type(values) is list and all(type(v) is float for v in values):
        return tuple(values)
    return tuple(map(float, values))


def set_vectors(span: trace.Span, vectors: dict[str, Any]) -> None:
    """Set embedding vectors on ``span`` as float arrays.

    The SDK validates an attribute array element by element (about a tenth of a microsecond
    a float, most of what a captured 512-d vector costs a row) and turns it into a tuple.
    Each vector here is made a tuple of Python floats first, which is what that validation
    returns, so on the SDK's own span it goes in through the setter the SDK itself uses once
    a value is validated, under the same two locks and with the same attribute-count limit.
    Any other span, or a vector that is not all numbers, goes through ``set_attributes``.
    """
    try:
        cleaned = {key: _float_tuple(vector) for key, vector in vectors.items()}
    except (TypeError, ValueError):
        span.set_attributes(vectors)  # the SDK says what is wrong with them
        return
    attributes = getattr(span, "_attributes", None)
    if (not isinstance(span, _SdkSpan) or type(span).set_attributes is not _SDK_SET_ATTRIBUTES
            or type(attributes) is not BoundedAttributes
            or attributes.maxlen == 0 or getattr(attributes, "_immutable", True)):
        span.set_attributes(cleaned)
        return
    with span._lock:
        if span._end_time is not None:
            return  # the SDK ignores attributes set on an ended span, too
        with attributes._lock:
            for key, value in cleaned.items():
                attributes._setitem_locked(key, value)


def _one_image_if_flat(values: Sequence[Any] | None, item: type) -> Sequence[Any] | None:
    """``values`` as a list of per-image lists: a flat list of ``item`` values (one image's
    labels or scores) becomes a list of that one."""
    if values is not None and len(values) and isinstance(values[0], item):
        return [values]
    return values


def _score(value: Any) -> float:
    return math.nan if value is None else float(value)


def _batch_size(*candidates: Sequence[Any] | None) -> int:
    for candidate in candidates:
        if candidate is not None:
            return len(candidate)
    return 1


def encoder_attributes(
    model: str,
    checkpoint_sha256: str | None,
    architecture: str | None,
    depth: int | None,
    layer: str | None,
    classifier: str | None,
    *,
    multi_label: bool = False,
) -> dict[str, Any]:
    """The attributes every encoder span starts with (and the batch's size inside
    ``trace_batch``)."""
    attrs: dict[str, Any] = {
        cv.VLMSCOPE_SPAN_ROLE: cv.ROLE_ENCODER,
        cv.OPENINFERENCE_SPAN_KIND: cv.SPAN_KIND_EMBEDDING,
        cv.EMBEDDING_MODEL_NAME: model,
        **batch_attributes(),
    }
    if multi_label:
        attrs[cv.VISION_ENCODER_MULTI_LABEL] = True
    for key, value in (
        (cv.VISION_ENCODER_CHECKPOINT_SHA256, checkpoint_sha256),
        (cv.VISION_ENCODER_ARCHITECTURE, architecture),
        (cv.VISION_ENCODER_DEPTH, depth),
        (cv.VISION_ENCODER_LAYER, layer),
        (cv.VISION_ENCODER_CLASSIFIER, classifier),
    ):
        if value is not None:
            attrs[key] = value
    return attrs


@contextlib.contextmanager
def encoder_span(
    model: str,
    *,
    checkpoint_sha256: str | None = None,
    architecture: str | None = None,
    depth: int | None = None,
    layer: str | None = None,
    row_ids: Sequence[str] | None = None,
    capture_embeddings: bool = False,
    multi_label: bool = False,
) -> Iterator[EncoderSpan]:
    """Trace one call of an encoder vlmscope does not hook; call ``.record(...)`` inside.

    ``multi_label`` marks a head whose scores are independent per label (sigmoid), so the
    reading is every label over a threshold rather than the top-1.

    >>> with vlmscope.encoder_span("resnet50-onnx", checkpoint_sha256=sha) as enc:  # doctest: +SKIP
    ...     enc.record(top_k_labels=[["tabby", "tiger cat"]], top_k_scores=[[0.8, 0.1]])
    """
    attrs = encoder_attributes(model, checkpoint_sha256, architecture, depth, layer, None,
                               multi_label=multi_label)
    with get_tracer().start_as_current_span(
        cv.ENCODER_SPAN_NAME, attributes=attrs, record_exception=True,
        set_status_on_exception=True,
    ) as span:
        yield EncoderSpan(span, model, checkpoint_sha256, row_ids, capture_embeddings)
