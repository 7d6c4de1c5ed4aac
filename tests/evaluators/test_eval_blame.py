"""FailureAttribution: the rule table, unattributable rows, the oracle swap, summaries, and one
implementation for rows and batches."""

from __future__ import annotations

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pytest

from tests.blame_corpus import INSTRUCTION_KINDS_READ
from vlmscope.collectors.schema import migrate
from vlmscope.evaluators import CaptionHallucination, FailureAttribution, run_evaluations
from vlmscope.evaluators.base import PIPELINE_ROW_SCHEMA

BLAME = FailureAttribution()
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@pytest.mark.parametrize(("answer", "expected", "top_k", "blame", "reason"), [
    ("seven", "seven", ["one", "seven"], "correct",
     "name: expected ['seven'], the encoder read ['one'], the answer names ['seven']; "
     "head recovered 'one', 'seven' (the encoder misread it)"),
    ("one", "seven", ["seven", "one"], "language_head",
     "name: expected ['seven'], the encoder read ['seven'], the answer names ['one']; "
     "head dropped 'seven', which the encoder saw; head invented 'one'"),
    ("one", "seven", ["one", "two"], "encoder",
     "name: expected ['seven'], the encoder read ['one'], the answer names ['one']; "
     "encoder missed 'seven'; encoder reported 'one', which is not there, and the head "
     "repeated it"),
    ("two", "seven", ["one", "two"], "both",
     "name: expected ['seven'], the encoder read ['one'], the answer names ['two']; "
     "encoder missed 'seven'; head invented 'two'; head recovered 'one' (the encoder "
     "misread it)"),
])
def test_each_rule_of_the_table_gives_its_blame_and_says_why(answer: str, expected: str,
                                                             top_k: list[str], blame: str,
                                                             reason: str) -> None:
    result = BLAME.evaluate(output=answer, expected=expected, encoder_top_k=top_k)
    assert result.label == blame and result.reason == reason
    assert result.passed is (blame == "correct") and result.score == float(blame == "correct")


@pytest.mark.parametrize(("expected", "read", "answer", "objects", "blame"), [
    # one object in each class of the table (the reading is multi-label: every label scored)
    (["three"], ["three"], ["three"], {"three": "correct"}, "correct"),
    (["three", "seven"], ["three"], ["three"], {"three": "correct",
                                                "seven": "encoder_missed"}, "encoder"),
    (["three", "seven"], ["three", "seven"], ["three"],
     {"three": "correct", "seven": "head_dropped"}, "language_head"),
    (["three"], ["three"], ["three", "six"], {"three": "correct", "six": "head_invented"},
     "language_head"),
    (["three"], ["three", "eight"], ["three", "eight"],
     {"three": "correct", "eight": "encoder_false_positive"}, "encoder"),
    (["three"], ["three", "eight"], ["three"], {"three": "correct",
                                                "eight": "head_recovered"}, "correct"),
    (["three", "seven"], ["three"], ["three", "seven"],
     {"three": "correct", "seven": "head_recovered"}, "correct"),
    (["three", "seven"], ["three", "eight"], ["three", "seven", "six"],
     {"three": "correct", "seven": "head_recovered", "eight": "head_recovered",
      "six": "head_invented"}, "language_head"),
    (["three", "seven"], ["three"], ["three", "six"],
     {"three": "correct", "seven": "encoder_missed", "six": "head_invented"}, "both"),
])
def test_every_object_gets_its_class_and_the_row_its_blame(expected: list[str],
                                                           read: list[str], answer: list[str],
                                                           objects: dict[str, str],
                                                           blame: str) -> None:
    labels = [*read, *(w for w in DIGITS if w not in read)]
    scores = [0.9] * len(read) + [0.1] * (len(labels) - len(read))
    result = FailureAttribution(classes=DIGITS).evaluate(
        output=" ".join(answer), expected=" ".join(expected), encoder_top_k=labels,
        encoder_scores=scores, instruction="what digits are shown ?")
    assert result.metadata["objects"] == objects
    assert result.label == blame
    assert result.metadata["kind"] == "list"
    assert result.metadata["encoder_reading"] == sorted(read)


