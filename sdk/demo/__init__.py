"""The demo: a real vision-language pipeline trained here on CPU, traced, scored and
explained. See :mod:`vlmscope.demo.scenes` (the data), :mod:`vlmscope.demo.models` (the
ResNet encoder and the GPT-2 head) and :mod:`vlmscope.demo.pipeline` (the runs).
Needs ``vlmscope[all]``.
"""

from vlmscope.demo.models import SMALL_PLAN, TrainingPlan, build_tokenizer, load_or_train
from vlmscope.demo.pipeline import build_datasets, make_pipeline, run_all
from vlmscope.demo.scenes import DIGIT_WORDS, make_scenes

__all__ = [
    "DIGIT_WORDS",
    "SMALL_PLAN",
    "TrainingPlan",
    "build_datasets",
    "build_tokenizer",
    "load_or_train",
    "make_pipeline",
    "make_scenes",
    "run_all",
]
