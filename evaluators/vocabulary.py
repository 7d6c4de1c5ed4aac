"""Object vocabularies: which words and phrases name which object, for finding mentions.

A :class:`Vocabulary` maps a canonical object name to the words that name it (``"dog"`` ->
``"puppy"``, ``"hound"``, ...). Built in:

* ``coco`` - the 80 COCO classes with CHAIR's synonyms and two-word phrases
  (:mod:`vlmscope.evaluators.coco_objects`);
* ``imagenet`` - the 1,000 ImageNet-1k class names as torchvision spells them, with the
  WordNet synonyms of :data:`vlmscope.evaluators.aliases.IMAGENET_ALIASES` (needs torchvision,
  which ships the names; nothing is downloaded).

User vocabularies come from a mapping (:meth:`Vocabulary.from_mapping`) or from text, one
object a line (:meth:`Vocabulary.parse`)::

    # canonical: synonym, synonym, ...
    dog: puppy, hound
    traffic cone: pylon

Every vocabulary has a version (built-ins: a release string; user vocabularies: the first 12
hex digits of the SHA-256 of their entries) that evaluation runs record. Plurals and
singulars are added offline by rule (:func:`inflections`), with no NLTK or spaCy download.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from vlmscope.evaluators.aliases import IMAGENET_ALIASES
from vlmscope.evaluators.coco_objects import COCO_OBJECTS, COCO_OBJECTS_VERSION

IMAGENET_VERSION = "imagenet-1k/torchvision-categories+aliases-2026.1"
"""Version of the built-in ``imagenet`` vocabulary."""

BUILTIN_VOCABULARIES = ("coco", "imagenet")
"""Names :func:`resolve_vocabularies` accepts besides :class:`Vocabulary` objects and files."""

# Irregular plurals (singular -> plural) that the suffix rules get wrong.
_IRREGULAR = {
    "person": "people", "man": "men", "woman": "women", "child": "children", "mouse": "mice",
    "goose": "geese", "foot": "feet", "tooth": "teeth", "ox": "oxen", "louse": "lice",
    "die": "dice", "cactus": "cacti", "fungus": "fungi", "knife": "knives", "wife": "wives",
    "leaf": "leaves", "loaf": "loaves", "shelf": "shelves", "wolf": "wolves", "calf": "calves",
    "half": "halves", "scarf": "scarves", "thief": "thieves",
}
_IRREGULAR_SINGULAR = {plural: singular for singular, plural in _IRREGULAR.items()}
IRREGULAR_PLURALS = frozenset(_IRREGULAR_SINGULAR) | {"cattle", "police"}
"""Plurals that do not end in ``s`` or end in it irregularly (``people``, ``mice``, ``knives``),
and nouns that are always plural (``cattle``)."""
# Irregular nouns whose compounds inflect the same way, and words that only look like them.
_IRREGULAR_ENDINGS = ("man", "child", "mouse", "goose", "tooth", "foot", "knife", "wife")
_REGULAR_ENDINGS = frozenset({"human", "german", "roman", "shaman", "talisman", "caiman",
                              "ottoman", "doberman", "walkman", "mongoose"})
# Nouns whose plural is the singular.
_INVARIANT = frozenset({"sheep", "deer", "fish", "moose", "bison", "aircraft", "series",
                        "species", "cattle", "broccoli", "scissors", "skis", "glasses"})
_VOWELS = frozenset("aeiou")

VOCABULARY_SCHEMA = pa.schema([
    ("form", pa.string()), ("canonical", pa.string()), ("vocabulary", pa.string()),
    ("priority", pa.int32()),
])
"""The rows :func:`vocabulary_rows` gives: a surface form, the object it names, the
vocabulary it comes from and its priority (lower wins when two objects claim a form)."""


class VocabularyError(ValueError):
    """A user vocabulary is malformed; the message names the line (or key) at fault."""


def inflections(word: str) -> set[str]:
    """The plural and singular forms of an English noun (lower case), by rule.

    Rules, in order: irregular nouns (``person``/``people``, ``knife``/``knives``) and their
    compounds (``gentleman``/``gentlemen``, but ``human``/``humans``), nouns
    that do not change (``sheep``), then suffixes: ``-s/-x/-z/-ch/-sh`` + ``es``; consonant +
    ``y`` -> ``ies``; ``-f``/``-fe`` -> ``ves`` and ``-o`` -> ``oes`` (both kept next to the
    plain ``+s``); otherwise ``+s``. A plural-looking word (``-s`` but not ``-ss/-us/-is``)
    gets its singulars by the reverse rules instead. The word itself is not in the result.
    Two-letter words inflect too (``tv`` -> ``tvs``).

    >>> sorted(inflections("bus"))
    ['buses']
    >>> sorted(inflections("puppy")), sorted(inflections("horses"))
    (['puppies'], ['hors', 'horse'])
    """
    if word in _IRREGULAR:
        return {_IRREGULAR[word]}
    if word in _IRREGULAR_SINGULAR:
        return {_IRREGULAR_SINGULAR[word]}
    for singular in _IRREGULAR_ENDINGS:  # gentleman -> gentlemen, grandchild -> grandchildren
        if word.endswith(singular) and word not in _REGULAR_ENDINGS:
            return {word[:-len(singular)] + _IRREGULAR[singular]}
    forms: set[str] = set()
    if word in _INVARIANT or len(word) < 2:
        return forms
    # A plural-looking form (the vocabulary may list plurals such as "knives") gets its
    # singulars; "-ses"/"-ches" are ambiguous (buses, horses), so both readings are kept.
    if word.endswith("ies") and len(word) > 4:
        return {word[:-3] + "y"}
    if word.endswith("ves"):
        return {word[:-3] + "f", word[:-3] + "fe"}
    if word.endswith(("ses", "xes", "zes", "ches", "shes")):
        return {word[:-2], word[:-1]}
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return {word[:-1]}
    if word.endswith(("s", "x", "z", "ch", "sh")):
        forms.add(word + "es")
    elif word.endswith("y") and word[-2] not in _VOWELS:
        forms.add(word[:-1] + "ies")
    else:
        forms.add(word + "s")
        if word.endswith("fe"):
            forms.add(word[:-2] + "ves")
        elif word.endswith("f"):
            forms.add(word[:-1] + "ves")
        elif word.endswith("o") and word[-2] not in _VOWELS:
            forms.add(word + "es")
    return forms


def _inflect_phrase(form: str) -> set[str]:
    """A phrase's forms with its last word inflected (``"hot dog"`` -> ``"hot dogs"``)."""
    head, _, last = form.rpartition(" ")
    prefix = f"{head} " if head else ""
    return {prefix + word for word in inflections(last)}