def test_an_extra_object_in_a_single_label_answer_is_an_error() -> None:
    result = BLAME.evaluate(output="five six", expected="five",
                            encoder_top_k=["five", "nine", "four"])
    assert result.label == "language_head"
    assert result.metadata["objects"] == {"five": "correct", "six": "head_invented"}
    assert result.reason.endswith("head invented 'six'")


def test_a_digit_the_encoder_saw_but_the_head_dropped_is_the_heads_fault() -> None:
    result = BLAME.evaluate(output="three five", expected="three five nine",
                            encoder_top_k=["three", "five", "nine"],
                            encoder_scores=[0.97, 0.91, 0.88],
                            instruction="what digits are shown ?")
    assert result.label == "language_head"
    assert result.metadata["objects"]["nine"] == "head_dropped"


def test_a_multi_label_reading_is_the_labels_over_the_threshold() -> None:
    top_k, scores = ["three", "five", "nine"], [0.9, 0.6, 0.3]
    for threshold, reading in ((0.5, ["five", "three"]), (0.2, ["five", "nine", "three"]),
                               (0.95, [])):
        result = FailureAttribution(encoder_threshold=threshold).evaluate(
            output="three five nine", expected="three five nine", encoder_top_k=top_k,
            encoder_scores=scores, instruction="what digits are shown ?")
        assert result.metadata["encoder_reading"] == reading
    # without scores, the reading of a single-label encoder is its top-1
    assert BLAME.evaluate(output="three", expected="three five nine", encoder_top_k=top_k,
                          instruction="what digits are shown ?"
                          ).metadata["encoder_reading"] == ["three"]
    with pytest.raises(ValueError, match="one score per label"):
        BLAME.evaluate(output="three", expected="three", encoder_top_k=top_k,
                       encoder_scores=[0.9])
    with pytest.raises(ValueError, match="encoder_threshold"):
        FailureAttribution(encoder_threshold=1.5)


@pytest.mark.parametrize(("instruction", "kind"), INSTRUCTION_KINDS_READ)
def test_the_kind_is_read_from_the_instruction(instruction: str, kind: str) -> None:
    expected = {"count": "1", "probe": "yes"}.get(kind, "seven")
    result = BLAME.evaluate(output=expected, expected=expected, encoder_top_k=["seven"],
                            instruction=instruction, objects=["seven", "dog", "cat", "person"]
                            if kind == "probe" else None)
    assert result.metadata["kind"] == kind


def test_a_kind_given_with_the_row_wins_over_the_instruction() -> None:
    result = BLAME.evaluate(output="three", expected="three five", encoder_top_k=["three"],
                            instruction="what is it?", instruction_kind="list")
    assert result.metadata["kind"] == "list"
    assert result.metadata["objects"] == {"three": "correct", "five": "encoder_missed"}
    bad = BLAME.evaluate(output="three", expected="three", encoder_top_k=["three"],
                         instruction_kind="poem")
    assert bad.label == "skipped" and bad.reason == "skipped: unknown instruction kind 'poem'"


@pytest.mark.parametrize(("answer", "read", "blame", "reason_part"), [
    ("3", ["three", "five", "nine"], "correct", "the answer says 3"),
    ("2", ["three", "five"], "encoder", "encoder missed 'nine'; the head followed the "
                                        "encoder's count"),
    ("2", ["three", "five", "nine"], "language_head", "the head miscounted"),
    ("one", ["three", "five"], "both", "encoder missed 'nine'"),
    ("two digits", ["three", "five"], "encoder", "the answer says 2"),
    ("many", ["three", "five"], "unattributable", "gives no number"),
])
def test_counts_compare_the_encoders_count_with_the_answers(answer: str, read: list[str],
                                                            blame: str,
                                                            reason_part: str) -> None:
    labels = [*read, *(w for w in DIGITS if w not in read)]
    scores = [0.9] * len(read) + [0.05] * (len(labels) - len(read))
    result = BLAME.evaluate(output=answer, expected="3", encoder_top_k=labels,
                            encoder_scores=scores, objects=["three", "five", "nine"],
                            instruction="how many digits are there ? answer with a number")
    assert result.label == blame and reason_part in result.reason
    assert result.metadata["kind"] == "count" and result.metadata["expected"] == 3


