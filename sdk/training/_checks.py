"""What every training-side check report has, and how one is recorded as an EVALUATOR span."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from opentelemetry import trace

from vlmscope import conventions as cv
from vlmscope.rows import warn_once
from vlmscope.tracing import get_tracer

ANNOTATOR_CODE = cv.ANNOTATOR_KIND_CODE
"""OpenInference annotator kind of every training check: the verdict comes from code."""


@dataclasses.dataclass(kw_only=True)
class CheckReport:
    """The verdict of one training-side check, in the OpenInference annotation shape.

    ``score`` is the number the check judged (each report says its unit), ``reasons`` say
    why, with the values and the ``thresholds`` they were compared against.
    """

    name: str
    passed: bool
    score: float
    label: str
    reasons: list[str]
    thresholds: dict[str, float]

    @property
    def explanation(self) -> str:
        """The reasons as one sentence-per-line text."""
        return "\n".join(self.reasons)

    def metadata(self) -> dict[str, Any]:
        """Every field of the report as JSON-ready values (non-finite numbers become None)."""
        return _jsonable(dataclasses.asdict(self))


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def record_check(
    report: CheckReport,
    *,
    parent: trace.Span | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Record ``report`` as an EVALUATOR span (a child of ``parent`` when given); never raises."""
    try:
        attrs: dict[str, Any] = {
            cv.VLMSCOPE_SPAN_ROLE: cv.ROLE_TRAINING_CHECK,
            cv.OPENINFERENCE_SPAN_KIND: cv.SPAN_KIND_EVALUATOR,
            cv.VLMSCOPE_TRAINING_CHECK_NAME: report.name,
            cv.VLMSCOPE_TRAINING_CHECK_PASSED: report.passed,
            cv.VLMSCOPE_TRAINING_CHECK_LABEL: report.label,
            cv.VLMSCOPE_TRAINING_CHECK_SCORE: float(report.score),
            cv.VLMSCOPE_TRAINING_CHECK_EXPLANATION: report.explanation,
            cv.VLMSCOPE_TRAINING_CHECK_ANNOTATOR_KIND: ANNOTATOR_CODE,
            cv.METADATA: json.dumps(report.metadata()),
            **(extra or {}),
        }
        context = trace.set_span_in_context(parent) if parent is not None else None
        get_tracer().start_span(cv.TRAINING_CHECK_SPAN_NAME, context=context,
                                attributes=attrs).end()
    except Exception as error:  # recording a verdict must never break the caller
        warn_once("training-check", "vlmscope could not record the %s check: %s",
                  report.name, error)
