"""Datasets: loading, storing, traced runs with failures, pinned checkpoints, next to tracing
(the digit model and pipeline: ``tests/digits.py``)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

import vlmscope
from tests.helpers import query
from vlmscope.cli import main

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
Image = pytest.importorskip("PIL.Image")
sklearn_datasets = pytest.importorskip("sklearn.datasets")

from tests.digits import (  # noqa: E402
    TRAIN_ROWS,
    digit_model,
    digit_pictures,
    digit_pipeline,
    digits_dataset,
    predictions,
)

# -- tests ---------------------------------------------------------------------------------


def test_a_run_with_an_undecodable_image_and_a_raising_pipeline_completes_with_both_failed(
        traced: Path) -> None:
    pictures = digit_pictures(0, 4)
    records = [{"id": f"r{i}", "image": image, "expected": label}
               for i, (image, label) in enumerate(pictures)]
    records.insert(1, {"id": "broken-bytes", "image": b"\x89PNG but not really", "expected": "1"})

    def pipeline(row):
        if row.id == "r2":
            raise RuntimeError("the language head timed out")
        return row.expected

    result = vlmscope.Dataset.from_records("with-failures", records).run(
        pipeline, name="failures-run", progress=False)
    assert result.summary["rows"] == 5 and result.summary["failed"] == 2
    assert set(result.summary["failures"]) == {"broken-bytes", "r2"}
    table = {row["row_id"]: row for row in result.rows.to_pylist()}
    assert [r["row_id"] for r in result.rows.to_pylist()] == ["r0", "broken-bytes", "r1", "r2",
                                                              "r3"]
    assert table["broken-bytes"]["status"] == "ERROR"
    assert "ImageDecodeError" in table["broken-bytes"]["error"]
    assert table["r2"]["status"] == "ERROR"
    assert table["r2"]["error"] == "RuntimeError: the language head timed out"
    assert table["r2"]["ground_truth_match.passed"] is False
    assert [table[r]["ground_truth_match.passed"] for r in ("r0", "r1", "r3")] == [True] * 3
    vlmscope.shutdown()
    stored = query(traced, "SELECT row_id, status, error FROM pipeline_rows "
                           "WHERE run = 'failures-run' AND status = 'ERROR' ORDER BY row_id")
    assert [r[0] for r in stored] == ["broken-bytes", "r2"]
    (thumbs,) = query(traced, "SELECT count(thumbnail), count(image_error) FROM dataset_rows "
                              "WHERE dataset = 'with-failures'")
    assert thumbs == (4, 1)


def test_a_run_writes_its_dataset_next_to_the_spans_of_the_same_process(traced: Path) -> None:
    model = digit_model()
    dataset = digits_dataset("held-out", stop=TRAIN_ROWS + 24)
    result = dataset.run(digit_pipeline(model), name="ckpt-a", progress=False)
    expected = predictions(model, dataset)
    assert {r["row_id"]: r["output"] for r in result.rows.to_pylist()} == expected
    checkpoint = vlmscope.checkpoint_sha256(model)
    assert result.summary["checkpoints"] == {checkpoint: 24}
    assert result.summary["embedding_dims"] == {"512": 24}
    assert result.mixed_checkpoints is False
    vlmscope.shutdown()
    rows = query(traced, "SELECT d.row_id, d.image_sha256 = p.image_sha256, p.cohort, "
                         "octet_length(d.thumbnail) > 0 FROM dataset_rows d JOIN pipeline_rows p "
                         "USING (row_id) WHERE p.run = 'ckpt-a'")
    assert len(rows) == 24 and all(r[1] and r[2] == "held-out" and r[3] for r in rows)
    ((registered, eval_run),) = query(traced, "SELECT count(*), any_value(eval_run_id) "
                                              "FROM dataset_runs")
    assert registered == 1 and eval_run == result.eval_run_id
    assert query(traced, "SELECT DISTINCT run_name FROM eval_runs WHERE run_id = "
                         f"'{result.eval_run_id}'") == [("ckpt-a",)]


def test_a_batched_pipeline_gets_lists_of_rows_and_answers_each(traced: Path) -> None:
    model = digit_model()
    dataset = digits_dataset("batched", stop=TRAIN_ROWS + 20)
    result = dataset.run(digit_pipeline(model), name="batched-run", batch_size=8,
                         progress=False)
    assert result.summary["failed"] == 0
    assert {r["row_id"]: r["output"] for r in result.rows.to_pylist()} == predictions(
        model, dataset)
    wrong = dataset.run(lambda rows: ["0"], name="short-answers", batch_size=8, progress=False)
    assert wrong.summary["failed"] == 20
    assert "must return a list of 8 answers" in wrong.summary["failures"]["d1200"]


def test_a_run_that_swaps_checkpoints_midway_is_flagged_mixed_here_and_in_vlmscope_eval(
        traced: Path, capsys: pytest.CaptureFixture[str]) -> None:
    early, late = digit_model(0), digit_model(1)
    early_pipeline, late_pipeline = digit_pipeline(early), digit_pipeline(late)
    dataset = digits_dataset("mixed", stop=TRAIN_ROWS + 10)
    result = dataset.run(lambda row: (early_pipeline if int(row.id[1:]) < TRAIN_ROWS + 6
                                      else late_pipeline)(row), name="mixed-run",
                         progress=False)
    assert result.mixed_checkpoints
    assert result.summary["checkpoints"] == {vlmscope.checkpoint_sha256(early): 6,
                                             vlmscope.checkpoint_sha256(late): 4}
    assert any(w.startswith("mixed checkpoints: ") for w in result.summary["warnings"])
    vlmscope.shutdown()
    assert main(["eval", "--db", str(traced), "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["mixed_checkpoints"] is True
    assert sorted(summary["checkpoint_rows"].values()) == [4, 6]
    assert main(["eval", "--db", str(traced)]) == 0
    assert "warning: mixed checkpoints: " in capsys.readouterr().out


def test_run_names_are_unique_within_a_store(traced: Path) -> None:
    dataset = vlmscope.Dataset.from_records("tiny", [{"id": "a", "image": b"x"}])
    dataset.run(lambda row: "x", name="once", progress=False)
    with pytest.raises(ValueError, match="already has a run named 'once'"):
        dataset.run(lambda row: "x", name="once", progress=False)


def test_a_different_dataset_under_a_stored_name_is_refused(traced: Path) -> None:
    vlmscope.Dataset.from_records("cohort", [{"id": "a", "image": b"x", "expected": "1"}]).run(
        lambda row: "1", name="first", progress=False)
    changed = vlmscope.Dataset.from_records("cohort", [{"id": "a", "image": b"x",
                                                        "expected": "2"}])
    with pytest.raises(ValueError, match="already holds a different dataset named 'cohort'"):
        changed.run(lambda row: "1", name="second", progress=False)


def test_running_without_a_configured_store_says_to_configure_one() -> None:
    vlmscope.shutdown()
    dataset = vlmscope.Dataset.from_records("x", [{"id": "a", "image": b"x"}])
    with pytest.raises(ValueError, match=r"call vlmscope.configure\(db="):
        dataset.run(lambda row: "x", name="r", progress=False)


def test_from_folder_reads_a_csv_of_labels_and_a_stored_dataset_loads_back(
        tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    entries = []
    for i, (image, label) in enumerate(digit_pictures(0, 3)):
        image.save(folder / f"img{i}.png")
        entries.append({"file": f"img{i}.png", "label": label, "objects": "digit|ink",
                        "tags": "scan"})
    with open(folder / "labels.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["file", "label", "objects", "tags"])
        writer.writeheader()
        writer.writerows(entries)
    dataset = vlmscope.Dataset.from_folder("folder", folder, "labels.csv")
    assert [r.id for r in dataset] == ["img0.png", "img1.png", "img2.png"]
    assert [r.expected for r in dataset] == [e["label"] for e in entries]
    assert dataset.row("img1.png").objects == ("digit", "ink")
    db = tmp_path / "store.duckdb"
    dataset.save(db, store_images=True)
    loaded = vlmscope.Dataset.load(db, "folder")
    assert [(r.id, r.expected, r.objects, r.tags) for r in loaded] == [
        (r.id, r.expected, r.objects, r.tags) for r in dataset]
    thumbnail = query(db, "SELECT thumbnail FROM dataset_rows WHERE row_id = 'img0.png'")[0][0]
    assert Image.open(io.BytesIO(thumbnail)).size == (16, 16)
    ((images,),) = query(db, "SELECT count(*) FROM dataset_images")
    assert images == 3


def test_from_folder_reads_classes_from_an_image_folder_layout(tmp_path: Path) -> None:
    """torchvision's ImageFolder layout, path/<class>/<image>: the folder is each row's
    expected class and its one object; torchvision reads the same layout to the same
    classes."""
    from torchvision.datasets import ImageFolder

    folder = tmp_path / "digits"
    for i, (image, label) in enumerate(digit_pictures(0, 6)):
        (folder / label).mkdir(parents=True, exist_ok=True)
        image.save(folder / label / f"scan{i}.png")
    dataset = vlmscope.Dataset.from_folder("digits", folder, classes_from_folders=True,
                                           instruction="which digit is shown ?")
    reference = ImageFolder(str(folder))
    assert [(Path(p).relative_to(folder).as_posix(), reference.classes[c])
            for p, c in reference.samples] == [(r.id, r.expected) for r in dataset]
    assert all(r.objects == (r.expected,) and r.instruction == "which digit is shown ?"
               for r in dataset)
    (folder / "loose.png").write_bytes((folder / dataset.rows[0].id).read_bytes())
    with pytest.raises(ValueError, match=r"1 image\(s\) lie in .* itself \(e.g. 'loose.png'\)"):
        vlmscope.Dataset.from_folder("digits", folder, classes_from_folders=True)
    with pytest.raises(ValueError, match="takes no labels file"):
        vlmscope.Dataset.from_folder("digits", folder, "labels.csv", classes_from_folders=True)


@pytest.mark.parametrize(("records", "message"), [
    ([{"id": "a"}], "needs an 'id' and an 'image'"),
    ([{"id": "a", "image": b"x", "label": "cat"}], "unknown key"),
    ([{"id": "a", "image": b"x"}, {"id": "a", "image": b"y"}], "repeated: a"),
])
def test_bad_records_are_refused_with_what_was_expected(records, message) -> None:
    with pytest.raises(ValueError, match=message):
        vlmscope.Dataset.from_records("bad", records)


def test_vlmscope_dataset_and_cohorts_load_without_importing_torch() -> None:
    import subprocess
    import sys

    code = ("import sys, vlmscope; vlmscope.Dataset; vlmscope.cohorts.perturb; "
            "import vlmscope.regression, vlmscope.cli.diff; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_record_naming_one_object_as_a_string_keeps_it_whole(tmp_path: Path) -> None:
    """``"objects": "cat"`` is one object, not ['c', 'a', 't']; a None in a list names
    nothing and is left out; the saved dataset says the same."""
    records = [{"id": "one", "image": "a.png", "objects": "cat"},
               {"id": "two", "image": "b.png", "objects": ["dog", None, 3]}]
    made = vlmscope.Dataset.from_records("objs", records)
    assert [r.objects for r in made.rows] == [("cat",), ("dog", "3")]
    made.save(tmp_path / "d.duckdb")
    loaded = vlmscope.Dataset.load(tmp_path / "d.duckdb", "objs")
    assert [r.objects for r in loaded.rows] == [("cat",), ("dog", "3")]