@pytest.mark.parametrize(("expected", "seen", "answer", "object_class", "blame"), [
    ("yes", True, "yes", "correct", "correct"),
    ("yes", False, "no", "encoder_missed", "encoder"),
    ("yes", True, "no", "head_dropped", "language_head"),
    ("no", False, "yes", "head_invented", "language_head"),
    ("no", True, "yes, there is", "encoder_false_positive", "encoder"),
    ("no", True, "No.", "head_recovered", "correct"),
    ("yes", False, "Yes", "head_recovered", "correct"),
])
def test_a_probe_compares_the_encoders_presence_reading_with_the_answer(
        expected: str, seen: bool, answer: str, object_class: str, blame: str) -> None:
    scores = [0.9 if seen else 0.1, 0.8]
    result = BLAME.evaluate(output=answer, expected=expected, encoder_top_k=["dog", "cat"],
                            encoder_scores=scores, instruction="Is there a dog in the image?")
    assert result.metadata["objects"] == {"dog": object_class}
    assert result.label == blame


def test_a_probe_answer_that_is_neither_yes_nor_no_is_unattributable_and_says_so() -> None:
    result = BLAME.evaluate(output="perhaps", expected="yes", encoder_top_k=["dog"],
                            instruction="is there a dog ?")
    assert result.label == "unattributable"
    assert "the answer 'perhaps' reads as neither yes nor no" in result.reason


PROBE_ANSWERS = (
    "Yes", "no", "There is a dog on the left.", "The image shows a dog asleep.", "Absolutely.",
    "Of course.", "I believe so.", "Yes, but it is small.", "Nope.", "NO!", "Absolutely not.",
    "I can't see one.", "The image shows a kitchen. There is no dog.",
    "With a confidence of 0.93, no.", "Is there a dog in the image? Yes.",
    "No\nThe picture shows a field.", "There is not only a dog but also a cat.", "Possibly.",
    "I'm not sure.", "The image shows a kitchen.", "Hard to tell; maybe.", "dogs everywhere",
    "It is impossible to say.", "Certainly not!", "yes. no.", "There are two dogs and a cat.",
    "I do not think so.", "Not at all; it is a cat.", "one, on the sofa",
)


@pytest.mark.parametrize("probed", ["dog", "stop sign", "dogs"])
def test_a_probe_answer_reads_as_caption_hallucination_reads_it(probed: str) -> None:
    """One story per row: the yes/no a probe answer gives is POPE's reading
    (``CaptionHallucination``'s ``answer``), for every phrasing, so the two evaluators never
    disagree on what the head said."""
    pope = CaptionHallucination()
    instruction = f"Is there a {probed} in the image?"
    disagreements = []
    for answer in PROBE_ANSWERS:
        read = pope.evaluate(output=answer, objects=[probed],
                             instruction=instruction).metadata["answer"]
        blamed = BLAME.evaluate(output=answer, expected="yes", encoder_top_k=[probed],
                                instruction=instruction)
        if blamed.metadata["answer_reading"] != read:
            disagreements.append((answer, read, blamed.metadata["answer_reading"]))
        assert (blamed.label == "unattributable") == (read is None)
    assert disagreements == []


@pytest.mark.parametrize(("answer", "expected", "top_k"), [
    ("television receiver", "tv", ["tv"]),            # ImageNet alias, COCO class
    ("a tv", "television", ["television"]),           # COCO alias, ImageNet class
    ("television", "television receiver", ["television"]),
    ("the TV monitor", "television system", ["tv"]),
])
def test_names_the_two_alias_tables_chain_read_as_one_label(answer: str, expected: str,
                                                            top_k: list[str]) -> None:
    """ImageNet's ``television receiver`` -> ``television`` and COCO's ``television`` ->
    ``tv`` make one set of names: any of them, as label, answer or encoder reading, is the
    same object (resolved once, in ``evaluators.aliases.resolve_alias_chains``)."""
    result = BLAME.evaluate(output=answer, expected=expected, encoder_top_k=top_k)
    assert result.label == "correct", result.reason
    assert len(result.metadata["objects"]) == 1


