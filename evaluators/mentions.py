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
   ``"teddy bear"`` is no bear. A phrase is negated when its first word is.

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

NEGATED = "¬"
"""The mark on a negated word inside the word lists (not a letter, so never in a word)."""

_WORD = r"[\pL\pN]+"
_SEPARATOR = r"[\s\-]+"
_NEGATION = (
    rf"\b(?:{'|'.join(NEGATION_CUES)})(?:{_SEPARATOR}({_WORD}))"
    + "".join(f"(?:{_SEPARATOR}({_WORD}))?" for _ in range(NEGATION_WINDOW - 1))
)
_MARKED = " ".join(f"{NEGATED}\\{i + 1}" for i in range(NEGATION_WINDOW))

_CUE_GUARD = " OR ".join(f"contains(x, '{cue}')" for cue in ("no", "never", "without",
                                                                   "neither"))

MACROS = (
    rf"""
    CREATE OR REPLACE TEMP MACRO vlmscope_text_prepared(x) AS regexp_replace(regexp_replace(
        replace(lower(x), '{NEGATED}', ' '), 'n[''’]t\b', ' not', 'g'), '[''’]s\b', '', 'g')
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
    # The cheap substring test spares the negation expression on texts without a cue.
    f"""
    CREATE OR REPLACE TEMP MACRO vlmscope_mark_negations(x) AS CASE WHEN {_CUE_GUARD}
        THEN regexp_replace(x, '{_NEGATION}', ' {_MARKED} ', 'g') ELSE x END
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
                       vocabularies: list[Vocabulary]) -> None:
    """Build the lookup tables of ``vocabularies`` on ``con`` (temporary):

    * ``{table}`` - ``form, canonical, vocabulary, n_words``: each normalised form once, owned
      by the object of lowest priority (then alphabetical);
    * ``{table}_words`` - ``token, canonical, negated``: one-word forms, plain and negated;
    * ``{table}_phrases`` - ``first_token, form, n_words, canonical``: longer forms, keyed by
      their first word (plain and negated).
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
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table}_words AS {words_sql(table)}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table}_phrases AS {phrases_sql(table)}")


def words_sql(forms: str) -> str:
    """The ``{vocabulary}_words`` lookup (``token, canonical, negated``) from a relation of
    normalised ``form, canonical, n_words``: each one-word form, plain and negated."""
    return f"""
        SELECT form AS token, canonical, false AS negated FROM {forms} WHERE n_words = 1
        UNION ALL
        SELECT '{NEGATED}' || form, canonical, true FROM {forms} WHERE n_words = 1
    """


def phrases_sql(forms: str) -> str:
    """The ``{vocabulary}_phrases`` lookup (``first_token, form, n_words, canonical``) from a
    relation of normalised ``form, canonical, n_words``: forms of several words, keyed by
    their first word, plain and negated."""
    return f"""
        SELECT prefix || string_split(form, ' ')[1] AS first_token, form, n_words, canonical
        FROM {forms}, (VALUES (''), ('{NEGATED}')) p(prefix) WHERE n_words > 1
    """


def mentions_sql(texts: str, vocabulary: str, *, negation: bool = True) -> str:
    """A query over ``texts`` (a relation with columns ``k`` and ``text``) giving every
    object mention: ``k, i`` (word position, from 1), ``n_words``, ``canonical``,
    ``negated`` (always false when ``negation`` is off: then "no dog" mentions a dog, as the
    original CHAIR counts)."""
    words = "vlmscope_negated_words(text)" if negation else "vlmscope_words(text)"
    return f"""
        WITH tokenised AS MATERIALIZED (
            SELECT k, {words} AS words FROM {texts} WHERE text IS NOT NULL
        ), tokens AS MATERIALIZED (
            SELECT k, unnest(words) AS token, generate_subscripts(words, 1) AS i
            FROM tokenised
        ), phrase_starts AS MATERIALIZED (
            SELECT c.k, c.i, c.token, p.n_words, p.canonical, p.form
            FROM tokens c JOIN {vocabulary}_phrases p ON p.first_token = c.token
        ), phrase_hits AS MATERIALIZED (
            SELECT c.k, c.i, c.n_words, c.canonical, starts_with(c.token, '{NEGATED}') AS negated
            FROM phrase_starts c JOIN tokenised t ON t.k = c.k
            WHERE replace(array_to_string(t.words[c.i:c.i + c.n_words - 1], ' '),
                          '{NEGATED}', '') = c.form
        ), hits AS (
            SELECT c.k, c.i, 1 AS n_words, w.canonical, w.negated
            FROM tokens c JOIN {vocabulary}_words w ON w.token = c.token
            UNION ALL SELECT * FROM phrase_hits
        )
        SELECT h.* FROM hits h ANTI JOIN phrase_hits p
            ON p.k = h.k AND p.n_words > h.n_words AND p.i <= h.i
               AND h.i + h.n_words <= p.i + p.n_words
    """
