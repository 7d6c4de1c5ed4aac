"""Exact means of float scores, so that a mean merged from parts of the rows equals the mean of
all of them to the last digit.

A float sum depends on the order of its terms; a sum of fractions does not. Scores are
summed as :class:`fractions.Fraction` (every float64 is one exactly) and the mean is the
correctly rounded float of ``sum / count``. A part carries its sum as a numerator and a
denominator (decimal strings: they outgrow 64 bits) in an :data:`EXACT_SUM_SCHEMA` row.
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction

import numpy as np
import pyarrow as pa

EXACT_SUM_SCHEMA = pa.schema([("n", pa.int64()), ("sum_numerator", pa.string()),
                              ("sum_denominator", pa.string())])
"""One part's exact sum: ``n`` values summing to ``sum_numerator / sum_denominator``."""

_MANTISSA_BITS = 53


def exact_sum(values: Iterable[tuple[float | None, int]]) -> tuple[int, Fraction | float]:
    """``(count, exact sum)`` of ``(value, repeats)`` pairs (None values are left out; with
    an infinite or NaN value the sum is the float ``inf``, ``-inf`` or ``nan`` it makes).

    Each value is ``mantissa * 2**exponent`` with a 53-bit integer mantissa
    (:func:`numpy.frexp`); the mantissas times their repeats are summed as Python integers
    per exponent, so a million distinct values cost a second, not the minutes of a
    :class:`~fractions.Fraction` per value."""
    pairs = [(v, n) for v, n in values if v is not None]
    if not pairs:
        return 0, Fraction(0)
    numbers = np.array([v for v, _ in pairs], dtype=np.float64)
    repeats = [int(n) for _, n in pairs]
    if not np.isfinite(numbers).all():
        return sum(repeats), _non_finite(numbers[~np.isfinite(numbers)].tolist())
    fractions, exponents = np.frexp(numbers)
    mantissas = (fractions * 2.0 ** _MANTISSA_BITS).astype(np.int64).tolist()
    by_exponent: dict[int, int] = {}
    for exponent, mantissa, n in zip(exponents.tolist(), mantissas, repeats, strict=True):
        by_exponent[exponent] = by_exponent.get(exponent, 0) + mantissa * n
    total = sum((Fraction(m) * Fraction(2) ** (e - _MANTISSA_BITS)
                 for e, m in by_exponent.items()), Fraction(0))
    return sum(repeats), total


def _non_finite(values: Iterable[float]) -> float:
    """The sum of infinite and NaN values: what any finite values added to it leave."""
    return float(sum(values, 0.0))


def _add(total: Fraction | float, more: Fraction | float) -> Fraction | float:
    if isinstance(total, float) or isinstance(more, float):
        return _non_finite([float(x) for x in (total, more) if isinstance(x, float)])
    return total + more


def exact_sum_table(values: Iterable[tuple[float | None, int]]) -> pa.Table:
    """The :data:`EXACT_SUM_SCHEMA` row of ``(value, repeats)`` pairs (an infinite or NaN
    sum is carried as its ``repr`` over a denominator of 0)."""
    count, total = exact_sum(values)
    numerator, denominator = ((repr(total), "0") if isinstance(total, float)
                              else (str(total.numerator), str(total.denominator)))
    return pa.Table.from_pylist([{"n": count, "sum_numerator": numerator,
                                  "sum_denominator": denominator}], schema=EXACT_SUM_SCHEMA)


def exact_mean(parts: Iterable[tuple[int, str | int, str | int]]) -> float | None:
    """The correctly rounded mean of the values of ``(n, sum_numerator, sum_denominator)``
    parts (None when there are none)."""
    count, total = 0, Fraction(0)
    for n, numerator, denominator in parts:
        count += int(n)
        total = _add(total, float(numerator) if str(denominator) == "0"
                     else Fraction(int(numerator), int(denominator)))
    return _mean(count, total)


def exact_mean_of(values: Iterable[tuple[float | None, int]]) -> float | None:
    """The correctly rounded mean of ``(value, repeats)`` pairs (None when there are none)."""
    return _mean(*exact_sum(values))


def _mean(count: int, total: Fraction | float) -> float | None:
    if not count:
        return None
    return total / count if isinstance(total, float) else float(total / count)
