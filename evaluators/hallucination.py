"""CaptionHallucination: objects a caption mentions that the image does not contain (CHAIR),
and yes/no object probes (POPE).

CHAIR (Rohrbach et al., 2018), over the judged captions ``c`` with mentioned objects ``M_c``
(distinct canonical objects, :mod:`vlmscope.evaluators.mentions`) and ground-truth objects
``G_c`` (those the vocabulary knows):

* ``CHAIR-i = sum_c |M_c - G_c| / sum_c |M_c|`` (hallucinated objects / mentioned objects);
* ``CHAIR-s = #{c : |M_c - G_c| > 0} / #captions``;
* ``coverage = sum_c |M_c & G_c| / sum_c |G_c|``.

With ``chair_compatible=True`` the caption is read as the original CHAIR code reads it
(:mod:`vlmscope.evaluators.chair_compatible`, quirks included) and CHAIR-i counts every
mention as it does: ``M_c`` is then the list of mentions with repeats (``metadata["mentions"]``).
docs/evaluators/caption_hallucination.md lists the quirks, the default mode's rules and where
the two differ, and why.

Per caption: ``score = 1 - |M - G| / |M|`` (1 when nothing is mentioned), ``passed`` when
nothing is hallucinated; metadata lists ``mentioned``, ``hallucinated``, ``missed``,
``negated`` (mentions under a negation, not counted unless ``chair_compatible``) and which
side each hallucinated object comes from: the encoder when one of its top-k labels with score
``>= encoder_threshold`` names the object (it "saw" what is not there), the language head when
none does (the head invented it).

POPE (Li et al., 2023): an instruction such as "Is there a dog in the image?" makes the row a
probe of one object; the answer is read as yes or no from its first readable sentence
(:data:`POPE_READING`), else it is ``unparsed``; with ``yes`` as the positive class:
``accuracy = (TP + TN) / N``, ``precision = TP / (TP + FP)``, ``recall = TP / (TP + FN)``,
``F1 = 2PR / (P + R)``, ``yes_ratio = (TP + FP) / N`` over the ``N`` parsed probes (unparsed
answers are counted in ``pope_unparsed`` and score 0).

Ground truth is the row's ``objects``; with ``objects_from_encoder=True``, a row without
objects takes the encoder's labels with score ``>= encoder_threshold`` instead, marked
``ground_truth: encoder`` (it then measures whether the head says more than the encoder saw).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from vlmscope.collectors import facts
from vlmscope.evaluators.base import EvalResult, staged, with_stages
from vlmscope.evaluators.chair_compatible import SYNONYM_CLASSES, reference_mentions
from vlmscope.evaluators.declaration import Metric, Option, comma_list
from vlmscope.evaluators.mentions import install_vocabulary, mentions_sql
from vlmscope.evaluators.reading import (  # noqa: F401  (the POPE reading's names, kept here)
    HEDGES,
    LEANING_YES,
    POPE_MACROS,
    POPE_READING,
    PROBE_PATTERN,
    SENTENCE_PATTERN,
    install_reading_macros,
)
from vlmscope.evaluators.summarised import SummarisedRowEvaluator
from vlmscope.evaluators.text import install_macros
from vlmscope.evaluators.vocabulary import Vocabulary, resolve_vocabularies

DEFAULT_ENCODER_THRESHOLD = 0.1
"""Softmax score (0-1) at which an encoder label counts as something the encoder saw."""

def install_chair_reader(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Define ``name(caption) -> VARCHAR[]`` on ``con``, the COCO class of every object word
    the original CHAIR finds in a caption, in order with repeats
    (:func:`vlmscope.evaluators.chair_compatible.reference_mentions`), and the table
    ``{name}_names (name, canonical)``: how the reference reads an object name (an entry of
    its synonym list, lower-cased)."""
    def read(captions: pa.Array) -> pa.Array:
        return pa.array([None if c is None else reference_mentions(c)
                         for c in captions.to_pylist()], pa.list_(pa.string()))

    with contextlib.suppress(duckdb.Error):  # not defined yet on this connection
        con.remove_function(name)
    con.create_function(name, read, [duckdb.sqltype("VARCHAR")],
                        duckdb.sqltype("VARCHAR[]"), type="arrow", side_effects=False)
    names = pa.table({"name": [n.lower() for n in SYNONYM_CLASSES],
                      "canonical": list(SYNONYM_CLASSES.values())})
    con.register(f"{name}_names_arrow", names)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name}_names AS "
                f"SELECT DISTINCT ON (name) name, canonical FROM {name}_names_arrow")
    con.unregister(f"{name}_names_arrow")