def test_answers_are_read_as_labels_through_normalisation_aliases_and_mentions() -> None:
    assert BLAME.evaluate(output="The Seven.", expected="seven",
                          encoder_top_k=["seven"]).label == "correct"
    assert BLAME.evaluate(output="a kitten", expected="cat",
                          encoder_top_k=["dog"]).label == "correct"
    said = BLAME.evaluate(output="I think it is a one, not a seven", expected="seven",
                          encoder_top_k=["seven", "one"])
    assert said.label == "language_head" and said.metadata["answer_label"] == "one"


def test_a_near_miss_says_where_the_expected_label_was_in_the_top_k() -> None:
    result = BLAME.evaluate(output="one", expected="seven",
                            encoder_top_k=["one", "two", "seven"])
    assert result.label == "encoder"
    assert result.metadata["expected_rank"] == 3 and result.metadata["near_miss"] is True
    assert result.reason.endswith("expected is rank 3 of the encoder's top-k (near miss)")
    assert BLAME.evaluate(output="one", expected="seven",
                          encoder_top_k=["one", "two"]).metadata["near_miss"] is False


@pytest.mark.parametrize(("answer", "top_k", "reason"), [
    ("one", None, "name: expected ['seven'], the answer names ['one']; no encoder reading "
                  "for this row (no top-k labels recorded)"),
    ("", ["one"], "name: expected ['seven'], the encoder read ['one'], the answer names "
                  "nothing readable; the answer is empty, so it cannot be read"),
    (None, ["one"], "name: expected ['seven'], the encoder read ['one'], the answer names "
                    "nothing readable; the answer is empty, so it cannot be read"),
    ("it is", ["one"], "name: expected ['seven'], the encoder read ['one'], the answer names "
                       "nothing readable; the answer 'it is' names no object, so it cannot "
                       "be read"),
])
def test_rows_that_cannot_be_blamed_are_unattributable_with_the_reason(
        answer: str | None, top_k: list[str] | None, reason: str) -> None:
    result = BLAME.evaluate(output=answer, expected="seven", encoder_top_k=top_k)
    assert result.label == "unattributable" and result.reason == reason


@pytest.mark.parametrize(("answer", "top_k", "blame", "objects"), [
    # an answer outside the vocabulary while the encoder misread: both parts failed
    ("banana", ["one"], "both", {"seven": "encoder_missed", "one": "head_recovered",
                                 "banana": "head_invented"}),
    ("banana", ["seven", "one"], "language_head", {"seven": "head_dropped",
                                                   "banana": "head_invented"}),
    ("seven or one", ["one"], "encoder", {"seven": "head_recovered",
                                          "one": "encoder_false_positive"}),
])
def test_answers_naming_unknown_or_several_labels_are_still_blamed(
        answer: str, top_k: list[str], blame: str, objects: dict[str, str]) -> None:
    result = BLAME.evaluate(output=answer, expected="seven", encoder_top_k=top_k)
    assert (result.label, result.metadata["objects"]) == (blame, objects)


def test_rows_without_an_expected_label_are_skipped() -> None:
    result = BLAME.evaluate(output="one", expected=None, encoder_top_k=["one"])
    assert (result.score, result.label, result.reason) == (
        None, "skipped", "skipped: no expected label")


def test_extra_labels_and_synonyms_let_answers_name_labels_the_run_never_saw() -> None:
    unknown = BLAME.evaluate(output="deuce", expected="seven", encoder_top_k=["seven"])
    assert unknown.metadata["objects"] == {"seven": "head_dropped", "deuce": "head_invented"}
    labelled = FailureAttribution(labels=["two"], synonyms={"deuce": "two"})
    known = labelled.evaluate(output="deuce", expected="seven", encoder_top_k=["seven"])
    assert known.label == "language_head"
    assert known.metadata["objects"] == {"seven": "head_dropped", "two": "head_invented"}


