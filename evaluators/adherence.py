"""ImageInstructionAdherence: does the answer do what the instruction asked, in the asked
form, without asserting objects the image lacks?

Deterministic and explainable, in SQL. The instruction is classified by what it asks for, the
row's instruction kind (column ``instruction_kind``, span attribute
``vlmscope.instruction.kind``) when it has one, else the kind read from the instruction by the
rule FailureAttribution reads it by (``vlmscope_instruction_kind``,
:data:`vlmscope.evaluators.reading.KIND_PATTERNS`), so that the two evaluators never disagree
on what a row asked:

* ``counting`` - kind ``count`` ("how many", "count", "number of");
* ``listing`` - kind ``list`` ("list", "enumerate", "which digits are shown");
* ``describing`` - kind ``describe`` ("describe", "caption", "what do you see");
* ``yes_no`` - kind ``probe`` ("is there a dog?"), or, of the rest, a question starting with
  is/are/does/do/can/was/were/has/have/will/should/could ("is the cat asleep?");
* ``naming`` - kind ``name`` ("what", "which", "who", "name", "identify", "classify");
* ``other`` otherwise;

and its explicit format constraints are read: "one word"/"a single word" (``max_words`` 1),
"at most / no more than / in / within / up to N words" (``max_words`` N), "answer with a number"
(``number``), "in JSON" (``json``), "yes or no" (``yes_no``).

Checks (each applicable or not): ``non_empty``; ``not_refusal`` (no "I'm sorry", "I cannot",
"as an AI", ...); ``answer_type`` (yes_no: starts with yes/no; counting: has a number;
naming: is not a bare yes/no; listing: names its items, one or more, and is not a bare
yes/no or a bare number; describing: at least 3 words);
``format_max_words``, ``format_number``, ``format_json``, ``format_yes_no`` when asked; and
``object_consistency`` - the objects the answer asserts agree with the ground truth (the row's
objects) or, without it, with the encoder's labels of score ``>= encoder_threshold``:
:class:`~vlmscope.evaluators.hallucination.CaptionHallucination`'s judgement of the same row
(no hallucinated object; for a yes/no object probe, the yes/no matches).

``score = passed checks / applicable checks``; ``passed`` when every applicable check passes;
metadata lists each check with its detail, and the reason names the failed ones.

An optional ``judge`` (any callable ``judge(image, instruction, answer) -> (score, reason)``,
e.g. an LLM) is called once per judged row; its verdicts are stored as evaluator
``instruction_adherence_judge`` with annotator kind ``LLM``. ``image`` is
``images(image_sha256)`` when an ``images`` resolver is given, else the image's SHA-256.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from vlmscope import conventions as cv
from vlmscope.evaluators.base import EvalResult, with_columns
from vlmscope.evaluators.declaration import Metric, Option, comma_list
from vlmscope.evaluators.exact import exact_mean_of
from vlmscope.evaluators.hallucination import DEFAULT_ENCODER_THRESHOLD, CaptionHallucination
from vlmscope.evaluators.summarised import SummarisedRowEvaluator
from vlmscope.evaluators.vocabulary import Vocabulary

Judge = Callable[[Any, str, str | None], tuple[float, str]]
"""An optional judge: ``judge(image, instruction, answer) -> (score in [0, 1], reason)``."""

INSTRUCTION_TYPES = ("counting", "listing", "describing", "yes_no", "naming", "other")
"""How instructions are classified (see the module docstring)."""

TYPE_OF_KIND = {"count": "counting", "list": "listing", "describe": "describing",
                "probe": "yes_no", "name": "naming"}
"""Each instruction kind's instruction type."""

_I = "lower(instruction)"
# A yes/no question that is not an object probe; it may follow a format prefix
# ("Answer yes or no: is it ...").
_START = r"(^|[:.!?]|\bplease)\s*"
_YES_NO_QUESTION = (rf"regexp_matches({_I}, "
                    rf"'{_START}(is|are|does|do|did|can|could|was|were|has|have|will|would|"
                    r"should)\b')")
_GIVEN_KIND = "nullif(lower(trim(instruction_kind)), '')"
_TYPE = ("CASE coalesce(CASE WHEN " + _GIVEN_KIND + " IN ("
         + ", ".join(f"'{k}'" for k in TYPE_OF_KIND) + ") THEN " + _GIVEN_KIND + " END, "
         "vlmscope_instruction_kind(instruction)) "
         + " ".join(f"WHEN '{k}' THEN '{t}'" for k, t in TYPE_OF_KIND.items())
         + f" ELSE CASE WHEN {_YES_NO_QUESTION} THEN 'yes_no' ELSE 'other' END END")
