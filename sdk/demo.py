"""The demo pipeline: real images through a torchvision ResNet and a transformers language
head, both built from config (no download), traced into a DuckDB store.

The images are real scans and photos that ship inside scikit-learn: handwritten digits
(``load_digits``) and two photographs (``load_sample_images``). Needs ``vlmscope[all]``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vlmscope._optional import require

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
INSTRUCTION = "what digit is shown ?"
IMAGE_SIZE = 64


@dataclass(frozen=True)
class DemoImage:
    """One demo image: an id, a CHW float tensor, the expected answer and its source."""

    row_id: str
    pixels: Any
    expected: str | None
    cohort: str


def load_images(limit: int) -> list[DemoImage]:
    """Up to ``limit`` digit scans (cohort ``digits``) plus the two sample photos
    (cohort ``photos``), as 3x64x64 float tensors in [0, 1]."""
    torch = require("torch", "the demo")
    datasets = require("sklearn.datasets", "the demo (scikit-learn)")
    functional = require("torch.nn.functional", "the demo")
    digits = datasets.load_digits()
    images: list[DemoImage] = []
    for i in range(min(limit, len(digits.images))):
        scan = torch.tensor(digits.images[i], dtype=torch.float32) / 16.0
        pixels = functional.interpolate(scan[None, None], size=IMAGE_SIZE, mode="bilinear")[0]
        images.append(DemoImage(f"digit-{i:04d}", pixels.expand(3, -1, -1).contiguous(),
                                DIGIT_WORDS[int(digits.target[i])], "digits"))
    for j, photo in enumerate(datasets.load_sample_images().images):
        tensor = torch.tensor(photo, dtype=torch.float32).permute(2, 0, 1) / 255.0
        pixels = functional.interpolate(tensor[None], size=IMAGE_SIZE, mode="bilinear")[0]
        images.append(DemoImage(f"photo-{j}", pixels.contiguous(), None, "photos"))
    return images


def build_language_head(seed: int = 0) -> tuple[Any, Any]:
    """A small GPT-2 built from config with a word-level tokenizer built in memory."""
    torch = require("torch", "the demo")
    transformers = require("transformers", "the demo")
    tokenizers = require("tokenizers", "the demo")
    words = ["[PAD]", "[UNK]", *DIGIT_WORDS, *INSTRUCTION.split(), "encoder", "sees", "a", "it"]
    vocab = {w: i for i, w in enumerate(dict.fromkeys(words))}
    model = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    model.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=model, pad_token="[PAD]", unk_token="[UNK]")
    torch.manual_seed(seed)
    config = transformers.GPT2Config(
        vocab_size=len(vocab), n_positions=64, n_embd=64, n_layer=2, n_head=2,
        bos_token_id=0, eos_token_id=0, pad_token_id=0,
    )
    return transformers.GPT2LMHeadModel(config).eval(), tokenizer


def run_pipeline(
    db: str | os.PathLike[str],
    *,
    limit: int = 64,
    batch_size: int = 16,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Trace every demo image through encoder and head into ``db``; return counts."""
    import vlmscope

    torch = require("torch", "the demo")
    torchvision = require("torchvision", "the demo")
    torch.manual_seed(0)
    encoder = torchvision.models.resnet18(weights=None, num_classes=10).eval()
    head, tokenizer = build_language_head()
    vlmscope.configure(db=db, service_name="vlmscope-demo")
    enc = vlmscope.instrument_encoder(encoder, labels=list(DIGIT_WORDS), top_k=3)
    gen = vlmscope.instrument_generator(head, tokenizer, name="gpt2-demo")
    images = load_images(limit)
    started = time.perf_counter()
    try:
        for start in range(0, len(images), batch_size):
            chunk = images[start:start + batch_size]
            with vlmscope.trace_batch(
                [im.row_id for im in chunk],
                cohort=[im.cohort for im in chunk],
                expected=[im.expected for im in chunk],
                images=[im.pixels for im in chunk],
                instructions=[INSTRUCTION] * len(chunk),
                run="demo-baseline",
            ):
                with torch.no_grad():
                    logits = encoder(torch.stack([im.pixels for im in chunk]))
                seen = [DIGIT_WORDS[int(i)] for i in logits.argmax(dim=1)]
                prompts = [f"{INSTRUCTION} encoder sees {w}" for w in seen]
                batch = tokenizer(prompts, return_tensors="pt", padding=True)
                head.generate(**batch, max_new_tokens=3, do_sample=False, pad_token_id=0)
            if progress is not None:
                progress(min(start + batch_size, len(images)), len(images))
    finally:
        enc.uninstrument()
        gen.uninstrument()
        vlmscope.shutdown()
    return {"rows": len(images), "seconds": time.perf_counter() - started,
            "stats": vlmscope.export_stats()}
