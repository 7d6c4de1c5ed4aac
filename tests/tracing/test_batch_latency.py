"""Batch latency from real instrumentation: under trace_batch every row records the batch's
size, and pipeline_rows gives each row its share of the batched encoder and LLM calls."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

import vlmscope  # noqa: E402
from tests.helpers import digit_images, query  # noqa: E402


def test_each_row_of_a_batch_records_the_batch_size_and_its_share_of_the_time(traced: Path):
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=10).eval()
    handle = vlmscope.instrument_encoder(model)
    images, _ = digit_images(5, size=32)
    with vlmscope.trace_batch(["b0", "b1", "b2", "b3"]), torch.no_grad():
        model(images[:4])
        with vlmscope.llm_span("head", instruction=["which digit?"] * 4) as llm:
            llm.set_output(["1", "2", "3", "4"])
    with vlmscope.trace_row("alone"), torch.no_grad():
        model(images[4:])
        with vlmscope.llm_span("head", instruction="which digit?") as llm:
            llm.set_output("5")
    handle.uninstrument()
    vlmscope.shutdown()
    rows = {r[0]: r[1:] for r in query(
        traced, "SELECT row_id, batch_size, encoder_ms, encoder_share_ms, llm_ms, "
                "llm_share_ms FROM pipeline_rows")}
    assert set(rows) == {"b0", "b1", "b2", "b3", "alone"}
    batch_encoder_ms = {rows[r][1] for r in ("b0", "b1", "b2", "b3")}
    assert len(batch_encoder_ms) == 1  # one batched forward, seen by each row
    for row_id in ("b0", "b1", "b2", "b3"):
        size, encoder_ms, encoder_share, llm_ms, llm_share = rows[row_id]
        assert size == 4 and encoder_ms > 0
        assert encoder_share == pytest.approx(encoder_ms / 4)
        assert llm_share == pytest.approx(llm_ms / 4)
    size, encoder_ms, encoder_share, llm_ms, llm_share = rows["alone"]
    assert size is None and encoder_share == encoder_ms and llm_share == llm_ms


def test_trace_row_inside_a_batch_is_that_row_for_a_call_made_per_image(traced: Path):
    """A batched encoder forward, then the head asked once per image: ``trace_row(row_id)``
    inside the batch is the batch's row (one row per id, not a second one without its
    expected answer), the call inside is that row's own (its whole time, not a share), its
    span is a child of the row's, and the arguments given there are the row's. An error
    inside one row's block marks that row alone."""
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=10).eval()
    handle = vlmscope.instrument_encoder(model)
    images, _ = digit_images(3, size=32)
    with vlmscope.trace_batch(["b0", "b1", "b2"], expected=["one", "two", "three"]), \
            torch.no_grad():
        model(images)
        for i, row_id in enumerate(["b0", "b1", "b2"]):
            try:
                with vlmscope.trace_row(row_id, instruction=f"which digit? ({i})"), \
                        vlmscope.llm_span("head", instruction=f"which digit? ({i})") as llm:
                    if row_id == "b2":
                        raise TimeoutError("the head timed out")
                    llm.set_output(f"answer {i}")
            except TimeoutError:
                pass
    handle.uninstrument()
    vlmscope.shutdown()
    rows = query(traced, "SELECT row_id, expected, instruction, output, batch_size, status, "
                         "abs(encoder_share_ms * 3 - encoder_ms) < 1e-6, llm_share_ms = llm_ms "
                         "FROM pipeline_rows ORDER BY row_id")
    assert rows == [
        ("b0", "one", "which digit? (0)", "answer 0", 3, "OK", True, True),
        ("b1", "two", "which digit? (1)", "answer 1", 3, "OK", True, True),
        ("b2", "three", "which digit? (2)", None, 3, "ERROR", True, True)]
    parents = query(traced, "SELECT p.name, p.attributes->>'$.\"vlmscope.row.id\"' "
                            "FROM spans s JOIN spans p ON p.span_id = s.parent_span_id "
                            "WHERE s.kind = 'CLIENT' ORDER BY 2")
    assert parents == [("vlmscope.row", "b0"), ("vlmscope.row", "b1"), ("vlmscope.row", "b2")]


def test_an_llm_call_right_inside_a_batch_is_told_to_be_tied_to_no_row(
        traced: Path, caplog: pytest.LogCaptureFixture):
    """An instrumentor's LLM call made right inside ``trace_batch`` reaches no row: the user
    is told once, with what ties it. Not one inside ``trace_row(row_id)``, nor one inside
    the user's own ``llm_span`` that gives the rows their answers."""
    from opentelemetry import trace

    from vlmscope import conventions as cv
    from vlmscope import rows

    rows._warned.discard("batch-call-unrowed")
    tracer = trace.get_tracer("my-agent")

    def call() -> None:
        with tracer.start_as_current_span("chat m", attributes={
                cv.GEN_AI_OPERATION_NAME: "chat", cv.GEN_AI_REQUEST_MODEL: "m"}):
            pass

    def told() -> list[str]:
        return [r.getMessage() for r in caplog.records if "tied to no row" in r.getMessage()]

    with caplog.at_level("WARNING", "vlmscope"), vlmscope.trace_batch(["b1", "b2"]):
        with vlmscope.trace_row("b1"):
            call()
        with vlmscope.llm_span("head", instruction=["q1", "q2"]) as llm:
            call()
            llm.set_output(["a1", "a2"])
        assert told() == []
        call()
        call()
    vlmscope.shutdown()
    (warning,) = told()
    assert "'chat m' inside trace_batch" in warning and "trace_row(row_id)" in warning