@dataclass(frozen=True)
class Vocabulary:
    """Objects and the words that name them: ``entries`` maps a canonical name to its
    synonyms (the canonical name names itself). ``name`` and ``version`` are recorded with
    every evaluation run that uses it."""

    name: str
    version: str
    entries: Mapping[str, tuple[str, ...]]

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Iterable[str]], name: str = "user") -> Vocabulary:
        """A user vocabulary from ``{canonical: [synonym, ...]}``.

        Raises :class:`VocabularyError` naming the key when a name is not a non-blank string.
        """
        entries: dict[str, tuple[str, ...]] = {}
        for canonical, synonyms in mapping.items():
            if not isinstance(canonical, str) or not canonical.strip():
                raise VocabularyError(
                    f"vocabulary {name!r}: object name {canonical!r} must be a non-blank string")
            if isinstance(synonyms, str):
                raise VocabularyError(
                    f"vocabulary {name!r}: synonyms of {canonical!r} must be a list of "
                    f"strings, got the string {synonyms!r}")
            listed = tuple(synonyms)
            bad = [s for s in listed if not isinstance(s, str) or not s.strip()]
            if bad:
                raise VocabularyError(
                    f"vocabulary {name!r}: synonym(s) {bad!r} of {canonical!r} must be "
                    "non-blank strings")
            if any(chr(31) in s for s in (canonical, *listed)):
                raise VocabularyError(f"vocabulary {name!r}: {canonical!r} or a synonym holds "
                                      "the control character U+001F")
            entries[canonical.strip()] = tuple(s.strip() for s in listed)
        digest = hashlib.sha256(repr(sorted(entries.items())).encode()).hexdigest()[:12]
        return cls(name, f"{name}/{digest}", entries)

    @classmethod
    def parse(cls, text: str, name: str = "user") -> Vocabulary:
        """A user vocabulary from text: ``canonical: synonym, synonym`` per line (a line
        without ``:`` is an object without synonyms; ``#`` starts a comment).

        Raises :class:`VocabularyError` naming the line number and text of a malformed line
        (blank object name, empty synonym, duplicate object).
        """
        entries: dict[str, list[str]] = {}
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            canonical, sep, rest = line.partition(":")
            canonical = canonical.strip()
            synonyms = [s.strip() for s in rest.split(",")] if sep and rest.strip() else []
            problem = None
            if not canonical:
                problem = "the object name before ':' is blank"
            elif ":" in rest:
                problem = "more than one ':'"
            elif any(not s for s in synonyms):
                problem = "an empty synonym (two commas in a row, or a trailing comma)"
            elif canonical in entries:
                problem = f"object {canonical!r} is listed twice"
            if problem:
                raise VocabularyError(
                    f"vocabulary {name!r}, line {number}: {problem}; expected "
                    f"'canonical: synonym, synonym', got {raw.strip()!r}")
            entries[canonical] = synonyms
        if not entries:
            raise VocabularyError(f"vocabulary {name!r} names no object")
        return cls.from_mapping(entries, name)

    @classmethod
    def from_file(cls, path: str | Path) -> Vocabulary:
        """A user vocabulary from a text file in :meth:`parse`'s format, named after the
        file."""
        path = Path(path)
        return cls.parse(path.read_text(encoding="utf-8"), name=path.stem)


