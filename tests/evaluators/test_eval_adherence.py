"""ImageInstructionAdherence: instruction types, format constraints, refusals, object
consistency, the optional judge, and one implementation for rows and batches."""

from __future__ import annotations

import duckdb
import orjson
import pyarrow as pa
import pytest

from tests.blame_corpus import INSTRUCTION_KINDS_READ
from vlmscope.collectors.schema import migrate
from vlmscope.conventions import INSTRUCTION_KINDS
from vlmscope.evaluators import FailureAttribution, ImageInstructionAdherence, run_evaluations
from vlmscope.evaluators.adherence import INSTRUCTION_TYPES, TYPE_OF_KIND
from vlmscope.evaluators.base import PIPELINE_ROW_SCHEMA

ADHERENCE = ImageInstructionAdherence()


@pytest.mark.parametrize(("instruction", "kind"), [
    ("How many dogs are there?", "counting"), ("Count the cars.", "counting"),
    ("List the objects you see.", "listing"), ("What objects are on the table?", "listing"),
    ("Describe the image.", "describing"), ("Write a caption for this photo", "describing"),
    ("Is there a dog in the image?", "yes_no"), ("Does the man wear a hat?", "yes_no"),
    ("What animal is this?", "naming"), ("Answer in one word: which digit is it?", "naming"),
    ("Make it pop.", "other"), ("Can you describe the image?", "describing"),
    ("what digits are shown ?", "listing"), ("Which animals can you see?", "listing"),
    ("Answer yes or no: is it a cat?", "yes_no"),
])
def test_instructions_are_classified(instruction: str, kind: str) -> None:
    result = ADHERENCE.evaluate(instruction=instruction, output="something")
    assert result.metadata["instruction_type"] == kind


@pytest.mark.parametrize(("instruction", "kind"), INSTRUCTION_KINDS_READ)
def test_the_instruction_type_is_failure_attributions_kind(instruction: str, kind: str) -> None:
    """One story per row: the instructions FailureAttribution reads as ``kind``
    (test_eval_blame's ``test_the_kind_is_read_from_the_instruction``) are classified as
    that kind's type."""
    result = ADHERENCE.evaluate(instruction=instruction, output="something")
    assert result.metadata["instruction_type"] == TYPE_OF_KIND[kind]


def test_every_instruction_kind_has_an_instruction_type() -> None:
    assert sorted(TYPE_OF_KIND) == sorted(INSTRUCTION_KINDS)
    assert set(TYPE_OF_KIND.values()) == set(INSTRUCTION_TYPES) - {"other"}


def test_a_kind_given_with_the_row_wins_over_the_instruction() -> None:
    given = ADHERENCE.evaluate(instruction="which digit is shown?", output="three five",
                               instruction_kind="list")
    assert given.metadata["instruction_type"] == "listing" and given.passed
    # an unknown kind is not a kind: the instruction is read
    unknown = ADHERENCE.evaluate(instruction="which digit is shown?", output="three",
                                 instruction_kind="poem")
    assert unknown.metadata["instruction_type"] == "naming"


@pytest.mark.parametrize(("instruction", "answer", "failed"), [
    ("Is the cat asleep?", "Yes, it is.", []),
    ("Is the cat asleep?", "The cat sleeps on the mat.", ["answer_type"]),
    ("How many cats are there?", "two", []),
    ("How many cats are there?", "several cats", ["answer_type"]),
    ("What animal is this?", "no", ["answer_type"]),
    ("List the animals.", "cat, dog and bird", []),
    ("List the animals.", "cat", []),  # a list of one: the image may hold one animal
    ("what digits are shown ?", "three five", []),
    ("List the animals.", "yes", ["answer_type"]),
    ("List the animals.", "3", ["answer_type"]),
    ("Describe the image.", "cat", ["answer_type"]),
    ("Answer in one word: what animal is this?", "Cat.", []),
    ("Answer in one word: what animal is this?", "a brown cat", ["format_max_words"]),
    ("Describe the scene in at most 4 words.", "a cat sleeping peacefully outside",
     ["format_max_words"]),
    ("How many cats? Answer with a number.", "3", []),
    ("How many cats? Answer with a number.", "There are 3 cats", ["format_number"]),
    ("List the animals in JSON.", '{"animals": ["cat"]}', []),
    ("List the animals in JSON.", "cat, dog", ["format_json"]),
    ("Answer yes or no: is it a cat?", "Probably", ["answer_type", "format_yes_no"]),
    ("What animal is this?", "I'm sorry, but I cannot help with that.", ["not_refusal"]),
    ("What animal is this?", "As an AI, I can't see images.", ["not_refusal"]),
])
def test_each_failed_check_is_named_in_the_reason(instruction: str, answer: str,
                                                  failed: list[str]) -> None:
    result = ADHERENCE.evaluate(instruction=instruction, output=answer)
    assert result.metadata["failed"] == failed
    assert result.passed is (not failed)
    checks = result.metadata["checks"]
    assert result.score == pytest.approx(sum(c["passed"] for c in checks) / len(checks))
    for name in failed:
        assert f"{name} (" in result.reason