@pytest.mark.parametrize(("top_k", "oracle_answer", "rule", "blame", "verdict"), [
    (["one"], "seven", "encoder", "encoder", "confirmed"),
    (["one"], "one", "encoder", "both", "revised"),
    (["seven"], "one", "language_head", "language_head", "confirmed"),
    (["seven"], "seven", "language_head", "language_head", "not_reproduced"),
    (["one"], "seven", "both", "encoder", "revised"),
])
def test_the_oracle_swap_confirms_or_revises_the_blame(top_k: list[str], oracle_answer: str,
                                                       rule: str, blame: str,
                                                       verdict: str) -> None:
    asked: list[tuple[str, str | None]] = []

    def head(label: str, instruction: str | None) -> str:
        asked.append((label, instruction))
        return oracle_answer

    answer = "two" if rule == "both" else "one"
    result = FailureAttribution(labels=["one", "two"], head=head).evaluate(
        output=answer, expected="seven", encoder_top_k=top_k, instruction="which digit?")
    assert asked == [("seven", "which digit?")]
    assert result.metadata["rule_blame"] == rule and result.label == blame
    assert result.metadata["oracle"] == verdict
    assert result.metadata["oracle_answer"] == oracle_answer


def test_the_oracle_is_not_asked_about_correct_rows() -> None:
    def head(label: str, instruction: str | None) -> str:
        raise AssertionError("a correct row needs no oracle")

    assert FailureAttribution(head=head).evaluate(
        output="seven", expected="seven", encoder_top_k=["seven"]).label == "correct"


