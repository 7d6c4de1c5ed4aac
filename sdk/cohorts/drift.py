"""Embedding drift between two cohorts or runs, from the stored encoder embeddings.

With ``X_a`` (``n_a x d``) and ``X_b`` (``n_b x d``) the embeddings of the two sides and
``mu`` their means, five methods each give a score, a threshold and a verdict:

* ``mean_cosine`` = ``1 - mu_a . mu_b / (|mu_a| |mu_b|)`` and
* ``mean_euclidean`` = ``|mu_a - mu_b|`` (embedding units), both judged against their
  distribution over random relabellings of the pooled rows (the distance two samples of
  these sizes show without drift).
* ``mmd`` = the unbiased ``MMD^2_u = sum_{i!=j} k(a_i, a_j) / (n_a (n_a - 1))
  + sum_{i!=j} k(b_i, b_j) / (n_b (n_b - 1)) - 2 sum_{i,j} k(a_i, b_j) / (n_a n_b)`` with
  the RBF kernel ``k(x, y) = exp(-|x - y|^2 / (2 sigma^2))``, ``sigma`` = the median
  pairwise distance of the pooled rows (median heuristic); permutation p-value
  ``p = (1 + #{MMD^2_perm >= MMD^2}) / (1 + P)``.

  For these three the threshold is the ``1 - alpha`` quantile of the score over the
  relabellings, and the verdict is drift when the permutation p-value is below ``alpha``.
* ``domain_classifier`` = ROC-AUC of a logistic regression (standardised inputs) telling
  the sides apart, from 5-fold stratified cross-validated probabilities (scikit-learn);
  drift when ``AUC > max(0.6, 0.5 + 3 sigma_0)``, ``sigma_0 = sqrt((n_a + n_b + 1) /
  (12 n_a n_b))`` the standard deviation of the AUC of a chance classifier (Mann-Whitney).
* ``drifted_dims`` = share of dimensions whose two-sample Kolmogorov-Smirnov test rejects
  after Benjamini-Hochberg correction at ``alpha``; drift when the share exceeds 0.1.

The overall verdict is drift when at least three of the five methods say so. Each side is
subsampled (seeded) to at most ``max_rows`` rows.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from vlmscope._optional import require

DEFAULT_ALPHA = 0.05
"""Significance level of the permutation, KS and mean-distance tests."""

DEFAULT_PERMUTATIONS = 200
"""Random relabellings for the permutation tests."""

DEFAULT_MAX_ROWS = 1000
"""Rows kept per side (a seeded subsample beyond that): the kernel matrix is N^2."""

DEFAULT_AUC_FLOOR = 0.6
"""Smallest domain-classifier ROC-AUC read as drift, whatever the sample size."""

DEFAULT_DIMENSION_SHARE = 0.1
"""Share of drifted dimensions above which the embeddings have drifted."""

METHODS = ("mean_cosine", "mean_euclidean", "mmd", "domain_classifier", "drifted_dims")
"""The drift methods, in report order."""


@dataclass(frozen=True)
class DriftScore:
    """One method's score, its threshold, its verdict and (for tests) its p-value."""

    score: float
    threshold: float
    drifted: bool
    p_value: float | None = None


@dataclass(frozen=True)
class DriftReport:
    """Every method's :class:`DriftScore`, the rows compared and the overall verdict."""

    rows_a: int
    rows_b: int
    dimension: int
    methods: dict[str, DriftScore]

    @property
    def drifted(self) -> bool:
        """True when at least three of the five methods detect drift."""
        return sum(m.drifted for m in self.methods.values()) >= 3

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {"rows_a": self.rows_a, "rows_b": self.rows_b, "dimension": self.dimension,
                "drifted": self.drifted,
                "methods": {name: asdict(score) for name, score in self.methods.items()}}


def stored_embeddings(db: str | os.PathLike[str] | None, run_or_cohort: str) -> np.ndarray:
    """The embeddings (``n x d``, float32) of the rows of the run named ``run_or_cohort``,
    else of the cohort of that name, in row id order, from the store ``db`` (default: the
    configured store, else ``$VLMSCOPE_DB``); :class:`ValueError` when neither has stored
    embeddings or their dimensions differ."""
    from vlmscope.dataset.store import reading_connection

    query = ("SELECT e.vector FROM embeddings e JOIN row_records r "
             "ON r.trace_id = e.trace_id AND r.row_id = e.row_id WHERE r.{} = ? "
             "ORDER BY r.row_id, e.span_id, e.record_index")
    with reading_connection(db) as con:
        for column in ("run_name", "cohort"):
            vectors = con.sql(query.format(column), params=[run_or_cohort]).to_arrow_table()
            if vectors.num_rows:
                break
    if not vectors.num_rows:
        raise ValueError(f"no stored embeddings for a run or cohort named {run_or_cohort!r}: "
                         "instrument the encoder with capture_embeddings=True")
    column = vectors.column("vector").combine_chunks()
    lengths = set(np.diff(column.offsets.to_numpy()).tolist())
    if len(lengths) != 1:
        raise ValueError(f"{run_or_cohort!r} mixes embedding dimensions {sorted(lengths)}: "
                         "its rows came from different encoders (mixed checkpoints)")
    return column.flatten().to_numpy().reshape(vectors.num_rows, lengths.pop())


def _side(value: str | np.ndarray | Sequence[Sequence[float]],
          db: str | os.PathLike[str] | None) -> np.ndarray:
    if isinstance(value, str):
        return stored_embeddings(db, value)
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"embeddings must be a 2-d array (rows x dimensions), got shape "
                         f"{array.shape}")
    return array