def test_an_empty_answer_fails_and_a_missing_instruction_is_skipped() -> None:
    empty = ADHERENCE.evaluate(instruction="What is this?", output="")
    assert empty.score == 0.0 and empty.metadata["failed"] == ["non_empty"]
    assert ADHERENCE.evaluate(instruction="What is this?", output=None).score == 0.0
    skipped = ADHERENCE.evaluate(instruction=None, output="a cat")
    assert skipped.score is None and skipped.reason == "skipped: no instruction"


def test_asserted_objects_must_agree_with_the_ground_truth() -> None:
    right = ADHERENCE.evaluate(instruction="Describe the image.",
                               output="a cat sleeping on a bed", objects=["cat", "bed"])
    wrong = ADHERENCE.evaluate(instruction="Describe the image.",
                               output="a dog sleeping on a bed", objects=["cat", "bed"])
    assert right.passed and "object_consistency" in [c["name"] for c in right.metadata["checks"]]
    assert wrong.metadata["failed"] == ["object_consistency"]
    assert "hallucinated [dog]" in wrong.reason


def test_without_ground_truth_the_encoder_evidence_is_used() -> None:
    result = ADHERENCE.evaluate(instruction="Is there a dog in the image?", output="yes",
                                encoder_labels=["cat", "bed"], encoder_scores=[0.7, 0.2])
    assert result.metadata["failed"] == ["object_consistency"]
    assert "the encoder ground truth lacks it" in result.reason
    agrees = ADHERENCE.evaluate(instruction="Is there a dog in the image?", output="no",
                                encoder_labels=["cat", "bed"], encoder_scores=[0.7, 0.2])
    assert agrees.passed


def test_without_any_evidence_the_object_check_does_not_apply() -> None:
    result = ADHERENCE.evaluate(instruction="Describe the image.", output="a dog on a bed")
    assert "object_consistency" not in [c["name"] for c in result.metadata["checks"]]
    assert result.passed


def test_non_english_and_huge_answers_are_scored() -> None:
    assert ADHERENCE.evaluate(instruction="Beschreibe das Bild.",
                              output="Ein Hund auf dem Sofa").metadata["instruction_type"] == (
        "other")
    huge = ADHERENCE.evaluate(instruction="Answer in one word: what is it?",
                              output="dog " * 300_000)
    assert huge.metadata["failed"] == ["format_max_words"]


def test_a_judge_adds_an_llm_verdict_stored_apart_with_annotator_kind_llm() -> None:
    calls: list[tuple] = []

    def judge(image: object, instruction: str, answer: str | None) -> tuple[float, str]:
        calls.append((image, instruction, answer))
        return (0.9 if answer == "a cat" else 0.1), "judged by the test"

    evaluator = ImageInstructionAdherence(judge=judge, images=lambda sha: f"pixels of {sha}")
    single = evaluator.evaluate(instruction="What is this?", output="a cat", image_sha256="abc")
    assert single.metadata["judge"] == {"score": 0.9, "reason": "judged by the test",
                                        "annotator_kind": "LLM"}
    assert calls == [("pixels of abc", "What is this?", "a cat")]
    con = rows_store([("What is this?", "a cat", None), ("What is this?", "a dog", None),
                      (None, "a dog", None)])
    run = run_evaluations(con, [evaluator], source="rows")
    stored = con.execute(
        "SELECT evaluator, annotator_kind, count(*), avg(score) FROM evaluations "
        "WHERE run_id = ? GROUP BY ALL ORDER BY ALL", [run.run_id]).fetchall()
    assert stored == [("instruction_adherence", "CODE", 2, 1.0),
                      ("instruction_adherence_judge", "LLM", 2, pytest.approx(0.5))]
    assert run.summaries["instruction_adherence"]["judge"] == {
        "rows": 2, "mean_score": pytest.approx(0.5)}


def test_a_judge_score_outside_zero_to_one_is_an_error() -> None:
    evaluator = ImageInstructionAdherence(judge=lambda image, instruction, answer: (7, "!"))
    with pytest.raises(ValueError, match="scores are in \\[0, 1\\]"):
        evaluator.evaluate(instruction="What is this?", output="a cat")


