"""Reading instructions, answers and the encoder's output into the shapes blame compares.

One implementation, as DuckDB macros, shared by the evaluators that read rows:

* ``vlmscope_instruction_kind(instruction)`` - what the instruction asks for, one of
  :data:`INSTRUCTION_KINDS`, from its text (first rule that matches, case-insensitive):

  ==========  ================================================================
  ``probe``   a yes/no object probe (``"is there a dog?"``, :data:`PROBE_PATTERN`)
  ``count``   "how many", "count", "number of"
  ``describe``  "describe", "caption", "description", "what is happening", "what do you
              see", "tell me about"
  ``list``    "list", "enumerate", "name all/every/each", or "what/which (up to two
              words) are/were" (``"what digits are shown?"``)
  ``name``    "what", "which", "name", "identify", "classify" (``"which digit is shown?"``)
  ==========  ================================================================

  NULL when none matches. The probe rule, :data:`YES_WORDS` and :data:`NO_WORDS` are those
  of CaptionHallucination's POPE reading (one definition, here).
* ``vlmscope_row_kind(given, instruction, expected, objects)`` - a row's kind: the row's own
  (span attribute ``vlmscope.instruction.kind``, column ``instruction_kind``), else the
  instruction's, else by the expected answer's shape: a numeral is a ``count``, yes/no a
  ``probe``, no expected answer but several objects a ``list``, anything else ``name``
  (``vlmscope_kind_of(given, read, expected, objects)`` is the same with the instruction's
  kind already read).
* ``vlmscope_yes_no(text)`` - an expected yes/no label: ``yes``, ``no`` or NULL (a first word
  in :data:`YES_WORDS` or :data:`NO_WORDS` decides, else any no-word means no, else any
  yes-word means yes).
* ``vlmscope_probe_answer(answer, head)`` - what an answer to a probe says, ``yes``, ``no``
  or NULL (unreadable), by :data:`POPE_READING` (``head``: the probed object's last word):
  CaptionHallucination's POPE reading and FailureAttribution's, one definition.
* ``vlmscope_number(text)`` - the first number in a text (:data:`NUMBER_PATTERN`), a numeral
  in groups of three digits read whole (``"1,000"`` is 1000; ``"3,4"`` is 3); NULL without one
  or when it is beyond a double's range (``"1e400"``).
* ``vlmscope_count(text)`` - the number a text gives: its first numeral (grouped digits read
  whole, as above), else its first
  number word (``zero`` .. ``twenty``), else 0 when it says ``none``/``nothing``/``no``;
  NULL when it gives none.
* ``vlmscope_encoder_reading(labels, scores, multi_label, threshold)`` - the labels the
  encoder read: for a multi-label encoder (sigmoid scores) every label with ``score >=
  threshold``; for a single-label one its top-1 (the rest of its top-k are near misses); an
  empty list without labels. The rule is :func:`vlmscope.collectors.spec.encoder_reading_sql`,
  which ``pipeline_rows.encoder_reading`` reads at :data:`DEFAULT_ENCODER_THRESHOLD` too.
* ``vlmscope_form(text)`` - a label's lookup form: the mention tokeniser's words joined by
  single spaces (``"Teddy-Bear"`` -> ``"teddy bear"``).
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from vlmscope.collectors.spec import ENCODER_READING_THRESHOLD, encoder_reading_sql
from vlmscope.evaluators.mentions import install_mention_macros
from vlmscope.evaluators.text import install_macros

YES_WORDS = ("yes", "yeah", "yep", "yup", "true", "correct", "certainly", "sure", "absolutely",
             "definitely", "indeed", "affirmative", "ya", "yea")
"""Words that read as a yes to a probe (first in a sentence, or anywhere in it without a
negation)."""

NO_WORDS = ("no", "nope", "not", "false", "none", "nothing", "never", "nah", "negative",
            "cannot", "nowhere", "neither", "nor")
"""Words that read as a no to a probe (first in a sentence, or anywhere in it)."""

_PLACE = r"(?:the|this)\s+(?:image|picture|photo|photograph|scene)"
PROBE_PATTERN = (
    r"(?i)^\s*(?:(?:is|are)\s+there|(?:does|do)\s+" + _PLACE
    + r"\s+(?:contains?|shows?|includes?|have|has)|(?:can|do)\s+you\s+see)\s+"
    r"(?:(?:an?|any|some)\s+)?(.+?)(?:\s+(?:in|on)\s+" + _PLACE + r")?\s*[?.!]*\s*$"
)
"""A POPE-style yes/no object probe; group 1 is the object asked about."""

DEFAULT_ENCODER_THRESHOLD = ENCODER_READING_THRESHOLD
"""Sigmoid score (0-1) at which a multi-label encoder's label counts as read (the threshold of
``pipeline_rows.encoder_reading``)."""

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen",
                "sixteen", "seventeen", "eighteen", "nineteen", "twenty")
"""Number words a count answer may use, by value."""

NONE_WORDS = ("none", "nothing", "no")
"""Words that, in an answer naming no object or number, mean "nothing"."""

FILLER_WORDS = (
    "a", "an", "the", "it", "its", "it's", "this", "that", "these", "those", "there", "here",
    "is", "are", "was", "were", "be", "i", "we", "you", "see", "can", "think", "guess",
    "looks", "look", "like", "maybe", "probably", "just", "only", "also", "answer", "shown",
    "show", "shows", "image", "picture", "photo", "scene", "of", "and", "or", "in", "on",
    "at", "with", "to", "by", "some", "digit", "digits", "number", "numbers", "object",
    "objects", "thing", "things", "item", "items", "not", "no", "none", "nothing", "without",
    "never", "nor", "neither", "but", "s", "what", "which", "yes")
"""Words an answer naming objects may hold besides the objects: any other word of a ``name`` or
``list`` answer that names no known label is read as an object the vocabulary does not know
(``"five six"`` with only ``five`` known names five and an unknown ``six``)."""

KIND_PATTERNS = (
    ("probe", PROBE_PATTERN),
    ("count", r"(?i)\b(how\s+many|count|number\s+of)\b"),
    ("describe", r"(?i)\b(describe|description|caption|what\s+is\s+happening|"
                 r"what\s+(do|can)\s+you\s+see|tell\s+me\s+(about|what\s+you\s+see))\b"),
    ("list", r"(?i)\b(list|enumerate|name\s+(all|every|each))\b|"
             r"\b(what|which)\s+(\w+\s+){0,2}(are|were|appear|(do|can)\s+you\s+see)\b"),
    ("name", r"(?i)\b(what|which|who|name|identify|classify)\b"),
)
"""The instruction-kind rules, in the order they are tried: (kind, RE2 pattern)."""


LEANING_YES = ("probably", "likely", "believe so", "think so", "of course")
"""Words and phrases that read as a yes anywhere in a sentence without a negation or hedge
(``"Probably."``, ``"I believe so."``)."""

SENTENCE_PATTERN = r"(?:[^.!?;\n]|\.[^\s.!?;])+[.!?;]*"
"""A sentence of an answer: up to ``.``, ``!``, ``?``, ``;`` or a line break; a ``.`` followed
by a letter or digit (``0.87``, ``e.g``) does not end it."""

HEDGES = (r"maybe", r"possibly", r"perhaps", r"might", r"unsure", r"unclear", r"uncertain",
          r"not (?:sure|certain|tell|say|determine)", r"cannot (?:tell|say|determine)",
          r"(?:hard|difficult|impossible|unable) to", r"too \w+ to", r"may or may not")
"""Phrases (regular expressions on the sentence's words) that make a sentence unreadable:
it neither affirms nor denies (``"Possibly."``, ``"It is hard to tell."``)."""

POPE_READING = """An answer is read sentence by sentence (a sentence ends at ``.``, ``!``,
``?``, ``;`` or a line break; a ``.`` inside a number or a word such as ``0.87`` does not end
one), and the first readable sentence decides, as POPE reads the first sentence:

1. a first word in :data:`YES_WORDS` is a yes (``"Yes, but it is small"``), unless ``not``
   follows it (``"Absolutely not"``); a first word in :data:`NO_WORDS` is a no (``"Nope"``,
   ``"NO!"``, ``"Not at all"``);
2. a question (``"Is there a dog in the image?"`` echoed) is unreadable, and so is a hedge
   (:data:`HEDGES`: ``"Possibly."``, ``"I'm not sure."``);
3. a negation anywhere is a no (``"The image does not contain a dog"``, ``"I can't see
   one"``); ``"not only"`` and ``"no doubt"`` are not negations;
4. a yes word or a leaning (:data:`LEANING_YES`) anywhere is a yes (``"Probably."``,
   ``"I believe so."``);
5. a sentence that names the probed object (or ``one``) affirms it (``"There is a dog on
   the left."``, ``"A dog is clearly visible."``); one that names something else (``"The
   image shows a kitchen."``) is unreadable, and the next sentence is read.

An answer with no readable sentence is ``unparsed``: counted in ``pope_unparsed``, left out of
the rates' denominators, and scored 0."""


def _quoted_words(words: Sequence[str]) -> str:
    return "[" + ", ".join(f"'{w}'" for w in words) + "]"


def _any_of(phrases: Sequence[str]) -> str:
    """A regular expression finding one of ``phrases`` as whole words in ``' w1 w2 ... '``."""
    return " (?:" + "|".join(phrases) + ") "


POPE_MACROS = (
    # The words of a sentence as ' w1 w2 ... wn ', with "not only" and "no doubt" (which
    # affirm) rewritten.
    """
    CREATE OR REPLACE TEMP MACRO vlmscope_pope_words(s) AS replace(replace(
        ' ' || array_to_string(list_filter(vlmscope_words(s), lambda w: w <> ''), ' ') || ' ',
        ' not only ', ' only '), ' no doubt ', ' certainly ')
    """,
    f"""
    CREATE OR REPLACE TEMP MACRO vlmscope_pope_read(w, question, head) AS CASE
        WHEN string_split(trim(w), ' ')[1] IN {_quoted_words(YES_WORDS)}
            THEN CASE WHEN string_split(trim(w), ' ')[2] = 'not' THEN 'no' ELSE 'yes' END
        WHEN string_split(trim(w), ' ')[1] IN {_quoted_words(NO_WORDS)} THEN 'no'
        WHEN question OR regexp_matches(w, '{_any_of(HEDGES)}') THEN NULL
        WHEN regexp_matches(w, '{_any_of(NO_WORDS)}') THEN 'no'
        WHEN regexp_matches(w, '{_any_of(YES_WORDS + LEANING_YES)}') THEN 'yes'
        WHEN head <> '' AND regexp_matches(w, ' (?:' || head || '(?:s|es)?|one) ') THEN 'yes'
        END
    """,
    """
    CREATE OR REPLACE TEMP MACRO vlmscope_pope_sentence(s, head) AS vlmscope_pope_read(
        vlmscope_pope_words(s), ends_with(rtrim(s), '?'), head)
    """,
    # The whole answer: its first readable sentence decides.
    f"""
    CREATE OR REPLACE TEMP MACRO vlmscope_probe_answer(answer, head) AS list_filter(
        list_transform(regexp_extract_all(coalesce(answer, ''), '{SENTENCE_PATTERN}'),
                       lambda s: vlmscope_pope_sentence(s, head)),
        lambda r: r IS NOT NULL)[1]
    """,
)
"""The statements defining the probe-answer reading (:data:`POPE_READING`) on a connection."""


NUMERAL = r"\d{1,3}(?:,\d{3})+|\d+"
"""A whole number written in digits, in groups of three or not (``1,000``, ``1000``)."""

NUMBER_PATTERN = r"([-+]?(?:\d{1,3}(?:,\d{3})+(?:\.\d*)?|\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?:\D|$)"
"""A number in a text (group 1, read by ``vlmscope_number`` without its commas): ``1,000`` is
1000, ``12,345.6`` 12345.6, ``2.5e3`` 2500, ``-3`` -3; ``3,4`` is 3 and ``1,0000`` is 1."""


def _quoted(words: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{w}'" for w in words) + "]"


def _kind_sql() -> str:
    cases = " ".join(f"WHEN regexp_matches(x, '{pattern.replace(chr(39), chr(39) * 2)}') "
                     f"THEN '{kind}'" for kind, pattern in KIND_PATTERNS)
    return f"CASE {cases} END"


MACROS = (
    f"CREATE OR REPLACE TEMP MACRO vlmscope_instruction_kind(x) AS {_kind_sql()}",
    "CREATE OR REPLACE TEMP MACRO vlmscope_clean_words(x) AS "
    "list_filter(vlmscope_words(x), lambda w: w <> '')",
    "CREATE OR REPLACE TEMP MACRO vlmscope_form(x) AS "
    "array_to_string(vlmscope_clean_words(x), ' ')",
    f"""
    CREATE OR REPLACE TEMP MACRO vlmscope_yes_no_words(w) AS CASE
        WHEN w[1] IN {_quoted(YES_WORDS)} THEN 'yes' WHEN w[1] IN {_quoted(NO_WORDS)} THEN 'no'
        WHEN list_has_any(w, {_quoted(NO_WORDS)}) THEN 'no'
        WHEN list_has_any(w, {_quoted(YES_WORDS)}) THEN 'yes' END
    """,
    "CREATE OR REPLACE TEMP MACRO vlmscope_yes_no(x) AS "
    "vlmscope_yes_no_words(vlmscope_clean_words(x))",
    rf"""
    CREATE OR REPLACE TEMP MACRO vlmscope_count_words(w) AS coalesce(
        TRY_CAST(list_filter(w, lambda t: regexp_full_match(t, '\d+'))[1] AS BIGINT),
        list_position({_quoted(NUMBER_WORDS)},
                      list_filter(w, lambda t: list_contains({_quoted(NUMBER_WORDS)}, t))[1])
            - 1,
        CASE WHEN list_has_any(w, {_quoted(NONE_WORDS)}) THEN 0 END)
    """,
    # Digits in groups of three ("1,000,000") are one numeral: its commas go. A number beyond
    # a double's range ("1e400") reads as none, not as an infinity (not JSON, not comparable).
    "CREATE OR REPLACE TEMP MACRO vlmscope_finite(v) AS CASE WHEN isfinite(v) THEN v END",
    f"CREATE OR REPLACE TEMP MACRO vlmscope_number(x) AS vlmscope_finite(TRY_CAST(replace("
    f"nullif(regexp_extract(x, '{NUMBER_PATTERN}', 1), ''), ',', '') AS DOUBLE))",
    # The same, for a text whose clean words are already at hand.
    f"CREATE OR REPLACE TEMP MACRO vlmscope_count_in(x, w) AS coalesce(TRY_CAST(replace(nullif("
    f"regexp_extract(' ' || lower(x) || ' ', '[^a-z0-9_]({NUMERAL})[^a-z0-9_]', 1), ''), ',', "
    f"'') AS BIGINT), vlmscope_count_words(w))",
    "CREATE OR REPLACE TEMP MACRO vlmscope_count(x) AS "
    "vlmscope_count_in(x, vlmscope_clean_words(x))",
    r"""
    CREATE OR REPLACE TEMP MACRO vlmscope_kind_of(given, read, expected, objects) AS
    coalesce(nullif(lower(trim(given)), ''), read,
             CASE WHEN regexp_full_match(coalesce(trim(expected), ''), '\d+') THEN 'count'
                  WHEN vlmscope_form(expected) IN ('yes', 'no') THEN 'probe'
                  WHEN vlmscope_blank(expected)
                       AND len(coalesce(objects, []::VARCHAR[])) > 1 THEN 'list'
                  ELSE 'name' END)
    """,
    "CREATE OR REPLACE TEMP MACRO vlmscope_row_kind(given, instruction, expected, objects) AS "
    "vlmscope_kind_of(given, vlmscope_instruction_kind(instruction), expected, objects)",
    # The rule of pipeline_rows.encoder_reading, written once in the store's spec.
    "CREATE OR REPLACE TEMP MACRO vlmscope_encoder_reading(labels, scores, multi_label, "
    "threshold) AS coalesce("
    + encoder_reading_sql("labels", "scores", "multi_label", "threshold") + ", []::VARCHAR[])",
)
"""The statements that define the reading macros on a connection."""


def install_reading_macros(con: duckdb.DuckDBPyConnection) -> None:
    """Define the reading macros (and the text and tokenising macros they use) on ``con``."""
    install_macros(con)
    install_mention_macros(con)
    for statement in MACROS + POPE_MACROS:
        con.execute(statement)
