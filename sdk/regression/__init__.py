"""RegressionEval: compare a candidate run with a production run on the same cohort, row by
row, with paired statistics and a verdict for CI (``vlmscope diff``)."""

from vlmscope.regression.diff import (
    DEFAULT_ALPHA,
    DEFAULT_MAX_DROP,
    TRANSITIONS,
    RunMismatchError,
    compare_runs,
    per_row_diff_sql,
)
from vlmscope.regression.stats import (
    BootstrapInterval,
    bootstrap_mean_interval,
    mcnemar_exact_p,
    paired_bootstrap_interval,
)

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_MAX_DROP",
    "TRANSITIONS",
    "BootstrapInterval",
    "RunMismatchError",
    "bootstrap_mean_interval",
    "compare_runs",
    "mcnemar_exact_p",
    "paired_bootstrap_interval",
    "per_row_diff_sql",
]
