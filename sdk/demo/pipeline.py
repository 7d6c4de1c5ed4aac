"""The demo's traced runs: a held-out cohort, a perturbed cohort, and a candidate checkpoint,
each through the public SDK only, into one DuckDB store; then every evaluator over each run.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlmscope._optional import require
from vlmscope.demo.models import DemoModels, pooled_features
from vlmscope.demo.scenes import DIGIT_WORDS, Question, Scene, ask, make_scenes

ENCODER_NAME = "resnet10-digits"
"""The encoder's model name on its spans."""

HEAD_NAME = "gpt2-digits-head"
"""The language head's model name on its spans."""

CORRUPTIONS = ("gaussian_blur", "gaussian_noise", "rotate")
"""The perturbations of the perturbed cohort."""

SEVERITIES = (1, 3, 5)
"""Their severities (1 mild .. 5 strong)."""

_BLUR_SIGMA = {1: 0.6, 2: 0.9, 3: 1.2, 4: 1.6, 5: 2.0}
_NOISE_STD = {1: 0.08, 2: 0.12, 3: 0.18, 4: 0.26, 5: 0.38}
_ROTATE_DEG = {1: 6.0, 2: 10.0, 3: 15.0, 4: 21.0, 5: 28.0}


@dataclass(frozen=True)
class DemoRow:
    """One pipeline row: its id, the scene and the question asked."""

    row_id: str
    scene: Scene
    question: Question


@dataclass(frozen=True)
class DemoRun:
    """A named run: which encoder read which cohort."""

    name: str
    cohort: str
    encoder: str
    rows: Sequence[DemoRow] = field(repr=False)


def perturb(scene: Scene, corruption: str, severity: int, rng: random.Random) -> Scene:
    """``scene`` under one corruption at ``severity``; the id records both and the source."""
    torch = require("torch", "the demo")
    functional = require("torchvision.transforms.v2.functional", "the demo")
    pixels = scene.pixels
    if corruption == "gaussian_blur":
        sigma = _BLUR_SIGMA[severity]
        pixels = functional.gaussian_blur(pixels, kernel_size=2 * round(3 * sigma) + 1,
                                          sigma=sigma)
    elif corruption == "gaussian_noise":
        generator = torch.Generator().manual_seed(rng.randrange(2**31))
        noise = torch.randn(pixels.shape[1:], generator=generator) * _NOISE_STD[severity]
        pixels = (pixels + noise).clamp(0, 1)
    elif corruption == "rotate":
        pixels = functional.rotate(pixels, _ROTATE_DEG[severity] * rng.choice((-1, 1)))
    else:
        raise ValueError(f"unknown corruption {corruption!r}; use one of {CORRUPTIONS}")
    return Scene(f"{scene.scene_id}~{corruption}-{severity}", pixels.contiguous(), scene.digits)


def plan_runs(heldout: int, seed: int = 7) -> list[DemoRun]:
    """The three runs: ``baseline`` and ``candidate`` on the same held-out rows (same row
    ids, so they can be diffed), and ``baseline-perturbed`` on perturbed copies."""
    rng = random.Random(seed)
    scenes = make_scenes(heldout, "test", seed)
    rows = []
    for scene in scenes:
        question = ask(scene, rng)
        rows.append(DemoRow(f"{scene.scene_id}:{question.kind}", scene, question))
    perturbed = []
    for i, row in enumerate(rows):
        corruption = CORRUPTIONS[i % len(CORRUPTIONS)]
        severity = SEVERITIES[(i // len(CORRUPTIONS)) % len(SEVERITIES)]
        scene = perturb(row.scene, corruption, severity, rng)
        perturbed.append(DemoRow(f"{scene.scene_id}:{row.question.kind}", scene, row.question))
    return [
        DemoRun("baseline", "heldout", "baseline", rows),
        DemoRun("candidate", "heldout", "candidate", rows),
        DemoRun("baseline-perturbed", "perturbed", "baseline", perturbed),
    ]


def trace_run(run: DemoRun, models: DemoModels, batch_size: int = 32,
              progress: Callable[[int, int], None] | None = None) -> None:
    """Run every row of ``run`` through encoder and head under tracing."""
    import vlmscope

    torch = require("torch", "the demo")
    encoder = models.baseline if run.encoder == "baseline" else models.candidate
    encoder_hooks = vlmscope.instrument_encoder(encoder, labels=list(DIGIT_WORDS), top_k=3,
                                                name=ENCODER_NAME)
    head_hooks = vlmscope.instrument_generator(models.head.gpt, models.head.tokenizer,
                                               name=HEAD_NAME, provider="local")
    try:
        for start in range(0, len(run.rows), batch_size):
            batch = run.rows[start:start + batch_size]
            with vlmscope.trace_batch(
                [r.row_id for r in batch],
                cohort=run.cohort,
                expected=[r.question.answer for r in batch],
                objects=[r.scene.objects for r in batch],
                images=[r.scene.pixels for r in batch],
                instructions=[r.question.instruction for r in batch],
                run=run.name,
            ):
                with torch.no_grad():
                    _, features = pooled_features(encoder, torch.stack([r.scene.pixels
                                                                        for r in batch]))
                models.head.answer(features, [r.question.instruction for r in batch])
            if progress is not None:
                progress(min(start + batch_size, len(run.rows)), len(run.rows))
    finally:
        encoder_hooks.uninstrument()
        head_hooks.uninstrument()


NAME_INSTRUCTION = "which digit is shown ? answer in one word"
"""The instruction whose expected answer is a class label (used by the classification
report)."""


def _literal(text: str) -> str:
    """``text`` as a SQL string literal (view definitions take no bound parameters)."""
    return "'" + text.replace("'", "''") + "'"


def evaluate_runs(db: str | Path, runs: Sequence[DemoRun]) -> dict[str, dict[str, Any]]:
    """Every evaluator over each run; returns each run's summaries by evaluator."""
    from vlmscope.evaluators import ClassificationReport, GroundTruthMatch, run_evaluations
    from vlmscope.evaluators.runner import write_connection

    results: dict[str, dict[str, Any]] = {}
    with write_connection(db) as con:
        for run in runs:
            view = f"demo_run_{run.name.replace('-', '_')}"
            con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS "
                        f"SELECT * FROM pipeline_rows WHERE run = {_literal(run.name)}")
            answers = run_evaluations(con, [GroundTruthMatch(mode="normalized")],
                                      source=view, run_id=f"demo:{run.name}:answers")
            con.execute(f"CREATE OR REPLACE TEMP VIEW {view}_names AS "
                        f"SELECT * FROM {view} WHERE instruction = {_literal(NAME_INSTRUCTION)}")
            report = run_evaluations(con, [ClassificationReport()], source=f"{view}_names",
                                     run_id=f"demo:{run.name}:classification")
            results[run.name] = {**answers.summaries, **report.summaries}
    return results
