"""A hand-labelled set of rows for FailureAttribution: every object's class and the row's
blame, read by a person, for each instruction kind; from the demo (digits) and from captions
and questions about natural images with COCO objects.

Each row: (kind, instruction, expected, objects, encoder reading, answer, object classes,
blame). The encoder is multi-label: the labels of its reading score 0.9, a distractor 0.05.
"""

from __future__ import annotations

from typing import NamedTuple


class Labelled(NamedTuple):
    """One hand-labelled row."""

    source: str
    kind: str
    instruction: str
    expected: str | None
    objects: list[str] | None
    read: list[str]
    answer: str
    classes: dict[str, str]
    blame: str


INSTRUCTION_KINDS_READ = [
    ("which digit is shown ? answer in one word", "name"),
    ("What object is in the picture?", "name"),
    ("what digits are shown ?", "list"),
    ("List the objects in the image.", "list"),
    ("Which animals are there?", "list"),
    ("how many digits are there ? answer with a number", "count"),
    ("Count the people.", "count"),
    ("is there a seven ?", "probe"),
    ("Is there a dog in the image?", "probe"),
    ("Does the picture contain a cat?", "probe"),
    ("describe the image", "describe"),
    ("Write a caption for this photo.", "describe"),
    ("What do you see?", "describe"),
    ("What can you see?", "describe"),
    ("Tell me what you see.", "describe"),
    ("Which objects appear in the image?", "list"),
    ("What objects do you see?", "list"),
    ("Which animals can you see in this photo?", "list"),
    ("What animal is this?", "name"),
    ("USER: <image>\nWhat is shown in the image? ASSISTANT:", "name"),
    ("<image>\nHow many people are in the photo?", "count"),
]
"""Instructions and the kind each reads as, by hand; FailureAttribution reads them so, and
ImageInstructionAdherence classifies them by the same kind."""


C, M, D, N, F, R = ("correct", "encoder_missed", "head_dropped", "head_invented",
                    "encoder_false_positive", "head_recovered")

NAME = "which digit is shown ? answer in one word"
LIST = "what digits are shown ?"
COUNT = "how many digits are there ? answer with a number"
DESCRIBE = "describe the image"
TSF = ["three", "five", "nine"]
PIC = "a picture of three and five"

