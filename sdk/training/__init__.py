"""Training-side checks: training runs in the store, overfitting and instability, broken
skip connections, vanishing gradients, and data leakage (needs ``vlmscope[torch]`` for the
parts that touch a model).

Every check returns a report (a :class:`CheckReport`: name, passed, score, label, reasons,
thresholds and its own fields) and records it as an EVALUATOR span in the configured store.
"""

from vlmscope.training._checks import CheckReport, record_check
from vlmscope.training.curves import (
    InstabilityReport,
    OverfittingReport,
    check_instability,
    check_overfitting,
)
from vlmscope.training.gradients import (
    GradientFlowReport,
    check_gradient_flow,
    stage_gradient_norms,
)
from vlmscope.training.leakage import LeakageReport, LeakedRow, find_leakage
from vlmscope.training.residual import (
    BlockFinding,
    ResidualBlock,
    ResidualPathReport,
    check_residual_paths,
)
from vlmscope.training.run import EpochRecord, TrainingRun

__all__ = [
    "BlockFinding",
    "CheckReport",
    "EpochRecord",
    "GradientFlowReport",
    "InstabilityReport",
    "LeakageReport",
    "LeakedRow",
    "OverfittingReport",
    "ResidualBlock",
    "ResidualPathReport",
    "TrainingRun",
    "check_gradient_flow",
    "check_instability",
    "check_overfitting",
    "check_residual_paths",
    "find_leakage",
    "record_check",
    "stage_gradient_norms",
]
