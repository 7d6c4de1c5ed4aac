"""Finding object mentions in text, in DuckDB: tokenise, join the vocabulary, keep the longest.

One implementation, shared by every evaluator that reads objects out of text (captions,
answers, ground-truth object names, encoder labels):

1. ``vlmscope_words(x)`` - lower case, ``n't`` -> `` not``, possessive ``'s`` dropped, every
   run of characters other than letters, digits (any script) and spaces -> one space, split
   on spaces (a run of spaces gives empty words, which match nothing).
   ``"The dog's ball isn't red"`` -> ``[the, dog, ball, is, not, red]``.
2. ``vlmscope_negated_words(x)`` - the same, but the (up to) :data:`NEGATION_WINDOW` words that
   follow a negation cue (:data:`NEGATION_CUES`) in the same clause (no punctuation in
   between) are marked negated (prefixed with ``¬``): ``"there is no dog, a cat"`` ->
   ``[there, is, ¬dog, a, cat]``.
3. Every word, and every phrase of up to ``n`` words starting at a word, is looked up in the
   vocabulary (hash joins: a word matches a form exactly; a phrase candidate is checked by
   comparing the ``n`` words that start there). Plurals match because the vocabulary lists
   them (:func:`vlmscope.evaluators.vocabulary.inflections`).
4. A match inside a longer match is dropped: ``"hot dog"`` is one hot dog, not a dog;
   ``"teddy bear"`` is no bear (of two overlapping phrases, neither inside the other, both
   count). A phrase is negated when its first word is.

Tokenising in SQL costs one regular-expression pass per text and one hash join per word:
no Python loop over texts.
"""

from __future__ import annotations

import duckdb

from vlmscope.evaluators.vocabulary import Vocabulary, vocabulary_rows

NEGATION_CUES = ("no", "not", "without", "never", "nor", "neither", "none")
"""Words that negate the words following them (``"there is no dog"``, ``"without a leash"``)."""

NEGATION_WINDOW = 3
"""How many words after a negation cue it negates (``"no big brown dog"`` negates dog)."""

MAX_PHRASE_WORDS = 6
"""Forms of more words than this are not looked for (ImageNet's longest names have 5)."""

NEGATED = "¬"
"""The mark on a negated word inside the word lists (not a letter, so never in a word)."""

_WORD = r"[\pL\pN]+"
_SEPARATOR = r"[\s\-]+"
_NEGATION = (
    rf"\b(?:{'|'.join(NEGATION_CUES)})(?:{_SEPARATOR}({_WORD}))"
    + "".join(f"(?:{_SEPARATOR}({_WORD}))?" for _ in range(NEGATION_WINDOW - 1))
)
# The same on ASCII text: RE2's \pL and \pN restricted to ASCII are [A-Za-z] and [0-9], its \s
# is [\t\n\f\r ].
_NEGATION_ASCII = _NEGATION.replace(_WORD, "[A-Za-z0-9]+").replace(_SEPARATOR, r"[\t\n\f\r \-]+")
_MARKED = " ".join(f"{NEGATED}\\{i + 1}" for i in range(NEGATION_WINDOW))

_CUE_GUARD = " OR ".join(f"contains(x, '{cue}')" for cue in ("no", "never", "without",
                                                                   "neither"))

MACROS = (
    rf"""
    CREATE OR REPLACE TEMP MACRO vlmscope_text_prepared(x) AS CASE
        WHEN contains(x, '''') OR contains(x, '’') THEN regexp_replace(regexp_replace(
            replace(lower(x), '{NEGATED}', ' '), 'n[''’]t\b', ' not', 'g'),
            '[''’]s\b', '', 'g')
        ELSE replace(lower(x), '{NEGATED}', ' ') END
    """,
    # Only characters other than letters, digits and plain spaces are replaced: replacing
    # every space too makes the expression match once per word (4x slower). Runs of spaces
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
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table}_lookup AS {lookup_sql(table)}")
    ((longest,),) = con.execute(
        f"SELECT coalesce(max(n_words), 1) FROM {table}_lookup").fetchall()
    return int(longest)


def lookup_sql(forms: str) -> str:
    """The ``{vocabulary}_lookup`` table (``token, canonical, negated, n_words, word_2 ..
    word_N``) from a relation of normalised ``form, canonical, n_words``: every form of 1 to
    :data:`MAX_PHRASE_WORDS` words keyed by its first word, plain and negated (a phrase also
    lists its later words, NULL past its end)."""
    later = ", ".join(f"string_split(form, ' ')[{j}] AS word_{j}"
                      for j in range(2, MAX_PHRASE_WORDS + 1))
    return f"""
        SELECT prefix || string_split(form, ' ')[1] AS token, canonical,
               prefix <> '' AS negated, n_words, {later}
        FROM {forms}, (VALUES (''), ('{NEGATED}')) p(prefix)
        WHERE n_words <= {MAX_PHRASE_WORDS}
    """


def mentions_sql(texts: str, vocabulary: str, *, negation: bool = True,
                 longest: int = MAX_PHRASE_WORDS) -> str:
    """A query over ``texts`` (a relation with columns ``k`` and ``text``) giving every
    object mention: ``k, i`` (word position, from 1), ``n_words``, ``canonical``,
    ``negated`` (always false when ``negation`` is off: then "no dog" mentions a dog, as the
    original CHAIR counts). ``longest``: the most words a form of the vocabulary has.

    Each word comes with the ``longest - 1`` words after it (shifted copies of the word list,
    unnested side by side), so one hash join on the first word finds words and phrases alike
    and a phrase is checked on its own row: no join back to the word lists."""
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