DEMO = [
    # name
    Labelled("demo", "name", NAME, "seven", None, ["seven"], "seven", {"seven": C}, "correct"),
    Labelled("demo", "name", NAME, "seven", None, ["one"], "one", {"seven": M, "one": F},
             "encoder"),
    Labelled("demo", "name", NAME, "seven", None, ["seven"], "one", {"seven": D, "one": N},
             "language_head"),
    Labelled("demo", "name", NAME, "seven", None, ["one"], "two",
             {"seven": M, "one": R, "two": N}, "both"),
    # one digit was asked for: the encoder's reading is its best label
    Labelled("demo", "name", NAME, "four", None, ["four", "nine"], "four", {"four": C},
             "correct"),
    Labelled("demo", "name", NAME, "four", None, ["nine"], "four", {"four": R, "nine": R},
             "correct"),
    Labelled("demo", "name", NAME, "two", None, ["two"], "two three", {"two": C, "three": N},
             "language_head"),
    # list
    Labelled("demo", "list", LIST, "three five nine", TSF, TSF, "three five nine",
             {"three": C, "five": C, "nine": C}, "correct"),
    Labelled("demo", "list", LIST, "three five nine", TSF, ["three", "five"], "three five",
             {"three": C, "five": C, "nine": M}, "encoder"),
    Labelled("demo", "list", LIST, "three five nine", TSF, TSF, "three five",
             {"three": C, "five": C, "nine": D}, "language_head"),
    Labelled("demo", "list", LIST, "three five nine", TSF, [*TSF, "eight"],
             "three eight five nine", {"three": C, "five": C, "nine": C, "eight": F},
             "encoder"),
    Labelled("demo", "list", LIST, "three five nine", TSF, ["three", "five"],
             "three five six", {"three": C, "five": C, "nine": M, "six": N}, "both"),
    Labelled("demo", "list", LIST, "zero one", ["zero", "one"], ["zero"], "zero one",
             {"zero": C, "one": R}, "correct"),
    Labelled("demo", "list", LIST, "four", ["four"], ["four", "seven"], "four",
             {"four": C, "seven": R}, "correct"),
    # count
    Labelled("demo", "count", COUNT, "3", TSF, TSF, "3", {"three": C, "five": C, "nine": C},
             "correct"),
    Labelled("demo", "count", COUNT, "3", TSF, ["three", "five"], "2",
             {"three": C, "five": C, "nine": M}, "encoder"),
    Labelled("demo", "count", COUNT, "3", TSF, TSF, "2", {"three": C, "five": C, "nine": C},
             "language_head"),
    Labelled("demo", "count", COUNT, "3", TSF, ["three", "five"], "1",
             {"three": C, "five": C, "nine": M}, "both"),
    Labelled("demo", "count", COUNT, "1", ["six"], ["six", "eight"], "2",
             {"six": C, "eight": F}, "encoder"),
    Labelled("demo", "count", COUNT, "2", ["one", "four"], ["one"], "2",
             {"one": C, "four": R}, "correct"),
    Labelled("demo", "count", COUNT, "1", ["zero"], ["zero"], "none", {"zero": C},
             "language_head"),
    # probe
    Labelled("demo", "probe", "is there a seven ?", "yes", ["seven", "two"], ["seven", "two"],
             "yes", {"seven": C}, "correct"),
    Labelled("demo", "probe", "is there a seven ?", "yes", ["seven", "two"], ["two"], "no",
             {"seven": M}, "encoder"),
    Labelled("demo", "probe", "is there a seven ?", "yes", ["seven", "two"], ["seven", "two"],
             "no", {"seven": D}, "language_head"),
    Labelled("demo", "probe", "is there a seven ?", "no", ["two"], ["two"], "yes",
             {"seven": N}, "language_head"),
    Labelled("demo", "probe", "is there a seven ?", "no", ["two"], ["two", "seven"], "yes",
             {"seven": F}, "encoder"),
    Labelled("demo", "probe", "is there a seven ?", "no", ["two"], ["two", "seven"], "no",
             {"seven": R}, "correct"),
    Labelled("demo", "probe", "is there a four ?", "yes", ["four"], [], "yes", {"four": R},
             "correct"),
    # describe
    Labelled("demo", "describe", DESCRIBE, PIC, ["three", "five"], ["three", "five"], PIC,
             {"three": C, "five": C}, "correct"),
    Labelled("demo", "describe", DESCRIBE, PIC, ["three", "five"], ["three", "five"],
             "a picture of three and six", {"three": C, "five": D, "six": N},
             "language_head"),
    Labelled("demo", "describe", DESCRIBE, PIC, ["three", "five"], ["three"],
             "a picture of three", {"three": C, "five": M}, "encoder"),
    Labelled("demo", "describe", DESCRIBE, PIC, ["three", "five"], ["three", "five", "eight"],
             "a picture of three and five and eight", {"three": C, "five": C, "eight": F},
             "encoder"),
    Labelled("demo", "describe", DESCRIBE, PIC, ["three", "five"], ["three", "eight"],
             "a picture of three and eight", {"three": C, "five": M, "eight": F}, "encoder"),
    Labelled("demo", "describe", DESCRIBE, PIC, ["three", "five"], ["three", "five"],
             "a picture of three", {"three": C, "five": D}, "language_head"),
    Labelled("demo", "describe", DESCRIBE, PIC, ["three", "five"], ["three"],
             "a picture of three and nine", {"three": C, "five": M, "nine": N}, "both"),
]
"""Rows like the demo's: scenes of handwritten digits, the encoder a multi-label ResNet."""

ANIMAL = "What animal is in the picture?"
OBJECTS = "What objects are in the image?"
KINDS = "How many kinds of objects are there?"
CAPTION = "Write a short caption for this photo."

