"""FailureAttribution: for every wrong answer, did the encoder misread the image or did the
language head misuse a correct reading?

Each row with an expected label gets one blame label; the rule that fired is in the reason.
With ``e`` = the expected label, ``t`` = the encoder's top-1 label and ``a`` = the label the
answer names (all canonical: normalised, then mapped through the aliases):

======================================  =====================  ========================
answer vs expected                      encoder top-1 vs ``e``  blame
======================================  =====================  ========================
``a = e``                               any                    ``correct``
no encoder record, or ``a`` unknown      -                      ``unattributable``
``e`` not a class (with ``classes=``)   -                      ``unattributable``
``a != e``                              ``t = e``              ``language_head``
``a != e``, ``a = t``                   ``t != e``             ``encoder``
``a != e``, ``a != t``                  ``t != e``             ``both``
======================================  =====================  ========================

With ``classes=`` the encoder's classes are known: they, ``labels=`` and the encoder's top-k
labels are the labels, and a row whose expected answer is none of them ("2" for a count,
"yes" for a probe) is not a misclassification and is unattributable. Without it, expected
answers count as labels too.

The answer names label ``a`` when its normalised text is a label, or else when exactly one
label of the run (expected labels, encoder top-k labels, ``labels=``) is mentioned in it
(:mod:`vlmscope.evaluators.mentions`: "it is a seven, not a one" names seven). Metadata also
gives the rank of ``e`` in the encoder's top-k (``near_miss`` when it is there but not first).

Run summary, over the ``F`` failing rows (blame other than ``correct``):
``blame_encoder = #encoder / F``, ``blame_language_head = #language_head / F``,
``blame_both = #both / F``, ``blame_unattributable = #unattributable / F``; the same counts per
cohort and checkpoint; ``disagreement_rate`` = share of rows with both readings whose answer
label differs from the encoder's top-1.

Oracle swap (``head=``): a callable ``head(label, instruction) -> answer`` (the language head
fed a label instead of the encoder's reading). Each failing row with an encoder record is
re-asked with its expected label; the oracle answer is judged by the same SQL, and the blame
becomes: oracle right and ``t != e`` -> ``encoder``; oracle wrong and ``t = e`` ->
``language_head``; oracle wrong and ``t != e`` -> ``both``; oracle right and ``t = e`` keeps
the rule's label. Metadata ``oracle`` says ``confirmed``, ``revised`` or ``not_reproduced``
(the last case: the head answers right when fed the label it was fed) and gives the oracle
answer.

Linear probe (``linear_probe=True``), for encoders without a classifier head: rows without
top-k labels but with a stored embedding take a cross-validated logistic-regression probe's
label as the encoder's top-1 (:mod:`vlmscope.evaluators.probe`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from vlmscope.evaluators.aliases import COCO_ALIASES, IMAGENET_ALIASES
from vlmscope.evaluators.base import PIPELINE_ROW_SCHEMA, EvalResult
from vlmscope.evaluators.mentions import (
    install_mention_macros,
    lookup_sql,
    mentions_sql,
)
from vlmscope.evaluators.probe import DEFAULT_FOLDS, probe_readings
from vlmscope.evaluators.summarised import SummarisedRowEvaluator
from vlmscope.evaluators.text import install_macros

BLAMES = ("correct", "encoder", "language_head", "both", "unattributable")
"""The blame labels, in the order of the rule table."""

_ALIASES: dict[str, Mapping[str, str]] = {"imagenet": IMAGENET_ALIASES, "coco": COCO_ALIASES}

_ONE_ROW = "_vlmscope_blame_row"

Head = Callable[[str, str | None], str | None]
"""A language head fed a label directly: ``head(label, instruction) -> answer``."""


class FailureAttribution(SummarisedRowEvaluator):
    """Blames each wrong answer on the encoder, the language head, both, or neither (see the
    module docstring for the rule table, the summary and the oracle swap).

    ``labels``: extra label names the answers may use beyond those seen in the run;
    ``classes``: the encoder's complete class list, when known: an expected answer that is
    none of them is not a misclassification and is ``unattributable``;
    ``synonyms``: the user's alias map (alias -> label), looked up before the built-in
    ``aliases`` tables (``imagenet``, ``coco``); ``head``: the oracle swap;
    ``linear_probe``: read rows without top-k labels through a probe on their embeddings
    (``probe_folds``-fold cross-validation; in :meth:`run` only).

    Example::

        >>> r = FailureAttribution().evaluate(output="seven", expected="one",
        ...                                   encoder_top_k=["seven", "one"])
        >>> r.label, r.metadata["near_miss"]
        ('encoder', True)
    """

    name = "failure_attribution"
    description = ("blames each wrong answer on the encoder, the language head, both or "
                   "neither (unattributable); oracle swap when given the head")
    required_columns = ("row_id", "trace_id", "span_id", "llm_span_id", "output", "expected",
                        "instruction", "top_k_labels", "cohort", "checkpoint_sha256")

    def __init__(
        self,
        *,
        labels: Sequence[str] = (),
        classes: Sequence[str] | None = None,
        synonyms: Mapping[str, str] | None = None,
        aliases: Sequence[str] = ("imagenet", "coco"),
        head: Head | None = None,
        linear_probe: bool = False,
        probe_folds: int = DEFAULT_FOLDS,
    ) -> None:
        unknown = [a for a in aliases if a not in _ALIASES]
        if unknown:
            raise ValueError(f"unknown alias table(s) {', '.join(unknown)}; "
                             f"use any of {', '.join(_ALIASES)}")
        if head is not None and not callable(head):
            raise TypeError(f"head must be a callable head(label, instruction) -> answer, "
                            f"got {type(head).__name__}")
        if probe_folds < 2:
            raise ValueError(f"probe_folds must be at least 2, got {probe_folds}")
        super().__init__()
        self.linear_probe = linear_probe
        self.probe_folds = probe_folds
        self.classes = None if classes is None else tuple(classes)
        # Known classes are labels the answers may name, too.
        self.labels = tuple(labels) + (self.classes or ())
        self.synonyms = dict(synonyms or {})
        self.aliases = tuple(aliases)
        self.head = head
        self._tables = f"_vlmscope_blame_{uuid.uuid4().hex}"

    def config(self) -> dict[str, Any]:
        """Extra labels, aliases and whether the oracle swap ran."""
        return {"labels": list(self.labels), "classes": None if self.classes is None
                else list(self.classes), "synonyms": self.synonyms,
                "aliases": list(self.aliases), "oracle_swap": self.head is not None,
                "linear_probe": self.linear_probe, "probe_folds": self.probe_folds}

    def run(self, con: duckdb.DuckDBPyConnection, source: str, run_id: str) -> dict[str, Any]:
        """Blame every row (see :class:`SummarisedRowEvaluator.run`). With
        ``linear_probe=True``, rows without encoder top-k labels but with a stored embedding
        take the cross-validated probe's label as the encoder's top-1
        (:mod:`vlmscope.evaluators.probe`); summary key ``linear_probe`` says how many rows,
        the folds, the probe's accuracy, or why it was skipped."""
        if not self.linear_probe:
            return super().run(con, source, run_id)
        self.prepare(con)
        probe = probe_readings(con, source, folds=self.probe_folds)
        report: dict[str, Any] = {"rows": probe.rows, "folds": probe.folds,
                                  "accuracy": probe.accuracy, "skipped": probe.skipped}
        if probe.readings is None:
            return {**super().run(con, source, run_id), "linear_probe": report}
        readings, probed = f"{self._tables}_probe", f"{self._tables}_probed"
        con.register(f"{readings}_arrow", probe.readings)
        try:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {readings} AS "
                        f"SELECT * FROM {readings}_arrow")
        finally:
            con.unregister(f"{readings}_arrow")
        con.execute(f"""
            CREATE OR REPLACE TEMP VIEW {probed} AS
            SELECT s.* REPLACE (
                CASE WHEN len(coalesce(s.top_k_labels, []::VARCHAR[])) = 0
                          AND p.label IS NOT NULL THEN [p.label]
                     ELSE s.top_k_labels END AS top_k_labels)
            FROM {source} s LEFT JOIN {readings} p
                ON p.row_id = s.row_id AND p.trace_id IS NOT DISTINCT FROM s.trace_id
        """)
        try:
            ((used,),) = con.execute(
                f"SELECT count(*) FROM {source} s JOIN {readings} p ON p.row_id = s.row_id "
                "AND p.trace_id IS NOT DISTINCT FROM s.trace_id "
                "WHERE len(coalesce(s.top_k_labels, []::VARCHAR[])) = 0").fetchall()
            report["used_for_rows"] = used
            return {**super().run(con, probed, run_id), "linear_probe": report}
        finally:
            con.execute(f"DROP VIEW IF EXISTS {probed}")
            con.execute(f"DROP TABLE IF EXISTS {readings}")

    def evaluate(
        self,
        output: str | None = None,
        expected: str | None = None,
        encoder_top_k: Sequence[str] | None = None,
        *,
        instruction: str | None = None,
    ) -> EvalResult:
        """Blame one row (``encoder_top_k``: the encoder's labels, best first; None when the
        row has no encoder record). With ``head=``, a failing row gets the oracle swap."""
        row = {"row_id": "row", "output": output, "expected": expected,
               "top_k_labels": encoder_top_k, "instruction": instruction}
        return self.evaluate_row(row)

    def evaluate_rows(self, rows: Iterable[Mapping[str, Any]]) -> list[EvalResult]:
        """Blame rows (mappings of ``pipeline_rows`` columns) in one query; with ``head=``,
        each failing row also gets the oracle swap, one row at a time."""
        if self.head is None:
            return super().evaluate_rows(rows)
        return [self._evaluate_with_head(dict(row)) for row in rows]

    def _evaluate_with_head(self, row: dict[str, Any]) -> EvalResult:
        row = {**row, "row_id": "row"}  # the swap joins the judged row back by its id
        table = pa.Table.from_pylist([row], schema=PIPELINE_ROW_SCHEMA)
        judged = f"{self._tables}_row"
        with self._row_lock:
            con = self._one_row_connection()
            con.register(_ONE_ROW, table)
            try:
                con.execute(f"CREATE OR REPLACE TEMP TABLE {judged} AS "
                            f"{self.judge_sql(_ONE_ROW)}")
                self.after_judging(con, judged, _ONE_ROW)
                verdict = con.execute(
                    f"SELECT score, passed, label, explanation, metadata FROM {judged}"
                ).fetchall()
            finally:
                con.unregister(_ONE_ROW)
        if not verdict:
            return super().evaluate_rows([row])[0]  # skipped: the reason
        score, passed, label, explanation, metadata = verdict[0]
        return EvalResult(score, passed, label, explanation, orjson.loads(metadata))

    # -- SQL ---------------------------------------------------------------------------------

    def prepare(self, con: duckdb.DuckDBPyConnection) -> None:
        """Define the macros and the alias and extra-label tables."""
        install_macros(con)
        install_mention_macros(con)
        rows = [(alias, canonical, 0) for alias, canonical in self.synonyms.items()]
        for priority, name in enumerate(self.aliases, start=1):
            rows += [(alias, canonical, priority) for alias, canonical in _ALIASES[name].items()]
        raw = pa.table({"alias": [r[0] for r in rows], "canonical": [r[1] for r in rows],
                        "priority": pa.array([r[2] for r in rows], pa.int32())})
        con.register(f"{self._tables}_raw", raw)
        try:
            con.execute(f"""
                CREATE OR REPLACE TEMP TABLE {self._tables}_aliases AS
                SELECT vlmscope_normalize(alias) AS alias,
                       arg_min(vlmscope_normalize(canonical), priority) AS canonical
                FROM {self._tables}_raw GROUP BY vlmscope_normalize(alias)
            """)
        finally:
            con.unregister(f"{self._tables}_raw")
        con.register(f"{self._tables}_extra_raw",
                     pa.table({"s": pa.array(self.labels, pa.string())}))
        try:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {self._tables}_extra AS "
                        f"SELECT s FROM {self._tables}_extra_raw")
        finally:
            con.unregister(f"{self._tables}_extra_raw")

    def skip_reason_sql(self) -> str:
        """Rows without an expected label cannot be blamed."""
        return "CASE WHEN vlmscope_blank(expected) THEN 'no expected label' END"

    def judge_sql(self, source: str) -> str:
        """Each distinct (answer, expected, top-k) case is judged once and joined back:
        answers and labels repeat, so this is far cheaper than judging every row.

        A case is keyed by the 64-bit hash of its three values (one integer join instead of a
        join on strings and lists): two distinct cases share a key with probability about
        ``n^2 / 2^65`` for ``n`` distinct cases (3e-8 for a million)."""
        t = self._tables
        # The oracle swap matches rows by what it asked the head; without it, skip the copies.
        oracle_columns = "src.instruction, src.expected, src.top_k," if self.head else ""
        # With classes=, the classes are known: an expected answer outside them ("2", "yes")
        # is no classification, and blaming it on a side would be a guess.
        expected_labels = ("" if self.classes is not None
                           else "SELECT expected AS s FROM cases UNION ALL ")
        return f"""
        WITH src AS (
            SELECT row_id, trace_id, coalesce(llm_span_id, span_id) AS span_id, cohort,
                   checkpoint_sha256, instruction, output, expected,
                   coalesce(top_k_labels, []::VARCHAR[]) AS top_k,
                   hash(output, expected, coalesce(top_k_labels, []::VARCHAR[])) AS case_key
            FROM {source} WHERE ({self.skip_reason_sql()}) IS NULL
        ), cases AS MATERIALIZED (
            SELECT case_key AS k, any_value(output) AS output, any_value(expected) AS expected,
                   any_value(top_k) AS top_k
            FROM src GROUP BY case_key
        ), strings AS (
            SELECT DISTINCT s FROM (
                SELECT expected AS s FROM cases UNION ALL SELECT output FROM cases
                UNION ALL SELECT unnest(top_k) FROM cases UNION ALL SELECT s FROM {t}_extra)
            WHERE s IS NOT NULL
        ), canon AS MATERIALIZED (
            SELECT s, coalesce(al.canonical, vlmscope_normalize(s)) AS c
            FROM strings LEFT JOIN {t}_aliases al ON al.alias = vlmscope_normalize(s)
        ), label_set AS (
            SELECT DISTINCT c FROM canon JOIN (
                {expected_labels}SELECT unnest(top_k) AS s FROM cases
                UNION ALL SELECT s FROM {t}_extra) USING (s)
            WHERE c <> ''
        ), label_forms AS MATERIALIZED (
            SELECT form, any_value(canonical) AS canonical,
                   len(string_split(form, ' ')) AS n_words
            FROM (SELECT array_to_string(list_filter(vlmscope_words(f), lambda w: w <> ''),
                                         ' ') AS form, canonical
                  FROM (SELECT c AS f, c AS canonical FROM label_set
                        UNION ALL SELECT al.alias, al.canonical FROM {t}_aliases al
                                  JOIN label_set ls ON ls.c = al.canonical))
            WHERE form <> '' GROUP BY form
        ), labels_lookup AS ({lookup_sql('label_forms')}
        ), answers AS (
            SELECT row_number() OVER () AS k, output AS text FROM (
                SELECT DISTINCT output FROM cases WHERE output IS NOT NULL)
        ), answer_mentions AS (
            SELECT a.text AS output,
                   list(DISTINCT m.canonical ORDER BY m.canonical)
                       FILTER (WHERE m.canonical IS NOT NULL AND NOT m.negated) AS named
            FROM answers a LEFT JOIN ({mentions_sql('answers', 'labels')}) m ON m.k = a.k
            GROUP BY a.text
        ), answer_labels AS (
            SELECT am.output, coalesce(ls.c, CASE WHEN len(am.named) = 1 THEN am.named[1] END)
                       AS answer_label,
                   CASE WHEN ls.c IS NULL THEN coalesce(am.named, []::VARCHAR[])
                        ELSE [ls.c] END AS named
            FROM answer_mentions am JOIN canon ca ON ca.s = am.output
                 LEFT JOIN label_set ls ON ls.c = ca.c
        ), elems AS (
            SELECT k, unnest(top_k) AS s, generate_subscripts(top_k, 1) AS i FROM cases
        ), top_k_c AS (
            SELECT k, list(canon.c ORDER BY i) AS top_k_c FROM elems JOIN canon USING (s)
            GROUP BY k
        ), facts AS (
            SELECT cases.k, cases.output, cases.expected, cases.top_k, ce.c AS e,
                   tk.top_k_c[1] AS t, al.answer_label AS a,
                   coalesce(al.named, []::VARCHAR[]) AS named,
                   coalesce(list_position(tk.top_k_c, ce.c), 0) AS rank,
                   len(cases.top_k) > 0 AS has_encoder,
                   ce.c IN (SELECT c FROM label_set) AS e_is_label,
                   co.c AS o
            FROM cases JOIN canon ce ON ce.s = cases.expected
                 LEFT JOIN canon co ON co.s = cases.output
                 LEFT JOIN top_k_c tk ON tk.k = cases.k
                 LEFT JOIN answer_labels al ON al.output = cases.output
        ), verdicts AS (
            SELECT *, CASE WHEN a = e OR o = e THEN 'correct'
                           WHEN NOT has_encoder OR a IS NULL OR NOT e_is_label
                               THEN 'unattributable'
                           WHEN t = e THEN 'language_head'
                           WHEN a = t THEN 'encoder' ELSE 'both' END AS blame
            FROM facts
        ), explained AS (
            SELECT *, CASE
                WHEN blame = 'correct' THEN 'answer names the expected '
                     || vlmscope_quote(e) || coalesce('; encoder top-1 ' || vlmscope_quote(t), '')
                WHEN NOT e_is_label THEN 'the expected answer ' || vlmscope_quote(e)
                     || ' is not one of the classes, so the failure is not a misclassification '
                     || 'either side can be blamed for'
                WHEN NOT has_encoder THEN 'no encoder record for this row; the answer '
                     || coalesce(vlmscope_quote(output), 'is NULL') || ', expected '
                     || vlmscope_quote(e)
                WHEN vlmscope_blank(output) THEN 'the answer is empty; expected '
                     || vlmscope_quote(e) || ', encoder top-1 ' || vlmscope_quote(t)
                WHEN a IS NULL AND len(named) > 1 THEN 'the answer ' || vlmscope_quote(output)
                     || ' names several labels ' || vlmscope_quote_list(named)
                     || '; expected ' || vlmscope_quote(e) || ', encoder top-1 '
                     || vlmscope_quote(t)
                WHEN a IS NULL THEN 'the answer ' || vlmscope_quote(output)
                     || ' names no known label; expected ' || vlmscope_quote(e)
                     || ', encoder top-1 ' || vlmscope_quote(t)
                WHEN blame = 'language_head' THEN 'encoder says ' || vlmscope_quote(t)
                     || ' (right), LLM says ' || vlmscope_quote(a)
                WHEN blame = 'encoder' THEN 'encoder says ' || vlmscope_quote(t)
                     || ', expected ' || vlmscope_quote(e) || '; the LLM followed it'
                ELSE 'encoder says ' || vlmscope_quote(t) || ', LLM says ' || vlmscope_quote(a)
                     || ', expected ' || vlmscope_quote(e) END
                || CASE WHEN blame IN ('encoder', 'both') AND rank > 1
                        THEN '; expected is rank ' || rank || ' of the encoder''s top-k '
                             || '(near miss)' ELSE '' END AS explanation
            FROM verdicts
        ), verdict_rows AS (
            SELECT k, CASE WHEN blame = 'correct' THEN 1.0 ELSE 0.0 END::DOUBLE AS score,
                   blame = 'correct' AS passed, blame AS label, explanation,
                   json_object('blame', blame, 'answer_label', a, 'expected', e,
                               'encoder_top1', t, 'expected_rank', rank,
                               'near_miss', rank > 1, 'answer_names', named) AS metadata,
                   t = e AS encoder_right, has_encoder,
                   a IS NOT NULL AND t IS NOT NULL AND a <> t AS disagree,
                   a IS NOT NULL AND t IS NOT NULL AS both_read, rank > 1 AS near_miss
            FROM explained
        )
        SELECT src.row_id, src.trace_id, src.span_id, v.score, v.passed, v.label,
               v.explanation, v.metadata, src.cohort, src.checkpoint_sha256,
               {oracle_columns} v.encoder_right, v.has_encoder, v.disagree, v.both_read,
               v.near_miss
        FROM src JOIN verdict_rows v ON v.k = src.case_key
        """

    def after_judging(self, con: duckdb.DuckDBPyConnection, judged: str, source: str) -> None:
        """The oracle swap (with ``head=``): re-ask the head with the expected label for each
        failing row that has an encoder record, judge the answers with the same SQL and
        revise the blame (rules in the module docstring)."""
        if self.head is None:
            return
        asks = con.execute(
            f"SELECT DISTINCT expected, instruction, top_k FROM {judged} "
            "WHERE NOT passed AND has_encoder").fetchall()
        if not asks:
            return
        answers = {}
        for expected, instruction, _ in asks:
            if (expected, instruction) not in answers:
                answers[(expected, instruction)] = self.head(expected, instruction)
        oracle = pa.Table.from_pylist(
            [{"row_id": str(i), "output": answers[(expected, instruction)],
              "expected": expected, "instruction": instruction, "top_k_labels": top_k}
             for i, (expected, instruction, top_k) in enumerate(asks)],
            schema=PIPELINE_ROW_SCHEMA)
        name = f"{self._tables}_oracle"
        con.register(name, oracle)
        try:
            con.execute(f"""
                CREATE OR REPLACE TEMP TABLE {name}_verdicts AS
                SELECT o.expected, o.instruction, o.top_k_labels AS top_k, j.passed AS is_right,
                       o.output AS answer
                FROM ({self.judge_sql(name)}) j JOIN {name} o ON o.row_id = j.row_id
            """)
        finally:
            con.unregister(name)
        con.execute(f"""
            UPDATE {judged} SET label = r.blame, explanation = {judged}.explanation || '; oracle '
                || CASE r.oracle WHEN 'revised' THEN 'revises to ' || r.blame
                                 WHEN 'confirmed' THEN 'confirms'
                                 ELSE 'does not reproduce the fault' END
                || ': given the expected label the head answers '
                || coalesce(vlmscope_quote(r.answer), 'nothing')
                || CASE WHEN r.is_right THEN ' (right)' ELSE ' (wrong)' END,
                metadata = json_merge_patch({judged}.metadata, json_object(
                    'blame', r.blame, 'rule_blame', {judged}.label, 'oracle', r.oracle,
                    'oracle_answer', r.answer, 'oracle_right', r.is_right))
            FROM (SELECT *, CASE WHEN is_right AND encoder_right THEN 'not_reproduced'
                                 WHEN blame = label THEN 'confirmed' ELSE 'revised' END AS oracle
                  FROM (SELECT j.row_id, j.trace_id, j.label, j.encoder_right, o.answer, o.is_right,
                               CASE WHEN o.is_right AND NOT j.encoder_right THEN 'encoder'
                                    WHEN NOT o.is_right AND j.encoder_right
                                        THEN 'language_head'
                                    WHEN NOT o.is_right THEN 'both' ELSE j.label END AS blame
                        FROM {judged} j JOIN {name}_verdicts o ON o.expected = j.expected
                             AND o.instruction IS NOT DISTINCT FROM j.instruction
                             AND o.top_k = j.top_k
                        WHERE NOT j.passed AND j.has_encoder)) r
            WHERE {judged}.row_id = r.row_id
              AND {judged}.trace_id IS NOT DISTINCT FROM r.trace_id
        """)
        con.execute(f"DROP TABLE {name}_verdicts")

    def summarise(self, con: duckdb.DuckDBPyConnection, judged: str) -> dict[str, Any]:
        """Blame counts and shares of the failing rows, per cohort and checkpoint, the
        encoder-head disagreement rate and near misses."""
        counts = dict(con.execute(
            f"SELECT label, count(*) FROM {judged} GROUP BY label").fetchall())
        ((disagree, both_read, near_misses),) = con.execute(
            f"SELECT count(*) FILTER (WHERE disagree), count(*) FILTER (WHERE both_read), "
            f"count(*) FILTER (WHERE label IN ('encoder', 'both') AND near_miss) "
            f"FROM {judged}").fetchall()
        failing = sum(n for label, n in counts.items() if label != "correct")
        slices = con.execute(f"""
            SELECT cohort, checkpoint_sha256, count(*) AS rows,
                   count(*) FILTER (WHERE label <> 'correct') AS failing,
                   {', '.join(f"count(*) FILTER (WHERE label = '{b}') AS {b}"
                              for b in BLAMES[1:])}
            FROM {judged} GROUP BY ALL ORDER BY ALL""").fetchall()
        by_slice = []
        for cohort, checkpoint, rows, failing_here, *blamed in slices:
            piece: dict[str, Any] = {"cohort": cohort, "checkpoint_sha256": checkpoint,
                                     "rows": rows, "failing": failing_here}
            for blame, n in zip(BLAMES[1:], blamed, strict=True):
                piece[blame] = n
                piece[f"blame_{blame}"] = n / failing_here if failing_here else None
            by_slice.append(piece)
        return {
            "failing": failing,
            "blame_counts": {b: counts.get(b, 0) for b in BLAMES},
            **{f"blame_{b}": counts.get(b, 0) / failing if failing else None
               for b in BLAMES[1:]},
            "disagreement_rate": disagree / both_read if both_read else None,
            "near_misses": near_misses,
            "by_cohort_checkpoint": by_slice,
        }
