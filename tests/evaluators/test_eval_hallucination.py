"""CaptionHallucination: hand-worked CHAIR and POPE cases, vocabularies, bad input, and one
implementation for rows and batches."""

from __future__ import annotations

import duckdb
import orjson
import pyarrow as pa
import pytest

from vlmscope.collectors.schema import migrate
from vlmscope.evaluators import CaptionHallucination, Vocabulary, VocabularyError, run_evaluations
from vlmscope.evaluators.base import PIPELINE_ROW_SCHEMA
from vlmscope.evaluators.vocabulary import inflections

CHAIR = CaptionHallucination()


def test_the_worked_chair_example_hallucinates_one_object_of_three() -> None:
    result = CHAIR.evaluate(output="a dog and a cat on a sofa", objects=["dog", "sofa"])
    assert result.passed is False and result.label == "hallucinated"
    assert result.metadata["mentioned"] == ["cat", "couch", "dog"]
    assert result.metadata["hallucinated"] == ["cat"] and result.metadata["missed"] == []
    assert result.score == pytest.approx(1 - 1 / 3)
    assert "hallucinated [cat]" in result.reason


def test_the_run_summary_gives_chair_i_chair_s_and_coverage_of_the_worked_example() -> None:
    summary = summarise([("a dog and a cat on a sofa", ["dog", "sofa"])])
    assert summary["chair_i"] == pytest.approx(1 / 3)
    assert summary["chair_s"] == 1.0 and summary["coverage"] == 1.0


@pytest.mark.parametrize(("caption", "objects", "mentioned"), [
    ("two dogs chase three cats", ["dog", "cat"], ["cat", "dog"]),
    ("a puppy next to a kitten", ["dog", "cat"], ["cat", "dog"]),
    ("people waiting for buses", ["person", "bus"], ["bus", "person"]),
    ("knives and a wine glass", ["knife", "wine glass"], ["knife", "wine glass"]),
    ("a Teddy-Bear on the couch", ["teddy bear", "couch"], ["couch", "teddy bear"]),
    ("two hot dogs on a plate", ["hot dog"], ["hot dog"]),
    ("a traffic light over the road", ["traffic light"], ["traffic light"]),
    ("the dog's ball", ["dog", "sports ball"], ["dog", "sports ball"]),
])
def test_plurals_synonyms_and_phrases_name_their_coco_object(caption: str, objects: list[str],
                                                             mentioned: list[str]) -> None:
    result = CHAIR.evaluate(output=caption, objects=objects)
    assert result.metadata["mentioned"] == mentioned
    assert result.passed


def test_a_phrase_hides_the_objects_inside_it() -> None:
    # "hot dog" is food, "teddy bear" a toy: neither mentions a dog or a bear.
    result = CHAIR.evaluate(output="a hot dog and a teddy bear", objects=["hot dog"])
    assert result.metadata["mentioned"] == ["hot dog", "teddy bear"]
    assert result.metadata["hallucinated"] == ["teddy bear"]


@pytest.mark.parametrize("caption", [
    "there is no dog on the sofa", "a sofa without a dog", "the sofa isn't near any dog",
    "a sofa, but never a dog",
])
def test_a_negated_object_is_not_a_mention_by_default(caption: str) -> None:
    result = CHAIR.evaluate(output=caption, objects=["sofa"])
    assert result.passed and result.metadata["negated"] == ["dog"]
    assert result.metadata["mentioned"] == ["couch"]


def test_negation_stops_at_the_end_of_its_clause() -> None:
    result = CHAIR.evaluate(output="no cat here. a dog sleeps", objects=["cat"])
    assert result.metadata["hallucinated"] == ["dog"]
    assert result.metadata["negated"] == ["cat"]


def test_chair_compatible_mode_counts_negated_objects_as_the_original_metric_does() -> None:
    result = CaptionHallucination(chair_compatible=True).evaluate(
        output="there is no dog on the sofa", objects=["sofa"])
    assert result.metadata["hallucinated"] == ["dog"] and not result.passed


@pytest.mark.parametrize(("answer", "label"), [
    ("Yes", "true_positive"), ("yes, there is one.", "true_positive"),
    ("Yeah!", "true_positive"), ("No.", "false_negative"),
    ("There isn't a dog.", "false_negative"), ("I do not see one", "false_negative"),
    ("maybe", "unparsed"),
])
def test_pope_answers_read_as_yes_or_no(answer: str, label: str) -> None:
    result = CHAIR.evaluate(output=answer, objects=["dog", "person"],
                            instruction="Is there a dog in the image?")
    assert result.label == label and result.metadata["object"] == "dog"
    assert result.score == (1.0 if label == "true_positive" else 0.0)


@pytest.mark.parametrize("instruction", [
    "Is there a puppy in the image?", "is there any dogs in this picture",
    "Does the image contain a dog?", "Can you see a dog?",
])
def test_pope_probes_are_recognised_in_their_common_wordings(instruction: str) -> None:
    result = CHAIR.evaluate(output="no", objects=["cat"], instruction=instruction)
    assert result.label == "true_negative" and result.metadata["object"] == "dog"


