"""FailureAttribution on a real traced pipeline with faults injected on purpose.

A torchvision ResNet (its classifier trained here on scikit-learn's digit scans) reads each
image; a GPT-2 language head built from config turns the encoder's label into a word (its
logits are forced to one word per label, so it is right exactly when it is fed the right
label). One run corrupts the encoder's input with noise, another scrambles the head's
label-to-word mapping. The blame must name the injected side with precision and recall
>= 0.95 over the failing rows; the true cause of each failure is known from the injected
faults, independently of the evaluator.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import pytest

import vlmscope
from vlmscope.collectors.store import write_connection
from vlmscope.evaluators import (
    CaptionHallucination,
    FailureAttribution,
    GroundTruthMatch,
    ImageInstructionAdherence,
    run_evaluations,
)

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
transformers = pytest.importorskip("transformers")
pytest.importorskip("sklearn")

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
INSTRUCTION = "what digit is shown ?"
SCRAMBLED = {3: 5, 5: 8, 8: 3, 1: 7, 7: 1}
"""The faulty head's mapping: label 3 is said as "five", ... (other labels stay right)."""
TEST = slice(1400, 1797)
RECIPES = Path(__file__).resolve().parents[2] / "docs" / "recipes.md"


def train_encoder() -> tuple[Any, Any, Any]:
    """A torchvision ResNet whose classifier is trained on the first 1,400 digit scans (the
    convolutions keep their random initialisation: seconds on a CPU, ~90 % test accuracy);
    returns the model and the 397 held-out images and labels."""
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    torch.manual_seed(0)
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16.0
    images = F.interpolate(images, size=32, mode="bilinear").expand(-1, 3, -1, -1).contiguous()
    labels = torch.tensor(digits.target)
    model = torchvision.models.resnet.ResNet(
        torchvision.models.resnet.BasicBlock, [1, 1, 1, 1], num_classes=10).eval()
    features: dict[str, Any] = {}
    hook = model.avgpool.register_forward_hook(
        lambda module, args, output: features.__setitem__("x", output.flatten(1)))
    with torch.no_grad():
        model(images[:1400])
    hook.remove()
    optimizer = torch.optim.Adam(model.fc.parameters(), lr=0.05)
    for _ in range(300):
        loss = F.cross_entropy(model.fc(features["x"]), labels[:1400])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model, images[TEST], labels[TEST]


class LanguageHead:
    """A GPT-2 built from config, with a word-level tokenizer, whose next token is forced to
    ``mapping[label]`` for the label word that ends the prompt."""

    def __init__(self, mapping: dict[int, int]) -> None:
        import tokenizers

        words = ["[PAD]", "[UNK]", *WORDS, *INSTRUCTION.split(), "encoder", "sees"]
        vocab = {w: i for i, w in enumerate(dict.fromkeys(words))}
        word_level = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
        word_level.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
        self.tokenizer = transformers.PreTrainedTokenizerFast(
            tokenizer_object=word_level, pad_token="[PAD]", unk_token="[UNK]")
        torch.manual_seed(0)
        self.model = transformers.GPT2LMHeadModel(transformers.GPT2Config(
            vocab_size=len(vocab), n_positions=16, n_embd=32, n_layer=1, n_head=2,
            bos_token_id=0, eos_token_id=0, pad_token_id=0)).eval()
        ids = self.tokenizer.convert_tokens_to_ids
        self.word_ids = {ids(word): ids(WORDS[mapping.get(i, i)])
                         for i, word in enumerate(WORDS)}

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        forced = torch.full_like(scores, float("-inf"))
        for row, label_id in enumerate(input_ids[:, -1].tolist()):
            forced[row, self.word_ids[label_id]] = 0.0
        return forced

    def generate(self, labels: list[str]) -> list[str]:
        """The head's answer for each label the encoder read."""
        batch = self.tokenizer([f"{INSTRUCTION} encoder sees {w}" for w in labels],
                               return_tensors="pt")
        out = self.model.generate(**batch, max_new_tokens=1, do_sample=False, pad_token_id=0,
                                  logits_processor=transformers.LogitsProcessorList([self]))
        return self.tokenizer.batch_decode(out[:, batch["input_ids"].shape[1]:],
                                           skip_special_tokens=True)

    def oracle(self, label: str, instruction: str | None) -> str:
        """The oracle swap's callable: the head fed ``label`` directly."""
        return self.generate([label])[0]


def true_cause(expected: int, read: int, mapping: dict[int, int]) -> str:
    """What caused a row's answer, from the injected faults alone."""
    said = mapping.get(read, read)
    if said == expected:
        return "correct"
    encoder_wrong, head_wrong = read != expected, said != read
    return "both" if encoder_wrong and head_wrong else "encoder" if encoder_wrong \
        else "language_head"


