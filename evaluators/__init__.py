"""Evaluators: score pipeline rows in DuckDB and write the results back to the store.

Each evaluator turns a relation with the ``pipeline_rows`` columns into evaluation rows
(table ``evaluations``) and a run summary (table ``eval_runs``), in SQL. The per-row API
(``GroundTruthMatch().evaluate(output="cat", expected="cat")``) runs the same SQL on one row.
"""

from typing import Any

from vlmscope.evaluators.adherence import ImageInstructionAdherence
from vlmscope.evaluators.attribution import BLAMES, FailureAttribution
from vlmscope.evaluators.base import ANNOTATOR_KINDS, EvalResult, Evaluator, RowEvaluator
from vlmscope.evaluators.classification import ClassificationMetrics, ClassificationReport
from vlmscope.evaluators.custom import CustomEvaluation
from vlmscope.evaluators.declaration import Metric, Option
from vlmscope.evaluators.ground_truth import MODES, GroundTruthMatch
from vlmscope.evaluators.hallucination import CaptionHallucination
from vlmscope.evaluators.multilabel import MultiLabelReport
from vlmscope.evaluators.runner import (
    EVALUATORS,
    EvalRun,
    register,
    resolve_evaluators,
    run_evaluations,
)
from vlmscope.evaluators.vocabulary import Vocabulary, VocabularyError

__all__ = [
    "ANNOTATOR_KINDS",
    "BLAMES",
    "EVALUATORS",
    "MODES",
    "CaptionHallucination",
    "ClassificationMetrics",
    "ClassificationReport",
    "CustomEvaluation",
    "EvalResult",
    "EvalRun",
    "Evaluator",
    "FailureAttribution",
    "GroundTruthMatch",
    "Metric",
    "Option",
    "ImageInstructionAdherence",
    "MultiLabelReport",
    "RowEvaluator",
    "Vocabulary",
    "VocabularyError",
    "register",
    "resolve_evaluators",
    "run_evaluations",
]


def __getattr__(name: str) -> Any:
    """``write_connection`` was re-exported here; it is the store's, in
    :mod:`vlmscope.collectors.store`, and still answers here with a warning."""
    if name == "write_connection":
        import warnings

        from vlmscope.collectors.store import write_connection

        warnings.warn("vlmscope.evaluators.write_connection moved: import it from "
                      "vlmscope.collectors.store", DeprecationWarning, stacklevel=2)
        return write_connection
    raise AttributeError(f"module 'vlmscope.evaluators' has no attribute {name!r}")