def store_with(rows: list[dict]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    migrate(con)
    con.register("rows_arrow", pa.Table.from_pylist(rows, schema=PIPELINE_ROW_SCHEMA))
    con.execute("CREATE TABLE rows AS SELECT * FROM rows_arrow")
    return con


CASES = [
    # (answer, expected, top-k, cohort, checkpoint)
    ("seven", "seven", ["seven", "one"], "a", "c1"),
    ("one", "seven", ["seven", "one"], "a", "c1"),
    ("one", "seven", ["one", "seven"], "a", "c1"),
    ("two", "seven", ["one", "seven"], "b", "c1"),
    ("one", "seven", ["one", "two"], "b", "c2"),
    ("banana", "seven", ["seven"], "b", "c2"),
    ("The Seven", "seven", None, "b", "c2"),
    ("one", None, ["one"], "b", "c2"),
    ("one", "seven", ["seven", "one"], "a", "c1"),
]


def test_per_row_and_batch_blames_agree_and_the_summary_counts_them() -> None:
    # The per-row call knows only its own labels; given the run's, it judges alike.
    blame = FailureAttribution(labels=["one", "two", "seven"])
    rows = [{"row_id": f"r{i}", "trace_id": "t", "span_id": f"s{i}", "llm_span_id": f"l{i}",
             "output": a, "expected": e, "top_k_labels": k, "cohort": c,
             "checkpoint_sha256": ck, "instruction": "which digit?"}
            for i, (a, e, k, c, ck) in enumerate(CASES)]
    con = store_with(rows)
    run = run_evaluations(con, [blame], source="rows")
    stored = {r[0]: r[1:] for r in con.execute(
        "SELECT row_id, span_id, score, label, explanation, metadata FROM evaluations "
        "WHERE run_id = ?", [run.run_id]).fetchall()}
    for i, (answer, expected, top_k, _, _) in enumerate(CASES):
        single = blame.evaluate(output=answer, expected=expected, encoder_top_k=top_k)
        if expected is None:
            assert f"r{i}" not in stored
            continue
        span, score, label, explanation, metadata = stored[f"r{i}"]
        assert span == f"l{i}"
        assert (score, label, explanation) == (single.score, single.label, single.reason)
        assert orjson.loads(metadata) == single.metadata
    summary = run.summaries["failure_attribution"]
    assert summary["blame_counts"] == {"correct": 2, "encoder": 2, "language_head": 3,
                                       "both": 1, "unattributable": 0}
    assert summary["failing"] == 6
    assert summary["blame_encoder"] == pytest.approx(2 / 6)
    assert summary["blame_language_head"] == pytest.approx(3 / 6)
    assert summary["blame_both"] == pytest.approx(1 / 6)
    assert summary["blame_unattributable"] == 0.0
    assert summary["skipped_reasons"] == {"no expected label": 1}
    # Rows where both sides read: all but the one without an encoder; four differ.
    assert summary["disagreement_rate"] == pytest.approx(4 / 7)
    assert summary["object_classes"] == {
        "correct": 1, "encoder_missed": 3, "head_dropped": 3, "head_invented": 4,
        "encoder_false_positive": 2, "head_recovered": 1}
    assert summary["by_kind"] == [{
        "kind": "name", "rows": 8, "failing": 6, "encoder": 2, "language_head": 3, "both": 1,
        "unattributable": 0, "blame_encoder": 2 / 6, "blame_language_head": 3 / 6,
        "blame_both": 1 / 6, "blame_unattributable": 0.0}]
    slices = {(p["cohort"], p["checkpoint_sha256"]): p for p in summary["by_cohort_checkpoint"]}
    assert slices[("a", "c1")] == {
        "cohort": "a", "checkpoint_sha256": "c1", "rows": 4, "failing": 3, "encoder": 1,
        "language_head": 2, "both": 0, "unattributable": 0, "blame_encoder": 1 / 3,
        "blame_language_head": 2 / 3, "blame_both": 0.0, "blame_unattributable": 0.0}
    assert slices[("b", "c2")]["language_head"] == 1


def test_the_answer_can_name_any_label_of_the_run() -> None:
    # "two" is nobody's expected label or top-k in this row, but another row's.
    con = store_with([
        {"row_id": "a", "trace_id": "t", "output": "two", "expected": "seven",
         "top_k_labels": ["seven"]},
        {"row_id": "b", "trace_id": "t", "output": "two", "expected": "two",
         "top_k_labels": ["two"]}])
    run = run_evaluations(con, [BLAME], source="rows")
    labels = dict(con.execute("SELECT row_id, label FROM evaluations WHERE run_id = ?",
                              [run.run_id]).fetchall())
    assert labels == {"a": "language_head", "b": "correct"}


def test_bad_settings_fail_when_the_evaluator_is_made() -> None:
    with pytest.raises(ValueError, match="unknown alias table"):
        FailureAttribution(aliases=["klingon"])
    with pytest.raises(TypeError, match="head must be a callable"):
        FailureAttribution(head="gpt")  # type: ignore[arg-type]


def test_a_linear_probe_on_stored_embeddings_reads_rows_without_top_k() -> None:
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(0)
    centres = {"cat": np.eye(8)[0] * 5, "dog": np.eye(8)[1] * 5, "bird": np.eye(8)[2] * 5}
    names = list(centres)
    rows, vectors = [], []
    for i in range(60):
        expected = names[i % 3]
        seen = "dog" if i == 0 else expected  # row 0: the embedding looks like a dog
        answer = names[(i + 1) % 3] if i % 10 == 5 else seen
        rows.append({"row_id": f"r{i}", "trace_id": "t", "span_id": f"s{i}",
                     "output": answer, "expected": expected})
        vectors.append((f"r{i}", (centres[seen] + rng.normal(0, 0.3, 8)).tolist()))
    con = store_with(rows)
    con.executemany("INSERT INTO embeddings (trace_id, span_id, record_index, row_id, "
                    "dimension, vector) VALUES ('t', 'e', 0, ?, 8, ?)", vectors)
    plain = run_evaluations(con, [BLAME], source="rows").summaries["failure_attribution"]
    assert plain["blame_counts"]["unattributable"] == 7 and plain["failing"] == 7
    run = run_evaluations(con, [FailureAttribution(linear_probe=True)], source="rows")
    summary = run.summaries["failure_attribution"]
    probe = summary["linear_probe"]
    assert (probe["rows"], probe["folds"], probe["used_for_rows"]) == (60, 5, 60)
    assert probe["accuracy"] == pytest.approx(59 / 60)  # row 0 reads as a dog
    labels = dict(con.execute("SELECT row_id, label FROM evaluations WHERE run_id = ?",
                              [run.run_id]).fetchall())
    assert labels["r0"] == "encoder"
    assert {labels[f"r{i}"] for i in range(5, 60, 10)} == {"language_head"}
    assert summary["blame_counts"] == {"correct": 53, "encoder": 1, "language_head": 6,
                                       "both": 0, "unattributable": 0}


def test_a_linear_probe_without_embeddings_says_why_it_was_skipped() -> None:
    con = store_with([{"row_id": "r", "trace_id": "t", "output": "cat", "expected": "cat"}])
    summary = run_evaluations(con, [FailureAttribution(linear_probe=True)],
                              source="rows").summaries["failure_attribution"]
    assert summary["linear_probe"]["skipped"] == (
        "no row has both an embedding and an expected label")
    assert summary["blame_counts"]["correct"] == 1


def test_with_known_classes_counts_and_probes_are_blamed_in_their_own_shape() -> None:
    blame = FailureAttribution(classes=["zero", "one", "two", "three"])
    count = blame.evaluate(output="3", expected="2", encoder_top_k=["two", "one"],
                           encoder_scores=[0.9, 0.8])
    assert count.metadata["kind"] == "count" and count.label == "language_head"
    assert "count: expected 2, the encoder read 2 ['one', 'two'], the answer says 3" in (
        count.reason)
    probe = blame.evaluate(output="no", expected="yes", encoder_top_k=["three", "one"],
                           instruction="is there a three ?")
    assert probe.label == "language_head"
    assert probe.metadata["objects"] == {"three": "head_dropped"}
    # classifications are still blamed as the rule table says
    assert blame.evaluate(output="one", expected="two",
                          encoder_top_k=["one", "two"]).label == "encoder"
    assert blame.evaluate(output="one", expected="two",
                          encoder_top_k=["two", "one"]).label == "language_head"
    # a yes/no answer without a probed object cannot be compared with any reading
    assert blame.evaluate(output="no", expected="yes", encoder_top_k=["one"]).reason == (
        "skipped: a yes/no probe whose instruction names no object")


def test_a_right_answer_that_is_no_class_is_correct_not_unattributable() -> None:
    blame = FailureAttribution(classes=["zero", "one", "two"])
    assert blame.evaluate(output="2", expected="2", encoder_top_k=["one"]).label == "correct"
    assert blame.evaluate(output="Yes.", expected="yes", encoder_top_k=["one"],
                          instruction="is there a cat?").passed


def test_vlmscope_eval_blames_counts_as_counts_with_or_without_classes(traced) -> None:
    import vlmscope
    from tests.helpers import query
    from vlmscope.cli import main

    for row_id, expected, answer in (("count", "2", "two"), ("name", "two", "one")):
        with vlmscope.trace_row(row_id, expected=expected):
            with vlmscope.encoder_span("enc") as enc:
                enc.record(top_k_labels=[["one", "two"]], top_k_scores=[[0.6, 0.3]])
            with vlmscope.llm_span(model="head", instruction="q") as span:
                span.set_output(answer)
    vlmscope.shutdown()
    db = str(traced)
    assert main(["eval", "--db", db, "--evaluators", "failure_attribution", "--classes",
                 "zero,one,two,three"]) == 0
    assert main(["eval", "--db", db, "--evaluators", "failure_attribution"]) == 0
    labels = query(traced, "SELECT e.row_id, e.label FROM evaluations e JOIN eval_runs r "
                           "USING (run_id) ORDER BY r.created_at, e.row_id")
    assert labels == [("count", "correct"), ("name", "encoder"),
                      ("count", "correct"), ("name", "encoder")]


def corpus_rows(rows: list) -> list[dict]:
    """The hand-labelled rows as pipeline rows: the reading scores 0.9, a distractor 0.05."""
    out = []
    for i, row in enumerate(rows):
        distractor = "umbrella" if row.source == "coco" else "zero"
        labels = [*row.read, *([distractor] if distractor not in row.read else [])]
        scores = [0.9] * len(row.read) + [0.05] * (len(labels) - len(row.read))
        out.append({"row_id": f"r{i}", "trace_id": "t", "span_id": f"s{i}",
                    "output": row.answer, "expected": row.expected, "objects": row.objects,
                    "instruction": row.instruction, "top_k_labels": labels,
                    "top_k_scores": scores, "encoder_multi_label": True})
    return out


def test_every_hand_labelled_row_gets_the_classes_and_blame_a_person_gave_it() -> None:
    from tests.blame_corpus import COCO, CORPUS, DEMO
    from vlmscope.demo.scenes import DIGIT_WORDS

    assert len(CORPUS) >= 60
    for kind in ("name", "list", "count", "probe", "describe"):
        assert sum(row.kind == kind for row in CORPUS) >= 10
    for rows, evaluator in ((DEMO, FailureAttribution(classes=DIGIT_WORDS)),
                            (COCO, FailureAttribution(vocabularies=["coco"]))):
        results = evaluator.evaluate_rows(corpus_rows(rows))
        wrong = [(row.answer, row.classes, row.blame, r.metadata.get("objects"), r.label)
                 for row, r in zip(rows, results, strict=True)
                 if (r.metadata.get("objects"), r.label, r.metadata.get("kind"))
                 != (row.classes, row.blame, row.kind)]
        assert wrong == []


def test_captions_of_the_hand_labelled_set_tell_one_story_with_caption_hallucination() -> None:
    """On every caption, what CaptionHallucination says the head invented or the encoder
    reported is what FailureAttribution classes head_invented / encoder_false_positive."""
    from tests.blame_corpus import COCO
    from vlmscope.evaluators import CaptionHallucination

    captions = [row for row in COCO if row.kind == "describe"]
    rows = corpus_rows(captions)
    blamed = FailureAttribution(vocabularies=["coco"]).evaluate_rows(rows)
    chair = CaptionHallucination(encoder_threshold=0.5)
    for row, blame in zip(rows, blamed, strict=True):
        said = chair.evaluate(row["output"], row["objects"], top_k_labels=row["top_k_labels"],
                              top_k_scores=row["top_k_scores"],
                              encoder_multi_label=row["encoder_multi_label"]).metadata
        classes = blame.metadata["objects"]
        assert sorted(said["hallucinated_by_language_head"]) == sorted(
            o for o, c in classes.items() if c == "head_invented")
        assert sorted(said["hallucinated_by_encoder"]) == sorted(
            o for o, c in classes.items() if c == "encoder_false_positive")


@pytest.mark.parametrize(("kind", "instruction", "expected", "answer", "read", "oracle",
                          "blame", "verdict", "asked"), [
    # the encoder missed nine; a head fed the true set lists it: the encoder is confirmed
    ("list", "what digits are shown ?", "three five nine", "three five", ["three", "five"],
     lambda reading: reading, "encoder", "confirmed", "five nine three"),
    # the encoder read all three, the head dropped one and drops one again when fed the truth
    ("list", "what digits are shown ?", "three five nine", "three five",
     ["three", "five", "nine"], lambda reading: "three five", "language_head", "confirmed",
     "five nine three"),
    # counts: fed the true objects the head counts them right, so the encoder is to blame
    ("count", "how many digits are there ?", "3", "2", ["three", "five"],
     lambda reading: str(len(reading.split())), "encoder", "confirmed", "five nine three"),
    # ... and a head that miscounts even the truth shares the blame
    ("count", "how many digits are there ?", "3", "2", ["three", "five"],
     lambda reading: "1", "both", "revised", "five nine three"),
    # probes: fed the true objects, the head says yes: the encoder missed the nine
    ("probe", "is there a nine ?", "yes", "no", ["three", "five"],
     lambda reading: "yes" if "nine" in reading.split() else "no", "encoder", "confirmed",
     "five nine three"),
])
def test_the_oracle_swap_works_for_sets_counts_and_probes(kind, instruction, expected, answer,
                                                          read, oracle, blame, verdict,
                                                          asked) -> None:
    questions: list[tuple[str, str | None]] = []

    def head(reading: str, asked_instruction: str | None) -> str:
        questions.append((reading, asked_instruction))
        return oracle(reading)

    labels = [*read, *(w for w in DIGITS if w not in read)]
    scores = [0.9] * len(read) + [0.1] * (len(labels) - len(read))
    result = FailureAttribution(classes=DIGITS, head=head).evaluate(
        output=answer, expected=expected, encoder_top_k=labels, encoder_scores=scores,
        instruction=instruction, objects=["three", "five", "nine"])
    assert result.metadata["kind"] == kind
    assert questions == [(asked, instruction)]
    assert (result.label, result.metadata["oracle"]) == (blame, verdict)
