"""Finding object mentions in text, in DuckDB: tokenise, join the vocabulary, keep the longest.

One implementation, shared by every evaluator that reads objects out of text (captions,
answers, ground-truth object names, encoder labels):

1. ``vlmscope_words(x)`` - lower case, ``n't`` -> `` not``, possessive ``'s`` dropped, every
   run of characters other than letters, digits (any script) and spaces -> one space, split
   on spaces (a run of spaces gives empty words, which match nothing).
   ``"The dog's ball isn't red"`` -> ``[the, dog, ball, is, not, red]``.
2. ``vlmscope_negated_words(x)`` - the same, but the words a negation cue
   (:data:`NEGATION_CUES`) governs are marked negated (prefixed with ``¬``):
   ``"there is no dog, a cat"`` -> ``[there, is, ¬dog, a, cat]``. The window rule:

   * a cue negates the :data:`NEGATION_WINDOW` words that follow it in the same clause;
     :data:`NEGATION_FILLERS` (``any``, ``visible``, ``sign of`` ...) do not count towards the
     three, so ``"no sign of any pizzas"`` and ``"no visible toaster or microwave"`` negate
     the pizzas, the toaster and the microwave;
   * the window ends at punctuation (``"no cat, a dog"``), at a contrast word
     (:data:`NEGATION_STOPS`: ``"no cat but a dog"``), and at the next cue, which opens a
     window of its own: chained cues (``"no cat and no dog"``, ``"neither a knife nor a
     bed"``) negate every object they govern, however long the chain.
   * Limits: a negated object more than three counted words after its cue is read as
     mentioned (``"no cat, dog, bird or horse"`` negates the cat only: the commas end the
     clause), and a positive object within three words of a cue is read as negated
     (``"no dogs and cats"`` negates both, as most readers would; ``"no dog and a cat"``
     negates the dog only because ``and a`` uses up the window).
3. Every word, and every phrase of up to ``n`` words starting at a word, is looked up in the
   vocabulary (hash joins: a word matches a form exactly; a phrase candidate is checked by
   comparing the ``n`` words that start there). Plurals match because the vocabulary lists
   them (:func:`vlmscope.evaluators.vocabulary.inflections`).
4. A match inside a longer match is dropped: ``"hot dog"`` is one hot dog, not a dog;
   ``"teddy bear"`` is no bear (of two overlapping phrases, neither inside the other, both
   count). A phrase is negated when its first word is.

``mentions_sql(..., compounds=True)`` (the captions of ``CaptionHallucination``) reads with
``vlmscope_object_words`` instead, and applies English compound rules on top (see
:func:`mentions_sql`): punctuation and line breaks end a phrase (``"hot, dog"`` is no hot
dog), a word joined to the next by a hyphen is a modifier (``"dog-friendly"``, ``"cat-eye"``:
no dog, no cat; ``"hot-dog"`` and ``"teddy-bear"`` still match as phrases), and an object
word that modifies the noun after it is no mention.

Tokenising in SQL costs one regular-expression pass per text and one hash join per word:
no Python loop over texts.
"""

from __future__ import annotations

import duckdb

from vlmscope.evaluators.vocabulary import IRREGULAR_PLURALS, Vocabulary, vocabulary_rows

NEGATION_CUES = ("no", "not", "without", "never", "nor", "neither", "none")
"""Words that negate the words following them (``"there is no dog"``, ``"without a leash"``)."""

NEGATION_WINDOW = 3
"""How many words after a negation cue it negates (``"no big brown dog"`` negates dog)."""

NEGATION_FILLERS = ("any", "visible", "sign", "signs", "trace", "traces", "evidence", "of",
                    "other", "single", "more", "longer")
"""Words that do not count towards a cue's window (``"no sign of any pizzas"``, ``"nor a
slice of pizza"``)."""

NEGATION_STOPS = ("but", "while", "whereas", "although", "only", "except", "instead")
"""Words that end a negation's window: what follows them is affirmed (``"no cat but a dog"``)."""

MAX_PHRASE_WORDS = 6
"""Forms of more words than this are not looked for (ImageNet's longest names have 5)."""

NEGATED = "¬"
"""The mark on a negated word inside the word lists (not a letter, so never in a word)."""

HYPHENATED = "⁻"
"""The mark on a word joined to the next by a hyphen in ``vlmscope_object_words`` (a
modifier: ``"dog-friendly"`` -> ``[dog⁻, friendly]``); not a letter, so never in a word."""

