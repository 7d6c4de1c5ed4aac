"""Past one machine: the pipeline in Ray Data actor pools, evaluators in Ray tasks.

``run_on_ray`` traces a dataset across a Ray cluster, each actor writing its own Parquet
shards under one dataset root; ``evaluate_on_ray`` scores such a root (or any
``vlmscope export --format parquet`` folder) partition by partition and merges the
summaries exactly. Importing this package does not import Ray; calling either does.
"""

from vlmscope.distributed.evaluate import DistributedEvalRun, evaluate_on_ray
from vlmscope.distributed.pipeline import ROW_KEYS, PipelineActor, RayRun, run_on_ray

__all__ = ["ROW_KEYS", "DistributedEvalRun", "PipelineActor", "RayRun", "evaluate_on_ray",
           "run_on_ray"]