class CaptionHallucination(SummarisedRowEvaluator):
    """Scores captions with CHAIR and yes/no object probes with POPE (see the module).

    ``vocabularies``: built-in names (``coco``, ``imagenet``), files of ``canonical:
    synonym, ...`` lines, mappings or :class:`Vocabulary` objects; the first to claim a word
    wins. ``chair_compatible=True`` reads captions exactly as the original CHAIR code does
    (its tokeniser, singulariser, two-word table and synonym list; negated mentions count;
    CHAIR-i per mention), for numbers comparable with published ones; it takes only the
    ``coco`` vocabulary.

    Example::

        >>> r = CaptionHallucination().evaluate("a dog and a cat on a sofa", ["dog", "sofa"])
        >>> r.passed, r.metadata["hallucinated"], r.score
        (False, ['cat'], 0.6666666666666667)
    """

    name = "caption_hallucination"
    description = ("objects a caption mentions that the image lacks (CHAIR-i, CHAIR-s, "
                   "coverage) and yes/no object probes (POPE)")
    required_columns = ("row_id", "trace_id", "span_id", "llm_span_id", "output",
                        "instruction", "objects", "top_k_labels", "top_k_scores",
                        "encoder_multi_label")
    options = (
        Option("vocabularies",
               "Sequence[str | Path | Vocabulary | Mapping[str, Iterable[str]]]", ("coco",),
               "object vocabularies: coco, imagenet, or files of 'canonical: synonym, ...' "
               "lines; the first to claim a word wins", flag="--vocabulary",
               parse=comma_list, metavar="NAMES"),
        Option("chair_compatible", "bool", False,
               "read captions exactly as the original CHAIR code (coco only)"),
        Option("objects_from_encoder", "bool", False, "rows without objects take the "
               "encoder's confident labels as ground truth", flag="--objects-from-encoder",
               kind="switch"),
        Option("encoder_threshold", "float", DEFAULT_ENCODER_THRESHOLD,
               "score at which an encoder label counts as present (objects_from_encoder)"),
    )
    summary_metrics = (
        Metric("chair_i", "share of mentioned objects the image lacks (lower is better)"),
        Metric("chair_s", "share of captions with a hallucinated object (lower is better)"),
        Metric("coverage", "share of ground-truth objects the captions mention", gated=True),
        Metric("pope_accuracy", "share of yes/no object probes answered right", gated=True),
        Metric("pope_precision", "precision of the yes answers to object probes"),
        Metric("pope_recall", "recall of the yes answers to object probes"),
        Metric("pope_f1", "F1 of the yes answers to object probes", gated=True),
        Metric("pope_yes_ratio", "share of parsed probe answers that say yes"),
    )
    merged_from = "CHAIR and POPE counts"

    def __init__(
        self,
        vocabularies: Sequence[str | Path | Vocabulary | Mapping[str, Iterable[str]]] = (
            "coco",),
        *,
        chair_compatible: bool = False,
        objects_from_encoder: bool = False,
        encoder_threshold: float = DEFAULT_ENCODER_THRESHOLD,
    ) -> None:
        if not 0.0 <= encoder_threshold <= 1.0:
            raise ValueError(f"encoder_threshold must be in [0, 1], got {encoder_threshold}")
        super().__init__()
        self.vocabularies = resolve_vocabularies(vocabularies)
        if chair_compatible and [v.name for v in self.vocabularies] != ["coco"]:
            raise ValueError(
                "chair_compatible=True reads captions with the original CHAIR synonym list "
                "(COCO); leave vocabularies as ('coco',)")
        self.chair_compatible = chair_compatible
        self.objects_from_encoder = objects_from_encoder
        self.encoder_threshold = encoder_threshold
        self._vocabulary = f"_vlmscope_vocab_{uuid.uuid4().hex}"
        self._prefix = f"_vlmscope_chair_{uuid.uuid4().hex}"
        self._reader = f"_vlmscope_chair_reader_{uuid.uuid4().hex}"
        self._longest = 1

    def config(self) -> dict[str, Any]:
        """Vocabularies (name and version) and the switches."""
        return {
            "vocabularies": [{"name": v.name, "version": v.version} for v in self.vocabularies],
            "chair_compatible": self.chair_compatible,
            "objects_from_encoder": self.objects_from_encoder,
            "encoder_threshold": self.encoder_threshold,
        }

    def evaluate(
        self,
        output: str | None = None,
        objects: Sequence[str] | None = None,
        *,
        instruction: str | None = None,
        top_k_labels: Sequence[str] | None = None,
        top_k_scores: Sequence[float] | None = None,
        encoder_multi_label: bool | None = None,
    ) -> EvalResult:
        """Judge one caption (or, when ``instruction`` is a yes/no probe, one answer);
        ``encoder_multi_label``: whether ``top_k_scores`` are a multi-label encoder's."""
        return self.evaluate_row({
            "output": output, "objects": objects, "instruction": instruction,
            "top_k_labels": top_k_labels, "top_k_scores": top_k_scores,
            "encoder_multi_label": encoder_multi_label,
        })

    # -- SQL ---------------------------------------------------------------------------------
    #
    # The judging query is a chain of named stages (see :meth:`_stages`). :meth:`judge_sql`
    # runs them as one query (the per-row path); :meth:`run` stores the per-row stages as
    # temporary tables and builds the explanations and metadata once, while inserting them.
    #
    # Captions hardly repeat, but what they are judged on does: each row keeps only keys to
    # its set of mentions (``mention_sets``), its ground-truth object list and its encoder
    # labels (``set_objects``). The lists, their text and their JSON are made once per
    # distinct set; per row only the differences (hallucinated, missed, by whom) are made.

    def prepare(self, con: duckdb.DuckDBPyConnection) -> None:
        """Define the macros and build the vocabulary's lookup tables."""
        install_macros(con)
        install_reading_macros(con)
        # Quoting each name costs 5x a plain cast, on every caption.
        con.execute("CREATE OR REPLACE TEMP MACRO vlmscope_plain_list(xs) AS xs::VARCHAR")
        self._longest = install_vocabulary(con, self._vocabulary, self.vocabularies)
        if self.chair_compatible:
            install_chair_reader(con, self._reader)

    def skip_reason_sql(self) -> str:
        """No caption, or no ground truth (no objects, and no encoder record to fall back
        on when ``objects_from_encoder``)."""
        no_objects = "len(coalesce(objects, []::VARCHAR[])) = 0"
        if self.objects_from_encoder:
            no_truth = (f"{no_objects} AND len(coalesce(top_k_labels, []::VARCHAR[])) = 0 "
                        "THEN 'no ground-truth objects and no encoder record'")
        else:
            no_truth = f"{no_objects} THEN 'no ground-truth objects'"
        return ("CASE WHEN output IS NULL THEN 'no caption: the output is NULL' "
                r"WHEN regexp_full_match(output, '\s*') THEN 'no caption: the output is empty' "
                f"WHEN {no_truth} END")

    def _stages(self, source: str, key: str = "row_number() OVER ()") -> list[tuple[str, str]]:
        """The judging stages in order, as ``(name, query)``; a query reads ``source`` and
        the stages before it by their names (``{prefix}_{stage}``). ``key``: an expression
        numbering the rows of ``source`` from 1, each once."""
        voc, p = self._vocabulary, self._prefix
        negation = not self.chair_compatible
        from_encoder = "true" if self.objects_from_encoder else "false"
        stages = [
            # One row per judged row: its text (the caption, or for a probe the object it
            # asks about), the answer to a probe, and keys to its object and label lists.
            (f"{p}_src", f"""
            SELECT k, row_id, trace_id, span_id, probe,
                   coalesce(probe, output) AS text,
                   CASE WHEN probe IS NOT NULL THEN output END AS answer_text,
                   objects, has_encoder, seen, from_objects, hash(seen) AS seen_key,
                   CASE WHEN from_objects THEN hash(objects) ELSE hash(seen) END AS truth_key
            FROM (SELECT {key} AS k, row_id, trace_id, coalesce(llm_span_id, span_id) AS span_id,
                         output,
                         nullif(regexp_extract(instruction, '{PROBE_PATTERN}', 1), '') AS probe,
                         coalesce(objects, []::VARCHAR[]) AS objects,
                         len(coalesce(top_k_labels, []::VARCHAR[])) > 0 AS has_encoder,
                         vlmscope_encoder_reading(top_k_labels, top_k_scores,
                                                  encoder_multi_label,
                                                  {self.encoder_threshold}::DOUBLE) AS seen,
                         len(coalesce(objects, []::VARCHAR[])) > 0 OR NOT {from_encoder}
                             AS from_objects
                  FROM {source} WHERE ({self.skip_reason_sql()}) IS NULL)
            """),
        ]
        if self.chair_compatible:
            # The original CHAIR's reading of each caption (every mention, in order);
            # a probe's object is read as in the default mode.
            probes = f"(SELECT k, text FROM {p}_src WHERE probe IS NOT NULL)"
            stages += [
                (f"{p}_chair_lists", f"""
                SELECT k, {self._reader}(text) AS mentions FROM {p}_src WHERE probe IS NULL
                """),
                (f"{p}_hits", f"""
                SELECT DISTINCT k, canonical, negated FROM (
                    SELECT k, unnest(mentions) AS canonical, false AS negated
                    FROM {p}_chair_lists
                    UNION ALL
                    SELECT k, canonical, negated FROM ({mentions_sql(
                        probes, voc, negation=negation, longest=self._longest,
                        compounds=True)}))
                """),
            ]
        else:
            # Each object (plain or negated) once per text: the caption, or for a probe
            # the object it asks about.
            stages.append((f"{p}_hits", f"""
            SELECT DISTINCT k, canonical, negated
            FROM ({mentions_sql(f'{p}_src', voc, negation=negation, longest=self._longest,
                                compounds=True)})
            """))
        if self.chair_compatible:  # an object name is read as the reference reads it
            name_reading = f"SELECT n.k, c.canonical FROM names n JOIN {self._reader}_names c " \
                           "ON c.name = lower(trim(n.text))"
        else:
            name_reading = mentions_sql('names', voc, negation=False, longest=self._longest)
        stages += [
            # A text's set of mentions, keyed by the XOR of its members' 64-bit hashes (each
            # hashed again: hash(a, b) is itself an XOR, which would let {dog, not dog, cat}
            # and {dog, not cat} share a key). Two distinct sets then share a key with
            # probability ~n^2 / 2^65 for n distinct sets.
            (f"{p}_mention_keys", f"""
            SELECT k, bit_xor(hash(hash(canonical, negated))) AS m_key FROM {p}_hits GROUP BY k
            """),
            (f"{p}_mention_sets", f"""
            SELECT m_key, mentioned, negated, mentioned::VARCHAR AS mentioned_text,
                   to_json(mentioned)::VARCHAR AS mentioned_json,
                   to_json(negated)::VARCHAR AS negated_json
            FROM (SELECT r.m_key,
                         list_sort(coalesce(list(h.canonical) FILTER (WHERE NOT h.negated),
                                            []::VARCHAR[])) AS mentioned,
                         list_sort(coalesce(list(h.canonical) FILTER (WHERE h.negated),
                                            []::VARCHAR[])) AS negated
                  FROM (SELECT m_key, min(k) AS k FROM {p}_mention_keys GROUP BY m_key) r
                  JOIN {p}_hits h ON h.k = r.k GROUP BY r.m_key)
            """),
            # Object lists and encoder label lists repeat (a few classes per image): each
            # distinct list is read into canonical objects once. Lists are joined by their
            # 64-bit hash (an integer join): two distinct lists share one with probability
            # ~n^2 / 2^65 for n distinct lists.
            (f"{p}_name_sets", f"""
            SELECT set_k, any_value(names) AS names FROM (
                SELECT hash(objects) AS set_k, objects AS names FROM {p}_src
                UNION ALL SELECT hash(seen), seen FROM {p}_src) GROUP BY set_k
            """),
            (f"{p}_set_objects", f"""
            WITH names AS (
                SELECT row_number() OVER () AS k, s AS text FROM (
                    SELECT DISTINCT unnest(names) AS s FROM {p}_name_sets) WHERE s IS NOT NULL
            ), name_mentions AS (
                SELECT n.text AS s, list_sort(list_distinct(list(m.canonical))) AS canon
                FROM names n LEFT JOIN ({name_reading}) m ON m.k = n.k GROUP BY n.text
            )
            SELECT set_k, known, unknown, known::VARCHAR AS known_text,
                   to_json(known)::VARCHAR AS known_json, to_json(unknown)::VARCHAR AS unknown_json
            FROM (SELECT ns.set_k,
                         coalesce(list_sort(list_distinct(flatten(list(nm.canon)))),
                                  []::VARCHAR[]) AS known,
                         coalesce(list_sort(list(e.s) FILTER (WHERE len(nm.canon) = 0)),
                                  []::VARCHAR[]) AS unknown
                  FROM {p}_name_sets ns
                      LEFT JOIN (SELECT set_k, unnest(names) AS s FROM {p}_name_sets) e
                          ON e.set_k = ns.set_k
                      LEFT JOIN name_mentions nm ON nm.s = e.s
                  GROUP BY ns.set_k)
            """),
        ]
        return stages

    def _judged_sql(self) -> str:
        """The judged rows over the stages (one row of ``src`` per judged row, with keys to
        its sets): the evaluation columns, then the summary's."""
        p = self._prefix
        if self.chair_compatible:  # CHAIR-i counts every mention, as the reference does
            mention_list = "coalesce(cl.mentions, []::VARCHAR[])"
            chair_join = f"LEFT JOIN {p}_chair_lists cl ON cl.k = r.k"
            n_mentions = "len(mention_list)"
            n_hallucinated = ("len(list_filter(mention_list, lambda x: "
                              "NOT list_contains(truth, x)))")
        else:  # each object once per caption
            mention_list, chair_join = "NULL::VARCHAR[]", ""
            n_mentions, n_hallucinated = "len(mentioned)", "len(hallucinated)"
        return f"""
        WITH joined AS NOT MATERIALIZED (
            -- Not materialised: copying the lists costs more than joining twice.
            SELECT r.row_id, r.trace_id, r.span_id, r.has_encoder, r.probe, r.answer_text,
                   CASE WHEN r.from_objects THEN 'objects' ELSE 'encoder' END AS ground_truth,
                   r.from_objects,
                   coalesce(m.mentioned, []::VARCHAR[]) AS mentioned, m.negated,
                   coalesce(m.mentioned_text, '[]') AS mentioned_text,
                   coalesce(m.mentioned_json, '[]') AS mentioned_json,
                   coalesce(m.negated_json, '[]') AS negated_json,
                   coalesce(t.known, []::VARCHAR[]) AS truth,
                   coalesce(t.known_text, '[]') AS truth_text,
                   coalesce(t.known_json, '[]') AS truth_json,
                   CASE WHEN r.from_objects THEN coalesce(t.unknown_json, '[]')
                        ELSE '[]' END AS unknown_json,
                   coalesce(s.known, []::VARCHAR[]) AS seen,
                   coalesce(s.known_json, '[]') AS seen_json, {mention_list} AS mention_list
            FROM {p}_src r LEFT JOIN {p}_mention_keys mk ON mk.k = r.k {chair_join}
                           LEFT JOIN {p}_mention_sets m ON m.m_key = mk.m_key
                            LEFT JOIN {p}_set_objects t ON t.set_k = r.truth_key
                            LEFT JOIN {p}_set_objects s ON s.set_k = r.seen_key
        ), compared AS (
            SELECT *, list_filter(mentioned, lambda x: NOT list_contains(truth, x))
                          AS hallucinated,
                      list_filter(truth, lambda x: NOT list_contains(mentioned, x)) AS missed,
                      {n_mentions} AS n_mentions, {n_hallucinated} AS n_hallucinated_mentions
            FROM joined WHERE probe IS NULL
        ), attributed AS (
            -- hallucinated is sorted and distinct, and so are its filtered lists.
            SELECT *, CASE WHEN has_encoder AND from_objects
                           THEN list_filter(hallucinated, lambda x: list_contains(seen, x))
                           ELSE []::VARCHAR[] END AS by_encoder,
                      CASE WHEN has_encoder
                           THEN list_filter(hallucinated, lambda x: NOT list_contains(seen, x))
                           ELSE []::VARCHAR[] END AS by_head
            FROM compared
        ), probed AS (
            SELECT *, list_contains(truth, probe_object) AS present,
                   vlmscope_probe_answer(answer_text, probe_head) AS answer
            FROM (SELECT j.*, coalesce(j.mentioned[1], j.negated[1], probe_words) AS probe_object,
                         string_split(probe_words, ' ')[-1] AS probe_head
                  FROM (SELECT *, array_to_string(list_filter(vlmscope_words(probe),
                                                              lambda w: w <> ''), ' ')
                                      AS probe_words
                        FROM joined WHERE probe IS NOT NULL) j)
        )
        {self._caption_select(self.chair_compatible)}
        UNION ALL
        {self._probe_select()}
        """

    def judge_sql(self, source: str) -> str:
        """Captions scored with CHAIR, probes with POPE; extra columns for the summary."""
        return with_stages(self._stages(source), self._judged_sql())

    def run(self, con: duckdb.DuckDBPyConnection, source: str, run_id: str) -> dict[str, Any]:
        """Judge, store and summarise (the keys of :meth:`SummarisedRowEvaluator.run`): the
        stages of :meth:`judge_sql` as temporary tables, then the evaluation rows inserted
        straight from them (their text made once) and the summary aggregated from them."""
        self.check_columns(con, source)
        self.prepare(con)
        # A stored table numbers its rows itself, in parallel (row_number() runs on one
        # thread).
        ((is_table,),) = con.execute(
            "SELECT count(*) > 0 FROM duckdb_tables() WHERE table_name = ?", [source]).fetchall()
        key = "rowid + 1" if is_table else "row_number() OVER ()"
        if not is_table and facts.KEY_COLUMN in {
                row[0] for row in con.execute(f"DESCRIBE {source}").fetchall()}:
            key = facts.KEY_COLUMN  # the store's rows, numbered (see run_evaluations)
        with staged(con, self._stages(source, key)):
            judged = self._judged_sql()
            con.execute(
                "INSERT INTO evaluations SELECT $run_id, row_id, trace_id, span_id, $evaluator, "
                f"score, passed, label, explanation, metadata, $kind FROM ({judged})",
                {"run_id": run_id, "evaluator": self.name, "kind": self.annotator_kind},
            )
            count, passed, summary = self._summary(con, f"({judged})")
        return {**self.counts_summary(con, source, count, passed), **summary}

    @staticmethod
    def _caption_select(chair_compatible: bool) -> str:
        mentions_json = ("',\"mentions\":', to_json(mention_list)," if chair_compatible
                         else "")
        return """
        SELECT row_id, trace_id, span_id,
            CASE WHEN n_mentions = 0 THEN 1.0
                 ELSE 1.0 - n_hallucinated_mentions / n_mentions END::DOUBLE AS score,
            len(hallucinated) = 0 AS passed,
            CASE WHEN len(hallucinated) = 0 THEN 'faithful' ELSE 'hallucinated' END AS label,
            -- concat() makes each text in one allocation (|| copies it once per piece).
            concat(CASE WHEN len(mentioned) = 0 THEN 'mentions no known object'
                        ELSE 'mentions ' || mentioned_text END,
                   CASE WHEN len(hallucinated) = 0 THEN ''
                        ELSE concat('; hallucinated ', vlmscope_plain_list(hallucinated),
                                    ' (not in the ', ground_truth, ' ground truth ',
                                    truth_text, ')') END,
                   CASE WHEN len(by_encoder) = 0 THEN ''
                        ELSE '; the encoder reported ' || vlmscope_plain_list(by_encoder) END,
                   CASE WHEN len(by_head) = 0 THEN ''
                        ELSE '; the language head invented ' || vlmscope_plain_list(by_head)
                        END,
                   CASE WHEN len(missed) = 0 THEN ''
                        ELSE '; missed ' || vlmscope_plain_list(missed) END) AS explanation,
            -- json_object's layout, from the JSON of each list (made once per set).
            concat('{"kind":"caption","mentioned":', mentioned_json, """ + mentions_json + """
                   ',"hallucinated":', to_json(hallucinated),
                   ',"missed":', to_json(missed),
                   ',"negated":', negated_json,
                   ',"ground_truth":"', ground_truth,
                   '","ground_truth_objects":', truth_json,
                   ',"unknown_objects":', unknown_json,
                   ',"encoder_saw":', seen_json,
                   ',"hallucinated_by_encoder":', to_json(by_encoder),
                   ',"hallucinated_by_language_head":', to_json(by_head),
                   ',"hallucinated_unattributed":',
                   CASE WHEN has_encoder THEN '[]' ELSE to_json(hallucinated)::VARCHAR END,
                   '}') AS metadata,
            'caption' AS kind, n_mentions AS n_mentioned,
            n_hallucinated_mentions AS n_hallucinated, len(truth) AS n_truth,
            len(truth) - len(missed) AS n_covered, len(by_encoder) AS n_by_encoder,
            len(by_head) AS n_by_head, NULL::VARCHAR AS pope_answer,
            NULL::BOOLEAN AS pope_truth, ground_truth
        FROM attributed
        """

    @staticmethod
    def _probe_select() -> str:
        return """
        SELECT row_id, trace_id, span_id,
            CASE WHEN answer IS NOT NULL AND (answer = 'yes') = present THEN 1.0
                 ELSE 0.0 END::DOUBLE AS score,
            coalesce((answer = 'yes') = present, false) AS passed,
            CASE WHEN answer IS NULL THEN 'unparsed'
                 WHEN answer = 'yes' AND present THEN 'true_positive'
                 WHEN answer = 'yes' THEN 'false_positive'
                 WHEN present THEN 'false_negative' ELSE 'true_negative' END AS label,
            'probe of ' || vlmscope_quote(probe_object) || ': '
            || CASE WHEN answer IS NULL THEN 'the answer ' || vlmscope_quote(answer_text)
                                             || ' reads as neither yes nor no'
                    ELSE 'answered ' || answer END
            || '; the ' || ground_truth || ' ground truth '
            || CASE WHEN present THEN 'has it' ELSE 'lacks it' END
            || ' ' || vlmscope_quote_list(truth) AS explanation,
            json_object('kind', 'probe', 'object', probe_object, 'answer', answer,
                        'present', present, 'ground_truth', ground_truth,
                        'ground_truth_objects', truth)::VARCHAR AS metadata,
            'probe' AS kind, 0 AS n_mentioned, 0 AS n_hallucinated, 0 AS n_truth,
            0 AS n_covered, 0 AS n_by_encoder, 0 AS n_by_head, answer AS pope_answer,
            present AS pope_truth, ground_truth
        FROM probed
        """

    def summarise(self, con: duckdb.DuckDBPyConnection, judged: str) -> dict[str, Any]:
        """CHAIR-i, CHAIR-s, coverage, hallucination sources and POPE metrics (see the
        module docstring); a rate is None when its denominator is 0."""
        return self._summary(con, judged)[2]

    def statistics_sql(self, judged: str) -> str:
        """The counts the summary is computed from, in one row: the statistics of disjoint
        parts of the rows, stacked and added, give the summary of all of them (see
        :meth:`summarise_statistics`)."""
        return f"""
            SELECT count(*) AS judged, count(*) FILTER (WHERE passed) AS passed,
                   count(*) FILTER (WHERE kind = 'caption') AS captions,
                   coalesce(sum(n_mentioned), 0) AS mentions,
                   coalesce(sum(n_hallucinated), 0) AS hallucinated,
                   count(*) FILTER (WHERE n_hallucinated > 0) AS hallucinating,
                   coalesce(sum(n_truth), 0) AS truth, coalesce(sum(n_covered), 0) AS covered,
                   coalesce(sum(n_by_encoder), 0) AS by_encoder,
                   coalesce(sum(n_by_head), 0) AS by_head,
                   count(*) FILTER (WHERE ground_truth = 'encoder') AS from_encoder,
                   count(*) FILTER (WHERE kind = 'probe') AS probes,
                   count(*) FILTER (WHERE pope_answer = 'yes' AND pope_truth) AS tp,
                   count(*) FILTER (WHERE pope_answer = 'yes' AND NOT pope_truth) AS fp,
                   count(*) FILTER (WHERE pope_answer = 'no' AND NOT pope_truth) AS tn,
                   count(*) FILTER (WHERE pope_answer = 'no' AND pope_truth) AS fn,
                   count(*) FILTER (WHERE kind = 'probe' AND pope_answer IS NULL) AS unparsed
            FROM {judged}"""

    def summarise_statistics(self, con: duckdb.DuckDBPyConnection,
                             statistics: str) -> dict[str, Any]:
        """:meth:`summarise`'s keys from the relation ``statistics`` (rows of
        :meth:`statistics_sql`, from one or many parts of the rows)."""
        return self._summary(con, judged=None, statistics=statistics)[2]

    def _summary(self, con: duckdb.DuckDBPyConnection, judged: str | None,
                 statistics: str | None = None) -> tuple[int, int, dict[str, Any]]:
        """The judged rows, those that passed, and :meth:`summarise`'s keys (one pass over
        ``judged``, or the sums of ``statistics``); keeps the statistics when asked."""
        if statistics is None:
            table = con.sql(self.statistics_sql(judged)).to_arrow_table()
            if self.kept_statistics is not None:
                self.kept_statistics.append(table)
            values = [table.column(i)[0].as_py() for i in range(table.num_columns)]
        else:
            names = [r[0] for r in con.execute(f"DESCRIBE {statistics}").fetchall()]
            values = list(con.execute(
                "SELECT " + ", ".join(f"coalesce(sum({n}), 0)::BIGINT" for n in names)
                + f" FROM {statistics}").fetchall()[0])
        (judged_rows, passed, captions, mentions, hallucinated, hallucinating, truth, covered,
         by_encoder, by_head, from_encoder, probes, tp, fp, tn, fn,
         unparsed) = (int(v) for v in values)

        def rate(numerator: int, denominator: int) -> float | None:
            return numerator / denominator if denominator else None

        parsed = tp + fp + tn + fn
        precision, recall = rate(tp, tp + fp), rate(tp, tp + fn)
        return judged_rows, passed, {
            "captions": captions,
            "chair_i": rate(hallucinated, mentions),
            "chair_s": rate(hallucinating, captions),
            "coverage": rate(covered, truth),
            "mentions": mentions,
            "hallucinated_mentions": hallucinated,
            "hallucinated_by_encoder": by_encoder,
            "hallucinated_by_language_head": by_head,
            "ground_truth_from_encoder": from_encoder,
            "pope_probes": probes,
            "pope_unparsed": unparsed,
            "pope_accuracy": rate(tp + tn, parsed),
            "pope_precision": precision,
            "pope_recall": recall,
            "pope_f1": (2 * precision * recall / (precision + recall)
                        if precision and recall else (0.0 if parsed else None)),
            "pope_yes_ratio": rate(tp + fp, parsed),
        }