COMPOUND_HEADS = (
    "player", "players", "fan", "fans", "coach", "game", "games", "match", "team", "field",
    "court", "stadium", "track", "tracks", "trail", "stop", "stops", "station", "terminal",
    "depot", "shelter", "lane", "route", "box", "boxes", "crate", "cage", "kennel", "leash",
    "collar", "food", "treat", "treats", "toy", "toys", "feeder", "trailer", "stand", "shop",
    "store", "stall", "rack", "holder", "case", "charger", "cover", "skin", "print", "prints",
    "pattern", "costume", "statue", "figurine", "sculpture", "ornament", "poster", "logo",
    "drawing", "painting", "stripes", "juice", "sauce", "soup", "wings", "nuggets", "salad",
    "bread", "pie", "peel", "house", "dish", "mat", "carrier", "bag", "magnet", "sticker",
    "tattoo", "mascot", "meat", "stew", "burger", "tender", "tenders", "fillet", "steak", "ride",
    "rides",
)
"""Nouns that an object word before them only modifies (``"dog food"``, ``"bus stop"``,
``"train tracks"``, ``"zebra print"``, ``"frisbee player"``): the object need not be there.
An object word followed by another object word modifies it too (``"baby elephant"``,
``"chicken sandwich"``, ``"car seat"``)."""

ADJECTIVE_SENSES = ("orange", "remote", "female", "male", "baby", "adult")
"""Object words that are also adjectives: read as the object only when no noun follows
(``"an orange on a plate"``, not ``"an orange shirt"`` or ``"a remote village"``)."""

FUNCTION_WORDS = (
    "a", "an", "the", "and", "or", "nor", "but", "on", "in", "at", "of", "to", "with",
    "without", "by", "for", "from", "into", "onto", "near", "next", "beside", "behind",
    "under", "over", "above", "below", "between", "inside", "outside", "around", "against",
    "up", "down", "off", "out", "is", "are", "was", "were", "be", "been", "has", "have",
    "had", "that", "which", "who", "while", "as", "than", "there", "here", "it", "its",
    "lies", "sits", "stands", "rests", "hangs", "looks", "seems", "appears",
)
"""Words after which an :data:`ADJECTIVE_SENSES` word is a noun (``"an orange and a
banana"``); so is one followed by punctuation, the end or a participle (``-ing``, ``-ed``:
``"a baby sleeping"``, ``"an orange arranged on a plate"``)."""

VERB_CUES = ("to", "can", "could", "will", "would", "shall", "should", "may", "might",
             "must", "cannot", "ca", "wo", "do", "does", "did")
"""Words before which an animal word is a verb (``"to duck"``, ``"can't bear"``)."""

DETERMINERS = ("a", "an", "the", "his", "her", "its", "their", "this", "that", "these",
               "those", "my", "your", "our")
"""Words after which a plural-looking animal word is a verb (``"ducks the ball"``)."""

AGENT_OBJECTS = ("person",)
"""Objects whose words, after another object word, make it no modifier: the person works with
the object (``"dog walker"``, ``"bus driver"``, ``"kite surfer"``)."""

ANIMALS = ("bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra",
           "giraffe")
"""The objects whose words :data:`VERB_CUES` and :data:`DETERMINERS` can make verbs."""

_WORD = r"[\pL\pN]+"
_SEPARATOR = r"[\s\-]+"


def _word_except(words: tuple[str, ...], ascii_only: bool) -> str:
    """An RE2 pattern for a word that is none of ``words`` (lower case). RE2 has no
    lookahead, so the complement is spelt out on the words' letter tree."""
    tree: dict = {}
    for word in words:
        node = tree
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    # Unicode letter classes repeated on every branch make RE2's program too large: off
    # ASCII, a word character is anything but ASCII punctuation and white space.
    punctuation = (r"\s\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f\x{a0}-\x{bf}\x{2010}-\x{205e}"
                   r"\x{3000}-\x{303f}")

    def other(chars: list[str]) -> str:  # a word character that is none of chars
        if ascii_only:
            allowed = [c for c in "abcdefghijklmnopqrstuvwxyz" if c not in chars]
            return "[" + "".join(allowed) + "0-9A-Z]"
        return "[^" + punctuation + "".join(chars) + "]"

    rest = "[A-Za-z0-9]*" if ascii_only else f"[^{punctuation}]*"

    def branch(node: dict, root: bool) -> str:
        chars = sorted(c for c in node if c)
        options = [other(chars) + rest] + [c + "(?:" + branch(node[c], False) + ")"
                                           for c in chars]
        if "" not in node and not root:
            options.append("")  # the word ends here, short of every listed word
        return "|".join(options)

    return "(?:" + branch(tree, True) + ")"


