"""What decoding an OTLP trace request takes and gives: its limits, its errors, its result
(private to :mod:`vlmscope.collectors.otlp`, which re-exports its public names)."""

from __future__ import annotations

from dataclasses import dataclass

from vlmscope.collectors.convert import SpanBatch

DEFAULT_MAX_ATTRIBUTES = 1024
"""Most attributes one span, event, link or resource may carry."""


DEFAULT_MAX_VALUE_CHARS = 256 * 1024
"""Longest string attribute value, in characters."""


DEFAULT_MAX_ARRAY_ITEMS = 65_536
"""Most items in one array or key-value-list attribute value."""


DEFAULT_MAX_DEPTH = 16
"""Deepest nesting of array and key-value-list attribute values."""


SPAN_KINDS = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
"""Stored span kind names by OTLP ``SpanKind`` number."""


STATUS_CODES = ("UNSET", "OK", "ERROR")
"""Stored status code names by OTLP ``StatusCode`` number."""


class OtlpDecodeError(ValueError):
    """The request body is not an OTLP trace request."""


class SpanRejected(ValueError):
    """One span breaks a limit; the others of its request still land."""


@dataclass(frozen=True)
class OtlpLimits:
    """Caps on what one span may carry (see the ``DEFAULT_*`` constants)."""

    max_attributes: int = DEFAULT_MAX_ATTRIBUTES
    max_value_chars: int = DEFAULT_MAX_VALUE_CHARS
    max_array_items: int = DEFAULT_MAX_ARRAY_ITEMS
    max_depth: int = DEFAULT_MAX_DEPTH

    def __post_init__(self) -> None:
        if min(self.max_attributes, self.max_value_chars, self.max_array_items,
               self.max_depth) < 1:
            raise ValueError(f"every OTLP limit must be at least 1, got {self}")


DEFAULT_LIMITS = OtlpLimits()
"""The limits when none are given."""


@dataclass
class DecodedSpans:
    """A decoded request: the batch to store, the (trace id, span id) of each of its spans in
    row order, and the spans rejected with the first reason."""

    batch: SpanBatch
    keys: list[tuple[str, str]]
    rejected: int = 0
    message: str = ""
    evaluations: int = 0
