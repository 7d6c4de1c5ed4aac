"""The demo's runs, through the public SDK only: a held-out dataset and a perturbed copy of
part of it, run through the baseline and the candidate checkpoints with ``Dataset.run``
(traced, scored, and registered for ``vlmscope diff``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from vlmscope._optional import require
from vlmscope.demo.models import DemoModels, pooled_features
from vlmscope.demo.scenes import DIGIT_WORDS, ask, make_scenes

ENCODER_NAME = "resnet10-digits"
"""The encoder's model name on its spans."""

HEAD_NAME = "gpt2-digits-head"
"""The language head's model name on its spans."""

HELDOUT = "heldout"
"""Name of the held-out dataset (cohort)."""

CORRUPTIONS = ("gaussian_blur", "gaussian_noise", "rotation")
"""Corruptions of the perturbed cohort (ImageNet-C definitions, vlmscope.cohorts)."""

SEVERITIES = (1, 3, 5)
"""Their severities."""

BASE_RUN, CANDIDATE_RUN, PERTURBED_RUN = "baseline", "candidate", "baseline-perturbed"
"""The demo's run names, as ``vlmscope diff`` and ``vlmscope eval`` take them."""

DIGIT_VOCABULARY = {word: [] for word in DIGIT_WORDS}
"""The objects a demo scene can contain (no numeral synonyms: "2" answers a count)."""


@dataclass(frozen=True)
class DemoRun:
    """A run to make: its name, the dataset it reads and which encoder reads it."""

    name: str
    dataset: Any
    encoder: str


def _pil(pixels: Any) -> Any:
    image = require("PIL.Image", "the demo")
    array = (pixels.permute(1, 2, 0).clamp(0, 1) * 255).round().byte().numpy()
    return image.fromarray(array, mode="RGB")


def build_datasets(heldout: int, perturbed_sources: int, seed: int = 7) -> tuple[Any, Any]:
    """The held-out dataset (one question per scene) and the perturbed one: the first
    ``perturbed_sources`` held-out rows under every corruption at every severity."""
    import vlmscope
    from vlmscope.cohorts import perturb

    rng = random.Random(seed)
    records = []
    for scene in make_scenes(heldout, "test", seed):
        question = ask(scene, rng)
        records.append({"id": f"{scene.scene_id}:{question.kind}", "image": _pil(scene.pixels),
                        "instruction": question.instruction,
                        "instruction_kind": question.kind, "expected": question.answer,
                        "objects": scene.objects, "tags": [question.kind]})
    dataset = vlmscope.Dataset.from_records(HELDOUT, records)
    sources = vlmscope.Dataset.from_records(f"{HELDOUT}-sources", records[:perturbed_sources])
    perturbed = perturb(sources, corruptions=CORRUPTIONS, severities=SEVERITIES, seed=seed,
                        name="perturbed", include_clean=False)
    return dataset, perturbed


def make_pipeline(encoder: Any, models: DemoModels) -> Callable[[Sequence[Any]], list[str]]:
    """The user's pipeline as ``Dataset.run`` calls it: rows in, one answer per row out."""
    torch = require("torch", "the demo")
    functional = require("torchvision.transforms.v2.functional", "the demo")

    def pipeline(rows: Sequence[Any]) -> list[str]:
        pixels = torch.stack([functional.to_dtype(functional.to_image(row.image),
                                                  torch.float32, scale=True) for row in rows])
        with torch.no_grad():
            _, features = pooled_features(encoder, pixels)
        return models.head.answer(features, [row.instruction or "" for row in rows])

    return pipeline


ENCODER_THRESHOLD = 0.5
"""Sigmoid score at which the demo encoder's digit counts as read, for every evaluator."""


def evaluators() -> list[Any]:
    """Every evaluator the demo registers on its datasets: they read the encoder alike (the
    same threshold) and the answers alike (the same digit vocabulary)."""
    from vlmscope.evaluators import (
        CaptionHallucination,
        FailureAttribution,
        GroundTruthMatch,
        ImageInstructionAdherence,
        MultiLabelReport,
    )

    return [GroundTruthMatch(mode="normalized"),
            FailureAttribution(classes=DIGIT_WORDS, vocabularies=[DIGIT_VOCABULARY],
                               encoder_threshold=ENCODER_THRESHOLD),
            CaptionHallucination(vocabularies=[DIGIT_VOCABULARY],
                                 encoder_threshold=ENCODER_THRESHOLD),
            ImageInstructionAdherence(vocabularies=[DIGIT_VOCABULARY]),
            MultiLabelReport(classes=DIGIT_WORDS, encoder_threshold=ENCODER_THRESHOLD)]


def run_all(models: DemoModels, heldout: int, perturbed_sources: int,
            progress: Callable[[str], None] | None = None) -> list[Any]:
    """Make the three runs into the configured store; returns their ``DatasetRun`` results."""
    import vlmscope

    dataset, perturbed = build_datasets(heldout, perturbed_sources)
    for data in (dataset, perturbed):
        for evaluator in evaluators():
            data.add_evaluation(evaluator)
    plan = [DemoRun(BASE_RUN, dataset, "baseline"), DemoRun(CANDIDATE_RUN, dataset, "candidate"),
            DemoRun(PERTURBED_RUN, perturbed, "baseline")]
    results = []
    for run in plan:
        encoder = models.baseline if run.encoder == "baseline" else models.candidate
        # A multi-label head: every digit's sigmoid score is recorded.
        hooks = [vlmscope.instrument_encoder(encoder, labels=list(DIGIT_WORDS),
                                             top_k=len(DIGIT_WORDS), name=ENCODER_NAME,
                                             multi_label=True),
                 vlmscope.instrument_generator(models.head.gpt, models.head.tokenizer,
                                               name=HEAD_NAME, provider="local")]
        try:
            if progress is not None:
                progress(f"{run.name}: {len(run.dataset.rows)} rows of {run.dataset.name}")
            results.append(run.dataset.run(make_pipeline(encoder, models), name=run.name,
                                           batch_size=32))
        finally:
            for hook in hooks:
                hook.uninstrument()
    return results