COCO = [
    # name
    Labelled("coco", "name", ANIMAL, "dog", None, ["dog"], "A dog.", {"dog": C}, "correct"),
    Labelled("coco", "name", ANIMAL, "dog", None, ["cat"], "It's a cat.",
             {"dog": M, "cat": F}, "encoder"),
    Labelled("coco", "name", ANIMAL, "dog", None, ["dog"], "a puppy", {"dog": C}, "correct"),
    Labelled("coco", "name", ANIMAL, "cat", None, ["cat"], "a horse", {"cat": D, "horse": N},
             "language_head"),
    Labelled("coco", "name", ANIMAL, "giraffe", None, ["zebra"], "an elephant",
             {"giraffe": M, "zebra": R, "elephant": N}, "both"),
    Labelled("coco", "name", ANIMAL, "bird", None, ["bird"], "it is a bird, not a kite",
             {"bird": C}, "correct"),
    # list
    Labelled("coco", "list", OBJECTS, "a person and a bicycle", ["person", "bicycle"],
             ["person", "bicycle"], "A man and a bike.", {"person": C, "bicycle": C},
             "correct"),
    Labelled("coco", "list", OBJECTS, None, ["person", "dog", "frisbee"], ["person", "dog"],
             "a person and a dog", {"person": C, "dog": C, "frisbee": M}, "encoder"),
    Labelled("coco", "list", OBJECTS, None, ["car", "bus"], ["car", "bus"], "cars",
             {"car": C, "bus": D}, "language_head"),
    Labelled("coco", "list", OBJECTS, None, ["pizza", "knife"], ["pizza", "knife", "fork"],
             "pizza, a knife and a fork", {"pizza": C, "knife": C, "fork": F}, "encoder"),
    Labelled("coco", "list", OBJECTS, None, ["laptop", "cup"], ["laptop", "cup"],
             "a laptop, a cup and a cell phone", {"laptop": C, "cup": C, "cell phone": N},
             "language_head"),
    Labelled("coco", "list", OBJECTS, None, ["sheep"], ["sheep", "cow"], "sheep",
             {"sheep": C, "cow": R}, "correct"),
    # count
    Labelled("coco", "count", KINDS, "2", ["dog", "cat"], ["dog", "cat"], "two",
             {"dog": C, "cat": C}, "correct"),
    Labelled("coco", "count", KINDS, "2", ["dog", "cat"], ["dog"], "1", {"dog": C, "cat": M},
             "encoder"),
    Labelled("coco", "count", KINDS, "3", ["dog", "cat", "bird"], ["dog", "cat", "bird"],
             "There are 4.", {"dog": C, "cat": C, "bird": C}, "language_head"),
    Labelled("coco", "count", KINDS, "2", ["person", "horse"], ["person", "horse", "cow"],
             "3", {"person": C, "horse": C, "cow": F}, "encoder"),
    Labelled("coco", "count", KINDS, "1", ["car"], [], "1", {"car": R}, "correct"),
    # probe
    Labelled("coco", "probe", "Is there a dog in the image?", "yes", ["dog", "person"],
             ["dog", "person"], "Yes, there is.", {"dog": C}, "correct"),
    Labelled("coco", "probe", "Is there a cat in the image?", "no", ["dog"], ["dog", "cat"],
             "Yes", {"cat": F}, "encoder"),
    Labelled("coco", "probe", "Is there a surfboard in the image?", "yes",
             ["person", "surfboard"], ["person"], "No", {"surfboard": M}, "encoder"),
    Labelled("coco", "probe", "Are there any chairs in the picture?", "yes",
             ["dining table", "chair"], ["dining table", "chair"], "No, there are none.",
             {"chair": D}, "language_head"),
    Labelled("coco", "probe", "Is there a horse in the photo?", "no", ["cow"], ["cow"],
             "Yes, a horse.", {"horse": N}, "language_head"),
    Labelled("coco", "probe", "Is there a bench in the image?", "yes", ["bench"], [], "yes",
             {"bench": R}, "correct"),
    # describe
    Labelled("coco", "describe", CAPTION, None, ["dog", "frisbee", "person"],
             ["dog", "frisbee", "person"], "A man throwing a frisbee to his dog.",
             {"dog": C, "frisbee": C, "person": C}, "correct"),
    Labelled("coco", "describe", CAPTION, None, ["dog", "frisbee"], ["dog", "frisbee"],
             "A dog catching a frisbee next to a cat.", {"dog": C, "frisbee": C, "cat": N},
             "language_head"),
    Labelled("coco", "describe", CAPTION, None, ["cat", "couch"], ["cat", "couch", "remote"],
             "A cat on a sofa with a remote.", {"cat": C, "couch": C, "remote": F},
             "encoder"),
    Labelled("coco", "describe", CAPTION, None, ["train"], ["train"],
             "A train at the station, with no people around.", {"train": C}, "correct"),
    Labelled("coco", "describe", CAPTION, None, ["bus", "person"], ["bus"],
             "A red bus on a street.", {"bus": C, "person": M}, "encoder"),
    Labelled("coco", "describe", CAPTION, None, ["pizza", "dining table"],
             ["pizza", "dining table"], "A pizza.", {"pizza": C, "dining table": D},
             "language_head"),
    Labelled("coco", "describe", CAPTION, None, ["elephant"], ["elephant", "giraffe"],
             "Two elephants and a giraffe.", {"elephant": C, "giraffe": F}, "encoder"),
]
"""Rows about natural images with COCO objects; the encoder a multi-label COCO tagger."""

CORPUS = DEMO + COCO
"""Every hand-labelled row."""
