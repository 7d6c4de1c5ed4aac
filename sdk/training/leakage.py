"""``find_leakage``: evaluation images that were also in the training set.

Exact duplicates are found by image content hash (:func:`vlmscope.image_sha256`), near
duplicates by cosine similarity of embeddings above a threshold. The default embedding is
the image's own pixels, centred on their mean and scaled to unit length, which sees through
noise and brightness or contrast changes but not crops or shifts; pass embeddings from an
encoder for those.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vlmscope.images import image_sha256
from vlmscope.training._checks import CheckReport, record_check

DEFAULT_NEAR_THRESHOLD = 0.99
"""Cosine similarity at or above which an evaluation image is a near duplicate of a
training image."""

_CHUNK_ROWS = 1024


def accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of predictions equal to their label, in [0, 1] (NaN for no rows)."""
    return float(np.mean(predictions == labels)) if len(labels) else float("nan")


@dataclass(kw_only=True)
class LeakedRow:
    """One evaluation row found in the training set: its id and position, the training image
    it matches, how (``exact`` or ``near``) and the cosine similarity of their embeddings."""

    row_id: str
    eval_index: int
    train_index: int
    kind: str
    similarity: float


@dataclass(kw_only=True)
class LeakageReport(CheckReport):
    """Verdict of :func:`find_leakage`; ``score`` is the fraction of evaluation rows leaked.

    ``metrics_all`` are the evaluation metrics over every row, ``metrics_clean`` the same
    metrics without the leaked rows (empty when no predictions were given).
    """

    leaked: list[LeakedRow]
    exact_rows: list[str]
    near_rows: list[str]
    eval_rows: int
    metrics_all: dict[str, float] = field(default_factory=dict)
    metrics_clean: dict[str, float] = field(default_factory=dict)


def _as_arrays(images: Any) -> list[np.ndarray]:
    if hasattr(images, "detach"):  # a torch batch
        images = images.detach().cpu().numpy()
    return [np.asarray(image.detach().cpu().numpy() if hasattr(image, "detach") else image)
            for image in images]


def pixel_embeddings(images: Sequence[np.ndarray]) -> np.ndarray:
    """Each image's pixels, flattened, centred on their mean and scaled to unit length
    (a constant image gives the zero vector)."""
    flat = np.stack([np.asarray(image, dtype=np.float64).reshape(-1) for image in images])
    flat -= flat.mean(axis=1, keepdims=True)
    return _unit_rows(flat)


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def find_leakage(
    train_images: Any,
    eval_images: Any,
    *,
    eval_ids: Sequence[str] | None = None,
    train_embeddings: Any = None,
    eval_embeddings: Any = None,
    threshold: float = DEFAULT_NEAR_THRESHOLD,
    predictions: Sequence[Any] | None = None,
    labels: Sequence[Any] | None = None,
    metrics: Mapping[str, Callable[[np.ndarray, np.ndarray], float]] | None = None,
    record: bool = True,
) -> LeakageReport:
    """Find evaluation images that duplicate training images, exactly or nearly.

    ``train_images``/``eval_images`` are batches (N x ...) or sequences of numpy arrays or
    torch tensors. An evaluation row is an exact duplicate when its content hash equals a
    training image's, a near duplicate when the cosine similarity of its embedding to a
    training image's is at least ``threshold``. Embeddings default to
    :func:`pixel_embeddings`; pass ``train_embeddings``/``eval_embeddings`` (N x D) from an
    encoder instead. With ``predictions`` and ``labels`` (one per evaluation row) the
    ``metrics`` (name -> function of predictions and labels; default accuracy) are computed
    over all rows and again without the leaked ones. With ``record`` the report is also
    recorded as an EVALUATOR span.
    """
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold is a cosine similarity in (0, 1], got {threshold}")
    train = _as_arrays(train_images)
    evaluation = _as_arrays(eval_images)
    ids = [str(i) for i in (eval_ids if eval_ids is not None else range(len(evaluation)))]
    if len(ids) != len(evaluation):
        raise ValueError(f"got {len(ids)} eval_ids for {len(evaluation)} evaluation images")
    if not train or not evaluation:
        raise ValueError("find_leakage needs at least one training and one evaluation image")
    train_vectors, eval_vectors = _embeddings(train, evaluation, train_embeddings,
                                              eval_embeddings)

    train_index_of_hash: dict[str, int] = {}
    for index, image in enumerate(train):
        train_index_of_hash.setdefault(image_sha256(image), index)
    leaked = []
    for start in range(0, len(evaluation), _CHUNK_ROWS):
        similarity = eval_vectors[start:start + _CHUNK_ROWS] @ train_vectors.T
        best = similarity.argmax(axis=1)
        for offset, train_index in enumerate(best):
            index = start + offset
            exact = train_index_of_hash.get(image_sha256(evaluation[index]))
            if exact is not None:
                leaked.append(LeakedRow(row_id=ids[index], eval_index=index, train_index=exact,
                                        kind="exact",
                                        similarity=float(similarity[offset, exact])))
            elif similarity[offset, train_index] >= threshold:
                leaked.append(LeakedRow(row_id=ids[index], eval_index=index,
                                        train_index=int(train_index), kind="near",
                                        similarity=float(similarity[offset, train_index])))
    exact_rows = [row.row_id for row in leaked if row.kind == "exact"]
    near_rows = [row.row_id for row in leaked if row.kind == "near"]
    metrics_all, metrics_clean = _metrics(predictions, labels, metrics, len(evaluation),
                                          {row.eval_index for row in leaked})
    reasons = [f"{len(exact_rows)} of {len(evaluation)} evaluation rows are exact copies of "
               f"training images and {len(near_rows)} near copies (cosine similarity >= "
               f"{threshold:g})"]
    reasons += [f"{name}: {metrics_all[name]:.4f} over all rows, {metrics_clean[name]:.4f} "
                "without the leaked ones" for name in metrics_all]
    report = LeakageReport(
        name="leakage", passed=not leaked, score=len(leaked) / len(evaluation),
        label="leaked" if leaked else "ok", reasons=reasons,
        thresholds={"threshold": threshold}, leaked=leaked, exact_rows=exact_rows,
        near_rows=near_rows, eval_rows=len(evaluation), metrics_all=metrics_all,
        metrics_clean=metrics_clean)
    if record:
        record_check(report)
    return report


