"""The pipeline_rows columns added in schema 7 (encoder_multi_label, instruction_kind,
batch_size, encoder_share_ms, llm_share_ms), from real spans into a real DuckDB file: through
the embedded exporter (native and pure-Python converters) and through ``vlmscope collect``."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

import vlmscope  # noqa: E402
from tests.helpers import collector, digit_images, query  # noqa: E402
from vlmscope import conventions as cv  # noqa: E402
from vlmscope.collectors import convert  # noqa: E402

COLUMNS = ("row_id, encoder_multi_label, instruction_kind, batch_size, encoder_ms, "
           "encoder_share_ms, llm_ms, llm_share_ms, top_k_labels IS NOT NULL, output")


def _trace_rows() -> None:
    """Three kinds of row: one with its instruction kind on the row span, one with it on
    the LLM span only, and a batch of three rows whose encoder is multi-label."""
    torch.manual_seed(0)
    encoder = torchvision.models.resnet18(weights=None).eval()
    hooks = vlmscope.instrument_encoder(encoder, top_k=3)
    images, _ = digit_images(3)
    try:
        with vlmscope.trace_row("single", attributes={cv.VLMSCOPE_INSTRUCTION_KIND: "count"}):
            encoder(images[:1])
            with vlmscope.llm_span(model="m", instruction="How many?") as llm:
                llm.span.set_attribute(cv.VLMSCOPE_INSTRUCTION_KIND, "name")  # the row's wins
                llm.set_output("two")
        with vlmscope.trace_row("llm-kind"):
            encoder(images[:1])
            with vlmscope.llm_span(model="m", instruction="Is there a cat?") as llm:
                llm.span.set_attribute(cv.VLMSCOPE_INSTRUCTION_KIND, "probe")
                llm.set_output("yes")
    finally:
        hooks.uninstrument()
    ids = ["b0", "b1", "b2"]
    with vlmscope.trace_batch(ids):
        with vlmscope.encoder_span("tagger") as enc:
            enc.span.set_attributes({cv.VISION_ENCODER_MULTI_LABEL: True,
                                     cv.VLMSCOPE_BATCH_SIZE: 3})
            enc.record(top_k_labels=[["cat", "sofa"]] * 3, top_k_scores=[[0.9, 0.8]] * 3)
        with vlmscope.llm_span(model="m", instruction=["list"] * 3) as llm:
            llm.span.set_attribute(cv.VLMSCOPE_BATCH_SIZE, 3)
            llm.set_output(["cat, sofa"] * 3)


def _check(db: Path) -> None:
    rows = {r[0]: r[1:] for r in query(db, f"SELECT {COLUMNS} FROM pipeline_rows")}
    assert set(rows) == {"single", "llm-kind", "b0", "b1", "b2"}
    multi, kind, size, enc_ms, enc_share, llm_ms, llm_share, has_top_k, output = rows["single"]
    assert (multi, kind, size, has_top_k, output) == (None, "count", None, True, "two")
    assert enc_ms > 0 and enc_share == enc_ms and llm_share == llm_ms
    assert rows["llm-kind"][1:3] == ("probe", None)
    for row_id in ("b0", "b1", "b2"):
        multi, kind, size, enc_ms, enc_share, llm_ms, llm_share, has_top_k, output = rows[row_id]
        assert (multi, kind, size, has_top_k, output) == (True, None, 3, True, "cat, sofa")
        assert enc_share == pytest.approx(enc_ms / 3) and llm_share == pytest.approx(llm_ms / 3)
    # trace_batch itself puts the batch size on each row span
    sizes = query(db, "SELECT batch_size FROM row_records WHERE row_id LIKE 'b%'")
    assert sizes == [(3,)] * 3


@pytest.mark.parametrize("converter", ["native", "python"])
def test_new_columns_reach_pipeline_rows_through_the_embedded_exporter(
        db_path: Path, converter: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if converter == "native" and not convert.native_converter():
        pytest.skip("the native span converter is not built")
    if converter == "python":
        monkeypatch.setattr(convert, "_native", None)
    vlmscope.configure(db=db_path, service_name="tests")
    try:
        _trace_rows()
    finally:
        vlmscope.shutdown()
    _check(db_path)


def test_new_columns_reach_pipeline_rows_through_vlmscope_collect(tmp_path: Path) -> None:
    with collector(tmp_path / "collected.duckdb") as running:
        vlmscope.configure(endpoint=running.url, service_name="tests")
        try:
            _trace_rows()
        finally:
            vlmscope.shutdown()
    _check(running.db)


def test_rebuild_derives_the_new_columns_from_the_stored_spans(db_path: Path) -> None:
    """The records are derived again from ``spans`` alone (what an import does)."""
    import duckdb

    from vlmscope.collectors.normalize import rebuild

    vlmscope.configure(db=db_path, service_name="tests")
    try:
        _trace_rows()
    finally:
        vlmscope.shutdown()
    con = duckdb.connect(str(db_path))
    con.execute("UPDATE row_records SET instruction_kind = NULL, batch_size = NULL")
    con.execute("UPDATE encoder_records SET multi_label = NULL, batch_size = NULL")
    rebuild(con)
    con.close()
    _check(db_path)


def test_the_rows_encoder_record_is_the_one_its_llm_span_used(db_path: Path) -> None:
    """A zero-shot reading recorded by hand around a hooked tower's forward: the tower's
    span starts later and has a reading too, but the LLM span used (and links to) the
    zero-shot one, and so does the pipeline row."""
    torch.manual_seed(0)
    tower = torchvision.models.resnet18(weights=None).eval()
    hooks = vlmscope.instrument_encoder(tower, top_k=3)
    images, _ = digit_images(1)
    vlmscope.configure(db=db_path)
    try:
        with vlmscope.trace_row("r"):
            with vlmscope.encoder_span("zero-shot") as zero_shot:
                tower(images)
                zero_shot.record(top_k_labels=[["tabby cat"]], top_k_scores=[[0.8]])
            with vlmscope.llm_span(model="m", instruction="What is it?") as llm:
                llm.set_output("a cat")
    finally:
        hooks.uninstrument()
        vlmscope.shutdown()
    ((linked,),) = query(db_path, "SELECT encoder_span_id FROM llm_records")
    assert query(db_path, "SELECT count(*) FROM encoder_records WHERE top_k_labels IS NOT NULL"
                 ) == [(2,)]
    assert query(db_path, "SELECT encoder_span_id, top_k_labels FROM pipeline_rows") == [
        (linked, ["tabby cat"])]
    ((name,),) = query(db_path, "SELECT name FROM spans WHERE span_id = ?", [linked])
    assert name == cv.ENCODER_SPAN_NAME and linked == format(
        zero_shot.span.get_span_context().span_id, "016x")
