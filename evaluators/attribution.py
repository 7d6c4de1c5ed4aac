"""FailureAttribution: for every wrong answer, did the encoder misread the image or did the
language head misuse a right reading -- object by object?

Each row is read in three shapes that can be compared (:mod:`vlmscope.evaluators.reading`):

* its **kind**: what the instruction asked (``name`` one object, ``list`` them, ``count``
  them, a yes/no ``probe`` of one object, ``describe`` the image), given per row
  (``instruction_kind``) or read from the instruction;
* the **expected** reading ``E``: the expected label (``name``); the ground-truth objects,
  else the labels the expected answer mentions (``list``, ``describe``); a number
  (``count``: the expected answer's, else the number of objects); yes/no (``probe``: the
  expected answer's, else whether the objects hold the probed object);
* the **encoder's reading** ``R``: its top-1 label for a single-label encoder, the labels with
  score ``>= encoder_threshold`` (not NaN) for a multi-label one (``encoder_multi_label``); for a
  ``name`` question, the best of them (one object was asked for);
* the **answer's reading** ``A``, in the expected shape: the labels it names (the same
  mention machinery as CaptionHallucination: aliases, plurals, phrases, negations; the
  words of a ``name``/``list`` answer that are neither labels nor filler words
  (:data:`~vlmscope.evaluators.reading.FILLER_WORDS`) name an object the vocabulary does not
  know, "nothing" names none), a number, yes/no.

Labels are canonical: the vocabularies, ``classes`` and ``labels``, the run's top-k labels
and objects, the expected labels of ``name`` rows, and the alias tables.

Per object (a probe compares its one object; ``e, r, a``: the object is in ``E``, ``R``,
``A``):

=====  =====  =====  ===========================  =====================
``e``  ``r``  ``a``  class                         blames
=====  =====  =====  ===========================  =====================
yes    yes    yes    ``correct``                   -
yes    no     no     ``encoder_missed``            encoder
yes    yes    no     ``head_dropped``              language head
no     no     yes    ``head_invented``             language head
no     yes    yes    ``encoder_false_positive``    encoder (head repeated it)
no     yes    no     ``head_recovered``            - (head ignored it)
yes    no     yes    ``head_recovered``            - (head found it anyway)
=====  =====  =====  ===========================  =====================

The row's blame is ``both`` when objects blame each side, else the side blamed, else
``correct``. A count compares numbers: ``e`` expected, ``r = |R|``, ``a`` the answer's;
``a = e`` is correct, else the encoder is to blame when ``r != e`` and the head when ``a !=
r`` (objects: ``E & R`` correct, ``E - R`` encoder_missed, ``R - E`` encoder_false_positive,
both head_recovered when the count is right). ``unattributable`` is left for rows whose
answer cannot be read (empty, no number for a count, neither yes nor no for a probe) and
wrong rows without an encoder record; the reason says which. Rows without an expected
answer or objects, with an unknown kind, a count whose expected answer is no number or a
probe naming no object are skipped with the reason.

Metadata: ``kind``, ``objects`` (object -> class), ``expected``, ``encoder_reading``,
``answer_reading``, ``answer_label`` (name rows), ``encoder_top1`` and the rank of the
expected label in the top-k (``near_miss`` when there but not first).

Run summary, over the ``F`` failing rows (blame other than ``correct``):
``blame_encoder = #encoder / F``, ``blame_language_head``, ``blame_both``,
``blame_unattributable`` likewise; the counts per cohort and checkpoint, per kind and per
object class; ``disagreement_rate`` = share of rows with both readings whose answer reading
differs from the encoder's.

Oracle swap (``head=``): a callable ``head(reading, instruction) -> answer``, the language head
fed a reading as text (labels joined by spaces) instead of the encoder's. Each failing row
with an encoder record whose true reading is known (``E``; for counts and probes the
objects) is re-asked with it; the oracle answer is judged by the same SQL, and the blame
becomes: oracle right and the encoder wrong -> ``encoder``; oracle wrong and the encoder
right -> ``language_head``; oracle wrong and the encoder wrong -> ``both``; oracle right and
the encoder right keeps the rule's label. Metadata ``oracle`` says ``confirmed``, ``revised``
or ``not_reproduced`` and gives the oracle answer.

Linear probe (``linear_probe=True``), for encoders without a classifier head: rows without
top-k labels but with a stored embedding take a cross-validated logistic-regression probe's
label as the encoder's top-1 (:mod:`vlmscope.evaluators.probe`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import orjson
import pyarrow as pa

from vlmscope.conventions import INSTRUCTION_KINDS
from vlmscope.evaluators.aliases import BUILTIN_ALIASES, create_alias_table
from vlmscope.evaluators.base import PIPELINE_ROW_SCHEMA, EvalResult, rows_table, with_columns
from vlmscope.evaluators.declaration import Metric, Option, comma_list
from vlmscope.evaluators.mentions import NEGATED, lookup_sql, mentions_sql
from vlmscope.evaluators.probe import DEFAULT_FOLDS, probe_readings
from vlmscope.evaluators.reading import (
    DEFAULT_ENCODER_THRESHOLD,
    FILLER_WORDS,
    NONE_WORDS,
    PROBE_PATTERN,
    install_reading_macros,
)
from vlmscope.evaluators.summarised import SummarisedRowEvaluator
from vlmscope.evaluators.vocabulary import Vocabulary, resolve_vocabularies, vocabulary_rows

BLAMES = ("correct", "encoder", "language_head", "both", "unattributable")
"""The blame labels of a row."""

OBJECT_CLASSES = ("correct", "encoder_missed", "head_dropped", "head_invented",
                  "encoder_false_positive", "head_recovered")
"""The classes of one object of a row (see the module docstring)."""

READING_COLUMNS = (("instruction_kind", pa.string()), ("encoder_multi_label", pa.bool_()))
"""Row columns this evaluator reads when present: the row's instruction kind and whether its
encoder is multi-label."""

READING_FIELDS = tuple(pa.field(name, kind) for name, kind in READING_COLUMNS)
""":data:`READING_COLUMNS` as Arrow fields (a relation without them is widened with NULLs)."""


_ONE_ROW = "_vlmscope_blame_row"

_ROW_SCHEMA = pa.schema(list(PIPELINE_ROW_SCHEMA) + [
    f for f in READING_FIELDS if f.name not in PIPELINE_ROW_SCHEMA.names])

_KIND = "vlmscope_row_kind(instruction_kind, instruction, expected, objects)"
"""SQL: a row's instruction kind (:mod:`vlmscope.evaluators.reading`)."""