def _embeddings(train: list[np.ndarray], evaluation: list[np.ndarray], train_embeddings: Any,
                eval_embeddings: Any) -> tuple[np.ndarray, np.ndarray]:
    if (train_embeddings is None) != (eval_embeddings is None):
        raise ValueError("pass both train_embeddings and eval_embeddings, or neither")
    if train_embeddings is not None:
        vectors = [_unit_rows(np.asarray(_as_arrays(e), dtype=np.float64))
                   for e in (train_embeddings, eval_embeddings)]
        if len(vectors[0]) != len(train) or len(vectors[1]) != len(evaluation):
            raise ValueError("give one embedding per image: got "
                             f"{len(vectors[0])} for {len(train)} training images and "
                             f"{len(vectors[1])} for {len(evaluation)} evaluation images")
        return vectors[0], vectors[1]
    shapes = {image.shape for image in train + evaluation}
    if len(shapes) != 1:
        raise ValueError(f"pixel embeddings need images of one shape, got {sorted(shapes)}; "
                         "pass train_embeddings and eval_embeddings from an encoder")
    return pixel_embeddings(train), pixel_embeddings(evaluation)


def _metrics(
    predictions: Sequence[Any] | None,
    labels: Sequence[Any] | None,
    metrics: Mapping[str, Callable[[np.ndarray, np.ndarray], float]] | None,
    rows: int,
    leaked: set[int],
) -> tuple[dict[str, float], dict[str, float]]:
    if predictions is None or labels is None:
        return {}, {}
    predicted, expected = np.asarray(predictions), np.asarray(labels)
    if len(predicted) != rows or len(expected) != rows:
        raise ValueError(f"give one prediction and one label per evaluation row ({rows}); got "
                         f"{len(predicted)} and {len(expected)}")
    keep = np.array([i not in leaked for i in range(rows)], dtype=bool)
    functions = metrics or {"accuracy": accuracy}
    return ({name: float(f(predicted, expected)) for name, f in functions.items()},
            {name: float(f(predicted[keep], expected[keep])) for name, f in functions.items()})
