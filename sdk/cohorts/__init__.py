"""Cohorts a generic benchmark lacks: the same rows under corruptions (:func:`perturb`,
:func:`robustness`) and embedding drift between cohorts or runs (:func:`drift`)."""

from vlmscope.cohorts.corruptions import CORRUPTIONS, SEVERITIES, SEVERITY_CONSTANTS, corrupt
from vlmscope.cohorts.drift import METHODS, DriftReport, DriftScore, drift, stored_embeddings
from vlmscope.cohorts.perturb import derived_row_id, perturb, robustness

__all__ = [
    "CORRUPTIONS",
    "METHODS",
    "SEVERITIES",
    "SEVERITY_CONSTANTS",
    "DriftReport",
    "DriftScore",
    "corrupt",
    "derived_row_id",
    "drift",
    "perturb",
    "robustness",
    "stored_embeddings",
]
