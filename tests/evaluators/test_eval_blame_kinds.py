"""FailureAttribution on a real traced pipeline, for all five instruction kinds, with faults
injected on purpose.

The encoder is the demo's ResNet-10, trained here as a multi-label digit detector on scenes
of one to three real handwritten digits (its ten sigmoid scores recorded). The language head
is a GPT-2 built from config whose tokens are forced to an answer made from the encoder's
reading: faithfully in one run, with a fault in the other (it swaps the named digit, drops or
adds a listed or described digit, miscounts, flips a yes/no). One run corrupts the encoder's
input with noise (a faithful head), the other keeps it clean (a faulty head). The true cause
of each failure follows from the injected faults alone (:func:`true_cause`: what the faithful
answer to the encoder's reading already got wrong, and what only the head's fault did), never
from the evaluator; the blame must name it with precision and recall >= 0.95 for each of
encoder and language head.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, NamedTuple

import pytest

import vlmscope
from vlmscope.collectors.store import write_connection
from vlmscope.evaluators import FailureAttribution, run_evaluations

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
transformers = pytest.importorskip("transformers")
pytest.importorskip("sklearn")

from vlmscope.demo.models import build_encoder, deterministic, train_encoder  # noqa: E402
from vlmscope.demo.scenes import DIGIT_WORDS, ask, make_scenes  # noqa: E402

THRESHOLD = 0.5
KINDS = ("name", "list", "count", "probe", "describe")


class Shape(NamedTuple):
    """An answer as the kind asks for it: a set of digits, a number or yes/no."""

    value: Any


def faithful(kind: str, reading: list[str], probed: str | None) -> Any:
    """What a head that repeats the encoder's reading answers (``reading``: best first)."""
    if kind == "name":
        return frozenset(reading[:1])
    if kind == "count":
        return len(reading)
    if kind == "probe":
        return probed in reading
    return frozenset(reading)


def faulty(kind: str, reading: list[str], probed: str | None, rng: random.Random) -> Any:
    """The head's answer with a fault injected."""
    absent = [d for d in DIGIT_WORDS if d not in reading]
    if kind == "name":
        return frozenset([rng.choice(absent)])
    if kind == "count":
        return len(reading) + rng.choice((1, -1) if reading else (1,))
    if kind == "probe":
        return probed not in reading
    if reading and rng.random() < 0.5:
        return frozenset(reading) - {rng.choice(reading)}
    return frozenset(reading) | {rng.choice(absent)}


def true_cause(kind: str, truth: Any, right: Any, said: Any) -> str:
    """Who caused a wrong answer, from the injected faults alone: for a set, each object the
    answer gets wrong is the encoder's when the faithful answer (``right``) already got it
    wrong, the head's when only the head's fault did; a number or a yes/no is the encoder's
    when the faithful answer was already wrong, the head's when its fault changed it."""
    if said == truth:
        return "correct"
    if kind in ("count", "probe"):
        encoder_wrong, head_wrong = right != truth, said != right
    else:
        misread = truth ^ right
        encoder_wrong = any(x in misread for x in truth ^ said)
        head_wrong = any(x not in misread for x in truth ^ said)
    if encoder_wrong and head_wrong:
        return "both"
    return "encoder" if encoder_wrong else "language_head"


def as_text(kind: str, value: Any) -> str:
    if kind == "count":
        return str(value)
    if kind == "probe":
        return "yes" if value else "no"
    words = sorted(value)
    if kind == "describe":
        return "a picture of " + (" and ".join(words) if words else "nothing")
    return " ".join(words) if words else "none"


def expected_shape(kind: str, expected: str, objects: list[str], probed: str | None) -> Any:
    if kind == "count":
        return int(expected)
    if kind == "probe":
        return expected == "yes"
    if kind == "name":
        return frozenset([expected])
    return frozenset(objects)


class ForcedHead:
    """A GPT-2 built from config whose generated tokens are forced to given answers."""

    def __init__(self) -> None:
        import tokenizers

        words = ["[PAD]", "[UNK]", "[EOS]", *DIGIT_WORDS, "yes", "no", "none", "a", "picture",
                 "of", "and", "nothing", "answer", *[str(n) for n in range(12)], "-1"]
        vocab = {w: i for i, w in enumerate(dict.fromkeys(words))}
        model = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
        model.pre_tokenizer = tokenizers.pre_tokenizers.WhitespaceSplit()
        self.tokenizer = transformers.PreTrainedTokenizerFast(
            tokenizer_object=model, pad_token="[PAD]", unk_token="[UNK]", eos_token="[EOS]")
        torch.manual_seed(0)
        self.model = transformers.GPT2LMHeadModel(transformers.GPT2Config(
            vocab_size=len(vocab), n_positions=32, n_embd=32, n_layer=1, n_head=2,
            bos_token_id=2, eos_token_id=2, pad_token_id=0)).eval()
        self.targets: list[list[int]] = []

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        step = input_ids.shape[1] - 1
        forced = torch.full_like(scores, float("-inf"))
        for row, target in enumerate(self.targets):
            forced[row, target[step] if step < len(target) else 2] = 0.0
        return forced

    def generate(self, answers: list[str]) -> list[str]:
        self.targets = [[*self.tokenizer(a, add_special_tokens=False)["input_ids"], 2]
                        for a in answers]
        batch = self.tokenizer(["answer"] * len(answers), return_tensors="pt")
        out = self.model.generate(**batch, max_new_tokens=8, do_sample=False, pad_token_id=0,
                                  logits_processor=transformers.LogitsProcessorList([self]))
        return self.tokenizer.batch_decode(out[:, 1:], skip_special_tokens=True)


