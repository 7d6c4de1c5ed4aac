"""Evaluations as spans: the EVALUATOR span shape that carries one ``evaluations`` row.

An evaluation leaves the store (OTLP export, replay) as an ``EVALUATOR`` span in the
OpenInference annotation shape (name, score, label, explanation, annotator kind, metadata,
under OpenInference's ``annotation.*`` names, :mod:`vlmscope.conventions`), child of and
linked to the span it judged. Spans exported before vlmscope took those names
(``annotation.result.score`` and the like) are read too. When such a span comes back
(import, the OTLP receiver) the normaliser turns it into the same ``evaluations`` row again
and the span itself is not stored: the ``evaluations`` table is the one home of evaluation
results, so an export → import round trip neither loses nor duplicates them.

Training checks are the exception: their spans are ordinary stored spans from which the
normaliser derives the evaluation (run id ``training:<trace id>``), so they travel as those
spans and are never exported a second time as annotation spans.
"""

from __future__ import annotations

import hashlib
from typing import Any

from vlmscope import conventions as cv


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
        cv.VLMSCOPE_SPAN_ROLE: cv.ROLE_EVALUATION,
        cv.ANNOTATION_NAME: evaluator,
        cv.ANNOTATION_ANNOTATOR_KIND: annotator_kind,
        cv.VLMSCOPE_EVALUATION_RUN_ID: run_id,
    }
    optional = {
        cv.VLMSCOPE_EVALUATION_ROW_ID: row_id, cv.VLMSCOPE_EVALUATION_TRACE_ID: trace_id,
        cv.ANNOTATION_SCORE: score, cv.VLMSCOPE_EVALUATION_PASSED: passed,
        cv.ANNOTATION_LABEL: label, cv.ANNOTATION_EXPLANATION: explanation,
        cv.ANNOTATION_METADATA: metadata,
    }
    attributes.update((k, v) for k, v in optional.items() if v is not None)
    return attributes
