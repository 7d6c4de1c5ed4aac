"""Paired statistics for comparing two runs row by row: bootstrap CIs and McNemar's test.

* Paired bootstrap of a mean difference. With ``d_i = candidate_i - base_i`` over the ``n``
  paired rows, one resample draws ``n`` rows with replacement and takes ``mean(d*)``; the CI
  is the percentile interval ``[q_{(1-c)/2}, q_{(1+c)/2}]`` of ``B`` resamples (``c`` = the
  confidence). Drawing ``n`` rows with replacement from rows whose differences take the
  distinct values ``v_k`` with counts ``n_k`` is drawing counts
  ``(m_1..m_K) ~ Multinomial(n, n_k / n)``, so ``mean(d*) = sum_k v_k m_k / n``: pass/fail
  outcomes (``d`` in {-1, 0, 1}) cost O(B K), not O(B n). Many distinct values fall back to
  drawing row indices. A fixed seed gives the same interval every time.
* Exact McNemar test. With ``b`` rows passing in the base and failing in the candidate
  (broken) and ``c`` the reverse (fixed), under H0 ``b ~ Binomial(b + c, 1/2)`` and the
  two-sided p-value is ``p = min(1, 2 * sum_{k=0}^{min(b,c)} C(b+c, k) / 2^(b+c))``
  (1 when ``b + c = 0``), as ``statsmodels.stats.contingency_tables.mcnemar(exact=True)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

DEFAULT_RESAMPLES = 2000
"""Bootstrap resamples ``B``."""

DEFAULT_CONFIDENCE = 0.95
"""Confidence of the bootstrap interval."""

DEFAULT_SEED = 0
"""Seed of the bootstrap's random generator (numpy PCG64)."""

MULTINOMIAL_MAX_VALUES = 1024
"""Above this many distinct differences the bootstrap draws row indices instead of counts."""

_INDEX_CHUNK = 16
"""Resamples drawn at once on the row-index path (bounds memory to 16 x n indices)."""


@dataclass(frozen=True)
class BootstrapInterval:
    """A mean difference and its bootstrap percentile interval (same units as the scores)."""

    mean: float
    low: float
    high: float


def bootstrap_mean_interval(
    values: ArrayLike,
    counts: ArrayLike,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = DEFAULT_SEED,
) -> BootstrapInterval | None:
    """Bootstrap interval of the mean of a sample given as distinct ``values`` with
    ``counts`` (the paired differences, grouped); None for an empty sample."""
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    v = np.asarray(values, dtype=np.float64)
    k = np.asarray(counts, dtype=np.int64)
    n = int(k.sum())
    if n == 0:
        return None
    mean = math.fsum((v * k).tolist()) / n
    rng = np.random.default_rng(seed)
    if v.size <= MULTINOMIAL_MAX_VALUES:
        drawn = rng.multinomial(n, k / n, size=resamples)
        means = drawn @ v / n
    else:
        sample = np.repeat(v, k)
        means = np.empty(resamples)
        for start in range(0, resamples, _INDEX_CHUNK):
            size = min(_INDEX_CHUNK, resamples - start)
            means[start:start + size] = sample[rng.integers(0, n, size=(size, n))].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return BootstrapInterval(mean, float(low), float(high))


def paired_bootstrap_interval(
    base: ArrayLike,
    candidate: ArrayLike,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = DEFAULT_SEED,
) -> BootstrapInterval | None:
    """Bootstrap interval of ``mean(candidate - base)`` over paired scores (same length)."""
    a = np.asarray(base, dtype=np.float64)
    b = np.asarray(candidate, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"base and candidate must be 1-d and paired; got shapes {a.shape} "
                         f"and {b.shape}")
    values, counts = np.unique(b - a, return_counts=True)
    return bootstrap_mean_interval(values, counts, resamples=resamples,
                                   confidence=confidence, seed=seed)


def mcnemar_exact_p(broken: int, fixed: int) -> float:
    """Two-sided exact McNemar p-value for ``broken`` (pass -> fail) and ``fixed``
    (fail -> pass) discordant pairs (see the module docstring)."""
    if broken < 0 or fixed < 0:
        raise ValueError("discordant counts must be >= 0")
    n = broken + fixed
    if n == 0:
        return 1.0
    m = min(broken, fixed)
    # log C(n, k) for k = 0..m by the running ratio C(n, k) / C(n, k-1) = (n - k + 1) / k.
    k = np.arange(1, m + 1, dtype=np.float64)
    log_terms = np.concatenate(([0.0], np.cumsum(np.log(n - k + 1.0) - np.log(k))))
    top = float(log_terms.max())
    log_tail = top + math.log(float(np.exp(log_terms - top).sum())) - n * math.log(2.0)
    return min(1.0, 2.0 * math.exp(log_tail))
