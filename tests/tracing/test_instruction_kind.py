"""The instruction kind a user knows: set on the row span by trace_row / trace_batch and by a
Dataset column, refused when it is not a kind."""

from __future__ import annotations

import pytest

import vlmscope
from tests.helpers import query
from vlmscope import conventions as cv


def row_kinds(db) -> dict[str, str | None]:
    rows = query(db, "SELECT attributes FROM spans WHERE name = ?", [cv.ROW_SPAN_NAME])
    import json

    found = {}
    for (attributes,) in rows:
        attrs = json.loads(attributes) if isinstance(attributes, str) else attributes
        found[attrs[cv.VLMSCOPE_ROW_ID]] = attrs.get(cv.VLMSCOPE_INSTRUCTION_KIND)
    return found


def test_trace_row_and_trace_batch_put_the_kind_on_each_row_span(traced) -> None:
    with vlmscope.trace_row("solo", instruction="how many?", instruction_kind="count"):
        pass
    with vlmscope.trace_batch(["a", "b", "c"], instructions=["x", "y", "z"],
                              instruction_kinds=["list", None, "probe"]):
        pass
    with vlmscope.trace_batch(["d", "e"], instruction_kinds="describe"):
        pass
    with vlmscope.trace_row("plain"):
        pass
    vlmscope.shutdown()
    assert row_kinds(traced) == {"solo": "count", "a": "list", "b": None, "c": "probe",
                                 "d": "describe", "e": "describe", "plain": None}


def test_a_kind_that_is_no_kind_is_refused_with_the_kinds_named(traced) -> None:
    with pytest.raises(ValueError, match="unknown instruction kind.*'poem'.*name, list, count"):
        with vlmscope.trace_row("r", instruction_kind="poem"):
            pass
    with pytest.raises(ValueError, match="unknown instruction kind"):
        with vlmscope.trace_batch(["a", "b"], instruction_kinds=["name", "haiku"]):
            pass
    with pytest.raises(ValueError, match="record 0 has instruction_kind 'poem'"):
        vlmscope.Dataset.from_records("d", [{"id": "r", "image": b"x",
                                             "instruction_kind": "poem"}])


def test_a_dataset_column_gives_each_row_its_kind(traced) -> None:
    pytest.importorskip("PIL")
    from PIL import Image

    image = Image.new("RGB", (8, 8), "white")
    dataset = vlmscope.Dataset.from_records("kinds", [
        {"id": "r1", "image": image, "instruction": "what is it?", "instruction_kind": "name",
         "expected": "cat"},
        {"id": "r2", "image": image, "instruction": "how many?", "expected": "2"}])
    assert [r.instruction_kind for r in dataset.rows] == ["name", None]
    dataset.run(lambda rows: ["cat"] * len(rows), name="k", batch_size=2)
    vlmscope.shutdown()
    assert row_kinds(traced) == {"r1": "name", "r2": None}


def test_a_row_and_its_llm_call_finish_as_openinference_chain_and_llm_spans(
        tracer_provider, span_exporter):
    """What a row leaves behind, read off the finished spans themselves (no store)."""
    with vlmscope.trace_row("r1", expected="cat"):
        with vlmscope.llm_span(model="m", instruction="what is it?") as span:
            span.set_output("cat")
    finished = {s.attributes[cv.OPENINFERENCE_SPAN_KIND]: s
                for s in span_exporter.get_finished_spans()}
    row, llm = finished[cv.SPAN_KIND_CHAIN], finished[cv.SPAN_KIND_LLM]
    assert row.name == cv.ROW_SPAN_NAME and llm.name == "chat m"  # GenAI: operation, model
    assert row.attributes[cv.VLMSCOPE_ROW_ID] == "r1"
    assert llm.attributes[cv.OUTPUT_VALUE] == "cat"
    assert llm.parent.span_id == row.context.span_id