def _negation_pattern(ascii_only: bool) -> str:
    separator = r"[\t\n\f\r \-]+" if ascii_only else _SEPARATOR
    governed = _word_except(NEGATION_CUES + NEGATION_STOPS, ascii_only)
    # The fillers before a governed word are kept, unmarked ("no stop signs" keeps "signs").
    fillers = f"((?:{separator}(?:{'|'.join(NEGATION_FILLERS)}))*)"
    # \b after a governed word: it ends there (not "n" of "not"); the cues are ASCII, so
    # RE2's ASCII \b is enough.
    window = "".join(f"(?:{fillers}{separator}({governed})\\b)" + ("?" if i else "")
                     for i in range(NEGATION_WINDOW))
    # A cue is a whole word: the separator after it keeps "nothing" or "nose" out.
    return rf"\b(?:{'|'.join(NEGATION_CUES)}){window}"


_NEGATION = _negation_pattern(ascii_only=False)
# The same on ASCII text: RE2 extracts the groups far faster without the Unicode tables.
_NEGATION_ASCII = _negation_pattern(ascii_only=True)
# Each governed word after its fillers: "\1 ¬\2\3 ¬\4\5 ¬\6" (a lone ¬ where none).
_MARKED = "".join(f"\\{2 * i + 1} {NEGATED}\\{2 * i + 2}" for i in range(NEGATION_WINDOW))

_CUE_GUARD = " OR ".join(f"contains(x, '{cue}')" for cue in ("no", "never", "without",
                                                                   "neither"))


def _prepared_macro(name: str, possessive: str) -> str:
    """The macro ``name``: lower case, vlmscope's own marks removed, "n't" read as "not"
    and a possessive 's replaced by ``possessive``."""
    return rf"""
    CREATE OR REPLACE TEMP MACRO {name}(x) AS CASE
        WHEN contains(x, '''') OR contains(x, '’') THEN regexp_replace(regexp_replace(
            replace(replace(lower(x), '{NEGATED}', ' '), '{HYPHENATED}', ' '),
            'n[''’]t\b', ' not', 'g'), '[''’]s\b', '{possessive}', 'g')
        ELSE replace(replace(lower(x), '{NEGATED}', ' '), '{HYPHENATED}', ' ') END
    """


MACROS = (
    _prepared_macro("vlmscope_text_prepared", possessive=""),
    # Only characters other than letters, digits and plain spaces are replaced: replacing
    # every space too makes the expression match once per word, which is slower. Runs of spaces
    # then give empty words, which match nothing.
    rf"""
    CREATE OR REPLACE TEMP MACRO vlmscope_split_words(x) AS string_split(
        regexp_replace(x, '[^\pL\pN{NEGATED} ]+', ' ', 'g'), ' ')
    """,
    "CREATE OR REPLACE TEMP MACRO vlmscope_words(x) AS "
    "vlmscope_split_words(vlmscope_text_prepared(x))",
    # The cheap substring test spares the negation expression on texts without a cue. On
    # ASCII text (as many bytes as characters) the same expression with ASCII classes
    # gives the same result at half the cost: RE2 extracts the groups far faster without
    # the Unicode tables.
    f"""
    CREATE OR REPLACE TEMP MACRO vlmscope_mark_negations(x) AS CASE WHEN {_CUE_GUARD}
        THEN CASE WHEN strlen(x) = length(x)
                  THEN regexp_replace(x, '{_NEGATION_ASCII}', ' {_MARKED} ', 'g')
                  ELSE regexp_replace(x, '{_NEGATION}', ' {_MARKED} ', 'g') END
        ELSE x END
    """,
    "CREATE OR REPLACE TEMP MACRO vlmscope_negated_words(x) AS "
    "vlmscope_split_words(vlmscope_mark_negations(vlmscope_text_prepared(x)))",
    # Object words: a hyphen right after a word marks it (a modifier), and any other run of
    # punctuation (line breaks included) with the spaces around it gives one empty word (two
    # spaces), so that no phrase spans it; taking the spaces with it keeps the words few.
    f"""
    CREATE OR REPLACE TEMP MACRO vlmscope_split_object_words(x) AS string_split(
        regexp_replace(CASE WHEN contains(x, '-')
                            THEN regexp_replace(x, '([\\pL\\pN])-', '\\1{HYPHENATED} ', 'g')
                            ELSE x END,
                       ' *[^\\pL\\pN{NEGATED}{HYPHENATED} ]+ *', '  ', 'g'), ' ')
    """,
    # A possessive 's is a boundary between object words, not nothing: "the dog's ball" is
    # a dog and a ball, "the dog ball" a ball.
    _prepared_macro("vlmscope_object_text_prepared", possessive="  "),
    "CREATE OR REPLACE TEMP MACRO vlmscope_object_words(x) AS "
    "vlmscope_split_object_words(vlmscope_object_text_prepared(x))",
    "CREATE OR REPLACE TEMP MACRO vlmscope_negated_object_words(x) AS "
    "vlmscope_split_object_words(vlmscope_mark_negations(vlmscope_object_text_prepared(x)))",
)
"""The statements that define the tokenising macros on a connection."""


