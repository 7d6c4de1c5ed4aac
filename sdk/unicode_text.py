"""Text that UTF-8 can encode, for everything vlmscope stores or hands to DuckDB and Arrow.

A Python string may hold a lone surrogate (half of an emoji a tokenizer cut, a ``"\\ud83d"``
JSON escape that JavaScript's ``JSON.stringify`` writes for one), which UTF-8 cannot encode:
Arrow, DuckDB and protobuf refuse the whole value. vlmscope keeps such text with U+FFFD in
the surrogate's place, as the OpenTelemetry Collector does, instead of losing the span, the
request or the row it came in.
"""

from __future__ import annotations

from typing import Any

__all__ = ["has_invalid_text", "valid_text"]


def valid_text(value: Any) -> Any:
    """``value`` with every string in it (in lists, tuples and dicts, keys too) valid
    Unicode: a surrogate pair held as two code points becomes its character, a lone
    surrogate becomes U+FFFD. Anything else is returned as it is."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, list | tuple):
        return type(value)(valid_text(v) for v in value)
    if isinstance(value, dict):
        return {valid_text(k): valid_text(v) for k, v in value.items()}
    return value


def has_invalid_text(value: Any) -> bool:
    """Whether any string in ``value`` (as :func:`valid_text` walks it) UTF-8 cannot
    encode."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, list | tuple):
        return any(has_invalid_text(v) for v in value)
    if isinstance(value, dict):
        return any(has_invalid_text(k) or has_invalid_text(v) for k, v in value.items())
    return False
