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

import pyarrow as pa

EXACT_SUM_SCHEMA = pa.schema([("n", pa.int64()), ("sum_numerator", pa.string()),
                              ("sum_denominator", pa.string())])
"""One part's exact sum: ``n`` values summing to ``sum_numerator / sum_denominator``."""


def exact_sum(values: Iterable[tuple[float | None, int]]) -> tuple[int, Fraction]:
    """``(count, exact sum)`` of ``(value, repeats)`` pairs (None values are left out)."""
    count, total = 0, Fraction(0)
    for value, repeats in values:
        if value is None:
            continue
        count += int(repeats)
        total += Fraction(value) * int(repeats)
    return count, total


def exact_sum_table(values: Iterable[tuple[float | None, int]]) -> pa.Table:
    """The :data:`EXACT_SUM_SCHEMA` row of ``(value, repeats)`` pairs."""
    count, total = exact_sum(values)
    return pa.Table.from_pylist([{"n": count, "sum_numerator": str(total.numerator),
                                  "sum_denominator": str(total.denominator)}],
                                schema=EXACT_SUM_SCHEMA)


def exact_mean(parts: Iterable[tuple[int, str | int, str | int]]) -> float | None:
    """The correctly rounded mean of the values of ``(n, sum_numerator, sum_denominator)``
    parts (None when there are none)."""
    count, total = 0, Fraction(0)
    for n, numerator, denominator in parts:
        count += int(n)
        total += Fraction(int(numerator), int(denominator))
    return float(total / count) if count else None


def exact_mean_of(values: Iterable[tuple[float | None, int]]) -> float | None:
    """The correctly rounded mean of ``(value, repeats)`` pairs (None when there are none)."""
    count, total = exact_sum(values)
    return float(total / count) if count else None