_MAX_WORDS = rf"""CASE
    WHEN regexp_matches({_I}, '\b(one|a single|single) word\b') THEN 1
    ELSE TRY_CAST(nullif(regexp_extract({_I},
        '\b(?:at most|no more than|in|within|up to|under)\s+(\d+)\s+words?\b', 1), '')
        AS INTEGER) END"""
_WANTS_NUMBER = (rf"regexp_matches({_I}, "
                 r"'\b(answer with a number|as a number|a number only|numeric answer|"
                 r"number only|in digits)\b')")
_WANTS_JSON = rf"regexp_matches({_I}, '\bjson\b')"
_WANTS_YES_NO = rf"regexp_matches({_I}, '\byes (or|/) no\b|\byes/no\b')"
_REFUSAL = (r"(?i)^\s*(i''?m sorry|sorry|i cannot|i can''?t|i am unable|i''?m unable|"
            r"i am not able|as an ai|i don''?t know|unable to)|cannot (help|assist)")
"""Answers that refuse (SQL-quoted: ``''`` is one apostrophe)."""
_NUMBER_WORDS = ("zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
                 "thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|"
                 "none|no")
_YES_NO = "('yes', 'no')"
_NUMERAL_ONLY = r"^\s*[-+]?\d+(\.\d+)?\s*[.!]?\s*$"
"""An answer that is a bare numeral (a count, not a list)."""
_STATISTICS_SCHEMA = pa.schema([("kind", pa.string()), ("key", pa.string()),
                                ("score", pa.float64()), ("n", pa.int64())])