def test_pope_metrics_follow_their_definitions() -> None:
    probe = "Is there a {} in the image?"
    rows = [("yes", ["dog"], probe.format("dog")),  # TP
            ("yes", ["dog"], probe.format("cat")),  # FP
            ("no", ["dog"], probe.format("cat")),  # TN
            ("no", ["dog"], probe.format("dog")),  # FN
            ("yes", ["dog"], probe.format("dog")),  # TP
            ("perhaps", ["dog"], probe.format("dog"))]  # unparsed
    summary = summarise([(a, o) for a, o, _ in rows], [i for _, _, i in rows])
    precision, recall = 2 / 3, 2 / 3
    assert summary["pope_probes"] == 6 and summary["pope_unparsed"] == 1
    assert summary["pope_accuracy"] == pytest.approx(3 / 5)
    assert summary["pope_precision"] == pytest.approx(precision)
    assert summary["pope_recall"] == pytest.approx(recall)
    assert summary["pope_f1"] == pytest.approx(2 * precision * recall / (precision + recall))
    assert summary["pope_yes_ratio"] == pytest.approx(3 / 5)
    assert summary["captions"] == 0 and summary["chair_i"] is None


def test_hallucinated_objects_are_attributed_to_the_side_that_made_them_up() -> None:
    result = CHAIR.evaluate(output="a dog and a cat on a bed", objects=["bed"],
                            top_k_labels=["dog", "bed", "cat"], top_k_scores=[0.6, 0.3, 0.05])
    assert result.metadata["hallucinated_by_encoder"] == ["dog"]  # the encoder saw a dog
    assert result.metadata["hallucinated_by_language_head"] == ["cat"]  # below threshold
    no_encoder = CHAIR.evaluate(output="a dog on a bed", objects=["bed"])
    assert no_encoder.metadata["hallucinated_unattributed"] == ["dog"]


def test_encoder_labels_stand_in_for_missing_objects_when_asked_and_say_so() -> None:
    evaluator = CaptionHallucination(objects_from_encoder=True, encoder_threshold=0.2)
    result = evaluator.evaluate(output="a tabby on a bed with a dog",
                                top_k_labels=["tabby", "bed", "dog"],
                                top_k_scores=[0.5, 0.3, 0.1], encoder_multi_label=True)
    assert result.metadata["ground_truth"] == "encoder"
    assert result.metadata["ground_truth_objects"] == ["bed", "cat"]
    assert result.metadata["hallucinated"] == ["dog"]
    assert "not in the encoder ground truth" in result.reason
    assert CHAIR.evaluate(output="a cat", top_k_labels=["cat"]).reason == (
        "skipped: no ground-truth objects")


@pytest.mark.parametrize(("caption", "reason"), [
    (None, "skipped: no caption: the output is NULL"),
    ("", "skipped: no caption: the output is empty"),
    ("   \n", "skipped: no caption: the output is empty"),
])
def test_empty_or_null_captions_are_skipped_with_a_reason(caption: str | None,
                                                          reason: str) -> None:
    result = CHAIR.evaluate(output=caption, objects=["dog"])
    assert (result.score, result.passed, result.reason) == (None, None, reason)


def test_non_english_and_unknown_words_mention_nothing_and_unknown_objects_are_listed() -> None:
    result = CHAIR.evaluate(output="一只狗和一只猫 ein Hund, une licorne ✨",
                            objects=["dog", "unicorn"])
    assert result.passed and result.metadata["mentioned"] == []
    assert result.metadata["missed"] == ["dog"]
    assert result.metadata["unknown_objects"] == ["unicorn"]


def test_a_one_megabyte_caption_is_scored() -> None:
    caption = "a dog on a sofa " * 65_536 + "and one cat"
    assert len(caption) > 1_000_000
    result = CHAIR.evaluate(output=caption, objects=["dog", "sofa"])
    assert result.metadata["hallucinated"] == ["cat"]


def test_a_user_vocabulary_names_its_own_objects_and_wins_over_later_ones() -> None:
    vocabulary = Vocabulary.parse("# shop floor\nforklift: fork lift, lift truck\n"
                                  "pallet\n", name="warehouse")
    evaluator = CaptionHallucination([vocabulary, "coco"])
    result = evaluator.evaluate(output="two lift trucks near pallets and a truck",
                                objects=["forklift"])
    assert result.metadata["mentioned"] == ["forklift", "pallet", "truck"]
    assert result.metadata["hallucinated"] == ["pallet", "truck"]
    assert evaluator.config()["vocabularies"][0] == {"name": "warehouse",
                                                     "version": vocabulary.version}


def test_the_imagenet_vocabulary_reads_torchvision_class_names() -> None:
    pytest.importorskip("torchvision")
    evaluator = CaptionHallucination(["imagenet"])
    result = evaluator.evaluate(output="a golden retriever beside two tabby cats",
                                objects=["golden retriever"])
    assert result.metadata["mentioned"] == ["golden retriever", "tabby"]