def _permutation_scores(pooled: np.ndarray, n_a: int, permutations: int,
                        rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean-cosine distance, mean-Euclidean distance and MMD^2_u for the observed split
    (column 0) and ``permutations`` random relabellings (columns 1..P)."""
    n = pooled.shape[0]
    n_b = n - n_a
    labels = np.zeros((n, permutations + 1))
    labels[:n_a, 0] = 1.0
    for p in range(1, permutations + 1):
        labels[rng.permutation(n)[:n_a], p] = 1.0
    others = 1.0 - labels
    mean_a = labels.T @ pooled / n_a
    mean_b = others.T @ pooled / n_b
    norms = np.linalg.norm(mean_a, axis=1) * np.linalg.norm(mean_b, axis=1)
    cosine = 1.0 - np.einsum("pd,pd->p", mean_a, mean_b) / np.where(norms > 0, norms, 1.0)
    euclidean = np.linalg.norm(mean_a - mean_b, axis=1)

    squared = np.maximum(
        (pooled ** 2).sum(1)[:, None] + (pooled ** 2).sum(1)[None, :] - 2 * pooled @ pooled.T,
        0.0)
    off_diagonal = squared[~np.eye(n, dtype=bool)]
    sigma2 = float(np.median(off_diagonal))
    kernel = np.exp(-squared / (2.0 * sigma2)) if sigma2 > 0 else np.ones_like(squared)
    diagonal = np.diag(kernel)
    k_labels = kernel @ labels
    within_a = np.einsum("np,np->p", labels, k_labels) - labels.T @ diagonal
    k_others = kernel @ others
    within_b = np.einsum("np,np->p", others, k_others) - others.T @ diagonal
    across = np.einsum("np,np->p", labels, k_others)
    mmd = (within_a / (n_a * (n_a - 1)) + within_b / (n_b * (n_b - 1))
           - 2.0 * across / (n_a * n_b))
    return cosine, euclidean, mmd


def _permutation_score(null_and_observed: np.ndarray, alpha: float) -> DriftScore:
    observed, null = float(null_and_observed[0]), null_and_observed[1:]
    p_value = float((1 + np.sum(null >= observed)) / (1 + null.size))
    threshold = float(np.quantile(null, 1.0 - alpha))
    return DriftScore(observed, threshold, p_value < alpha, p_value)


def _domain_classifier(a: np.ndarray, b: np.ndarray, seed: int) -> DriftScore:
    require("sklearn", "the domain-classifier drift test")
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.vstack([a, b])
    y = np.r_[np.zeros(len(a)), np.ones(len(b))]
    folds = min(5, len(a), len(b))
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    probabilities = cross_val_predict(
        model, x, y, cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
        method="predict_proba")[:, 1]
    auc = float(roc_auc_score(y, probabilities))
    chance_sd = float(np.sqrt((len(a) + len(b) + 1) / (12.0 * len(a) * len(b))))
    threshold = max(DEFAULT_AUC_FLOOR, 0.5 + 3.0 * chance_sd)
    return DriftScore(auc, threshold, auc > threshold)


def _drifted_dims(a: np.ndarray, b: np.ndarray, alpha: float) -> DriftScore:
    stats = require("scipy.stats", "the per-dimension drift test")
    p_values = np.atleast_1d(stats.ks_2samp(a, b, axis=0, method="asymp").pvalue)
    p_values = np.where(np.isnan(p_values), 1.0, p_values)
    order = np.sort(p_values)
    m = order.size
    passing = np.nonzero(order <= alpha * np.arange(1, m + 1) / m)[0]
    rejected = 0 if passing.size == 0 else int(passing[-1]) + 1
    share = rejected / m
    return DriftScore(share, DEFAULT_DIMENSION_SHARE, share > DEFAULT_DIMENSION_SHARE)


def drift(
    run_or_cohort_a: str | np.ndarray,
    run_or_cohort_b: str | np.ndarray,
    *,
    db: str | os.PathLike[str] | None = None,
    alpha: float = DEFAULT_ALPHA,
    permutations: int = DEFAULT_PERMUTATIONS,
    max_rows: int = DEFAULT_MAX_ROWS,
    seed: int = 0,
) -> DriftReport:
    """How far the embeddings of ``run_or_cohort_b`` have drifted from ``run_or_cohort_a``.

    Each side is a run name, else a cohort name, whose embeddings are read from the store
    ``db`` (default: the configured store, else ``$VLMSCOPE_DB``), or an ``n x d`` array.
    See the module docstring for the methods, thresholds and verdicts. Seeded: the same
    inputs give the same report.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if permutations < 1 or max_rows < 2:
        raise ValueError("permutations must be >= 1 and max_rows >= 2")
    rng = np.random.default_rng(seed)
    a, b = _side(run_or_cohort_a, db), _side(run_or_cohort_b, db)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"the sides have embedding dimensions {a.shape[1]} and {b.shape[1]}: "
                         "they come from different encoders")
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"drift needs at least 2 rows per side, got {len(a)} and {len(b)}")
    a = a[np.sort(rng.permutation(len(a))[:max_rows])].astype(np.float64)
    b = b[np.sort(rng.permutation(len(b))[:max_rows])].astype(np.float64)
    cosine, euclidean, mmd = _permutation_scores(np.vstack([a, b]), len(a), permutations, rng)
    methods = {
        "mean_cosine": _permutation_score(cosine, alpha),
        "mean_euclidean": _permutation_score(euclidean, alpha),
        "mmd": _permutation_score(mmd, alpha),
        "domain_classifier": _domain_classifier(a, b, seed),
        "drifted_dims": _drifted_dims(a, b, alpha),
    }
    return DriftReport(len(a), len(b), a.shape[1], methods)