def coco_vocabulary() -> Vocabulary:
    """The built-in ``coco`` vocabulary."""
    return Vocabulary("coco", COCO_OBJECTS_VERSION, COCO_OBJECTS)


def imagenet_vocabulary() -> Vocabulary:
    """The built-in ``imagenet`` vocabulary (needs torchvision for the class names)."""
    from vlmscope.labels import imagenet_labels

    names = imagenet_labels()
    if names is None:
        raise VocabularyError(
            "the imagenet vocabulary reads the class names that ship with torchvision; "
            "install vlmscope[torch]")
    entries: dict[str, list[str]] = {name: [] for name in names}
    for alias, canonical in IMAGENET_ALIASES.items():
        if canonical in entries:
            entries[canonical].append(alias)
    return Vocabulary("imagenet", IMAGENET_VERSION,
                      {name: tuple(synonyms) for name, synonyms in entries.items()})


def resolve_vocabularies(
    vocabularies: Sequence[str | Path | Vocabulary | Mapping[str, Iterable[str]]],
) -> list[Vocabulary]:
    """Vocabularies from built-in names (``coco``, ``imagenet``), files, mappings or
    :class:`Vocabulary` objects; :class:`VocabularyError` says what was expected."""
    if isinstance(vocabularies, str | Path | Vocabulary | Mapping):
        vocabularies = [vocabularies]  # type: ignore[list-item]
    resolved: list[Vocabulary] = []
    for item in vocabularies:
        if isinstance(item, Vocabulary):
            resolved.append(item)
        elif isinstance(item, Mapping):
            resolved.append(Vocabulary.from_mapping(item))
        elif item == "coco":
            resolved.append(coco_vocabulary())
        elif item == "imagenet":
            resolved.append(imagenet_vocabulary())
        elif Path(item).is_file():
            resolved.append(Vocabulary.from_file(item))
        else:
            raise VocabularyError(
                f"unknown vocabulary {item!r}: use {' or '.join(BUILTIN_VOCABULARIES)}, a "
                "file of 'canonical: synonym, ...' lines, a mapping or a Vocabulary")
    if not resolved:
        raise VocabularyError("give at least one vocabulary")
    return resolved


def vocabulary_rows(vocabularies: Sequence[Vocabulary]) -> pa.Table:
    """Every surface form of ``vocabularies`` as rows of :data:`VOCABULARY_SCHEMA`.

    Priority ``2 * i`` for the listed forms of the ``i``-th vocabulary, ``2 * i + 1`` for
    their inflections: a listed form beats an inflected one, an earlier vocabulary a later
    one. Forms are lower-cased here and normalised in SQL (the same macro as the text)."""
    forms: list[str] = []
    canonicals: list[str] = []
    names: list[str] = []
    priorities: list[int] = []
    for i, vocabulary in enumerate(vocabularies):
        for canonical, synonyms in vocabulary.entries.items():
            listed = {s.lower() for s in (canonical, *synonyms)}
            inflected = set().union(*(_inflect_phrase(s) for s in listed)) - listed
            for group, priority in ((listed, 2 * i), (inflected, 2 * i + 1)):
                for form in sorted(group):
                    forms.append(form)
                    canonicals.append(canonical)
                    names.append(vocabulary.name)
                    priorities.append(priority)
    return pa.table([forms, canonicals, names, priorities], schema=VOCABULARY_SCHEMA)