def install_mention_macros(con: duckdb.DuckDBPyConnection) -> None:
    """Define the tokenising macros on ``con`` (temporary, for the connection's life)."""
    for statement in MACROS:
        con.execute(statement)


def install_vocabulary(con: duckdb.DuckDBPyConnection, table: str,
                       vocabularies: list[Vocabulary]) -> int:
    """Build the lookup tables of ``vocabularies`` on ``con`` (temporary):

    * ``{table}`` - ``form, canonical, vocabulary, n_words``: each normalised form once, owned
      by the object of lowest priority (then alphabetical);
    * ``{table}_lookup`` - the forms keyed by their first word (:func:`lookup_sql`).

    Returns the number of words of the longest form (what :func:`mentions_sql` needs).
    """
    install_mention_macros(con)
    raw = f"{table}_raw"
    con.register(raw, vocabulary_rows(vocabularies))
    try:
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE {table} AS
            WITH normalised AS (
                SELECT array_to_string(vlmscope_words(form), ' ') AS form, canonical,
                       vocabulary, priority FROM {raw}
            )
            SELECT form, arg_min(canonical, (priority, canonical)) AS canonical,
                   arg_min(vocabulary, (priority, canonical)) AS vocabulary,
                   len(string_split(form, ' ')) AS n_words
            FROM normalised WHERE form <> '' GROUP BY form
        """)
    finally:
        con.unregister(raw)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table}_lookup AS "
                f"{lookup_sql(table, hyphenated=True)}")
    ((longest,),) = con.execute(
        f"SELECT coalesce(max(n_words), 1) FROM {table}_lookup").fetchall()
    return int(longest)


def lookup_sql(forms: str, *, hyphenated: bool = False) -> str:
    """The ``{vocabulary}_lookup`` table (``token, canonical, negated, n_words, word_2 ..
    word_N``) from a relation of normalised ``form, canonical, n_words``: every form of 1 to
    :data:`MAX_PHRASE_WORDS` words keyed by its first word, plain and negated (a phrase also
    lists its later words, NULL past its end). ``hyphenated``: a phrase is also keyed by its
    first word marked :data:`HYPHENATED` (``"hot-dog"`` in ``vlmscope_object_words``)."""
    later = ", ".join(f"string_split(form, ' ')[{j}] AS word_{j}"
                      for j in range(2, MAX_PHRASE_WORDS + 1))
    marks = f", ('{HYPHENATED}')" if hyphenated else ""
    return f"""
        SELECT prefix || string_split(form, ' ')[1] || suffix AS token, canonical,
               prefix <> '' AS negated, n_words, {later}
        FROM {forms}, (VALUES (''), ('{NEGATED}')) p(prefix), (VALUES ('') {marks}) m(suffix)
        WHERE n_words <= {MAX_PHRASE_WORDS} AND (suffix = '' OR n_words > 1)
    """


def _sql_list(words: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(f"'{w}'" for w in words) + "]"


def _sql_in(words: tuple[str, ...] | list[str]) -> str:
    return "(" + ", ".join(f"'{w}'" for w in words) + ")"


def mentions_sql(texts: str, vocabulary: str, *, negation: bool = True,
                 longest: int = MAX_PHRASE_WORDS, compounds: bool = False) -> str:
    """A query over ``texts`` (a relation with columns ``k`` and ``text``) giving every
    object mention: ``k, i`` (word position, from 1), ``n_words``, ``canonical``,
    ``negated`` (always false when ``negation`` is off: then "no dog" mentions a dog, as the
    original CHAIR counts). ``longest``: the most words a form of the vocabulary has.

    Each word comes with the ``longest - 1`` words after it (shifted copies of the word list,
    unnested side by side), so one hash join on the first word finds words and phrases alike
    and a phrase is checked on its own row: no join back to the word lists.

    ``compounds=True`` reads ``vlmscope_object_words`` (punctuation ends a phrase, a
    hyphenated word is a modifier; the lookup must be built with ``hyphenated=True``) and
    drops a match that is not the object it names:

    * a modifier: a singular match followed by one of :data:`COMPOUND_HEADS` or by another
      match other than :data:`AGENT_OBJECTS` (``"dog food"``, ``"bus stop"``, ``"baby
      elephant"``, ``"chicken sandwich"``; ``"dogs and cats"``, ``"two dogs sleeping"`` and
      ``"a dog walker"`` mention dogs);
    * an adjective: one of :data:`ADJECTIVE_SENSES` followed by a word that is not one of
      :data:`FUNCTION_WORDS`, punctuation, the end or a word in ``-ing``/``-ed`` (``"an orange
      shirt"``, ``"a remote village"``, ``"a female lion"``);
    * a verb: an :data:`ANIMALS` word after one of :data:`VERB_CUES` (``"to duck"``,
      ``"can't bear"``), or a plural-looking one before one of :data:`DETERMINERS`
      (``"he ducks the branch"``, ``"it bears a logo"``).

    A match is plural when its last word ends in ``s`` (not ``ss``, ``us``, ``is``) or is an
    irregular plural (``people``, ``mice`` ...)."""
    if compounds:
        return _compound_mentions_sql(texts, vocabulary, negation=negation, longest=longest)
    words = "vlmscope_negated_words(text)" if negation else "vlmscope_words(text)"
    longest = max(1, min(longest, MAX_PHRASE_WORDS))
    following = "".join(f", unnest(words[{j}:]) AS next_{j}" for j in range(2, longest + 1))
    checks = " AND ".join(
        f"(l.word_{j} IS NULL OR replace(c.next_{j}, '{NEGATED}', '') = l.word_{j})"
        for j in range(2, longest + 1)) or "true"
    return f"""
        WITH hits AS MATERIALIZED (
            SELECT c.k, c.i, l.n_words, l.canonical, l.negated
            FROM (SELECT k, unnest(words) AS token, generate_subscripts(words, 1) AS i
                         {following}
                  FROM (SELECT k, {words} AS words FROM {texts} WHERE text IS NOT NULL)) c
            JOIN {vocabulary}_lookup l ON l.token = c.token
            WHERE l.n_words = 1 OR (l.n_words <= {longest} AND {checks})
        ), covered AS (
            -- Positions inside a phrase match, with the phrase's length: a shorter match
            -- there is part of it. Equality joins on (k, position) are far cheaper than
            -- joining every match with every phrase of its text on ranges.
            SELECT k, unnest(range(i, i + n_words)) AS position, n_words
            FROM (SELECT k, i, max(n_words) AS n_words FROM hits WHERE n_words > 1
                  GROUP BY k, i)
        )
        SELECT h.* FROM hits h ANTI JOIN covered c
            ON c.k = h.k AND c.position = h.i AND c.n_words > h.n_words
    """


def _compound_mentions_sql(texts: str, vocabulary: str, *, negation: bool,
                           longest: int) -> str:
    """:func:`mentions_sql` with ``compounds=True``."""
    words = ("vlmscope_negated_object_words(' ' || text)" if negation
             else "vlmscope_object_words(' ' || text)")
    longest = max(1, min(longest, MAX_PHRASE_WORDS))

    def bare(word: str) -> str:
        return f"replace(replace({word}, '{NEGATED}', ''), '{HYPHENATED}', '')"

    # Each word with the word before it and the `longest - 1` words after it: the text gets a
    # leading space, so words[1] is '' and the list unnested from 1 is each word's previous
    # one (no shifted copy to make). The word after a match is read for matches shorter than
    # the longest form (the longest, three words in COCO, are taken as they are).
    following = "".join(f", unnest(words[{j + 1}:]) AS next_{j}" for j in range(2, longest + 1))
    checks = " AND ".join(
        f"(l.word_{j} IS NULL OR ({bare(f'c.next_{j}')} = l.word_{j} AND "
        f"(l.n_words > {j} OR NOT ends_with(c.next_{j}, '{HYPHENATED}'))))"
        for j in range(2, longest + 1)) or "true"
    after = " ".join(f"WHEN {n} THEN c.next_{n + 1}" for n in range(1, longest))
    after = f"coalesce(CASE l.n_words {after} END, '')" if after else "''"
    last = " ".join(f"WHEN {n} THEN c.next_{n}" for n in range(2, longest + 1))
    # The marks need no stripping here: a negated word only matters for negation (the rules
    # look at unmarked words), and a match never ends on a hyphenated word.
    irregular = sorted(IRREGULAR_PLURALS)
    irregular += [NEGATED + word for word in irregular]
    plural = ("(suffix(last, 's') AND NOT (suffix(last, 'ss') OR suffix(last, 'us') OR "
              f"suffix(last, 'is')) OR last IN {_sql_in(irregular)})")
    return f"""
        WITH follows AS (
            -- What the word after a match says about it (a small table): it names an object
            -- (the match modifies it, unless it names a person), is a compound head, a
            -- function word or a determiner.
            SELECT word, bool_or(modifies) AS modifies, bool_or(head) AS head,
                   bool_or(function) AS function, bool_or(determiner) AS determiner
            FROM (SELECT token AS word, canonical NOT IN {_sql_in(AGENT_OBJECTS)} AS modifies,
                         false AS head, false AS function, false AS determiner
                  FROM {vocabulary}_lookup WHERE n_words = 1 AND NOT negated
                  UNION ALL SELECT unnest({_sql_list(COMPOUND_HEADS)}), false, true, false, false
                  UNION ALL SELECT unnest({_sql_list(FUNCTION_WORDS)}), false, false, true, false
                  UNION ALL SELECT unnest({_sql_list(DETERMINERS)}), false, false, false, true)
            GROUP BY word
        ), hits AS MATERIALIZED (
            -- Every match, with whether a rule drops it (only booleans are kept: carrying
            -- the words through the joins costs more than the rules).
            SELECT m.k, m.i, m.n_words, m.canonical, m.negated,
                   (NOT m.plural AND coalesce(f.modifies OR f.head, false))
                   OR (m.n_words = 1 AND m.word IN {_sql_in(ADJECTIVE_SENSES)}
                       AND NOT (m.following = '' OR ends_with(m.following, 'ing')
                                OR ends_with(m.following, 'ed') OR coalesce(f.function, false)))
                   OR (m.n_words = 1 AND m.canonical IN {_sql_in(ANIMALS)}
                       AND CASE WHEN m.plural THEN coalesce(f.determiner, false)
                                ELSE m.previous IN {_sql_in(VERB_CUES)} END) AS dropped
            FROM (SELECT *, {plural} AS plural FROM (
                  SELECT c.k, c.i, l.n_words, l.canonical, l.negated, c.token AS word,
                         CASE l.n_words WHEN 1 THEN c.token {last} END AS last,
                         {after} AS following, coalesce(c.previous, '') AS previous
                  FROM (SELECT k, unnest(words[2:]) AS token, generate_subscripts(words, 1) AS i,
                               unnest(words) AS previous {following}
                        FROM (SELECT k, {words} AS words FROM {texts}
                              WHERE text IS NOT NULL)) c
                  JOIN {vocabulary}_lookup l ON l.token = c.token
                  WHERE l.n_words = 1 OR (l.n_words <= {longest} AND {checks}))) m
                LEFT JOIN follows f ON f.word = m.following
        ), covered AS (
            -- A dropped phrase still covers its words: "hot dog stand" is no dog either.
            SELECT k, unnest(range(i, i + n_words)) AS position, n_words
            FROM (SELECT k, i, max(n_words) AS n_words FROM hits WHERE n_words > 1
                  GROUP BY k, i)
        )
        SELECT h.k, h.i, h.n_words, h.canonical, h.negated
        FROM hits h ANTI JOIN covered c
            ON c.k = h.k AND c.position = h.i AND c.n_words > h.n_words
        WHERE NOT h.dropped
    """
