"""Text UTF-8 cannot encode (a lone surrogate: half an emoji a tokenizer cut, a ``\\ud83d``
JSON escape) is kept with U+FFFD in its place, on every way into the store: spans ending in
the agent (native and pure-Python converters, batched or not), OTLP JSON posted to a real
collector, and rows handed to an evaluator. Before, the span was lost, with the pure-Python
converter its whole batch, and the collector refused the whole request."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

import vlmscope
from tests.helpers import collector, query
from vlmscope.collectors import convert
from vlmscope.evaluators import (
    CaptionHallucination,
    CustomEvaluation,
    FailureAttribution,
    GroundTruthMatch,
    ImageInstructionAdherence,
)
from vlmscope.unicode_text import has_invalid_text, valid_text

HALF = "\ud83d"  # the high half of 😀, alone
LOW = "\udc00"


def test_valid_text_joins_pairs_replaces_lone_halves_and_walks_containers() -> None:
    assert valid_text("a" + HALF + "\ude00b") == "a😀b"
    assert valid_text("a" + HALF + "b" + LOW) == "a\ufffdb\ufffd"
    assert valid_text({"k" + LOW: ("x" + HALF, ["y", 1, None, b"\xff"])}) == {
        "k\ufffd": ("x\ufffd", ["y", 1, None, b"\xff"])}
    assert has_invalid_text([{"a": ("ok", "no" + HALF)}])
    assert not has_invalid_text([{"a": ("ok", "日本 😀", 3.5)}])
    assert valid_text("plain 日本") == "plain 日本"


def _agent_rows(n: int, bad: int) -> None:
    for i in range(n):
        broken = i == bad
        with vlmscope.trace_row(f"r{i}", expected="cat" + (HALF if broken else ""),
                                instruction="what is this?"):
            with vlmscope.encoder_span("resnet18", checkpoint_sha256="ab" * 32) as enc:
                enc.record(top_k_labels=[["cat" + (LOW if broken else ""), "dog"]],
                           top_k_scores=[[0.7, 0.2]])
            with vlmscope.llm_span(model="m", instruction="what?" + (HALF if broken else "")
                                   ) as llm:
                llm.set_output(("a cat " + HALF + "\ude00 " + HALF) if broken else "a cat")


@pytest.mark.parametrize("native", [True, False], ids=["native", "pure-python"])
@pytest.mark.parametrize("batch", [True, False], ids=["batched", "one-by-one"])
def test_a_span_with_a_lone_surrogate_is_stored_with_a_replacement_and_nothing_is_lost(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, native: bool, batch: bool) -> None:
    if native and convert._native is None:
        pytest.skip("the native span converter is not built")
    if not native:
        monkeypatch.setattr(convert, "_native", None)
    db = tmp_path / "u.duckdb"
    vlmscope.configure(db=db, batch=batch)
    _agent_rows(20, bad=7)
    vlmscope.shutdown()
    stats = vlmscope.export_stats()
    assert (stats.exported_spans, stats.failed_spans) == (60, 0), stats
    rows = {r[0]: r[1:] for r in query(
        db, "SELECT row_id, expected, instruction, output, top_k_labels FROM pipeline_rows")}
    assert len(rows) == 20
    assert rows["r7"] == ("cat\ufffd", "what?\ufffd", "a cat 😀 \ufffd", ["cat\ufffd", "dog"])
    assert rows["r6"] == ("cat", "what?", "a cat", ["cat", "dog"])


def test_otlp_json_with_a_lone_surrogate_escape_is_stored_not_refused(tmp_path: Path) -> None:
    """JavaScript's JSON.stringify writes a lone surrogate as an escape; orjson refuses it."""
    span = {"traceId": "5b8efff798038103d269b633813fc60d", "spanId": "eee19b7ec3c1b175",
            "name": "llm", "startTimeUnixNano": "1700000000000000000",
            "endTimeUnixNano": "1700000000500000000",
            "attributes": [{"key": "output.value",
                            "value": {"stringValue": "a cat " + HALF}}]}
    body = {"resourceSpans": [{"resource": {"attributes": []},
                               "scopeSpans": [{"scope": {"name": "js"}, "spans": [span]}]}]}
    text = json.dumps(body)  # ensure_ascii: the half is written as the escape \ud83d
    assert "\\ud83d" in text
    with collector(tmp_path / "c.duckdb") as c:
        answer = requests.post(c.traces_url, data=text.encode(), timeout=30,
                               headers={"Content-Type": "application/json"})
        assert answer.status_code == 200, answer.text
        refused = requests.post(c.traces_url, data=b'{"resourceSpans": NaN}', timeout=30,
                                headers={"Content-Type": "application/json"})
        assert refused.status_code == 400
    stored = query(c.db, "SELECT attributes->>'$.\"output.value\"' FROM spans")
    assert stored == [("a cat \ufffd",)]


@pytest.mark.parametrize("evaluator", [
    GroundTruthMatch(), CaptionHallucination(), ImageInstructionAdherence(),
    FailureAttribution(), CustomEvaluation("n", fn=lambda row: len(row["output"] or "")),
], ids=lambda e: e.name)
def test_an_evaluator_reads_a_lone_surrogate_as_the_store_keeps_it(evaluator) -> None:
    broken = {"output": "two cats" + HALF, "expected": "cat" + LOW,
              "instruction": "describe the image" + HALF, "objects": ["cat", "dog" + HALF],
              "top_k_labels": ["cat", "dog" + LOW]}
    kept = valid_text(broken)
    assert evaluator.evaluate_rows([broken]) == evaluator.evaluate_rows([kept])
    assert evaluator.evaluate_row(broken) == evaluator.evaluate_row(kept)


def test_a_batch_the_pure_python_converter_fails_is_counted_lost_span_by_span(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Any other conversion failure still loses the batch, but export_stats says how many
    spans: the count is taken before the batch is emptied. (The failure is injected: no
    span the SDK lets an agent make fails the converter otherwise.)"""
    monkeypatch.setattr(convert, "_native", None)

    def fail(spans):
        raise RuntimeError("converter broke")

    monkeypatch.setattr(convert, "_spans_to_batch_python", fail)
    vlmscope.configure(db=tmp_path / "f.duckdb")
    _agent_rows(5, bad=-1)
    vlmscope.shutdown()
    stats = vlmscope.export_stats()
    assert (stats.exported_spans, stats.failed_spans) == (0, 15), stats
    assert stats.last_error == "RuntimeError: converter broke"


def test_a_dataset_record_with_a_lone_surrogate_saves_and_loads_with_a_replacement(
        tmp_path: Path) -> None:
    np = pytest.importorskip("numpy")
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    made = vlmscope.Dataset.from_records("d", [
        {"id": "a" + HALF, "image": image, "expected": "cat" + LOW,
         "instruction": "what" + HALF + "?", "objects": ["cat" + HALF], "tags": ["t" + LOW]}])
    made.save(tmp_path / "d.duckdb")
    row = vlmscope.Dataset.load(tmp_path / "d.duckdb", "d").rows[0]
    assert (row.id, row.expected, row.instruction, row.objects, row.tags) == (
        "a\ufffd", "cat\ufffd", "what\ufffd?", ("cat\ufffd",), ("t\ufffd",))
    assert made.rows[0].expected == row.expected  # the same text before and after the store
