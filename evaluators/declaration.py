"""What an evaluator says about itself: its options and its summary metrics.

Each evaluator class declares :attr:`~vlmscope.evaluators.Evaluator.options` (the keyword
arguments of its constructor, with type, default and help, and the ``vlmscope eval`` flag
that sets each) and :attr:`~vlmscope.evaluators.Evaluator.summary_metrics` (the numbers of its
summary a person or a CI gate reads). ``vlmscope eval`` builds its flags, its
``--fail-under`` names and its printed metrics from them, the HTML report its evaluator
table, and ``scripts/evaluator_reference.py`` the options reference: a new evaluator is one
module plus one :func:`~vlmscope.evaluators.runner.register` line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

OptionKind = Literal["value", "switch", "repeat"]
"""How a flag is given: ``value`` (``--flag VALUE``), ``switch`` (``--flag``, no value) or
``repeat`` (``--flag VALUE``, any number of times, collected in a list)."""


def comma_list(text: str) -> list[str]:
    """``"a, b,,c"`` as ``["a", "b", "c"]``: the form of every list-valued flag."""
    return [part.strip() for part in text.split(",") if part.strip()]


class _Required:
    """The default of an option the constructor requires."""

    def __repr__(self) -> str:
        return "required"


REQUIRED: Any = _Required()
"""The :attr:`Option.default` of a required constructor argument."""


@dataclass(frozen=True)
class Option:
    """One option of an evaluator.

    ``name`` is the constructor keyword (``keyword=False``: an option only the command line
    has, which the evaluator's :meth:`~vlmscope.evaluators.Evaluator.from_options` reads);
    ``type`` and ``default`` are as the constructor takes them, written for a reader;
    ``flag`` is the ``vlmscope eval`` flag that sets it (None: Python only). Evaluators that
    declare the same flag are all set by it. ``parse`` turns the flag's text into the value
    (default: the text); ``selects``: giving the flag runs the evaluator even when
    ``--evaluators`` does not name it.
    """

    name: str
    type: str
    default: Any
    help: str
    flag: str | None = None
    kind: OptionKind = "value"
    parse: Callable[[str], Any] | None = None
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    keyword: bool = True
    selects: bool = False

    def __post_init__(self) -> None:
        if self.flag is not None and not self.flag.startswith("--"):
            raise ValueError(f"option {self.name!r}: flag {self.flag!r} must start with --")


_MISSING = object()


@dataclass(frozen=True)
class Metric:
    """One number of an evaluator's summary.

    ``name`` is how the CLI, the gate and the report call it; ``key`` is where it sits in
    the evaluator's own summary (dots walk into nested objects; default: ``name``), or
    ``read`` computes it from that summary. ``gated``: ``vlmscope eval --fail-under
    NAME=VALUE`` accepts it (higher is better). ``headline``: the combined summary of
    ``vlmscope eval`` also holds it at the top level.
    """

    name: str
    help: str
    key: str | None = None
    read: Callable[[Mapping[str, Any]], float | None] | None = None
    gated: bool = False
    headline: bool = True

    def value(self, summary: Mapping[str, Any]) -> float | None:
        """This metric's value in ``summary`` (the evaluator's own), None when absent."""
        if self.read is not None:
            return self.read(summary)
        found: Any = summary
        for part in (self.key or self.name).split("."):
            found = found.get(part, _MISSING) if isinstance(found, Mapping) else _MISSING
            if found is _MISSING:
                return None
        return found


SUMMARY_AT_TOP = ""
"""An evaluator's :attr:`~vlmscope.evaluators.Evaluator.summary_key` when its summary's keys
are the combined summary's own (``classification_report``)."""
