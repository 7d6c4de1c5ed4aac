"""Scenes of one to three real handwritten digits, and instructions about them.

The digits are scikit-learn's ``load_digits`` scans (1,797 real 8x8 handwritten digits). A
scene places one to three of them, each upscaled to 32x32, in the three slots of a 32x96
canvas, so captions, counting and yes/no probes have real objects to be right or wrong about.
Training scenes draw on the first :data:`TRAIN_SCANS` scans and evaluation scenes on the rest:
no scan is in both.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vlmscope._optional import require

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
"""Class names of the encoder, and the words the head answers with."""

COUNT_WORDS = ("0", "1", "2", "3")
"""How many digits a scene has, as the head answers it (numerals: "one" is a class name)."""

TRAIN_SCANS = 1300
"""Scans 0..TRAIN_SCANS-1 make training scenes; the rest make evaluation scenes."""

SLOT = 32
"""Side of one digit's slot in pixels; a scene is SLOT x 3*SLOT."""


@dataclass(frozen=True)
class Scene:
    """One canvas: its id, its pixels (3 x 32 x 96 float tensor in [0, 1]) and the digits in
    it, left to right."""

    scene_id: str
    pixels: Any
    digits: tuple[int, ...]

    @property
    def objects(self) -> list[str]:
        """The distinct digits present, as words, in ascending order."""
        return [DIGIT_WORDS[d] for d in sorted(set(self.digits))]


@dataclass(frozen=True)
class Question:
    """An instruction about a scene and its one right answer."""

    kind: str
    instruction: str
    answer: str


def _name(scene: Scene, rng: random.Random) -> Question:
    return Question("name", "which digit is shown ? answer in one word",
                    DIGIT_WORDS[scene.digits[0]])


def _list(scene: Scene, rng: random.Random) -> Question:
    return Question("list", "what digits are shown ?", " ".join(scene.objects))


def _count(scene: Scene, rng: random.Random) -> Question:
    return Question("count", "how many digits are there ? answer with a number",
                    COUNT_WORDS[len(scene.digits)])


def _probe(scene: Scene, rng: random.Random) -> Question:
    present = rng.random() < 0.5
    pool = sorted(set(scene.digits)) if present else [
        d for d in range(10) if d not in scene.digits]
    digit = rng.choice(pool)
    return Question("probe", f"is there a {DIGIT_WORDS[digit]} ?", "yes" if present else "no")


def _describe(scene: Scene, rng: random.Random) -> Question:
    words = scene.objects
    body = words[0] if len(words) == 1 else " and ".join([" ".join(words[:-1]), words[-1]])
    return Question("describe", "describe the image", f"a picture of {body}")


QUESTION_KINDS: dict[str, Callable[[Scene, random.Random], Question]] = {
    "name": _name,
    "list": _list,
    "count": _count,
    "probe": _probe,
    "describe": _describe,
}
"""Instruction kinds: naming (single-digit scenes), listing, counting, yes/no probes and
descriptions."""


def ask(scene: Scene, rng: random.Random, kind: str | None = None) -> Question:
    """A question about ``scene``: of ``kind``, or a random kind that fits the scene."""
    if kind is None:
        # Single-digit scenes are asked to name their digit half the time: those rows are
        # classifications, where blame between encoder and head is defined.
        if len(scene.digits) == 1 and rng.random() < 0.5:
            kind = "name"
        else:
            kind = rng.choice([k for k in QUESTION_KINDS if k != "name"])
    return QUESTION_KINDS[kind](scene, rng)


def vocabulary() -> list[str]:
    """Every word an instruction or an answer can contain."""
    words = {"[PAD]", "[UNK]", "[EOS]", *DIGIT_WORDS, *COUNT_WORDS, "yes", "no"}
    rng = random.Random(0)
    probe = Scene("v", None, (0, 1, 2))
    for make in QUESTION_KINDS.values():
        question = make(probe, rng)
        words.update(question.instruction.split())
        words.update(question.answer.split())
    return ["[PAD]", "[UNK]", "[EOS]", *sorted(words - {"[PAD]", "[UNK]", "[EOS]"})]


def make_scenes(count: int, split: str, seed: int) -> list[Scene]:
    """``count`` scenes from the ``train`` or ``test`` scans, reproducible from ``seed``."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    torch = require("torch", "the demo")
    functional = require("torch.nn.functional", "the demo")
    datasets = require("sklearn.datasets", "the demo (scikit-learn)")
    digits = datasets.load_digits()
    indices = range(TRAIN_SCANS) if split == "train" else range(TRAIN_SCANS, len(digits.target))
    pool = list(indices)
    scans = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16.0
    upscaled = functional.interpolate(scans, size=SLOT, mode="bilinear", align_corners=False)
    rng = random.Random(seed)
    scenes = []
    for n in range(count):
        k = rng.choice((1, 1, 2, 3))
        slots = sorted(rng.sample(range(3), k))
        chosen = [rng.choice(pool) for _ in range(k)]
        canvas = torch.zeros(1, SLOT, 3 * SLOT)
        for slot, index in zip(slots, chosen, strict=True):
            canvas[:, :, slot * SLOT:(slot + 1) * SLOT] = upscaled[index]
        scenes.append(Scene(f"{split}-{seed}-{n:05d}", canvas.expand(3, -1, -1).contiguous(),
                            tuple(int(digits.target[i]) for i in chosen)))
    return scenes
