"""Evaluations as spans: the EVALUATOR span shape that carries one ``evaluations`` row.

An evaluation leaves the store (OTLP export, replay) as an ``EVALUATOR`` span in the
OpenInference annotation shape (name, score, label, explanation, annotator kind, metadata),
child of and linked to the span it judged. When such a span comes back (import, the OTLP
receiver) the normaliser turns it into the same ``evaluations`` row again and the span itself
is not stored: the ``evaluations`` table is the one home of evaluation results, so an export
→ import round trip neither loses nor duplicates them.

Training checks are the exception: their spans are ordinary stored spans from which the
normaliser derives the evaluation (run id ``training:<trace id>``), so they travel as those
spans and are never exported a second time as annotation spans.
"""

from __future__ import annotations

import hashlib
from typing import Any

from vlmscope import conventions as cv

ROLE_EVALUATION = "evaluation"
"""``vlmscope.span.role`` of a span that carries one evaluation result."""

EVALUATION_SPAN_NAME = "vlmscope.evaluation"
"""Name of an evaluation span."""

ANNOTATION_NAME = "annotation.name"
"""OpenInference annotation: the evaluator's name."""

ANNOTATION_SCORE = "annotation.result.score"
"""OpenInference annotation: the score (float)."""

ANNOTATION_LABEL = "annotation.result.label"
"""OpenInference annotation: the label (string)."""

ANNOTATION_EXPLANATION = "annotation.result.explanation"
"""OpenInference annotation: why the evaluator decided so (string)."""

ANNOTATION_ANNOTATOR_KIND = "annotation.annotator_kind"
"""OpenInference annotation: CODE, LLM or HUMAN."""

ANNOTATION_METADATA = "annotation.metadata"
"""OpenInference annotation: metadata as a JSON object string."""

EVALUATION_RUN_ID = "vlmscope.evaluation.run_id"
"""The evaluation run the result belongs to."""

EVALUATION_PASSED = "vlmscope.evaluation.passed"
"""Whether the judged row passed (bool)."""

EVALUATION_TRACE_ID = "vlmscope.evaluation.trace_id"
"""The judged trace (hex); the judged span is the evaluation span's parent."""

EVALUATION_ROW_ID = "vlmscope.evaluation.row_id"
"""The judged pipeline row's id."""


def evaluation_span_id(run_id: str, evaluator: str, trace_id: str | None,
                       span_id: str | None, row_id: str | None) -> str:
    """A stable span id (16 hex digits) for one evaluation: the same result exported twice
    gets the same id."""
    text = "\x1f".join(v or "" for v in (run_id, evaluator, trace_id, span_id, row_id))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def evaluation_trace_id(run_id: str) -> str:
    """A stable trace id (32 hex digits) for evaluations that judged no trace."""
    return hashlib.sha256(run_id.encode()).hexdigest()[:32]


def evaluation_attributes(run_id: str, evaluator: str, row_id: str | None,
                          trace_id: str | None, score: float | None, passed: bool | None,
                          label: str | None, explanation: str | None, metadata: str | None,
                          annotator_kind: str) -> dict[str, Any]:
    """The attributes of the span carrying one evaluation (absent values are left out)."""
    attributes: dict[str, Any] = {
        cv.OPENINFERENCE_SPAN_KIND: cv.SPAN_KIND_EVALUATOR,
        cv.VLMSCOPE_SPAN_ROLE: ROLE_EVALUATION,
        ANNOTATION_NAME: evaluator,
        ANNOTATION_ANNOTATOR_KIND: annotator_kind,
        EVALUATION_RUN_ID: run_id,
    }
    optional = {
        EVALUATION_ROW_ID: row_id, EVALUATION_TRACE_ID: trace_id, ANNOTATION_SCORE: score,
        EVALUATION_PASSED: passed, ANNOTATION_LABEL: label,
        ANNOTATION_EXPLANATION: explanation, ANNOTATION_METADATA: metadata,
    }
    attributes.update((k, v) for k, v in optional.items() if v is not None)
    return attributes