_READING_KEY = ", ".join(
    [f"{c}, len({c}), {c} IS NULL" for c in ("e_set", "r_set", "a_set")]
    + [f"{c}, {c} IS NULL" for c in ("kind", "e_n", "r_n", "a_n", "a_yes_no", "probe_object",
                                     "has_encoder", "answer_blank", "top1", "rank", "output")])
"""SQL: the columns of a case's reading its verdict depends on, hashed into its key."""

# A run label's priority: after every vocabulary form (their priorities are 0..2n+1).
_RUN_LABEL_PRIORITY = 1_000_000

Head = Callable[[str, str | None], str | None]
"""A language head fed a reading directly: ``head(reading, instruction) -> answer``."""


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _quoted(words: Sequence[str]) -> str:
    return "[" + ", ".join(_sql_text(w) for w in words) + "]"


_PROBE_TEXT = f"nullif(regexp_extract(instruction, {_sql_text(PROBE_PATTERN)}, 1), '')"
"""SQL: the object a yes/no probe's instruction asks about (NULL: none)."""


class FailureAttribution(SummarisedRowEvaluator):
    """Blames each wrong answer on the encoder, the language head, both, or neither, object by
    object (see the module docstring for the readings, the classes, the summary and the
    oracle swap).

    ``encoder_threshold``: the score (0-1) at which a multi-label encoder's label counts as
    read; ``vocabularies``: object vocabularies as CaptionHallucination takes them (names,
    files, mappings, :class:`Vocabulary`); ``labels``: extra label names the answers may use;
    ``classes``: the encoder's class names (labels too); ``synonyms``: the user's alias map
    (alias -> label), looked up before the built-in ``aliases`` tables; ``head``: the oracle
    swap; ``linear_probe``: read rows without top-k labels through a probe on their
    embeddings (``probe_folds``-fold cross-validation; in :meth:`run` only).

    Example::

        >>> r = FailureAttribution().evaluate(output="five six", expected="five",
        ...                                   encoder_top_k=["five", "nine", "four"])
        >>> r.label, r.metadata["objects"]
        ('language_head', {'five': 'correct', 'six': 'head_invented'})
    """

    name = "failure_attribution"
    description = ("blames each wrong answer on the encoder, the language head, both or "
                   "neither, object by object, for names, lists, counts, yes/no probes and "
                   "captions; oracle swap when given the head")
    required_columns = ("row_id", "trace_id", "span_id", "llm_span_id", "output", "expected",
                        "objects", "instruction", "top_k_labels", "top_k_scores", "cohort",
                        "checkpoint_sha256")
    optional_columns = tuple(name for name, _ in READING_COLUMNS)
    row_schema: ClassVar[pa.Schema] = _ROW_SCHEMA
    options = (
        Option("encoder_threshold", "float", DEFAULT_ENCODER_THRESHOLD, "the score at which "
               "a multi-label encoder's label is read", flag="--encoder-threshold",
               parse=float, metavar="SCORE"),
        Option("vocabularies",
               "Sequence[str | Path | Vocabulary | Mapping[str, Iterable[str]]]", (),
               "object vocabularies that read captions and lists"),
        Option("labels", "Sequence[str]", (), "more labels the answers may name"),
        Option("classes", "Sequence[str] | None", None, "the encoder's classes: labels the "
               "answers may name", flag="--classes", parse=comma_list, metavar="NAMES"),
        Option("synonyms", "Mapping[str, str] | None", None, "your aliases, alias -> label"),
        Option("aliases", "Sequence[str]", ("imagenet", "coco"), "built-in alias tables"),
        Option("head", "Head | None", None, "the language head, for the oracle swap"),
        Option("linear_probe", "bool", False, "read the embeddings with a linear probe "
               "trained across folds (not mergeable from parts)"),
        Option("probe_folds", "int", DEFAULT_FOLDS, "folds of the linear probe"),
    )
    summary_metrics = (
        Metric("blame_encoder", "share of failing rows blamed on the encoder"),
        Metric("blame_language_head", "share of failing rows blamed on the language head"),
        Metric("blame_both", "share of failing rows blamed on both"),
        Metric("blame_unattributable", "share of failing rows blamed on neither"),
        Metric("disagreement_rate", "share of rows with both readings whose answer "
               "reading differs from the encoder's"),
    )
    merged_from = "blame counts per label, cohort, checkpoint and kind"

    def unmergeable_reason(self) -> str | None:
        """Why not, with ``linear_probe`` (trained on all rows at once); else the rule of
        :class:`SummarisedRowEvaluator`."""
        if self.linear_probe:
            return ("failure_attribution with linear_probe=True trains its probe on all rows "
                    "at once: it cannot be evaluated in parts")
        return super().unmergeable_reason()

    def __init__(
        self,
        *,
        encoder_threshold: float = DEFAULT_ENCODER_THRESHOLD,
        vocabularies: Sequence[str | Path | Vocabulary | Mapping[str, Iterable[str]]] = (),
        labels: Sequence[str] = (),
        classes: Sequence[str] | None = None,
        synonyms: Mapping[str, str] | None = None,
        aliases: Sequence[str] = ("imagenet", "coco"),
        head: Head | None = None,
        linear_probe: bool = False,
        probe_folds: int = DEFAULT_FOLDS,
    ) -> None:
        if not 0.0 <= encoder_threshold <= 1.0:
            raise ValueError(f"encoder_threshold must be in [0, 1], got {encoder_threshold}")
        unknown = [a for a in aliases if a not in BUILTIN_ALIASES]
        if unknown:
            raise ValueError(f"unknown alias table(s) {', '.join(unknown)}; "
                             f"use any of {', '.join(BUILTIN_ALIASES)}")
        if head is not None and not callable(head):
            raise TypeError(f"head must be a callable head(reading, instruction) -> answer, "
                            f"got {type(head).__name__}")
        if probe_folds < 2:
            raise ValueError(f"probe_folds must be at least 2, got {probe_folds}")
        if isinstance(classes, str) or isinstance(labels, str):
            raise ValueError("classes and labels are lists of names, e.g. ['cat', 'dog']")
        super().__init__()
        self.encoder_threshold = encoder_threshold
        self.vocabularies = resolve_vocabularies(vocabularies) if vocabularies else []
        self.linear_probe = linear_probe
        self.probe_folds = probe_folds
        self.classes = None if classes is None else tuple(classes)
        self.labels = tuple(labels) + (self.classes or ())
        self.synonyms = dict(synonyms or {})
        self.aliases = tuple(aliases)
        self.head = head
        self._tables = f"_vlmscope_blame_{uuid.uuid4().hex}"

    def config(self) -> dict[str, Any]:
        """Threshold, vocabularies, extra labels, aliases and whether the oracle swap ran."""
        return {"encoder_threshold": self.encoder_threshold,
                "vocabularies": [{"name": v.name, "version": v.version}
                                 for v in self.vocabularies],
                "labels": list(self.labels), "classes": None if self.classes is None
                else list(self.classes), "synonyms": self.synonyms,
                "aliases": list(self.aliases), "oracle_swap": self.head is not None,
                "linear_probe": self.linear_probe, "probe_folds": self.probe_folds}

    def run(self, con: duckdb.DuckDBPyConnection, source: str, run_id: str) -> dict[str, Any]:
        """Blame every row (see :class:`SummarisedRowEvaluator.run`). With
        ``linear_probe=True``, rows without encoder top-k labels but with a stored embedding
        take the cross-validated probe's label as the encoder's top-1
        (:mod:`vlmscope.evaluators.probe`); summary key ``linear_probe`` says how many rows,
        the folds, the probe's accuracy, or why it was skipped."""
        self.check_columns(con, source)
        # An older store's rows have no kind and no multi-label flag.
        with with_columns(con, source, READING_FIELDS, self._tables) as rows:
            return self._run(con, rows, run_id)

    def _run(self, con: duckdb.DuckDBPyConnection, source: str, run_id: str) -> dict[str, Any]:
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
        objects: Sequence[str] | None = None,
        encoder_scores: Sequence[float] | None = None,
        instruction_kind: str | None = None,
    ) -> EvalResult:
        """Blame one row. ``encoder_top_k``: the encoder's labels, best first (None: no
        encoder record); ``encoder_scores``: their scores, one per label, from a multi-label
        encoder (without them the reading is the top-1); ``objects``: the ground-truth
        objects; ``instruction_kind``: one of name, list, count, probe, describe (default:
        read from ``instruction``). With ``head=``, a failing row gets the oracle swap."""
        if encoder_scores is not None and (
                encoder_top_k is None or len(encoder_scores) != len(encoder_top_k)):
            raise ValueError("encoder_scores needs one score per label of encoder_top_k")
        row = {"row_id": "row", "output": output, "expected": expected,
               "top_k_labels": encoder_top_k, "instruction": instruction,
               "objects": objects, "top_k_scores": encoder_scores,
               "encoder_multi_label": encoder_scores is not None,
               "instruction_kind": instruction_kind}
        return self.evaluate_row(row)

    def evaluate_rows(self, rows: Iterable[Mapping[str, Any]]) -> list[EvalResult]:
        """Blame rows (mappings of ``pipeline_rows`` columns) in one query; with ``head=``,
        each failing row also gets the oracle swap, one row at a time."""
        if self.head is None:
            return super().evaluate_rows(rows)
        return [self._evaluate_with_head(dict(row)) for row in rows]

    def _evaluate_with_head(self, row: dict[str, Any]) -> EvalResult:
        row = {**row, "row_id": "row"}  # the swap joins the judged row back by its id
        table = rows_table([row], self.row_schema)
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
        """Define the macros, and the alias and vocabulary tables."""
        install_reading_macros(con)
        create_alias_table(con, f"{self._tables}_aliases", synonyms=self.synonyms,
                           tables=self.aliases, normalise="vlmscope_form", alias_column="form")
        # The vocabularies first, then the extra labels as a vocabulary of their own (so
        # their plurals read too).
        vocabularies = list(self.vocabularies)
        if self.labels:
            vocabularies.append(Vocabulary.from_mapping(
                {label: [] for label in dict.fromkeys(self.labels)}, name="labels"))
        table = vocabulary_rows(vocabularies)
        con.register(f"{self._tables}_vocab_raw", table)
        try:
            con.execute(f"""
                CREATE OR REPLACE TEMP TABLE {self._tables}_vocab AS
                SELECT vlmscope_form(form) AS form, vlmscope_form(canonical) AS canonical,
                       priority FROM {self._tables}_vocab_raw
            """)
        finally:
            con.unregister(f"{self._tables}_vocab_raw")

    def skip_reason_sql(self) -> str:
        """Rows that cannot be blamed: no expected answer and no objects, an unknown kind, a
        count whose expected answer gives no number, a probe that names no object or whose
        expected answer is neither yes nor no."""
        return self._skip_sql(_KIND)

    @staticmethod
    def _skip_sql(kind: str, probe_text: str = _PROBE_TEXT, count: str = "vlmscope_count(expected)",
                  yes_no: str = "vlmscope_yes_no(expected)") -> str:
        """:meth:`skip_reason_sql` over the row's kind given as the expression ``kind`` (and
        the probed object, the expected answer's number and yes/no, when already read)."""
        return f"""CASE
            WHEN vlmscope_blank(expected) AND len(coalesce(objects, []::VARCHAR[])) = 0
                THEN 'no expected label'
            WHEN {kind} NOT IN {_quoted(INSTRUCTION_KINDS)}
                THEN 'unknown instruction kind ' || vlmscope_quote({kind})
            WHEN {kind} = 'count' AND NOT vlmscope_blank(expected) AND {count} IS NULL
                THEN 'the expected answer of a count gives no number'
            WHEN {kind} = 'probe' AND {probe_text} IS NULL
                THEN 'a yes/no probe whose instruction names no object'
            WHEN {kind} = 'probe' AND NOT vlmscope_blank(expected) AND {yes_no} IS NULL
                THEN 'the expected answer of a probe is neither yes nor no'
            END"""

    def counts_summary(self, con: duckdb.DuckDBPyConnection, source: str, judged: int,
                       passed: int, reasons: dict[str, int] | None = None) -> dict[str, Any]:
        """:meth:`RowEvaluator.counts_summary`; a row not judged is skipped, so when every row
        was judged there are no skip reasons to read (a second pass over the rows)."""
        if reasons is None:
            ((rows,),) = con.execute(f"SELECT count(*) FROM {source}").fetchall()
            reasons = {} if rows == judged else None
        return super().counts_summary(con, source, judged, passed, reasons)

    def skip_reasons(self, con: duckdb.DuckDBPyConnection, source: str) -> dict[str, int]:
        """:meth:`RowEvaluator.skip_reasons`, read once per distinct (instruction, kind,
        expected, objects) rather than once per row."""
        grouped = (f"(SELECT *, {_KIND} AS kind FROM (SELECT instruction, instruction_kind, "
                   f"expected, objects, count(*) AS n FROM {source} GROUP BY ALL))")
        return dict(con.execute(
            f"SELECT reason, sum(n)::BIGINT FROM (SELECT {self._skip_sql('kind')} AS reason, "
            f"n FROM {grouped}) WHERE reason IS NOT NULL GROUP BY reason ORDER BY reason"
        ).fetchall())

    def judge_sql(self, source: str) -> str:
        """Each distinct case (answer, expected, objects, instruction, kind, top-k, reading)
        is judged once and joined back: they repeat, so this is far cheaper than judging
        every row.

        A case is keyed by the 64-bit hash of its values (one integer join instead of a join
        on strings and lists): two distinct cases share a key with probability about
        ``n^2 / 2^65`` for ``n`` distinct cases (3e-8 for a million)."""
        t = self._tables
        oracle_columns = ("v.expected, v.objects, v.instruction, v.instruction_kind, v.truth,"
                          if self.head else "")
        none_words = _quoted(NONE_WORDS)
        return f"""
        WITH src AS (
            SELECT row_id, trace_id, coalesce(llm_span_id, span_id) AS span_id, cohort,
                   checkpoint_sha256,
                   hash(output, expected, objects, instruction, instruction_kind, top_k,
                        reading) AS case_key,
                   output, expected, objects, instruction, instruction_kind, top_k, reading
            -- The top-k matters up to the expected label (its rank, for near misses): the
            -- order of the labels after it would only split cases that judge alike.
            FROM (SELECT *, CASE WHEN coalesce(list_position(top_k_labels, expected), 0) > 0
                                 THEN top_k_labels[1:list_position(top_k_labels, expected)]
                                 ELSE coalesce(top_k_labels[1:1], []::VARCHAR[]) END AS top_k,
                         -- Sorted: only the reading's set counts, and so fewer cases.
                         list_sort(vlmscope_encoder_reading(
                             top_k_labels, top_k_scores, encoder_multi_label,
                             {self.encoder_threshold}::DOUBLE)) AS reading
                  FROM {source}
                  WHERE NOT (vlmscope_blank(expected)
                             AND len(coalesce(objects, []::VARCHAR[])) = 0))
        ), cases AS MATERIALIZED (
            SELECT case_key AS k, any_value(output) AS output, any_value(expected) AS expected,
                   any_value(objects) AS objects, any_value(instruction) AS instruction,
                   any_value(instruction_kind) AS instruction_kind, any_value(top_k) AS top_k,
                   any_value(reading) AS reading
            FROM src GROUP BY case_key
        ), instructions AS MATERIALIZED (
            -- Instructions repeat far more than cases: each is read once.
            SELECT instruction, vlmscope_instruction_kind(instruction) AS read_kind,
                   {_PROBE_TEXT} AS probe_text
            FROM (SELECT DISTINCT instruction FROM cases)
        ), expecteds AS MATERIALIZED (
            -- So are expected answers: each is read as a number and as yes/no once.
            SELECT expected, vlmscope_count(expected) AS number,
                   vlmscope_yes_no(expected) AS yes_no
            FROM (SELECT DISTINCT expected FROM cases)
        ), judged_cases AS MATERIALIZED (
            SELECT * EXCLUDE (e_number, e_yes_no), coalesce(objects, []::VARCHAR[]) AS objs
            FROM (SELECT c.*, i.probe_text, x.number AS e_number, x.yes_no AS e_yes_no,
                         vlmscope_kind_of(c.instruction_kind, i.read_kind, c.expected,
                                          c.objects) AS kind
                  FROM cases c LEFT JOIN instructions i
                      ON i.instruction IS NOT DISTINCT FROM c.instruction
                  LEFT JOIN expecteds x ON x.expected IS NOT DISTINCT FROM c.expected)
            WHERE ({self._skip_sql('kind', 'probe_text', 'e_number', 'e_yes_no')}) IS NULL
        ), case_lists AS MATERIALIZED (
            -- The label lists (top-k, readings, objects) repeat across cases: each distinct
            -- list is canonicalised once.
            SELECT DISTINCT l FROM (
                SELECT top_k AS l FROM judged_cases UNION ALL SELECT reading FROM judged_cases
                UNION ALL SELECT objs FROM judged_cases)
            WHERE len(l) > 0
        ), list_items AS MATERIALIZED (
            SELECT DISTINCT s FROM (SELECT unnest(l) AS s FROM case_lists) WHERE s IS NOT NULL
        ), run_labels AS (
            SELECT DISTINCT vlmscope_form(s) AS form FROM (
                SELECT s FROM list_items
                UNION SELECT expected FROM judged_cases WHERE kind = 'name')
            WHERE s IS NOT NULL
        ), base_forms AS (
            SELECT form, canonical, priority FROM {t}_vocab
            UNION ALL SELECT form, form, {_RUN_LABEL_PRIORITY} FROM run_labels
        ), clusters AS MATERIALIZED (
            -- Names the alias tables call one thing (the end of their alias chains) read as
            -- one label: the known label among them that comes first (vocabulary order, then
            -- the run's labels, then by name).
            SELECT coalesce(al.canonical, b.canonical) AS cluster,
                   arg_min(b.canonical, (b.priority, b.canonical)) AS label
            FROM (SELECT canonical, min(priority) AS priority FROM base_forms
                  GROUP BY canonical) b
                 LEFT JOIN {t}_aliases al ON al.form = b.canonical
            GROUP BY 1
        ), label_forms AS MATERIALIZED (
            SELECT form, arg_min(canonical, priority) AS canonical,
                   len(string_split(form, ' ')) AS n_words
            FROM (SELECT b.form, coalesce(c.label, b.canonical) AS canonical, b.priority
                  FROM base_forms b LEFT JOIN {t}_aliases al ON al.form = b.canonical
                       LEFT JOIN clusters c ON c.cluster = coalesce(al.canonical, b.canonical)
                  UNION ALL SELECT al.form, c.label, {_RUN_LABEL_PRIORITY + 1}
                  FROM {t}_aliases al JOIN clusters c ON c.cluster = al.canonical
                  UNION ALL SELECT cluster, label, {_RUN_LABEL_PRIORITY + 1} FROM clusters)
            WHERE form <> '' GROUP BY form
        ), labels_lookup AS ({lookup_sql('label_forms')}
        ), strings AS (
            SELECT DISTINCT s FROM (
                SELECT s FROM list_items
                UNION ALL SELECT expected FROM judged_cases
                UNION ALL SELECT output FROM judged_cases)
            WHERE s IS NOT NULL
        ), canon AS MATERIALIZED (
            SELECT s, coalesce(lf.canonical, f) AS c, lf.canonical IS NOT NULL AS is_label
            FROM (SELECT s, vlmscope_form(s) AS f FROM strings) LEFT JOIN label_forms lf
                ON lf.form = f
        ), texts AS (
            SELECT row_number() OVER () AS k, text FROM (
                SELECT DISTINCT text FROM (
                    SELECT output AS text FROM judged_cases
                    UNION ALL SELECT expected FROM judged_cases
                    UNION ALL SELECT probe_text FROM judged_cases WHERE kind = 'probe')
                WHERE text IS NOT NULL)
        ), text_facts AS MATERIALIZED (
            -- Each distinct text is tokenised and read once, in every shape it may be read.
            SELECT text, named,
                   list_filter(vlmscope_negated_words(text), lambda w, i:
                       w <> '' AND NOT starts_with(w, '{NEGATED}')
                       AND NOT list_contains({_quoted(FILLER_WORDS)}, w)
                       AND NOT list_contains(covered, i)) AS leftover,
                   array_to_string(words, ' ') AS form, vlmscope_count_in(text, words) AS number,
                   vlmscope_yes_no_words(words) AS yes_no,
                   list_has_any(words, {none_words}) AS says_none
            FROM (SELECT t.text, any_value(vlmscope_clean_words(t.text)) AS words,
                         coalesce(list(DISTINCT m.canonical ORDER BY m.canonical)
                                      FILTER (WHERE m.canonical IS NOT NULL AND NOT m.negated),
                                  []::VARCHAR[]) AS named,
                         coalesce(flatten(list(range(m.i, m.i + m.n_words))
                                              FILTER (WHERE m.i IS NOT NULL)),
                                  []::BIGINT[]) AS covered
                  FROM texts t LEFT JOIN ({mentions_sql('texts', 'labels')}) m ON m.k = t.k
                  GROUP BY t.text)
        ), lists AS MATERIALIZED (
            SELECT l, list(c ORDER BY i) AS ordered, list_sort(list_distinct(list(c))) AS sorted
            FROM (SELECT l, unnest(l) AS s, generate_subscripts(l, 1) AS i FROM case_lists)
                 JOIN canon USING (s) GROUP BY l
        ), probe_answers AS MATERIALIZED (
            -- A probe's answer is read as CaptionHallucination's POPE reads it, once per
            -- distinct answer and probe (answers to probes repeat: yes, no, ...); the probed
            -- object's last word is the head a sentence may name.
            SELECT p.output, p.probe_text,
                   vlmscope_probe_answer(p.output, string_split(tp.form, ' ')[-1]) AS yes_no
            FROM (SELECT DISTINCT output, probe_text FROM judged_cases WHERE kind = 'probe') p
                 LEFT JOIN text_facts tp ON tp.text = p.probe_text
        ), facts AS (
            SELECT jc.*, len(jc.top_k) > 0 AS has_encoder,
                   coalesce(lt.ordered, []::VARCHAR[]) AS top_k_c,
                   coalesce(lr.sorted, []::VARCHAR[]) AS read_all,
                   coalesce(lo.sorted, []::VARCHAR[]) AS o_set,
                   ce.c AS e_label, co.c AS a_label, coalesce(co.is_label, false) AS a_is_label,
                   coalesce(ta.named, []::VARCHAR[]) AS a_named,
                   coalesce(te.named, []::VARCHAR[]) AS e_named,
                   coalesce(ta.leftover, []::VARCHAR[]) AS a_leftover,
                   coalesce(te.leftover, []::VARCHAR[]) AS e_leftover,
                   coalesce(tp.named[1], tp.form) AS probe_object,
                   coalesce(ta.form, '') = '' AS answer_blank,
                   ta.number AS a_n0, te.number AS e_n0,
                   pa.yes_no AS a_yes_no,
                   te.yes_no AS e_yn, coalesce(ta.says_none, false) AS says_none
            FROM judged_cases jc LEFT JOIN lists lt ON lt.l = jc.top_k
                 LEFT JOIN lists lr ON lr.l = jc.reading
                 LEFT JOIN lists lo ON lo.l = jc.objs
                 LEFT JOIN canon ce ON ce.s = jc.expected
                 LEFT JOIN canon co ON co.s = jc.output
                 LEFT JOIN text_facts ta ON ta.text = jc.output
                 LEFT JOIN text_facts te ON te.text = jc.expected
                 LEFT JOIN text_facts tp ON tp.text = jc.probe_text
                 LEFT JOIN probe_answers pa ON jc.kind = 'probe'
                      AND pa.output IS NOT DISTINCT FROM jc.output
                      AND pa.probe_text IS NOT DISTINCT FROM jc.probe_text
        ), shaped AS (
            SELECT *,
                CASE kind
                    WHEN 'name' THEN CASE WHEN vlmscope_blank(expected) THEN o_set
                                          ELSE [e_label] END
                    WHEN 'probe' THEN CASE WHEN coalesce(e_yn = 'yes',
                                                         list_contains(o_set, probe_object))
                                           THEN [probe_object] ELSE []::VARCHAR[] END
                    WHEN 'count' THEN o_set
                    WHEN 'list' THEN CASE WHEN len(o_set) > 0 THEN o_set
                                          ELSE list_sort(list_distinct(e_named || e_leftover))
                                          END
                    ELSE CASE WHEN len(o_set) > 0 THEN o_set ELSE e_named END END AS e_set,
                CASE WHEN kind = 'probe'
                     THEN CASE WHEN list_contains(read_all, probe_object) THEN [probe_object]
                               ELSE []::VARCHAR[] END
                     -- one object asked for: the encoder's best label is its answer
                     WHEN kind = 'name'
                     THEN CASE WHEN len(read_all) > 0 THEN [top_k_c[1]]
                               ELSE []::VARCHAR[] END
                     ELSE read_all END AS r_set,
                CASE WHEN answer_blank THEN NULL
                     WHEN kind IN ('name', 'list')
                         THEN CASE WHEN a_is_label THEN [a_label]
                                   WHEN len(a_leftover) > 0 AND kind = 'name'
                                       THEN a_named || [array_to_string(a_leftover, ' ')]
                                   WHEN len(a_leftover) > 0
                                       THEN list_sort(list_distinct(a_named || a_leftover))
                                   WHEN len(a_named) > 0 OR says_none THEN a_named END
                     WHEN kind = 'describe' THEN a_named
                     WHEN kind = 'probe' THEN CASE a_yes_no WHEN 'yes' THEN [probe_object]
                                                            WHEN 'no' THEN []::VARCHAR[] END
                     WHEN a_n0 IS NOT NULL THEN []::VARCHAR[] END AS a_set,
                coalesce(e_n0, len(o_set)) AS e_n, len(read_all) AS r_n,
                CASE WHEN NOT answer_blank THEN a_n0 END AS a_n
            FROM facts
        ), keyed AS MATERIALIZED (
            -- What the verdict reads of a case: far fewer distinct readings than cases.
            -- Each list's length goes into the key too, since DuckDB hashes ['a'], ['b']
            -- as it hashes ['a', 'b'], [].
            SELECT *, hash({_READING_KEY}) AS rk
            FROM (SELECT k, kind, e_set, r_set, a_set, e_n, r_n, a_n, a_yes_no, probe_object,
                         has_encoder, answer_blank, top_k_c[1] AS top1,
                         coalesce(list_position(top_k_c, e_set[1]), 0) AS rank,
                         CASE WHEN a_set IS NULL THEN output END AS output,
                         CASE WHEN kind IN ('count', 'probe') AND len(o_set) > 0 THEN o_set
                              WHEN kind = 'count' THEN NULL ELSE e_set END AS truth,
                         expected, objects, instruction, instruction_kind
                  FROM shaped)
        ), readings AS (
            SELECT rk, any_value(COLUMNS(* EXCLUDE (rk, k, truth, expected, objects,
                                                    instruction, instruction_kind)))
            FROM keyed GROUP BY rk
        ), classed AS (
            SELECT *, CASE WHEN a_set IS NULL OR NOT has_encoder THEN []::VARCHAR[]
                           WHEN kind = 'count' THEN list_sort(list_distinct(e_set || r_set))
                           ELSE list_sort(list_distinct(e_set || r_set || a_set)) END AS universe
            FROM readings
        ), objects_classed AS (
            SELECT *, list_transform(universe, lambda x: CASE
                WHEN kind = 'count' THEN CASE
                    WHEN list_contains(e_set, x) AND list_contains(r_set, x) THEN 'correct'
                    WHEN a_n = e_n THEN 'head_recovered'
                    WHEN list_contains(e_set, x) THEN 'encoder_missed'
                    ELSE 'encoder_false_positive' END
                WHEN list_contains(e_set, x) THEN CASE
                    WHEN list_contains(r_set, x) AND list_contains(a_set, x) THEN 'correct'
                    WHEN list_contains(r_set, x) THEN 'head_dropped'
                    WHEN list_contains(a_set, x) THEN 'head_recovered'
                    ELSE 'encoder_missed' END
                WHEN list_contains(r_set, x) THEN CASE
                    WHEN list_contains(a_set, x) THEN 'encoder_false_positive'
                    ELSE 'head_recovered' END
                ELSE 'head_invented' END) AS classes
            FROM classed
        ), verdicts AS (
            SELECT *,
                CASE WHEN a_set IS NULL THEN 'unattributable'
                     WHEN kind = 'count' AND a_n = e_n THEN 'correct'
                     WHEN kind <> 'count' AND list_sort(list_distinct(a_set))
                                              = list_sort(list_distinct(e_set)) THEN 'correct'
                     WHEN NOT has_encoder THEN 'unattributable'
                     WHEN enc_fault AND head_fault THEN 'both'
                     WHEN enc_fault THEN 'encoder'
                     WHEN head_fault THEN 'language_head'
                     ELSE 'correct' END AS blame
            FROM (SELECT *,
                      CASE WHEN kind = 'count' THEN r_n <> e_n
                           ELSE list_has_any(classes, ['encoder_missed',
                                                       'encoder_false_positive']) END
                          AS enc_fault,
                      CASE WHEN kind = 'count' THEN a_n <> r_n
                           ELSE list_has_any(classes, ['head_dropped', 'head_invented']) END
                          AS head_fault
                  FROM objects_classed)
        ), explained AS (
            SELECT *, concat_ws('; ',
                CASE kind
                    WHEN 'count' THEN 'count: expected ' || e_n || ', the encoder read '
                         || r_n || ' ' || vlmscope_quote_list(r_set) || ', the answer says '
                         || coalesce(a_n::VARCHAR, 'no number')
                    WHEN 'probe' THEN 'probe of ' || vlmscope_quote(probe_object)
                         || ': expected ' || CASE WHEN len(e_set) > 0 THEN 'yes' ELSE 'no' END
                         || CASE WHEN has_encoder THEN ', the encoder read '
                                 || CASE WHEN len(r_set) > 0 THEN 'yes' ELSE 'no' END
                                 ELSE '' END
                         || ', the answer says ' || coalesce(a_yes_no, 'neither yes nor no')
                    ELSE kind || ': expected ' || vlmscope_quote_list(e_set)
                         || CASE WHEN has_encoder
                                 THEN ', the encoder read ' || vlmscope_quote_list(r_set)
                                 ELSE '' END
                         || ', the answer names '
                         || coalesce(vlmscope_quote_list(a_set), 'nothing readable') END,
                CASE WHEN answer_blank THEN 'the answer is empty, so it cannot be read'
                     WHEN a_set IS NULL AND kind = 'count'
                         THEN 'the answer ' || vlmscope_quote(output)
                              || ' gives no number, so it cannot be read as a count'
                     WHEN a_set IS NULL AND kind = 'probe'
                         THEN 'the answer ' || vlmscope_quote(output)
                              || ' reads as neither yes nor no'
                     WHEN a_set IS NULL
                         THEN 'the answer ' || vlmscope_quote(output)
                              || ' names no object, so it cannot be read'
                     WHEN blame = 'unattributable'
                         THEN 'no encoder reading for this row (no top-k labels recorded)'
                     END,
                {self._class_phrase('encoder_missed', 'encoder missed ', '')},
                {self._class_phrase('encoder_false_positive', 'encoder reported ',
                                    ', which is not there, and the head repeated it')},
                {self._class_phrase('head_dropped', 'head dropped ',
                                    ', which the encoder saw')},
                {self._class_phrase('head_invented', 'head invented ', '')},
                {self._class_phrase('head_recovered', 'head recovered ',
                                    ' (the encoder misread it)')},
                CASE WHEN kind = 'count' AND blame = 'encoder'
                         THEN 'the head followed the encoder''s count'
                     WHEN kind = 'count' AND blame IN ('language_head', 'both')
                         THEN 'the head miscounted the encoder''s reading' END,
                CASE WHEN blame IN ('encoder', 'both') AND kind = 'name' AND rank > 1
                     THEN 'expected is rank ' || rank || ' of the encoder''s top-k (near miss)'
                     END) AS explanation
            FROM verdicts
        ), verdict_rows AS (
            SELECT rk, CASE WHEN blame = 'correct' THEN 1.0 ELSE 0.0 END::DOUBLE AS score,
                   blame = 'correct' AS passed, blame AS label, explanation,
                   json_object(
                       'blame', blame, 'kind', kind,
                       'objects', to_json(map_from_entries(list_transform(
                           list_zip(universe, classes),
                           lambda p: struct_pack(k := p[1], v := p[2])))),
                       'expected', CASE kind WHEN 'count' THEN to_json(e_n)
                                             WHEN 'probe' THEN to_json(len(e_set) > 0)
                                             ELSE to_json(e_set) END,
                       'encoder_reading', CASE WHEN NOT has_encoder THEN NULL::JSON
                                               WHEN kind = 'count' THEN to_json(r_n)
                                               WHEN kind = 'probe' THEN to_json(len(r_set) > 0)
                                               ELSE to_json(r_set) END,
                       'answer_reading', CASE kind WHEN 'count' THEN to_json(a_n)
                                                   WHEN 'probe' THEN to_json(a_yes_no)
                                                   ELSE to_json(a_set) END,
                       'answer_label', CASE WHEN kind = 'name' AND len(a_set) = 1
                                            THEN a_set[1] END,
                       'encoder_top1', top1, 'expected_rank', rank,
                       'near_miss', kind = 'name' AND rank > 1) AS metadata,
                   kind, has_encoder,
                   CASE WHEN kind = 'count' THEN r_n = e_n
                        WHEN kind = 'name' THEN list_contains(r_set, e_set[1])
                        ELSE r_set = list_sort(list_distinct(e_set)) END AS encoder_right,
                   a_set IS NOT NULL AND has_encoder AS both_read,
                   a_set IS NOT NULL AND has_encoder AND CASE
                       WHEN kind = 'count' THEN a_n <> r_n
                       ELSE list_sort(list_distinct(a_set)) <> r_set END AS disagree,
                   kind = 'name' AND rank > 1 AS near_miss,
                   {', '.join(f"len(list_filter(classes, lambda c: c = '{c}')) AS n_{c}"
                              for c in OBJECT_CLASSES)}
            FROM explained
        ), case_verdicts AS MATERIALIZED (
            SELECT c.k, c.truth, c.expected, c.objects, c.instruction, c.instruction_kind, v.*
            FROM keyed c JOIN verdict_rows v ON v.rk = c.rk
        )
        SELECT src.row_id, src.trace_id, src.span_id, v.score, v.passed, v.label,
               v.explanation, v.metadata::VARCHAR AS metadata, src.cohort,
               src.checkpoint_sha256, {oracle_columns} v.kind, v.encoder_right,
               v.has_encoder, v.disagree, v.both_read, v.near_miss,
               {', '.join(f'v.n_{c}' for c in OBJECT_CLASSES)}
        FROM src JOIN case_verdicts v ON v.k = src.case_key
        """

    @staticmethod
    def _class_phrase(cls: str, before: str, after: str) -> str:
        """SQL: ``before`` + the quoted objects of class ``cls`` + ``after``, or NULL."""
        chosen = f"list_filter(universe, lambda x, i: classes[i] = '{cls}')"
        return (f"CASE WHEN list_contains(classes, '{cls}') THEN {_sql_text(before)} || "
                f"array_to_string(list_transform({chosen}, lambda x: vlmscope_quote(x)), ', ')"
                f" || {_sql_text(after)} END")

    def after_judging(self, con: duckdb.DuckDBPyConnection, judged: str, source: str) -> None:
        """The oracle swap (with ``head=``): re-ask the head with the true reading for each
        failing row that has an encoder record and a known true reading, judge the answers
        with the same SQL and revise the blame (rules in the module docstring)."""
        if self.head is None:
            return
        asks = con.execute(
            f"SELECT DISTINCT expected, objects, instruction, instruction_kind, truth "
            f"FROM {judged} WHERE NOT passed AND has_encoder AND truth IS NOT NULL"
        ).fetchall()
        if not asks:
            return
        answers: dict[tuple[str, str | None], str | None] = {}
        for *_, instruction, _, truth in asks:
            key = (" ".join(truth), instruction)
            if key not in answers:
                answers[key] = self.head(*key)
        oracle = rows_table(
            [{"row_id": str(i), "output": answers[(" ".join(truth), instruction)],
              "expected": expected, "objects": objects, "instruction": instruction,
              "instruction_kind": kind, "top_k_labels": truth or ["-"],
              "top_k_scores": [1.0 if truth else 0.0] * max(1, len(truth)),
              "encoder_multi_label": True}
             for i, (expected, objects, instruction, kind, truth) in enumerate(asks)],
            self.row_schema)
        name = f"{self._tables}_oracle"
        con.register(name, oracle)
        try:
            con.execute(f"""
                CREATE OR REPLACE TEMP TABLE {name}_verdicts AS
                SELECT o.expected, o.objects, o.instruction, o.instruction_kind,
                       j.passed AS is_right, o.output AS answer
                FROM ({self.judge_sql(name)}) j JOIN {name} o ON o.row_id = j.row_id
            """)
        finally:
            con.unregister(name)
        con.execute(f"""
            UPDATE {judged} SET label = r.blame, explanation = {judged}.explanation || '; oracle '
                || CASE r.oracle WHEN 'revised' THEN 'revises to ' || r.blame
                                 WHEN 'confirmed' THEN 'confirms'
                                 ELSE 'does not reproduce the fault' END
                || ': given the true reading the head answers '
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
                        FROM {judged} j JOIN {name}_verdicts o
                             ON o.expected IS NOT DISTINCT FROM j.expected
                             AND o.objects IS NOT DISTINCT FROM j.objects
                             AND o.instruction IS NOT DISTINCT FROM j.instruction
                             AND o.instruction_kind IS NOT DISTINCT FROM j.instruction_kind
                        WHERE NOT j.passed AND j.has_encoder AND j.truth IS NOT NULL)) r
            WHERE {judged}.row_id = r.row_id
              AND {judged}.trace_id IS NOT DISTINCT FROM r.trace_id
        """)
        con.execute(f"DROP TABLE {name}_verdicts")

    def summarise(self, con: duckdb.DuckDBPyConnection, judged: str) -> dict[str, Any]:
        """Blame counts and shares of the failing rows, per cohort and checkpoint and per
        instruction kind, the object classes, the encoder-head disagreement rate and near
        misses."""
        # The few statistics rows are read four times: gather them from the rows once.
        statistics = f"{self._tables}_statistics"
        con.execute(f"CREATE OR REPLACE TEMP TABLE {statistics} AS "
                    f"{self.statistics_sql(judged)}")
        try:
            return self.summarise_statistics(con, statistics)
        finally:
            con.execute(f"DROP TABLE IF EXISTS {statistics}")

    def statistics_sql(self, judged: str) -> str:
        """The additive counts the summary is computed from, per (label, cohort, checkpoint,
        kind): the statistics of disjoint parts of the rows, stacked, give the summary of all
        of them (see :meth:`summarise_statistics`)."""
        return (
            "SELECT label, cohort, checkpoint_sha256, kind, count(*) AS n, "
            "count(*) FILTER (WHERE disagree) AS disagree, "
            "count(*) FILTER (WHERE both_read) AS both_read, "
            "count(*) FILTER (WHERE label IN ('encoder', 'both') AND near_miss) "
            "AS near_misses, "
            + ", ".join(f"coalesce(sum(n_{c}), 0)::BIGINT AS n_{c}" for c in OBJECT_CLASSES)
            + f" FROM {judged} GROUP BY ALL")

    def summarise_statistics(self, con: duckdb.DuckDBPyConnection,
                             statistics: str) -> dict[str, Any]:
        """The summary keys of :meth:`summarise` from the relation ``statistics`` (rows of
        :meth:`statistics_sql`, from one or many parts of the rows)."""
        counts = dict(con.execute(
            f"SELECT label, sum(n)::BIGINT FROM {statistics} GROUP BY label").fetchall())
        ((disagree, both_read, near_misses, *classes),) = con.execute(
            "SELECT coalesce(sum(disagree), 0)::BIGINT, coalesce(sum(both_read), 0)::BIGINT, "
            "coalesce(sum(near_misses), 0)::BIGINT, "
            + ", ".join(f"coalesce(sum(n_{c}), 0)::BIGINT" for c in OBJECT_CLASSES)
            + f" FROM {statistics}").fetchall()
        failing = sum(n for label, n in counts.items() if label != "correct")
        blamed = ", ".join(f"coalesce(sum(n) FILTER (WHERE label = '{b}'), 0)::BIGINT AS {b}"
                           for b in BLAMES[1:])
        tallies = ("sum(n)::BIGINT AS rows, "
                   "coalesce(sum(n) FILTER (WHERE label <> 'correct'), 0)::BIGINT AS failing")
        by_slice = self._slices(con, f"""
            SELECT cohort, checkpoint_sha256, {tallies}, {blamed}
            FROM {statistics} GROUP BY ALL ORDER BY ALL""", ("cohort", "checkpoint_sha256"))
        by_kind = self._slices(con, f"""
            SELECT kind, {tallies}, {blamed}
            FROM {statistics} GROUP BY ALL ORDER BY ALL""", ("kind",))
        return {
            "failing": failing,
            "blame_counts": {b: counts.get(b, 0) for b in BLAMES},
            **{f"blame_{b}": counts.get(b, 0) / failing if failing else None
               for b in BLAMES[1:]},
            "object_classes": dict(zip(OBJECT_CLASSES, (int(n) for n in classes),
                                       strict=True)),
            "disagreement_rate": disagree / both_read if both_read else None,
            "near_misses": near_misses,
            "by_cohort_checkpoint": by_slice,
            "by_kind": by_kind,
        }

    @staticmethod
    def _slices(con: duckdb.DuckDBPyConnection, query: str,
                keys: tuple[str, ...]) -> list[dict[str, Any]]:
        pieces = []
        for row in con.execute(query).fetchall():
            key, (rows, failing), blamed = row[:len(keys)], row[len(keys):len(keys) + 2], \
                row[len(keys) + 2:]
            piece: dict[str, Any] = {**dict(zip(keys, key, strict=True)), "rows": rows,
                                     "failing": failing}
            for blame, n in zip(BLAMES[1:], blamed, strict=True):
                piece[blame] = n
                piece[f"blame_{blame}"] = n / failing if failing else None
            pieces.append(piece)
        return pieces
