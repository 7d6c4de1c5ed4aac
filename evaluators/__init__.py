"""Evaluators: score pipeline rows in DuckDB and write the results back to the store.

Each evaluator turns a relation with the ``pipeline_rows`` columns into evaluation rows
(table ``evaluations``) and a run summary (table ``eval_runs``), in SQL. The per-row API
(``GroundTruthMatch().evaluate(output="cat", expected="cat")``) runs the same SQL on one row.
"""

from vlmscope.collectors.store import write_connection
from vlmscope.evaluators.adherence import ImageInstructionAdherence
from vlmscope.evaluators.attribution import BLAMES, FailureAttribution
from vlmscope.evaluators.base import ANNOTATOR_KINDS, EvalResult, Evaluator, RowEvaluator
from vlmscope.evaluators.classification import ClassificationMetrics, ClassificationReport
from vlmscope.evaluators.custom import CustomEvaluation
from vlmscope.evaluators.ground_truth import MODES, GroundTruthMatch
from vlmscope.evaluators.hallucination import CaptionHallucination
from vlmscope.evaluators.multilabel import MultiLabelReport
from vlmscope.evaluators.runner import (
    EVALUATORS,
    EvalRun,
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
    "ImageInstructionAdherence",
    "MultiLabelReport",
    "RowEvaluator",
    "Vocabulary",
    "VocabularyError",
    "resolve_evaluators",
    "run_evaluations",
    "write_connection",
]