class ImageInstructionAdherence(SummarisedRowEvaluator):
    """Checks that an answer follows its instruction (see the module docstring).

    ``vocabularies``, ``encoder_threshold``: as for
    :class:`~vlmscope.evaluators.hallucination.CaptionHallucination`, whose judgement gives
    ``object_consistency``; ``judge``/``images``: the optional LLM judge.

    Example::

        >>> r = ImageInstructionAdherence().evaluate(
        ...     instruction="Answer in one word: what animal is this?", output="a brown dog")
        >>> r.passed, r.metadata["failed"]
        (False, ['format_max_words'])
    """

    name = "instruction_adherence"
    description = ("does the answer follow the instruction: type, explicit format, no "
                   "refusal, objects consistent with the ground truth or encoder")
    required_columns = ("row_id", "trace_id", "span_id", "llm_span_id", "instruction",
                        "output", "objects", "top_k_labels", "top_k_scores", "image_sha256")
    optional_columns = ("encoder_multi_label", "instruction_kind")
    options = (
        Option("vocabularies",
               "Sequence[str | Path | Vocabulary | Mapping[str, Iterable[str]]]", ("coco",),
               "object vocabularies of the object_consistency check", flag="--vocabulary",
               parse=comma_list, metavar="NAMES"),
        Option("encoder_threshold", "float", DEFAULT_ENCODER_THRESHOLD,
               "score at which an encoder label counts as present (rows without objects)"),
        Option("judge", "Judge | None", None,
               "an LLM judge: judge(image, instruction, answer) -> (score, reason)"),
        Option("images", "Callable[[str | None], Any] | None", None,
               "the judge's images: image SHA-256 -> image"),
    )
    summary_metrics = (
        Metric("adherence", "mean share of instruction checks passed", gated=True),)
    merged_from = ("rows per distinct score, instruction type and failed check (and the "
                   "judge's scores per value)")

    def __init__(
        self,
        vocabularies: Sequence[str | Path | Vocabulary | Mapping[str, Iterable[str]]] = (
            "coco",),
        *,
        encoder_threshold: float = DEFAULT_ENCODER_THRESHOLD,
        judge: Judge | None = None,
        images: Callable[[str | None], Any] | None = None,
    ) -> None:
        if judge is not None and not callable(judge):
            raise TypeError("judge must be a callable judge(image, instruction, answer) -> "
                            f"(score, reason), got {type(judge).__name__}")
        super().__init__()
        self.objects = CaptionHallucination(vocabularies, objects_from_encoder=True,
                                            encoder_threshold=encoder_threshold)
        self.judge = judge
        self.images = images
        self._tag = uuid.uuid4().hex

    def config(self) -> dict[str, Any]:
        """The object check's settings and whether a judge ran."""
        objects = self.objects.config()
        return {"vocabularies": objects["vocabularies"],
                "encoder_threshold": objects["encoder_threshold"],
                "judge": self.judge is not None}

    def evaluate(
        self,
        instruction: str | None = None,
        output: str | None = None,
        objects: Sequence[str] | None = None,
        encoder_labels: Sequence[str] | None = None,
        *,
        encoder_scores: Sequence[float] | None = None,
        image_sha256: str | None = None,
        instruction_kind: str | None = None,
    ) -> EvalResult:
        """Judge one answer; ``encoder_labels``/``encoder_scores``: the encoder's top-k;
        ``instruction_kind``: what the instruction asks, when known (one of
        :data:`~vlmscope.conventions.INSTRUCTION_KINDS`; default: read from the instruction).
        With a judge, its verdict is in ``metadata["judge"]`` (annotator kind LLM)."""
        result = self.evaluate_row({
            "row_id": "row", "instruction": instruction, "output": output,
            "objects": objects, "top_k_labels": encoder_labels,
            "top_k_scores": encoder_scores, "image_sha256": image_sha256,
            "instruction_kind": instruction_kind,
        })
        if self.judge is None or result.score is None:
            return result
        score, reason = self._ask_judge(image_sha256, instruction or "", output)
        metadata = {**result.metadata, "judge": {
            "score": score, "reason": reason, "annotator_kind": cv.ANNOTATOR_KIND_LLM}}
        return EvalResult(result.score, result.passed, result.label, result.reason, metadata)

    def _ask_judge(self, image_sha256: str | None, instruction: str,
                   answer: str | None) -> tuple[float, str]:
        assert self.judge is not None
        image = self.images(image_sha256) if self.images is not None else image_sha256
        score, reason = self.judge(image, instruction, answer)
        score = float(score)
        if not 0.0 <= score <= 1.0:
            raise ValueError(f"the judge returned score {score}; scores are in [0, 1]")
        return score, str(reason)

    # -- SQL ---------------------------------------------------------------------------------

    def prepare(self, con: duckdb.DuckDBPyConnection) -> None:
        """Everything the object check needs (macros, vocabulary)."""
        self.objects.prepare(con)

    def skip_reason_sql(self) -> str:
        """Without an instruction there is nothing to adhere to."""
        return ("CASE WHEN instruction IS NULL THEN 'no instruction' "
                "WHEN vlmscope_blank(instruction) THEN 'no instruction: it is empty' END")

    def judge_sql(self, source: str) -> str:
        """Classify, run the checks, score; extra column ``instruction_type``."""
        number = rf"'(?i)^\s*([-+]?\d+(\.\d+)?|{_NUMBER_WORDS})\s*[.!]?\s*$'"
        return rf"""
        WITH src AS MATERIALIZED (
            SELECT row_id, trace_id, coalesce(llm_span_id, span_id) AS span_id, instruction,
                   output, {_TYPE} AS instruction_type, {_MAX_WORDS} AS max_words,
                   {_WANTS_NUMBER} AS wants_number, {_WANTS_JSON} AS wants_json,
                   {_WANTS_YES_NO} AS wants_yes_no,
                   list_filter(vlmscope_words(output), lambda w: w <> '') AS words
            FROM {source} WHERE ({self.skip_reason_sql()}) IS NULL
        ), objects AS (
            SELECT row_id, trace_id, passed, explanation, kind = 'probe' OR n_mentioned > 0
                       AS asserts
            FROM ({self.objects.judge_sql(source)})
        ), checked AS MATERIALIZED (
            SELECT src.*, [
                {{'name': 'non_empty', 'applicable': true,
                  'passed': NOT vlmscope_blank(output),
                  'detail': CASE WHEN vlmscope_blank(output) THEN 'the answer is empty'
                                 ELSE 'the answer is not empty' END}},
                {{'name': 'not_refusal', 'applicable': NOT vlmscope_blank(output),
                  'passed': NOT regexp_matches(coalesce(output, ''), '{_REFUSAL}'),
                  'detail': CASE WHEN regexp_matches(coalesce(output, ''), '{_REFUSAL}')
                                 THEN 'the answer is a refusal' ELSE 'no refusal' END}},
                {{'name': 'answer_type',
                  'applicable': instruction_type <> 'other' AND NOT vlmscope_blank(output),
                  'passed': CASE instruction_type
                      WHEN 'yes_no' THEN words[1] IN {_YES_NO}
                      WHEN 'counting' THEN regexp_matches(lower(output),
                                                          '\b(\d+|{_NUMBER_WORDS})\b')
                      WHEN 'naming' THEN NOT coalesce(words[1] IN {_YES_NO}, false)
                      WHEN 'listing' THEN NOT coalesce(words[1] IN {_YES_NO}, false)
                                          AND NOT regexp_matches(output, '{_NUMERAL_ONLY}')
                      WHEN 'describing' THEN len(words) >= 3 ELSE true END,
                  'detail': 'a ' || instruction_type || ' instruction; ' || CASE
                      instruction_type WHEN 'yes_no' THEN 'asked for yes or no'
                      WHEN 'counting' THEN 'asked for a count'
                      WHEN 'naming' THEN 'asked to name something, not yes/no'
                      WHEN 'listing' THEN 'asked to list items, not yes/no or a count'
                      ELSE 'asked for a description of at least 3 words' END}},
                {{'name': 'format_max_words', 'applicable': max_words IS NOT NULL,
                  'passed': len(words) <= max_words,
                  'detail': 'at most ' || max_words || ' word(s) asked, the answer has '
                            || len(words)}},
                {{'name': 'format_number', 'applicable': wants_number,
                  'passed': regexp_matches(coalesce(output, ''), {number}),
                  'detail': 'a number asked, the answer is ' || coalesce(
                      vlmscope_quote(output), 'NULL')}},
                {{'name': 'format_json', 'applicable': wants_json,
                  'passed': coalesce(TRY(json_valid(trim(output))), false),
                  'detail': CASE WHEN coalesce(TRY(json_valid(trim(output))), false)
                                 THEN 'valid JSON' ELSE 'JSON asked, the answer is not valid '
                                 || 'JSON' END}},
                {{'name': 'format_yes_no', 'applicable': wants_yes_no,
                  'passed': coalesce(words[1] IN {_YES_NO}, false),
                  'detail': 'yes or no asked, the answer starts with '
                            || coalesce(vlmscope_quote(words[1]), 'nothing')}},
                {{'name': 'object_consistency', 'applicable': coalesce(o.asserts, false),
                  'passed': coalesce(o.passed, false),
                  'detail': coalesce(o.explanation, '')}}
            ] AS all_checks
            FROM src LEFT JOIN objects o ON o.row_id IS NOT DISTINCT FROM src.row_id
                AND o.trace_id IS NOT DISTINCT FROM src.trace_id
        ), scored AS MATERIALIZED (
            SELECT *, list_filter(all_checks, lambda c: c.applicable) AS checks,
                   list_transform(list_filter(all_checks, lambda c: c.applicable
                                              AND NOT c.passed), lambda c: c.name) AS failed
            FROM checked
        )
        SELECT row_id, trace_id, span_id,
               (1.0 - len(failed) / len(checks))::DOUBLE AS score, len(failed) = 0 AS passed,
               CASE WHEN len(failed) = 0 THEN 'adherent' ELSE 'not_adherent' END AS label,
               CASE WHEN len(failed) = 0
                    THEN 'all ' || len(checks) || ' checks passed (' || instruction_type
                         || ' instruction)'
                    ELSE 'failed ' || len(failed) || ' of ' || len(checks) || ' checks: '
                         || array_to_string(list_transform(list_filter(checks,
                                lambda c: NOT c.passed), lambda c: c.name || ' (' || c.detail
                                || ')'), '; ') END AS explanation,
               to_json({{'instruction_type': instruction_type,
                        'constraints': {{'max_words': max_words, 'number': wants_number,
                                        'json': wants_json, 'yes_no': wants_yes_no}},
                        'checks': list_transform(checks, lambda c: {{'name': c.name,
                                  'passed': c.passed, 'detail': c.detail}}),
                        'failed': failed}})::VARCHAR AS metadata,
               instruction_type, instruction, output
        FROM scored
        """

    def summarise(self, con: duckdb.DuckDBPyConnection, judged: str) -> dict[str, Any]:
        """``adherence`` = mean score; rows per instruction type; how often each check
        failed: from :meth:`statistics_sql`, as a merge of parts computes them."""
        return self.summarise_statistics(con, f"({self.statistics_sql(judged)})")

    def statistics_sql(self, judged: str) -> str:
        """Additive counts: rows per distinct score (the mean is summed exactly from them),
        per instruction type and per failed check."""
        return f"""
        SELECT 'score' AS kind, NULL::VARCHAR AS key, score, count(*) AS n FROM {judged}
        GROUP BY score
        UNION ALL SELECT 'type', instruction_type, NULL, count(*) FROM {judged}
        GROUP BY instruction_type
        UNION ALL SELECT 'failed', f, NULL, count(*) FROM (
            SELECT unnest(CAST(metadata->'$.failed' AS VARCHAR[])) AS f FROM {judged})
        GROUP BY f"""

    def summarise_statistics(self, con: duckdb.DuckDBPyConnection,
                             statistics: str) -> dict[str, Any]:
        """``adherence`` (the exact mean score), ``instruction_types`` and
        ``failed_checks`` from stacked :meth:`statistics_sql` rows, and ``judge`` (rows and
        exact mean score) when a judge ran."""
        rows = con.execute(f"SELECT kind, key, score, sum(n)::BIGINT FROM {statistics} "
                           "GROUP BY ALL ORDER BY kind, key, score").fetchall()
        summary: dict[str, Any] = {
            "adherence": exact_mean_of((s, n) for kind, _, s, n in rows if kind == "score"),
            "instruction_types": {k: n for kind, k, _, n in rows if kind == "type"},
            "failed_checks": {k: n for kind, k, _, n in rows if kind == "failed"},
        }
        if self.judge is not None:
            verdicts = [(s, n) for kind, _, s, n in rows if kind == "judge"]
            summary["judge"] = {"rows": sum(n for _, n in verdicts),
                                "mean_score": exact_mean_of(verdicts)}
        return summary

    def run(self, con: duckdb.DuckDBPyConnection, source: str, run_id: str) -> dict[str, Any]:
        """The deterministic checks; then, with a judge, one LLM verdict per judged row,
        stored as evaluator ``instruction_adherence_judge`` (summary key ``judge``:
        rows and mean score)."""
        # A relation without these optional columns (an older store's rows, a user's table).
        with with_columns(con, source, [pa.field("instruction_kind", pa.string()),
                                        pa.field("encoder_multi_label", pa.bool_())],
                          f"_vlmscope_adherence_{self._tag}") as rows:
            return self._run(con, rows, run_id)

    def _run(self, con: duckdb.DuckDBPyConnection, source: str, run_id: str) -> dict[str, Any]:
        summary = super().run(con, source, run_id)
        if self.judge is None:
            return summary
        rows = con.execute(
            f"SELECT row_id, trace_id, coalesce(llm_span_id, span_id), image_sha256, "
            f"instruction, output FROM {source} WHERE ({self.skip_reason_sql()}) IS NULL"
        ).fetchall()
        verdicts = []
        for row_id, trace_id, span_id, image, instruction, output in rows:
            score, reason = self._ask_judge(image, instruction, output)
            verdicts.append({"run_id": run_id, "row_id": row_id, "trace_id": trace_id,
                             "span_id": span_id, "evaluator": f"{self.name}_judge",
                             "score": score, "passed": score >= 0.5,
                             "label": "adherent" if score >= 0.5 else "not_adherent",
                             "explanation": reason,
                             "metadata": orjson.dumps({"judge": True}).decode(),
                             "annotator_kind": cv.ANNOTATOR_KIND_LLM})
        table = f"_vlmscope_judge_{self._tag}"
        con.register(table, pa.Table.from_pylist(verdicts, schema=pa.schema([
            ("run_id", pa.string()), ("row_id", pa.string()), ("trace_id", pa.string()),
            ("span_id", pa.string()), ("evaluator", pa.string()), ("score", pa.float64()),
            ("passed", pa.bool_()), ("label", pa.string()), ("explanation", pa.string()),
            ("metadata", pa.string()), ("annotator_kind", pa.string())])))
        try:
            con.execute(f"INSERT INTO evaluations SELECT * FROM {table}")
        finally:
            con.unregister(table)
        scores = Counter(v["score"] for v in verdicts)
        if self.kept_statistics is not None:
            self.kept_statistics.append(pa.Table.from_pylist(
                [{"kind": "judge", "key": None, "score": s, "n": n} for s, n in scores.items()],
                schema=_STATISTICS_SCHEMA))
        summary["judge"] = {"rows": len(verdicts), "mean_score": exact_mean_of(scores.items())}
        return summary