class Traced(NamedTuple):
    """The store, each cohort's true cause per row id, and each cohort's head."""

    db: Path
    causes: dict[str, dict[str, str]]
    heads: dict[str, LanguageHead]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Traced:
    """Two traced runs over the 397 held-out scans: ``encoder_fault`` (noisy input, faithful
    head) and ``head_fault`` (clean input, scrambled head)."""
    db = tmp_path_factory.mktemp("blame") / "store.duckdb"
    model, images, labels = train_encoder()
    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(1))
    runs = {"encoder_fault": (images + 0.5 * noise, {}),
            "head_fault": (images, SCRAMBLED)}
    causes: dict[str, dict[str, str]] = {}
    vlmscope.configure(db=db, service_name="blame-test")
    hooks = vlmscope.instrument_encoder(model, labels=list(WORDS), top_k=3)
    heads = {}
    try:
        for cohort, (pixels, mapping) in runs.items():
            head = heads[cohort] = LanguageHead(mapping)
            generator = vlmscope.instrument_generator(head.model, head.tokenizer,
                                                      name=f"gpt2-{cohort}")
            causes[cohort] = {}
            for start in range(0, len(labels), 100):
                ids = [f"{cohort}-{i}" for i in range(start, min(start + 100, len(labels)))]
                expected = [WORDS[int(y)] for y in labels[start:start + 100]]
                with vlmscope.trace_batch(ids, cohort=cohort, expected=expected,
                                          instructions=[INSTRUCTION] * len(ids), run=cohort):
                    with torch.no_grad():
                        read = model(pixels[start:start + 100]).argmax(1).tolist()
                    head.generate([WORDS[r] for r in read])
                for row_id, y, r in zip(ids, labels[start:start + 100].tolist(), read,
                                        strict=True):
                    causes[cohort][row_id] = true_cause(y, r, mapping)
            generator.uninstrument()
    finally:
        hooks.uninstrument()
        vlmscope.shutdown()
    return Traced(db, causes, heads)


def blame_of(db: Path, evaluator: FailureAttribution, cohort: str) -> dict[str, dict]:
    with write_connection(db) as con:
        run = run_evaluations(con, [evaluator], cohort=cohort)
        rows = con.execute(
            "SELECT row_id, label, explanation, metadata FROM evaluations "
            "WHERE run_id = ? AND evaluator = 'failure_attribution'", [run.run_id]).fetchall()
    return {r[0]: {"label": r[1], "reason": r[2], "metadata": r[3],
                   "summary": run.summaries["failure_attribution"]} for r in rows}


def precision_recall(blamed: dict[str, dict], causes: dict[str, str],
                     side: str) -> tuple[float, float, int]:
    """Precision and recall of ``side`` over the failing rows (true cause not correct)."""
    failing = [r for r, cause in causes.items() if cause != "correct"]
    predicted = {r for r in failing if blamed[r]["label"] == side}
    actual = {r for r in failing if causes[r] == side}
    hits = len(predicted & actual)
    return hits / len(predicted), hits / len(actual), len(actual)


def test_a_corrupted_encoder_is_blamed_on_the_encoder(store: Traced) -> None:
    db, causes, _ = store
    blamed = blame_of(db, FailureAttribution(), "encoder_fault")
    precision, recall, failures = precision_recall(blamed, causes["encoder_fault"], "encoder")
    assert failures > 150  # the noise really breaks the encoder
    assert precision >= 0.95 and recall >= 0.95
    summary = next(iter(blamed.values()))["summary"]
    assert summary["blame_encoder"] >= 0.95
    assert summary["blame_language_head"] == 0.0


def test_a_scrambled_head_is_blamed_on_the_language_head(store: Traced) -> None:
    db, causes, _ = store
    blamed = blame_of(db, FailureAttribution(), "head_fault")
    precision, recall, failures = precision_recall(blamed, causes["head_fault"],
                                                   "language_head")
    assert failures > 100
    assert precision >= 0.95 and recall >= 0.95
    example = next(b for r, b in blamed.items() if causes["head_fault"][r] == "language_head")
    assert re.fullmatch(r"name: expected \['(\w+)'\], the encoder read \['\1'\], the answer "
                        r"names \['\w+'\]; head dropped '\1', which the encoder saw; head "
                        r"invented '\w+'", example["reason"])


def test_the_oracle_swap_confirms_the_blame_with_the_real_head(store: Traced) -> None:
    db, causes, heads = store
    for cohort, side in (("encoder_fault", "encoder"), ("head_fault", "language_head")):
        blamed = blame_of(db, FailureAttribution(head=heads[cohort].oracle), cohort)
        precision, recall, _ = precision_recall(blamed, causes[cohort], side)
        assert precision >= 0.95 and recall >= 0.95
        judged = [b for r, b in blamed.items() if causes[cohort][r] == side]
        confirmed = sum('"oracle":"confirmed"' in b["metadata"] for b in judged)
        assert confirmed / len(judged) >= 0.95


def why_did_it_fail_query() -> str:
    """The query docs/recipes.md documents under "Why did row 17 fail"."""
    text = RECIPES.read_text(encoding="utf-8")
    section = text[text.index("## Why did row 17 fail"):]
    return re.search(r"```sql\n(.*?)```", section, re.S).group(1)


def test_the_documented_why_query_returns_every_verdict_next_to_the_spans(
        store: Traced) -> None:
    db, causes, _ = store
    failing = next(r for r, cause in causes["head_fault"].items() if cause == "language_head")
    with write_connection(db) as con:
        run_evaluations(con, [GroundTruthMatch(), FailureAttribution(),
                              CaptionHallucination(objects_from_encoder=True),
                              ImageInstructionAdherence()], cohort="head_fault")
        rows = con.execute(why_did_it_fail_query(), {"row_id": failing}).fetchall()
        columns = [d[0] for d in con.description]
    verdicts = [dict(zip(columns, row, strict=True)) for row in rows]
    evaluators = {v["evaluator"] for v in verdicts}
    assert {"ground_truth_match", "failure_attribution", "caption_hallucination",
            "instruction_adherence"} <= evaluators
    blame = next(v for v in verdicts if v["evaluator"] == "failure_attribution")
    assert blame["label"] == "language_head" and blame["passed"] is False
    assert blame["explanation"].startswith("name: expected")
    assert "encoder" in blame["encoder_span"] and blame["llm_span"]
    assert blame["judged_span"] == blame["llm_span"]
    assert blame["encoder_top_k"][0] == blame["expected"] != blame["output"]
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM spans WHERE span_id = ?",
                           [blame["judged_span_id"]]).fetchall() == [(1,)]