def rows_store(rows: list[tuple[str | None, str | None, list[str] | None]]
               ) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    migrate(con)
    con.register("rows_arrow", pa.Table.from_pylist(
        [{"row_id": f"r{i}", "trace_id": "t", "span_id": f"s{i}", "instruction": ins,
          "output": out, "objects": objects, "image_sha256": f"img{i}"}
         for i, (ins, out, objects) in enumerate(rows)], schema=PIPELINE_ROW_SCHEMA))
    con.execute("CREATE TABLE rows AS SELECT * FROM rows_arrow")
    return con


def test_per_row_and_batch_verdicts_agree_and_the_summary_averages_them() -> None:
    rows = [("Is there a dog in the image?", "yes", ["dog"]),
            ("Is there a dog in the image?", "yes", ["cat"]),
            ("How many cats? Answer with a number.", "2", ["cat"]),
            ("Describe the image in at most 3 words.", "a cat on a sofa", ["cat", "couch"]),
            ("What is this?", "I cannot help with that", None),
            ("List the objects in JSON.", '["cat"]', ["cat"]), ("", "cat", None)]
    con = rows_store(rows)
    run = run_evaluations(con, [ADHERENCE], source="rows")
    stored = {r[0]: r[1:] for r in con.execute(
        "SELECT row_id, score, passed, explanation, metadata FROM evaluations "
        "WHERE run_id = ?", [run.run_id]).fetchall()}
    scores = []
    for i, (instruction, answer, objects) in enumerate(rows):
        single = ADHERENCE.evaluate(instruction=instruction, output=answer, objects=objects)
        if single.score is None:
            assert f"r{i}" not in stored
            continue
        score, passed, explanation, metadata = stored[f"r{i}"]
        assert (score, passed, explanation) == (single.score, single.passed, single.reason)
        assert orjson.loads(metadata) == single.metadata
        scores.append(score)
    summary = run.summaries["instruction_adherence"]
    assert summary["adherence"] == pytest.approx(sum(scores) / len(scores))
    assert summary["failed_checks"] == {"format_max_words": 1, "not_refusal": 1,
                                        "object_consistency": 1}
    assert summary["skipped_reasons"] == {"no instruction: it is empty": 1}


def test_rows_without_an_instruction_kind_column_are_classified_by_their_instruction() -> None:
    """A store written before the column existed, or a user's own table (here without the
    multi-label flag too): both evaluators that read the kind run over it, and read it from
    the instruction."""
    con = rows_store([("what digits are shown ?", "three five", ["three", "five"]),
                      ("how many digits are there ?", "2", ["three", "five"])])
    con.execute("ALTER TABLE rows DROP COLUMN instruction_kind")
    con.execute("ALTER TABLE rows DROP COLUMN encoder_multi_label")
    con.execute("UPDATE rows SET expected = output, cohort = 'c', "
                "top_k_labels = ['three', 'five'], top_k_scores = [0.9, 0.8]")
    run = run_evaluations(con, [ADHERENCE, FailureAttribution()], source="rows")
    assert run.summaries["instruction_adherence"]["instruction_types"] == {
        "listing": 1, "counting": 1}
    assert con.execute("SELECT evaluator, label, count(*) FROM evaluations GROUP BY ALL "
                       "ORDER BY ALL").fetchall() == [
        ("failure_attribution", "correct", 2), ("instruction_adherence", "adherent", 2)]
    kinds = con.execute("SELECT metadata->>'$.kind' FROM evaluations WHERE evaluator = "
                        "'failure_attribution' ORDER BY row_id").fetchall()
    assert kinds == [("list",), ("count",)]


@pytest.mark.parametrize("evaluator", [ADHERENCE, FailureAttribution()],
                         ids=["adherence", "blame"])
def test_an_error_over_a_widened_relation_is_duckdbs_own(evaluator) -> None:
    """A mistyped column fails with DuckDB's error naming it, not with an aborted
    transaction's error from cleaning up after it."""
    con = rows_store([("what digits are shown ?", "three five", ["three"])])
    con.execute("ALTER TABLE rows DROP COLUMN instruction_kind")
    con.execute("ALTER TABLE rows DROP COLUMN instruction")
    con.execute("ALTER TABLE rows ADD COLUMN instruction INTEGER[] DEFAULT [1]")
    con.execute("UPDATE rows SET expected = 'three', cohort = 'c'")
    with pytest.raises(duckdb.BinderException, match="INTEGER"):
        run_evaluations(con, [evaluator], source="rows")
    # the store is left as it was, and usable
    assert con.execute("SELECT count(*) FROM evaluations").fetchall() == [(0,)]
