"""The encoder's reading per row (``pipeline_rows.encoder_reading``) and the instruction kind a
Dataset column gives (``dataset_rows.instruction_kind``), on real stores: traced through
instrumented torch encoders, run by Dataset.run, judged by FailureAttribution, and migrated
from a store an older vlmscope left."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

import vlmscope
from tests.helpers import digit_images, query
from tests.pipeline_row_reference import store_at_version
from vlmscope.collectors import facts
from vlmscope.collectors.schema import SCHEMA_VERSION, migrate
from vlmscope.evaluators import FailureAttribution, run_evaluations
from vlmscope.evaluators.reading import DEFAULT_ENCODER_THRESHOLD, install_reading_macros

LABELS = ["person", "dog", "car", "tree", "sky", "road"]


def _model(seed: int, spread: float):
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(seed)
    model = torchvision.models.resnet18(weights=None, num_classes=len(LABELS)).eval()
    with torch.no_grad():  # logits far from 0, so that some sigmoids pass 0.5 and some not
        model.fc.weight.mul_(spread)
        model.fc.bias.copy_(torch.linspace(-2.0, 2.0, len(LABELS)))
    return model


def test_encoder_reading_is_the_labels_over_the_threshold_or_the_single_label_top1(
        traced: Path) -> None:
    torch = pytest.importorskip("torch")
    images, _ = digit_images(6, size=32)
    tagger, classifier = _model(3, 30.0), _model(4, 30.0)
    with torch.no_grad():
        sigmoid = torch.sigmoid(tagger(images).double())
        softmax = torch.softmax(classifier(images).double(), dim=1)
    tagging = vlmscope.instrument_encoder(tagger, labels=LABELS, top_k=len(LABELS),
                                          multi_label=True)
    classifying = vlmscope.instrument_encoder(classifier, labels=LABELS, top_k=3)
    with torch.no_grad():
        with vlmscope.trace_batch([f"m{i}" for i in range(6)]):
            tagger(images)
        with vlmscope.trace_batch([f"s{i}" for i in range(6)]):
            classifier(images)
    tagging.uninstrument()
    classifying.uninstrument()
    with vlmscope.trace_row("none"):  # no encoder record: no reading
        pass
    vlmscope.shutdown()
    stored = {row_id: (multi, reading) for row_id, multi, reading in query(
        traced, "SELECT row_id, encoder_multi_label, encoder_reading FROM pipeline_rows")}
    sizes = set()
    for i in range(6):
        wanted = [LABELS[c] for c in sorted(range(len(LABELS)), key=lambda c: -sigmoid[i, c])
                  if sigmoid[i, c] >= DEFAULT_ENCODER_THRESHOLD]
        assert stored[f"m{i}"] == (True, wanted)
        sizes.add(len(wanted))
        assert stored[f"s{i}"] == (None, [LABELS[int(softmax[i].argmax())]])
    assert len(sizes) > 1 and max(sizes) > 1  # several labels read, not always as many
    assert stored["none"] == (None, None)


def _random_facts(rng: random.Random, n: int) -> pa.Table:
    rows = []
    for i in range(n):
        k = rng.randrange(0, 5)
        labels = None if rng.random() < 0.1 else rng.sample(LABELS, k)
        scores = None if labels is None or rng.random() < 0.1 else [
            None if rng.random() < 0.1
            else rng.choice([0.0, 0.2, 0.49, 0.5, 0.51, 0.9, 1.0, math.nan, math.inf])
            for _ in range(rng.choice([len(labels), max(0, len(labels) - 1)]))]
        rows.append({"trace_id": f"t{i}", "row_id": f"r{i}", "row_span_id": f"s{i}",
                     "top_k_labels": labels, "top_k_scores": scores,
                     "encoder_multi_label": rng.choice([None, True, False])})
    return pa.Table.from_pylist(rows, schema=pa.schema([
        ("trace_id", pa.string()), ("row_id", pa.string()), ("row_span_id", pa.string()),
        ("top_k_labels", pa.list_(pa.string())), ("top_k_scores", pa.list_(pa.float64())),
        ("encoder_multi_label", pa.bool_())]))


def test_the_stored_reading_is_the_evaluators_reading_at_the_default_threshold(
        tmp_path: Path) -> None:
    """The view's rule (frozen in migration 11) and the evaluators' macro (written from the
    spec) agree on every row, including missing, NaN and infinite scores, ties with the
    threshold and rows without labels (NULL in the store, an empty reading for the
    evaluators)."""
    con = duckdb.connect(str(tmp_path / "s.duckdb"))
    migrate(con)
    con.register("_facts", _random_facts(random.Random(7), 400))
    con.execute(f"INSERT INTO {facts.FACTS} BY NAME SELECT * FROM _facts")
    install_reading_macros(con)
    macro = (f"vlmscope_encoder_reading(top_k_labels, top_k_scores, encoder_multi_label, "
             f"{DEFAULT_ENCODER_THRESHOLD}::DOUBLE)")
    rows = con.execute(f"SELECT row_id, top_k_labels, encoder_reading, {macro} "
                       "FROM pipeline_rows ORDER BY row_id").fetchall()
    assert len(rows) == 400
    for _, labels, stored, evaluated in rows:
        assert stored == (None if labels is None else evaluated)
    assert sum(1 for r in rows if r[2] and len(r[2]) > 1) > 20
    nan_rows = con.execute("SELECT count(*) FROM pipeline_rows WHERE encoder_multi_label AND "
                           "list_bool_or(list_transform(top_k_scores, lambda x: isnan(x)))"
                           ).fetchall()[0][0]
    assert nan_rows > 10
    # The evaluation runner's fast path (the facts without the view) reads it the same.
    fast = con.execute(f"SELECT row_id, encoder_reading FROM ({facts.stored_rows_sql(con)}) "
                       "ORDER BY row_id").fetchall()
    assert fast == [(r[0], r[2]) for r in rows]


def test_a_version_8_store_migrated_gets_the_reading_and_the_dataset_kind(
        tmp_path: Path) -> None:
    path = tmp_path / "v8.duckdb"
    con = duckdb.connect(str(path))
    store_at_version(con, 8)
    con.execute("INSERT INTO row_records (trace_id, span_id, row_id) VALUES "
                "('t1', 'a1', 'multi'), ('t2', 'a2', 'single'), ('t3', 'a3', 'bare')")
    con.execute("INSERT INTO encoder_records (trace_id, span_id, record_index, row_id, "
                "top_k_labels, top_k_scores, multi_label) VALUES "
                "('t1', 'e1', 0, 'multi', ['dog', 'car', 'sky'], [0.9, 0.5, 0.2], true), "
                "('t2', 'e2', 0, 'single', ['tree', 'road'], [0.7, 0.3], NULL)")
    facts.refresh(con)
    con.execute("INSERT INTO datasets VALUES ('d', 'f', 1, NULL, now()::TIMESTAMP)")
    con.execute("INSERT INTO dataset_rows VALUES ('d', 'multi', 0, NULL, NULL, NULL, NULL, "
                "'what is shown?', 'dog car', ['dog', 'car'], NULL, [], NULL, NULL, NULL)")
    before = con.execute("SELECT * FROM pipeline_rows ORDER BY row_id").fetchall()
    assert "encoder_reading" not in [d[0] for d in con.description]
    assert migrate(con) == SCHEMA_VERSION >= 9
    after = con.execute("SELECT * FROM pipeline_rows ORDER BY row_id").fetchall()
    assert [r[:-1] for r in after] == before  # the columns there were, unchanged
    assert con.execute("SELECT row_id, encoder_reading FROM pipeline_rows ORDER BY row_id"
                       ).fetchall() == [("bare", None), ("multi", ["dog", "car"]),
                                        ("single", ["tree"])]
    assert con.execute("SELECT instruction_kind FROM dataset_rows").fetchall() == [(None,)]
    con.close()
    loaded = vlmscope.Dataset.load(path, "d")
    assert loaded.row("multi").instruction_kind is None
    assert loaded.row("multi").objects == ("dog", "car")


def test_a_dataset_column_kind_is_stored_loaded_and_decides_how_the_answer_is_read(
        traced: Path) -> None:
    """The kind given in a Dataset column outlives a save and a load, reaches the row's
    span and pipeline_rows through Dataset.run, and FailureAttribution reads the answer by it
    (not by the instruction, which here reads as another kind)."""
    torch = pytest.importorskip("torch")
    PIL = pytest.importorskip("PIL.Image")
    np = pytest.importorskip("numpy")
    tagger = _model(5, 30.0)
    images, _ = digit_images(3, size=32)
    pictures = []
    for i in range(3):  # files: a loaded dataset reads its images from their paths
        pictures.append(traced.parent / f"digit{i}.png")
        PIL.fromarray((images[i].permute(1, 2, 0).numpy() * 255).astype("uint8")).save(
            pictures[-1])
    records = [
        # "how many" reads as a count; the column says the user asked for the list
        {"id": "listed", "image": pictures[0], "instruction": "how many things, and which?",
         "instruction_kind": "list", "expected": "dog car", "objects": ["dog", "car"]},
        # "what" reads as naming one object; the column says count
        {"id": "counted", "image": pictures[1], "instruction": "what is the tally?",
         "instruction_kind": "count", "expected": "2", "objects": ["dog", "car"]},
        {"id": "plain", "image": pictures[2], "instruction": "how many are there?",
         "expected": "2", "objects": ["dog", "car"]},
    ]
    answers = {"listed": "dog and car", "counted": "2", "plain": "2"}
    vlmscope.Dataset.from_records("kinds", records).save(traced)
    loaded = vlmscope.Dataset.load(traced, "kinds")
    assert [r.instruction_kind for r in loaded.rows] == ["list", "count", None]

    handle = vlmscope.instrument_encoder(tagger, labels=LABELS, top_k=len(LABELS),
                                         multi_label=True)

    def pipeline(row):
        pixels = torch.from_numpy(np.array(row.image)).float()
        with torch.no_grad():
            tagger(pixels.permute(2, 0, 1).unsqueeze(0) / 255)
        return answers[row.id]

    try:
        loaded.run(pipeline, name="by-kind", progress=False)
    finally:
        handle.uninstrument()
    vlmscope.shutdown()
    assert query(traced, "SELECT row_id, instruction_kind FROM dataset_rows ORDER BY position"
                 ) == [("listed", "list"), ("counted", "count"), ("plain", None)]
    stored = dict(query(traced, "SELECT row_id, instruction_kind FROM pipeline_rows"))
    assert stored == {"listed": "list", "counted": "count", "plain": None}
    assert all(r is not None for (r,) in query(
        traced, "SELECT encoder_reading FROM pipeline_rows"))
    with duckdb.connect(str(traced)) as con:
        run = run_evaluations(con, [FailureAttribution(labels=LABELS)], run="by-kind")
        verdicts = {row_id: (label, metadata) for row_id, label, metadata in con.execute(
            "SELECT row_id, label, metadata::JSON FROM evaluations WHERE run_id = ?",
            [run.run_id]).fetchall()}
    kinds = {r: json.loads(m)["kind"] for r, (_, m) in verdicts.items()}
    assert kinds == {"listed": "list", "counted": "count", "plain": "count"}
    # Read as a list, "dog and car" names both objects; read as a count it gives no number.
    assert json.loads(verdicts["listed"][1])["answer_reading"] == ["car", "dog"]
    assert json.loads(verdicts["counted"][1])["answer_reading"] == 2


def test_a_version_10_store_migrated_no_longer_reads_a_nan_score(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "v10.duckdb"))
    store_at_version(con, 10)
    con.execute("INSERT INTO row_records (trace_id, span_id, row_id) VALUES ('t1', 'a1', 'r')")
    con.execute("INSERT INTO encoder_records (trace_id, span_id, record_index, row_id, "
                "top_k_labels, top_k_scores, multi_label) VALUES "
                "('t1', 'e1', 0, 'r', ['dog', 'car', 'sky'], ['nan'::DOUBLE, 0.9, 0.2], true)")
    facts.refresh(con)
    # Version 10's rule read the NaN (DuckDB orders NaN above every number) ...
    assert con.execute("SELECT encoder_reading FROM pipeline_rows").fetchall() == [
        (["dog", "car"],)]
    assert migrate(con) == SCHEMA_VERSION >= 11
    assert con.execute("SELECT encoder_reading FROM pipeline_rows").fetchall() == [(["car"],)]