class Traced(NamedTuple):
    db: Path
    causes: dict[str, dict[str, str]]
    kinds: dict[str, str]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Traced:
    db = tmp_path_factory.mktemp("blame-kinds") / "store.duckdb"
    with deterministic(0):
        encoder = build_encoder()
        train_encoder(encoder, make_scenes(600, "train", 0), 2, 0)
    scenes = make_scenes(200, "test", 11)
    rng = random.Random(3)
    questions = []
    for i, scene in enumerate(scenes):
        kind = KINDS[i % 5]
        if kind == "name" and len(scene.digits) > 1:
            kind = "list"
        questions.append(ask(scene, rng, kind))
    pixels = torch.stack([s.pixels for s in scenes])
    noisy = pixels + 0.6 * torch.randn(pixels.shape, generator=torch.Generator().manual_seed(1))
    runs = {"encoder_fault": (noisy, False), "head_fault": (pixels, True)}
    causes: dict[str, dict[str, str]] = {}
    kinds: dict[str, str] = {}
    head = ForcedHead()
    vlmscope.configure(db=db, service_name="blame-kinds-test")
    hooks = vlmscope.instrument_encoder(encoder, labels=list(DIGIT_WORDS), top_k=10,
                                        multi_label=True)
    generator = vlmscope.instrument_generator(head.model, head.tokenizer, name="forced-gpt2")
    try:
        for cohort, (images, head_fault) in runs.items():
            causes[cohort] = {}
            fault_rng = random.Random(7)
            for start in range(0, len(scenes), 50):
                chunk = range(start, min(start + 50, len(scenes)))
                ids = [f"{cohort}-{i}" for i in chunk]
                with vlmscope.trace_batch(
                        ids, cohort=cohort, run=cohort,
                        expected=[questions[i].answer for i in chunk],
                        objects=[scenes[i].objects for i in chunk],
                        instructions=[questions[i].instruction for i in chunk]):
                    with torch.no_grad():
                        scores = torch.sigmoid(encoder(images[start:start + len(ids)]))
                    answers = []
                    for row, i in enumerate(chunk):
                        order = scores[row].argsort(descending=True).tolist()
                        reading = [DIGIT_WORDS[d] for d in order if scores[row, d] >= THRESHOLD]
                        kind = questions[i].kind
                        kinds[ids[row]] = kind
                        probed = (questions[i].instruction.split()[3] if kind == "probe"
                                  else None)
                        right = faithful(kind, reading, probed)
                        said = faulty(kind, reading, probed, fault_rng) if head_fault else right
                        truth = expected_shape(kind, questions[i].answer, scenes[i].objects,
                                               probed)
                        causes[cohort][ids[row]] = true_cause(kind, truth, right, said)
                        answers.append(as_text(kind, said))
                    head.generate(answers)
    finally:
        generator.uninstrument()
        hooks.uninstrument()
        vlmscope.shutdown()
    return Traced(db, causes, kinds)


def blamed(db: Path, cohort: str) -> dict[str, tuple[str, str]]:
    with write_connection(db) as con:
        run = run_evaluations(con, [FailureAttribution(classes=DIGIT_WORDS,
                                                       encoder_threshold=THRESHOLD)],
                              cohort=cohort)
        return {row_id: (label, reason) for row_id, label, reason in con.execute(
            "SELECT row_id, label, explanation FROM evaluations WHERE run_id = ?",
            [run.run_id]).fetchall()}


def precision_recall(labels: dict[str, str], causes: dict[str, str],
                     side: str) -> tuple[float, float, int]:
    failing = [r for r, cause in causes.items() if cause != "correct"]
    predicted = {r for r in failing if labels[r] == side}
    actual = {r for r in failing if causes[r] == side}
    hits = len(predicted & actual)
    return hits / max(1, len(predicted)), hits / max(1, len(actual)), len(actual)


def test_injected_faults_of_every_kind_are_blamed_on_the_side_that_made_them(
        store: Traced) -> None:
    every_label: dict[str, str] = {}
    every_reason: dict[str, str] = {}
    every_cause: dict[str, str] = {}
    for cohort in ("encoder_fault", "head_fault"):
        labels = blamed(store.db, cohort)
        every_label.update({r: label for r, (label, _) in labels.items()})
        every_reason.update({r: reason for r, (_, reason) in labels.items()})
        every_cause.update(store.causes[cohort])
        # the evaluator saw every row and read each kind from its instruction
        assert set(labels) == set(store.causes[cohort])
    for side in ("encoder", "language_head"):
        precision, recall, failures = precision_recall(every_label, every_cause, side)
        assert failures >= 30, (side, failures)
        wrong = [(r, every_cause[r], every_label[r], every_reason[r]) for r in every_cause
                 if every_cause[r] != every_label[r]]
        assert precision >= 0.95 and recall >= 0.95, (side, precision, recall, wrong[:12])
    for kind in KINDS:
        rows = [r for r, k in store.kinds.items() if k == kind and every_cause[r] != "correct"]
        sides = {every_cause[r] for r in rows}
        assert {"encoder", "language_head"} <= sides, kind  # both faults arose in each kind
        right = sum(every_label[r] == every_cause[r] for r in rows)
        assert right / len(rows) >= 0.95, (kind, right, len(rows), [
            (r, every_cause[r], every_label[r], every_reason[r]) for r in rows
            if every_label[r] != every_cause[r]][:6])
    assert sum(label == "unattributable" for label in every_label.values()) == 0
