"""The demo: a real vision-language pipeline trained here on CPU, traced, scored and
explained. See :mod:`vlmscope.demo.scenes` (the data), :mod:`vlmscope.demo.models` (the
ResNet encoder and the GPT-2 head) and :mod:`vlmscope.demo.pipeline` (the traced runs).
Needs ``vlmscope[all]``.
"""

from vlmscope.demo.models import SMALL_PLAN, TrainingPlan, build_tokenizer, load_or_train
from vlmscope.demo.pipeline import DemoRun, evaluate_runs, plan_runs, trace_run
from vlmscope.demo.scenes import DIGIT_WORDS, make_scenes

__all__ = [
    "DIGIT_WORDS",
    "SMALL_PLAN",
    "DemoRun",
    "TrainingPlan",
    "build_tokenizer",
    "evaluate_runs",
    "load_or_train",
    "make_scenes",
    "plan_runs",
    "trace_run",
]
