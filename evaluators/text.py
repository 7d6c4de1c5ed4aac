"""Text rules shared by evaluators, as DuckDB macros (one implementation, used in every query).

* ``vlmscope_normalize(x)`` - lower case, punctuation to spaces, the articles "a", "an" and
  "the" dropped, runs of whitespace collapsed, ends trimmed: ``" The Tabby-Cat. "`` becomes
  ``"tabby cat"``.
* ``vlmscope_quote(x)`` - ``x`` in single quotes, for explanations (``'tabby cat'``).
* ``vlmscope_quote_list(xs)`` - a list of labels as ``['cat', 'dog']``.
* ``vlmscope_blank(x)`` - true when ``x`` is NULL, empty or only whitespace.
"""

from __future__ import annotations

import duckdb

MACROS = (
    r"""
    CREATE OR REPLACE TEMP MACRO vlmscope_normalize(x) AS trim(regexp_replace(
        regexp_replace(regexp_replace(lower(x), '[[:punct:]]', ' ', 'g'),
                       '\b(a|an|the)\b', ' ', 'g'),
        '\s+', ' ', 'g'))
    """,
    "CREATE OR REPLACE TEMP MACRO vlmscope_quote(x) AS '''' || x || ''''",
    """
    CREATE OR REPLACE TEMP MACRO vlmscope_quote_list(xs) AS
        '[' || array_to_string(list_transform(xs, lambda x: coalesce(vlmscope_quote(x), 'NULL')),
                               ', ') || ']'
    """,
    "CREATE OR REPLACE TEMP MACRO vlmscope_blank(x) AS coalesce(trim(x), '') = ''",
)
"""The statements that define the macros on a connection."""


def install_macros(con: duckdb.DuckDBPyConnection) -> None:
    """Define the text macros on ``con`` (temporary: they live as long as the connection)."""
    for statement in MACROS:
        con.execute(statement)

