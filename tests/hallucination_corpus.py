"""Seeded random captions, object lists, encoder records and probes for CaptionHallucination:
vocabulary words and their synonyms, plurals, two-word phrases, negations, punctuation,
casing, apostrophes, odd whitespace and words of other scripts."""

from __future__ import annotations

import random

from vlmscope.evaluators.coco_objects import COCO_OBJECTS
from vlmscope.evaluators.vocabulary import inflections

USER_VOCABULARY = {"crème brûlée": ["flan", "custard tart"], 'the "thing"': ["gizmo"],
                   "forklift": ["fork lift", "lift truck"], "dog": ["mutt"]}
"""A user vocabulary with non-ASCII and quoted names, and a name COCO also has."""

_FILLERS = ["a", "the", "two", "some", "on", "in", "next", "to", "near", "with", "and", "of",
            "is", "are", "there", "sitting", "red", "big", "brown", "here", "it", "by",
            "nothing", "snow", "know", "nor", "neither", "never", "none", "not", "no",
            "without", "isn't", "doesn't", "dog's", "cats'", "café", "一只狗", "ñno", "über",
            "42", "3rd", "hot", "bear", "glass", "wine", "cell", "traffic", "tennis"]
_SEPARATORS = [" "] * 12 + [", ", ". ", "; ", "! ", "? ", " - ", "-", "  ", "\t", "\n", "\v",
                            "\f", " (", ") ", "’", "'", "¬", "\x01", ",", "…", " — "]
_YES_NO = ["yes", "Yes.", "no", "No!", "nope", "yeah, there is", "There isn't one.",
           "I do not see it", "maybe", "not sure", "certainly not", "sure"]
_PROBES = ["Is there a {} in the image?", "is there any {} in this picture",
           "Does the image contain a {}?", "Can you see a {}?", "Are there {}?"]


def vocabulary_words() -> list[str]:
    """Every COCO name and synonym with their inflections, and the user vocabulary's."""
    words: set[str] = set()
    entries = {**{k: list(v) for k, v in COCO_OBJECTS.items()}, **USER_VOCABULARY}
    for canonical, synonyms in entries.items():
        for form in (canonical, *synonyms):
            words.add(form)
            head, _, last = form.rpartition(" ")
            words.update((f"{head} " if head else "") + w for w in inflections(last))
    return sorted(words)


def _casing(rng: random.Random, word: str) -> str:
    roll = rng.random()
    return word.upper() if roll < 0.05 else word.title() if roll < 0.15 else word


def random_caption(rng: random.Random, words: list[str]) -> str:
    """A caption of 1-16 pieces: vocabulary forms, negations and fillers between random
    separators (an empty or blank one now and then)."""
    if rng.random() < 0.02:
        return rng.choice(["", " ", "\n\t"])
    pieces = []
    for _ in range(rng.randint(1, 16)):
        roll = rng.random()
        if roll < 0.4:
            piece = rng.choice(words)
        elif roll < 0.5:
            piece = rng.choice(["no", "not", "without", "never", "none of the", "neither",
                                "there is no", "isn't a"]) + " " + rng.choice(words)
        else:
            piece = rng.choice(_FILLERS)
        if rng.random() < 0.1:
            piece = piece.replace(" ", rng.choice(["-", "  ", "\t", " - "]))
        pieces.append(_casing(rng, piece))
        pieces.append(rng.choice(_SEPARATORS))
    return "".join(pieces[:-1]) if rng.random() < 0.8 else "".join(pieces)


def random_rows(seed: int, count: int) -> list[dict]:
    """``count`` rows with the pipeline_rows columns CaptionHallucination reads."""
    rng = random.Random(seed)
    words = vocabulary_words()
    names = [*COCO_OBJECTS, *USER_VOCABULARY, "unicorn", "Dog", "  puppies ", "teddy-bear",
             "hot dogs", "no dog", ""]
    rows = []
    for i in range(count):
        objects = (None if rng.random() < 0.08 else
                   [rng.choice(names) for _ in range(rng.randint(0, 5))])
        labels = scores = None
        if rng.random() < 0.7:
            labels = [rng.choice(names) for _ in range(rng.randint(0, 5))]
            scores = [None if rng.random() < 0.05 else round(rng.random(), 3) for _ in labels]
        instruction, output = None, random_caption(rng, words)
        roll = rng.random()
        if roll < 0.15:
            instruction = rng.choice(_PROBES).format(rng.choice(words + ["unicorn"]))
            output = rng.choice(_YES_NO) if rng.random() < 0.95 else None
        elif roll < 0.3:
            instruction = "Describe the image."
        elif roll < 0.32:
            output = None
        rows.append({"row_id": f"r{i}", "trace_id": f"t{i // 7}", "span_id": f"s{i}",
                     "llm_span_id": None if i % 3 else f"l{i}", "output": output,
                     "instruction": instruction, "objects": objects,
                     "top_k_labels": labels, "top_k_scores": scores})
    return rows
