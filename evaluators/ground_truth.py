"""GroundTruthMatch: is the answer (or the encoder's top-k) the expected label?"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import duckdb

from vlmscope.evaluators.aliases import BUILTIN_ALIASES, create_alias_table
from vlmscope.evaluators.base import EvalResult, RowEvaluator, with_stages
from vlmscope.evaluators.declaration import Metric, Option
from vlmscope.evaluators.reading import install_reading_macros
from vlmscope.evaluators.text import install_macros

MODES = ("exact", "normalized", "synonyms", "set", "numeric", "top_k")
"""How GroundTruthMatch compares: see :class:`GroundTruthMatch`."""

DEFAULT_TOP_K = 5
"""How many of the encoder's labels ``mode="top_k"`` looks at."""

_NO_EXPECTED = "CASE WHEN vlmscope_blank(expected) THEN 'no expected label' END"
# The expected label set of mode "set": the row's objects plus its expected label, where the
# expected label may list alternatives separated by "|".
_ACCEPTED = (
    "list_filter(list_concat(coalesce(objects, []::VARCHAR[]), "
    "coalesce(string_split(expected, '|'), []::VARCHAR[])), lambda x: NOT vlmscope_blank(x))"
)
_NO_ANSWER = (
    "CASE WHEN output IS NULL THEN 'no answer: the output is NULL; expected ' "
    "WHEN vlmscope_blank(output) THEN 'no answer: the output is empty; expected ' END"
)
_TOP1 = "coalesce('; encoder top-1 ' || vlmscope_quote(top1), '')"
# Score, passed and label of a row with ``matched`` and ``no_answer`` (modes but top_k).
_VERDICT = """
            CASE WHEN matched THEN 1.0::DOUBLE ELSE 0.0::DOUBLE END AS score, matched AS passed,
            CASE WHEN no_answer IS NOT NULL THEN 'no_answer'
                 WHEN matched THEN 'match' ELSE 'mismatch' END AS label,"""