@pytest.mark.parametrize(("text", "line"), [
    ("dog: puppy\n: hound\n", "line 2: the object name before ':' is blank"),
    ("dog: puppy,, hound\n", "line 1: an empty synonym"),
    ("dog: puppy\ncat\ndog: hound\n", "line 3: object 'dog' is listed twice"),
    ("dog: puppy: hound\n", "line 1: more than one ':'"),
])
def test_a_malformed_user_vocabulary_names_the_line(text: str, line: str) -> None:
    with pytest.raises(VocabularyError, match=line):
        Vocabulary.parse(text, name="mine")


def test_a_bad_vocabulary_mapping_or_name_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(VocabularyError, match="synonyms of 'dog' must be a list"):
        Vocabulary.from_mapping({"dog": "puppy"})
    with pytest.raises(VocabularyError, match="unknown vocabulary 'klingon'"):
        CaptionHallucination(["klingon"])
    path = tmp_path / "animals.txt"
    path.write_text("llama: alpaca\n")
    evaluator = CaptionHallucination([str(path)])
    assert evaluator.evaluate(output="two alpacas", objects=["llama"]).passed


@pytest.mark.parametrize(("word", "forms"), [
    ("dog", {"dogs"}), ("bus", {"buses"}), ("puppy", {"puppies"}), ("knife", {"knives"}),
    ("person", {"people"}), ("sheep", set()), ("dogs", {"dog"}), ("boxes", {"box", "boxe"}),
    ("leaf", {"leaves"}), ("tomato", {"tomatos", "tomatoes"}),
])
def test_inflections_add_plurals_and_singulars_by_rule(word: str, forms: set[str]) -> None:
    assert inflections(word) == forms


def summarise(rows: list[tuple[str | None, list[str] | None]],
              instructions: list[str] | None = None) -> dict:
    """Run CaptionHallucination over ``rows`` (caption, objects) in a store."""
    con = duckdb.connect()
    migrate(con)
    table = pa.Table.from_pylist(
        [{"row_id": f"r{i}", "trace_id": "t", "span_id": f"s{i}", "output": caption,
          "objects": objects, "instruction": (instructions or [None] * len(rows))[i]}
         for i, (caption, objects) in enumerate(rows)], schema=PIPELINE_ROW_SCHEMA)
    con.register("rows_arrow", table)
    con.execute("CREATE TABLE rows AS SELECT * FROM rows_arrow")
    return run_evaluations(con, [CaptionHallucination()], source="rows").summaries[
        "caption_hallucination"]


def test_per_row_and_batch_verdicts_agree_and_chair_matches_a_python_reference() -> None:
    captions = [("a dog and a cat on a sofa", ["dog", "sofa"]),
                ("two people near a bus", ["person"]), ("no dog at all", ["cat"]),
                ("a pizza", ["pizza", "dining table"]), ("", ["dog"]),
                ("a cat", None), ("hot dogs and teddy bears", ["hot dog"])]
    con = duckdb.connect()
    migrate(con)
    con.register("rows_arrow", pa.Table.from_pylist(
        [{"row_id": f"r{i}", "trace_id": "t", "span_id": f"s{i}", "output": c, "objects": o}
         for i, (c, o) in enumerate(captions)], schema=PIPELINE_ROW_SCHEMA))
    con.execute("CREATE TABLE rows AS SELECT * FROM rows_arrow")
    run = run_evaluations(con, [CHAIR], source="rows")
    stored = {r[0]: r[1:] for r in con.execute(
        "SELECT row_id, score, passed, label, explanation, metadata FROM evaluations "
        "WHERE run_id = ?", [run.run_id]).fetchall()}
    mentions = hallucinated = truth = covered = hallucinating = captions_judged = 0
    for i, (caption, objects) in enumerate(captions):
        single = CHAIR.evaluate(output=caption, objects=objects)
        if single.score is None:
            assert f"r{i}" not in stored
            continue
        score, passed, label, explanation, metadata = stored[f"r{i}"]
        assert (score, passed, label, explanation) == (single.score, single.passed,
                                                       single.label, single.reason)
        assert orjson.loads(metadata) == single.metadata
        m, h = single.metadata["mentioned"], single.metadata["hallucinated"]
        gt = single.metadata["ground_truth_objects"]
        mentions, hallucinated = mentions + len(m), hallucinated + len(h)
        truth, covered = truth + len(gt), covered + len(set(gt) & set(m))
        hallucinating += bool(h)
        captions_judged += 1
    summary = run.summaries["caption_hallucination"]
    assert summary["judged"] == captions_judged == 5
    assert summary["skipped_reasons"] == {"no caption: the output is empty": 1,
                                          "no ground-truth objects": 1}
    assert summary["chair_i"] == pytest.approx(hallucinated / mentions)
    assert summary["chair_s"] == pytest.approx(hallucinating / captions_judged)
    assert summary["coverage"] == pytest.approx(covered / truth)
