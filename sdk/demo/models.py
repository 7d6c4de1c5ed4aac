"""The demo's models, trained here on CPU and cached: a torchvision ResNet encoder and a small
GPT-2 language head conditioned on the encoder's pooled features.

* Encoder: torchvision's ``ResNet`` with one BasicBlock per stage (a ResNet-10), trained as a
  multi-label classifier over the ten digits (which digits are in the scene).
* Head: a GPT-2 built from config, with a word-level tokenizer built in memory; a linear map
  turns the encoder's 512-d pooled features into :data:`PREFIX_TOKENS` prefix embeddings, and
  the head learns to answer the instruction that follows.
* Candidate: the baseline encoder fine-tuned on single-digit scenes only, the kind of
  well-meant update that quietly hurts multi-digit scenes.

Training is short on purpose: the encoder misreads some scenes and the head misuses some
correct readings, so both kinds of failure arise without any switch that fakes them.

Training is reproducible: every model is built and trained under the plan's seed, with
deterministic algorithms and :data:`TRAINING_THREADS` threads, so the same plan on the same
machine gives the same checkpoints (same SHA-256).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vlmscope._optional import require
from vlmscope.demo.scenes import Scene, ask, make_scenes, vocabulary

PREFIX_TOKENS = 2
"""Prefix embeddings the encoder's features become, ahead of the instruction."""

CACHE_VERSION = 3
"""Bump when training changes, so cached checkpoints are retrained."""

TRAINING_THREADS = 2
"""Threads training runs on: a fixed count, so sums are reduced in the same order each time."""


@dataclass(frozen=True)
class TrainingPlan:
    """How much to train: scene counts, epochs, and the seed."""

    train_scenes: int = 2400
    encoder_epochs: int = 3
    head_examples: int = 9000
    head_epochs: int = 3
    candidate_scenes: int = 1500
    seed: int = 0

    def key(self) -> str:
        """A short hash naming this plan's cache folder."""
        blob = json.dumps({**asdict(self), "version": CACHE_VERSION}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


SMALL_PLAN = TrainingPlan(train_scenes=1000, encoder_epochs=2, head_examples=5000,
                          head_epochs=3, candidate_scenes=300)
"""A reduced plan for the test suite: the same code path, a fraction of the work."""


def default_cache_dir() -> Path:
    """Where trained checkpoints are kept: ``$VLMSCOPE_CACHE`` or ``~/.cache/vlmscope``."""
    return Path(os.environ.get("VLMSCOPE_CACHE", Path.home() / ".cache" / "vlmscope")) / "demo"


def build_encoder() -> Any:
    """A ResNet-10 (one BasicBlock per stage) with ten outputs, untrained."""
    models = require("torchvision.models", "the demo")
    return models.ResNet(models.resnet.BasicBlock, [1, 1, 1, 1], num_classes=10)


def build_tokenizer() -> Any:
    """A word-level tokenizer over the demo's vocabulary, built in memory (no download)."""
    transformers = require("transformers", "the demo")
    tokenizers = require("tokenizers", "the demo")
    vocab = {word: i for i, word in enumerate(vocabulary())}
    model = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    model.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=model, pad_token="[PAD]", unk_token="[UNK]", eos_token="[EOS]")