class GroundTruthMatch(RowEvaluator):
    """Compares each row's answer with its expected label; score 1 (match) or 0.

    Modes (``c`` is the comparison applied to both sides):

    * ``exact`` - ``output == expected``, byte for byte.
    * ``normalized`` - ``c(x)`` = lower case, punctuation to spaces, articles (a, an, the)
      dropped, whitespace collapsed: ``"The Cat."`` matches ``"cat"``.
    * ``synonyms`` - normalised, then mapped through the alias table (``synonyms`` plus the
      built-in ``aliases``): ``"kitten"`` matches ``"cat"``.
    * ``set`` - the answer (normalised, aliased) is one of the expected labels: the row's
      ``objects`` plus ``expected`` split on ``"|"`` (``"cat|kitten"``).
    * ``numeric`` - the first number in the answer ``a`` and in the expected label ``e`` satisfy
      ``|a - e| <= max(abs_tol, rel_tol * max(|a|, |e|))`` (``vlmscope_number`` of
      :mod:`vlmscope.evaluators.reading`: ``"1,000"`` is 1000).
    * ``top_k`` - judges the encoder, not the answer: the expected label (normalised, aliased) is
      among the first ``k`` of the encoder's ``top_k_labels``.

    Rows without an expected label are skipped and counted, never scored 0; a NULL or empty
    answer scores 0 with that reason. Each evaluation row names the judged span: the LLM span
    (the encoder span for ``top_k``), or the row span when the row has none.

    Example::

        >>> GroundTruthMatch(mode="normalized").evaluate(output="The Cat.", expected="cat").score
        1.0
    """

    name = "ground_truth_match"
    options = (
        Option("mode", "str", "normalized", "how the answer is compared with the expected "
               "label", flag="--mode", choices=MODES),
        Option("synonyms", "Mapping[str, str] | None", None,
               "your aliases, alias -> canonical label (modes synonyms, set, top_k)"),
        Option("aliases", "Sequence[str]", ("imagenet", "coco"),
               "built-in alias tables added to synonyms"),
        Option("k", "int", DEFAULT_TOP_K, "mode top_k: how many of the encoder's labels count"),
        Option("abs_tol", "float", 0.0, "mode numeric: absolute tolerance"),
        Option("rel_tol", "float", 1e-9, "mode numeric: relative tolerance"),
    )
    summary_metrics = (
        Metric("answer_accuracy", "share of final answers matching the expected label",
               key="accuracy", gated=True),)
    merged_from = "judged, passed and skipped rows per reason"
    summary_key = "answers"
    description = ("the final answer (or the encoder's top-k) against the expected label: "
                   "exact, normalized, synonyms, set, numeric or top_k")
    required_columns = ("row_id", "trace_id", "span_id", "llm_span_id", "encoder_span_id",
                        "output", "expected", "objects", "top_k_labels")

    def __init__(
        self,
        mode: str = "normalized",
        *,
        synonyms: Mapping[str, str] | None = None,
        aliases: Sequence[str] = ("imagenet", "coco"),
        k: int = DEFAULT_TOP_K,
        abs_tol: float = 0.0,
        rel_tol: float = 1e-9,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
        unknown = [a for a in aliases if a not in BUILTIN_ALIASES]
        if unknown:
            raise ValueError(f"unknown alias table(s) {', '.join(unknown)}; "
                             f"use any of {', '.join(BUILTIN_ALIASES)}")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if abs_tol < 0 or rel_tol < 0:
            raise ValueError("abs_tol and rel_tol must be >= 0")
        super().__init__()
        self.mode = mode
        self.synonyms = dict(synonyms or {})
        self.aliases = tuple(aliases)
        self.k = k
        self.abs_tol = abs_tol
        self.rel_tol = rel_tol
        self._alias_table = f"_vlmscope_aliases_{uuid.uuid4().hex}"
        self._verdicts = f"_vlmscope_verdicts_{uuid.uuid4().hex}"

    def config(self) -> dict[str, Any]:
        """Mode and its settings (only those the mode uses)."""
        config: dict[str, Any] = {"mode": self.mode}
        if self.mode in ("synonyms", "set", "top_k"):
            config.update(aliases=list(self.aliases), synonyms=self.synonyms)
        if self.mode == "top_k":
            config["k"] = self.k
        if self.mode == "numeric":
            config.update(abs_tol=self.abs_tol, rel_tol=self.rel_tol)
        return config

    def evaluate(
        self,
        output: str | None = None,
        expected: str | Sequence[str] | None = None,
        *,
        objects: Sequence[str] | None = None,
        top_k_labels: Sequence[str] | None = None,
        top_k_scores: Sequence[float] | None = None,
    ) -> EvalResult:
        """Judge one row. ``expected`` may be a list of accepted labels (mode ``set``)."""
        if expected is not None and not isinstance(expected, str):
            expected = "|".join(expected)
        return self.evaluate_row({
            "output": output, "expected": expected, "objects": objects,
            "top_k_labels": top_k_labels, "top_k_scores": top_k_scores,
        })

    # -- SQL ---------------------------------------------------------------------------------

    def prepare(self, con: duckdb.DuckDBPyConnection) -> None:
        """Define the text and reading macros and build the normalised alias table (user map
        first)."""
        install_macros(con)
        install_reading_macros(con)
        create_alias_table(con, self._alias_table, synonyms=self.synonyms,
                           tables=self.aliases, normalise="vlmscope_normalize",
                           alias_column="alias")

    def skip_reason_sql(self) -> str:
        """No expected label (mode ``set``: no expected label and no objects; mode
        ``numeric``: also an expected label without a number)."""
        if self.mode == "set":
            return f"CASE WHEN len({_ACCEPTED}) = 0 THEN 'no expected label' END"
        if self.mode == "numeric":
            return (f"coalesce({_NO_EXPECTED}, CASE WHEN vlmscope_number(expected) IS NULL "
                    "THEN 'expected label is not a number' END)")
        return _NO_EXPECTED

    def _canonical_sql(self) -> str:
        """SQL for ``canon(s, c)``: each distinct string of ``vocab`` and its compared form.

        Comparing the distinct strings once and joining back is ~10x cheaper than applying the
        regular expressions to every row: labels and answers repeat."""
        if self.mode == "exact":
            return "SELECT s, s AS c FROM vocab"
        if self.mode == "normalized":
            return "SELECT s, vlmscope_normalize(s) AS c FROM vocab"
        return (
            "SELECT v.s, coalesce(al.canonical, vlmscope_normalize(v.s)) AS c FROM vocab v "
            f"LEFT JOIN {self._alias_table} al ON al.alias = vlmscope_normalize(v.s)"
        )

    def judge_sql(self, source: str) -> str:
        """The judged rows of ``source``, per mode (see the class docstring)."""
        if self.mode == "numeric":
            return self._numeric_sql(source)
        if self.mode in ("set", "top_k"):
            return self._list_sql(source)
        return with_stages(self.stages(source), self._scalar_rows_sql(source))

    def stages(self, source: str) -> list[tuple[str, str]]:
        """Modes exact, normalized and synonyms judge each distinct (answer, expected, top-1)
        case once, into a small verdicts relation that the rows are joined to."""
        if self.mode in ("exact", "normalized", "synonyms"):
            return [(self._verdicts, self._verdicts_sql(source))]
        return []

    def staged_sql(self, source: str) -> str:
        """The judged rows, reading the relations of :meth:`stages` by name."""
        if self.stages(source):
            return self._scalar_rows_sql(source)
        return self.judge_sql(source)

    def _verdicts_sql(self, source: str) -> str:
        # Answers and labels repeat: judging each distinct case once builds far fewer
        # explanation strings than rows.
        return f"""
        WITH cases AS (
            SELECT DISTINCT output, expected, top_k_labels[1] AS top1
            FROM {source} WHERE ({self.skip_reason_sql()}) IS NULL
        ), vocab AS (
            SELECT DISTINCT s FROM (SELECT output AS s FROM cases UNION ALL
                                    SELECT expected FROM cases) WHERE s IS NOT NULL
        ), canon AS ({self._canonical_sql()}
        ), cmp AS (
            SELECT cases.*, ca.c AS answer_c, ce.c AS expected_c, {_NO_ANSWER} AS no_answer,
                   ({_NO_ANSWER}) IS NULL AND ca.c = ce.c AS matched
            FROM cases LEFT JOIN canon ca ON ca.s = cases.output
                       LEFT JOIN canon ce ON ce.s = cases.expected
        )
        SELECT output, expected, top1,{_VERDICT}
            CASE WHEN no_answer IS NOT NULL THEN no_answer || vlmscope_quote(expected)
                 WHEN matched THEN 'answer ' || vlmscope_quote(output)
                                   || ' matches expected ' || vlmscope_quote(expected)
                 ELSE 'expected ' || vlmscope_quote(expected) || ', answer '
                      || vlmscope_quote(output) END
            || CASE WHEN no_answer IS NOT NULL
                         OR (answer_c = output AND expected_c = expected) THEN ''
                    WHEN matched THEN ' (both read as ' || vlmscope_quote(answer_c) || ')'
                    ELSE ' (compared as ' || vlmscope_quote(expected_c) || ' and '
                         || vlmscope_quote(answer_c) || ')' END
            || {_TOP1} AS explanation,
            json_object('answer', answer_c, 'expected', expected_c)::VARCHAR AS metadata
        FROM cmp
        """

    def _scalar_rows_sql(self, source: str) -> str:
        # The probe side is the source itself, so DuckDB scans and inserts it in parallel
        # (joining a CTE of the rows back ran on one thread).
        return f"""
        SELECT src.row_id, src.trace_id, coalesce(src.llm_span_id, src.span_id) AS span_id,
               v.score, v.passed, v.label, v.explanation, v.metadata
        FROM (SELECT row_id, trace_id, span_id, llm_span_id, output, expected,
                     top_k_labels[1] AS top1
              FROM {source} WHERE ({self.skip_reason_sql()}) IS NULL) src
        JOIN {self._verdicts} v ON v.expected = src.expected
            AND v.output IS NOT DISTINCT FROM src.output AND v.top1 IS NOT DISTINCT FROM src.top1
        """

    def _list_sql(self, source: str) -> str:
        if self.mode == "set":
            listed, span = _ACCEPTED, "llm_span_id"
            answer_vocab = "UNION ALL SELECT output FROM src"
        else:
            listed, span, answer_vocab = f"top_k_labels[1:{self.k}]", "encoder_span_id", ""
        return f"""
        WITH src AS (
            SELECT row_number() OVER () AS _k, row_id, trace_id,
                   coalesce({span}, span_id) AS span_id, output, expected,
                   top_k_labels[1] AS top1, {listed} AS listed
            FROM {source} WHERE ({self.skip_reason_sql()}) IS NULL
        ), elems AS (
            SELECT _k, unnest(listed) AS s, generate_subscripts(listed, 1) AS i FROM src
        ), vocab AS (
            SELECT DISTINCT s FROM (SELECT s FROM elems UNION ALL SELECT expected FROM src
                                    {answer_vocab}) WHERE s IS NOT NULL
        ), canon AS ({self._canonical_sql()}
        ), listed_c AS (
            SELECT _k, list(c.c ORDER BY i) AS listed_c
            FROM elems LEFT JOIN canon c USING (s) GROUP BY _k
        ), cmp AS (
            SELECT src.*, ca.c AS answer_c, ce.c AS expected_c, listed_c
            FROM src LEFT JOIN listed_c USING (_k)
                     LEFT JOIN canon ca ON ca.s = src.output
                     LEFT JOIN canon ce ON ce.s = src.expected
        )
        {self._set_select() if self.mode == "set" else self._top_k_select()}
        """

    @staticmethod
    def _set_select() -> str:
        return f"""
        , judged AS (
            SELECT *, {_NO_ANSWER} AS no_answer,
                   ({_NO_ANSWER}) IS NULL AND list_contains(listed_c, answer_c) AS matched
            FROM cmp
        )
        SELECT row_id, trace_id, span_id,{_VERDICT}
            CASE WHEN no_answer IS NOT NULL THEN no_answer || vlmscope_quote_list(listed)
                 WHEN matched THEN 'answer ' || vlmscope_quote(output)
                                   || ' is one of the expected ' || vlmscope_quote_list(listed)
                 ELSE 'answer ' || vlmscope_quote(output) || ' is not one of the expected '
                      || vlmscope_quote_list(listed) END
            || {_TOP1} AS explanation,
            json_object('answer', answer_c, 'expected', listed_c) AS metadata
        FROM judged
        """

    def _top_k_select(self) -> str:
        no_labels = "len(coalesce(listed, []::VARCHAR[])) = 0"
        return f"""
        , judged AS (
            SELECT *, coalesce(list_position(listed_c, expected_c), 0) AS found_at FROM cmp
        )
        SELECT row_id, trace_id, span_id,
            CASE WHEN found_at > 0 THEN 1.0::DOUBLE ELSE 0.0::DOUBLE END AS score,
            found_at > 0 AS passed,
            CASE WHEN {no_labels} THEN 'no_answer'
                 WHEN found_at > 0 THEN 'match' ELSE 'mismatch' END AS label,
            CASE WHEN {no_labels} THEN 'no answer: the encoder recorded no top-k labels; '
                                       || 'expected ' || vlmscope_quote(expected)
                 WHEN found_at > 0 THEN 'expected ' || vlmscope_quote(expected) || ' is rank '
                                    || found_at || ' in the encoder''s top-{self.k} '
                                    || vlmscope_quote_list(listed)
                 ELSE 'expected ' || vlmscope_quote(expected) || ' is not in the encoder''s '
                      || 'top-{self.k} ' || vlmscope_quote_list(listed) END AS explanation,
            json_object('rank', found_at, 'expected', expected_c, 'top_k', listed_c) AS metadata
        FROM judged
        """

    def _numeric_sql(self, source: str) -> str:
        return f"""
        WITH src AS (
            SELECT row_id, trace_id, coalesce(llm_span_id, span_id) AS span_id, output,
                   expected, top_k_labels[1] AS top1,
                   vlmscope_number(output) AS a, vlmscope_number(expected) AS e
            FROM {source} WHERE ({self.skip_reason_sql()}) IS NULL
        ), cmp AS (
            SELECT *, {_NO_ANSWER} AS no_answer,
                   greatest({self.abs_tol}::DOUBLE,
                            {self.rel_tol}::DOUBLE * greatest(abs(a), abs(e))) AS tolerance,
                   abs(a - e) AS difference,
                   coalesce(({_NO_ANSWER}) IS NULL AND abs(a - e) <= tolerance, false) AS matched
            FROM src
        )
        SELECT row_id, trace_id, span_id,{_VERDICT}
            CASE WHEN no_answer IS NOT NULL THEN no_answer || vlmscope_quote(expected)
                 WHEN a IS NULL THEN 'no number in the answer ' || vlmscope_quote(output)
                                     || '; expected ' || printf('%g', e)
                 WHEN matched THEN 'answer ' || printf('%g', a)
                                   || ' is within tolerance of expected ' || printf('%g', e)
                                   || ' (|difference| ' || printf('%g', difference) || ' <= '
                                   || printf('%g', tolerance) || ')'
                 ELSE 'expected ' || printf('%g', e) || ', answer ' || printf('%g', a)
                      || ' (|difference| ' || printf('%g', difference) || ' > tolerance '
                      || printf('%g', tolerance) || ')' END
            || {_TOP1} AS explanation,
            json_object('answer', a, 'expected', e, 'difference', difference) AS metadata
        FROM cmp
        """