class ConditionedHead:
    """A GPT-2 that answers an instruction about the image whose features prefix it."""

    def __init__(self, tokenizer: Any, seed: int = 0) -> None:
        torch = require("torch", "the demo")
        transformers = require("transformers", "the demo")
        torch.manual_seed(seed)
        self.tokenizer = tokenizer
        config = transformers.GPT2Config(
            vocab_size=len(tokenizer), n_positions=32, n_embd=96, n_layer=2, n_head=4,
            bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        self.gpt = transformers.GPT2LMHeadModel(config)
        self.gpt.generation_config.pad_token_id = tokenizer.pad_token_id
        self.gpt.generation_config.eos_token_id = tokenizer.eos_token_id
        self.prefix = torch.nn.Linear(512, PREFIX_TOKENS * config.n_embd)
        self.width = config.n_embd

    def parameters(self) -> list[Any]:
        """Trainable parameters of the GPT-2 and the prefix map."""
        return [*self.gpt.parameters(), *self.prefix.parameters()]

    def state_dict(self) -> dict[str, Any]:
        """Both parts' weights."""
        return {"gpt": self.gpt.state_dict(), "prefix": self.prefix.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore weights saved by :meth:`state_dict`."""
        self.gpt.load_state_dict(state["gpt"])
        self.prefix.load_state_dict(state["prefix"])

    def eval(self) -> ConditionedHead:
        """Switch to inference mode."""
        self.gpt.eval()
        self.prefix.eval()
        return self

    def inputs(self, features: Any, instructions: Sequence[str],
               answers: Sequence[str] | None = None) -> dict[str, Any]:
        """Left-padded ``inputs_embeds``/``attention_mask`` (and ``labels`` for training):
        [pads][prefix][instruction][answer, EOS]."""
        torch = require("torch", "the demo")
        tok = self.tokenizer
        rows = []
        for i, instruction in enumerate(instructions):
            ids = tok(instruction, add_special_tokens=False)["input_ids"]
            target = [] if answers is None else [
                *tok(answers[i], add_special_tokens=False)["input_ids"], tok.eos_token_id]
            rows.append((ids, target))
        length = max(len(ids) + len(target) for ids, target in rows) + PREFIX_TOKENS
        prefix = self.prefix(features).view(len(rows), PREFIX_TOKENS, self.width)
        embed = self.gpt.transformer.wte
        embeds, masks, labels = [], [], []
        for i, (ids, target) in enumerate(rows):
            tokens = torch.tensor(ids + target, dtype=torch.long)
            pad = length - PREFIX_TOKENS - len(tokens)
            pad_ids = torch.full((pad,), tok.pad_token_id, dtype=torch.long)
            embeds.append(torch.cat([embed(pad_ids), prefix[i], embed(tokens)]))
            masks.append(torch.tensor([0] * pad + [1] * (PREFIX_TOKENS + len(tokens))))
            labels.append(torch.tensor([-100] * (pad + PREFIX_TOKENS + len(ids)) + target))
        out = {"inputs_embeds": torch.stack(embeds), "attention_mask": torch.stack(masks)}
        if answers is not None:
            # generate() numbers positions from the first unpadded token; train the same way
            out["position_ids"] = (out["attention_mask"].cumsum(-1) - 1).clamp(min=0)
            out["labels"] = torch.stack(labels)
        return out

    def answer(self, features: Any, instructions: Sequence[str]) -> list[str]:
        """Greedy answers to ``instructions`` about the images behind ``features``."""
        torch = require("torch", "the demo")
        with torch.no_grad():
            batch = self.inputs(features, instructions)
            out = self.gpt.generate(**batch, max_new_tokens=6, do_sample=False)
        return self.tokenizer.batch_decode(out, skip_special_tokens=True)


def pooled_features(encoder: Any, pixels: Any) -> tuple[Any, Any]:
    """The encoder's logits and its 512-d pooled features for a batch of scenes."""
    torch = require("torch", "the demo")
    captured = {}
    hook = encoder.avgpool.register_forward_hook(
        lambda module, args, out: captured.__setitem__("features", out))
    try:
        logits = encoder(pixels)
    finally:
        hook.remove()
    return logits, torch.flatten(captured["features"], 1)


def _batches(items: Sequence[Any], size: int, rng: random.Random) -> list[list[Any]]:
    order = list(items)
    rng.shuffle(order)
    return [order[i:i + size] for i in range(0, len(order), size)]


def _multi_hot(scenes: Sequence[Scene]) -> Any:
    torch = require("torch", "the demo")
    target = torch.zeros(len(scenes), 10)
    for i, scene in enumerate(scenes):
        target[i, list(scene.digits)] = 1.0
    return target


def train_encoder(encoder: Any, scenes: Sequence[Scene], epochs: int, seed: int,
                  lr: float = 2e-3, progress: Callable[[str], None] | None = None) -> Any:
    """Train ``encoder`` as a multi-label digit detector on ``scenes``."""
    torch = require("torch", "the demo")
    torch.manual_seed(seed)
    rng = random.Random(seed)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=lr)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    encoder.train()
    for epoch in range(epochs):
        for batch in _batches(scenes, 64, rng):
            pixels = torch.stack([s.pixels for s in batch])
            loss = loss_fn(encoder(pixels), _multi_hot(batch))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if progress is not None:
            progress(f"encoder epoch {epoch + 1}/{epochs}: loss {loss.item():.3f}")
    return encoder.eval()


def train_head(head: ConditionedHead, encoder: Any, scenes: Sequence[Scene], examples: int,
               epochs: int, seed: int,
               progress: Callable[[str], None] | None = None) -> ConditionedHead:
    """Train the head on questions about ``scenes``, read through the frozen ``encoder``."""
    torch = require("torch", "the demo")
    torch.manual_seed(seed)
    rng = random.Random(seed)
    with torch.no_grad():
        features = torch.cat([
            pooled_features(encoder.eval(), torch.stack([s.pixels for s in scenes[i:i + 256]]))[1]
            for i in range(0, len(scenes), 256)
        ])
    pairs = []
    for _ in range(examples):
        index = rng.randrange(len(scenes))
        pairs.append((index, ask(scenes[index], rng)))
    optimizer = torch.optim.AdamW(head.parameters(), lr=3e-3)
    head.gpt.train()
    for epoch in range(epochs):
        for batch in _batches(pairs, 64, rng):
            inputs = head.inputs(features[[i for i, _ in batch]],
                                 [q.instruction for _, q in batch], [q.answer for _, q in batch])
            loss = head.gpt(**inputs).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if progress is not None:
            progress(f"head epoch {epoch + 1}/{epochs}: loss {loss.item():.3f}")
    return head.eval()


@dataclass
class DemoModels:
    """The trained baseline encoder, the candidate encoder, the head and its tokenizer."""

    baseline: Any
    candidate: Any
    head: ConditionedHead
    trained_now: bool


@contextlib.contextmanager
def deterministic(seed: int) -> Iterator[None]:
    """Seeded, deterministic torch on :data:`TRAINING_THREADS` threads for the block; the
    previous settings are restored after it."""
    torch = require("torch", "the demo")
    threads = torch.get_num_threads()
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    state = torch.random.get_rng_state()
    torch.set_num_threads(TRAINING_THREADS)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
        torch.set_num_threads(threads)
        torch.random.set_rng_state(state)


def load_or_train(plan: TrainingPlan, cache_dir: Path | None = None,
                  progress: Callable[[str], None] | None = None) -> DemoModels:
    """The demo's models: from the cache when this plan was trained before, else trained
    now (and cached)."""
    torch = require("torch", "the demo")
    folder = (cache_dir or default_cache_dir()) / plan.key()
    files = {name: folder / f"{name}.pt" for name in ("baseline", "candidate", "head")}
    tokenizer = build_tokenizer()
    baseline, candidate, head = build_encoder(), build_encoder(), ConditionedHead(tokenizer)
    if all(path.exists() for path in files.values()):
        baseline.load_state_dict(torch.load(files["baseline"], weights_only=True))
        candidate.load_state_dict(torch.load(files["candidate"], weights_only=True))
        head.load_state_dict(torch.load(files["head"], weights_only=True))
        return DemoModels(baseline.eval(), candidate.eval(), head.eval(), trained_now=False)
    with deterministic(plan.seed):
        baseline, candidate = build_encoder(), build_encoder()
        head = ConditionedHead(tokenizer, seed=plan.seed)
        scenes = make_scenes(plan.train_scenes, "train", plan.seed)
        train_encoder(baseline, scenes, plan.encoder_epochs, plan.seed, progress=progress)
        train_head(head, baseline, scenes, plan.head_examples, plan.head_epochs, plan.seed,
                   progress=progress)
        candidate.load_state_dict(baseline.state_dict())
        singles = [s for s in make_scenes(plan.candidate_scenes * 3, "train", plan.seed + 1)
                   if len(s.digits) == 1][: plan.candidate_scenes]
        train_encoder(candidate, singles, 1, plan.seed + 1, lr=3e-3, progress=progress)
    folder.mkdir(parents=True, exist_ok=True)
    for name, state in (("baseline", baseline.state_dict()), ("candidate", candidate.state_dict()),
                        ("head", head.state_dict())):
        temporary = files[name].with_suffix(".tmp")
        torch.save(state, temporary)
        temporary.replace(files[name])  # a crash mid-save leaves no half checkpoint
    return DemoModels(baseline.eval(), candidate.eval(), head.eval(), trained_now=True)
