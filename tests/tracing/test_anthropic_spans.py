"""Claude as the language head: the ``anthropic`` SDK's calls become the row's LLM record.

The real ``anthropic`` client talks to a local server speaking the Messages API
(``/v1/messages``, whole and as server-sent events), inside ``trace_row`` after a hooked
torchvision ResNet-18. The SDK traces every call itself (a ``CLIENT`` span of scope
``com.anthropic.sdk.python``, GenAI attributes, the messages only in its ``content`` mode);
the real ``openinference-instrumentation-anthropic`` and ``opentelemetry-instrumentation-
anthropic`` (OpenLLMetry) trace the same call once more, as users who add one get it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
anthropic = pytest.importorskip("anthropic")

import vlmscope  # noqa: E402
from tests.helpers import digit_images, local_server, query  # noqa: E402
from vlmscope.cli import main  # noqa: E402

REQUEST_MODEL, RESPONSE_MODEL = "claude-head", "claude-head-2026-01-01"
ANSWERS = {"Which digit is this?": "three", "How many digits?": "two digits"}
INPUT_TOKENS, OUTPUT_TOKENS = 17, 2
CONTENT_MODE = "ANTHROPIC_OPEN_TELEMETRY_TRACES_CONTENT_MODE"


class _Messages(BaseHTTPRequestHandler):
    """``/v1/messages``: answers the last user message's text from :data:`ANSWERS`, whole or
    streamed as the Messages API's events; a question it does not know gets a 500."""

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        content = body["messages"][-1]["content"]
        question = content if isinstance(content, str) else " ".join(
            part["text"] for part in content if part["type"] == "text")
        if question not in ANSWERS:
            self._send(500, {"type": "error", "error": {"type": "api_error",
                                                        "message": "overloaded"}})
            return
        answer = ANSWERS[question]
        message = {"id": "msg_1", "type": "message", "role": "assistant",
                   "model": RESPONSE_MODEL, "stop_reason": "end_turn", "stop_sequence": None}
        if not body.get("stream"):
            self._send(200, {**message, "content": [{"type": "text", "text": answer}],
                             "usage": {"input_tokens": INPUT_TOKENS,
                                       "output_tokens": OUTPUT_TOKENS}})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        self._event("message_start", {"message": {
            **message, "content": [], "stop_reason": None,
            "usage": {"input_tokens": INPUT_TOKENS, "output_tokens": 0}}})
        self._event("content_block_start", {"index": 0,
                                            "content_block": {"type": "text", "text": ""}})
        head, _, tail = answer.partition(" ")
        for piece in (head + " ", tail):
            self._event("content_block_delta", {"index": 0, "delta": {
                "type": "text_delta", "text": piece}})
        self._event("content_block_stop", {"index": 0})
        self._event("message_delta", {"delta": {"stop_reason": "end_turn",
                                                "stop_sequence": None},
                                      "usage": {"output_tokens": OUTPUT_TOKENS}})
        self._event("message_stop", {})

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _event(self, kind: str, payload: dict) -> None:
        self.wfile.write(f"event: {kind}\ndata: {json.dumps({'type': kind, **payload})}\n\n"
                         .encode())


@pytest.fixture(scope="module")
def messages_server() -> Iterator[str]:
    """The base URL of a local Messages API server."""
    with local_server(_Messages) as url:
        yield url


@pytest.fixture
def told(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[], list[str]]]:
    """The warnings vlmscope has logged so far about rows without an answer (each is told
    once a process: forgotten here first)."""
    from vlmscope import rows

    rows._warned.discard("answer-missing")
    with caplog.at_level("WARNING", "vlmscope"):
        yield lambda: [r.getMessage() for r in caplog.records
                       if "has no answer" in r.getMessage()]


class _Instrumented:
    """An anthropic instrumentor for the block, its wrappers peeled off after it (OpenLLMetry's
    ``uninstrument`` leaves some on), so that the next test sees the SDK as it was."""

    def __init__(self, name: str) -> None:
        module = pytest.importorskip("openinference.instrumentation.anthropic" if name ==
                                     "openinference" else
                                     "opentelemetry.instrumentation.anthropic")
        self.instrumentor = module.AnthropicInstrumentor()

    def __enter__(self) -> None:
        self.instrumentor.instrument()

    def __exit__(self, *exc: object) -> None:
        from anthropic.resources import messages

        self.instrumentor.uninstrument()
        for cls in (messages.Messages, messages.AsyncMessages):
            for name in ("create", "stream"):
                while hasattr(cls.__dict__[name], "__wrapped__"):
                    setattr(cls, name, cls.__dict__[name].__wrapped__)


def _run_pipeline(base_url: str) -> None:
    """Three rows: a hooked ResNet-18 reads a digit, then Claude is asked, whole (with the
    image as a base64 block), through ``messages.stream`` and with a question the server
    fails on."""
    torch.manual_seed(0)
    encoder = torchvision.models.resnet18(weights=None).eval()
    hooks = vlmscope.instrument_encoder(encoder, top_k=3)
    client = anthropic.Anthropic(base_url=base_url, api_key="not-a-key", max_retries=0)
    images, _ = digit_images(3)
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(64))).decode("ascii")
    try:
        with vlmscope.trace_row("whole", expected="three"):
            encoder(images[:1])
            reply = client.messages.create(model=REQUEST_MODEL, max_tokens=16, messages=[
                {"role": "user", "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                 "data": png}},
                    {"type": "text", "text": "Which digit is this?"}]}])
            assert reply.content[0].text == "three"
        with vlmscope.trace_row("streamed", expected="two"):
            encoder(images[1:2])
            with client.messages.stream(model=REQUEST_MODEL, max_tokens=16, messages=[
                    {"role": "user", "content": "How many digits?"}]) as stream:
                assert "".join(stream.text_stream) == "two digits"
        with vlmscope.trace_row("failed", expected="one"), \
                pytest.raises(anthropic.InternalServerError):
            encoder(images[2:])
            client.messages.create(model=REQUEST_MODEL, max_tokens=16, messages=[
                {"role": "user", "content": "What is this?"}])
    finally:
        hooks.uninstrument()


_ROWS = "SELECT row_id, llm_model, instruction, output, input_tokens, output_tokens, " \
        "top_k_labels IS NOT NULL FROM pipeline_rows ORDER BY row_id"


def _trace_into(db: Path, base_url: str, instrumentor: str | None = None) -> None:
    """The three rows of :func:`_run_pipeline` into the store ``db`` (the SDK's own tracing,
    with ``instrumentor``'s beside it when one is named)."""
    vlmscope.configure(db=db)
    try:
        if instrumentor is None:
            _run_pipeline(base_url)
        else:
            with _Instrumented(instrumentor):
                _run_pipeline(base_url)
    finally:
        vlmscope.shutdown()


def test_the_sdks_own_tracing_in_content_mode_is_the_rows_llm_record(
        tmp_path: Path, messages_server: str, monkeypatch: pytest.MonkeyPatch,
        told: Callable[[], list[str]]) -> None:
    """With no instrumentor at all, the SDK's own spans make the rows: model, instruction
    (the text beside the image), answer (streamed too) and tokens."""
    monkeypatch.setenv(CONTENT_MODE, "content")
    db = tmp_path / "sdk.duckdb"
    _trace_into(db, messages_server)
    assert query(db, _ROWS) == [
        ("failed", REQUEST_MODEL, "What is this?", None, None, None, True),
        ("streamed", REQUEST_MODEL, "How many digits?", "two digits", INPUT_TOKENS,
         OUTPUT_TOKENS, True),
        ("whole", REQUEST_MODEL, "Which digit is this?", "three", INPUT_TOKENS,
         OUTPUT_TOKENS, True)]
    assert query(db, "SELECT DISTINCT s.scope_name, s.kind FROM pipeline_rows p JOIN spans s "
                     "ON s.span_id = p.llm_span_id") == [("com.anthropic.sdk.python", "CLIENT")]
    assert told() == []  # the failed call has no answer, and is not one to warn about


def test_the_sdks_metadata_only_tracing_leaves_rows_without_an_answer_and_says_how_to_fix_it(
        tmp_path: Path, messages_server: str, monkeypatch: pytest.MonkeyPatch,
        told: Callable[[], list[str]], capsys: pytest.CaptureFixture[str]) -> None:
    """By default the SDK records no messages: the rows get the model and the tokens but no
    answer. The user is told once while tracing, and by ``vlmscope eval``, how to switch the
    messages on; the failed call is not counted."""
    monkeypatch.delenv(CONTENT_MODE, raising=False)
    db = tmp_path / "metadata.duckdb"
    _trace_into(db, messages_server)
    assert query(db, _ROWS) == [
        ("failed", REQUEST_MODEL, None, None, None, None, True),
        ("streamed", REQUEST_MODEL, None, None, INPUT_TOKENS, OUTPUT_TOKENS, True),
        ("whole", REQUEST_MODEL, None, None, INPUT_TOKENS, OUTPUT_TOKENS, True)]
    (warning,) = told()
    assert "'whole'" in warning and "com.anthropic.sdk.python" in warning \
        and f"{CONTENT_MODE}=content" in warning
    capsys.readouterr()
    assert main(["eval", "--db", str(db), "--format", "json"]) in (0, 1)
    warnings = [w for w in json.loads(capsys.readouterr().out)["warnings"]
                if "have no answer" in w]
    assert len(warnings) == 1 and warnings[0].startswith("2 rows have no answer") \
        and f"{CONTENT_MODE}=content" in warnings[0]


@pytest.mark.parametrize("instrumentor", ["openinference", "openllmetry"])
def test_an_instrumentor_beside_the_sdks_own_tracing_answers_the_row(
        tmp_path: Path, messages_server: str, monkeypatch: pytest.MonkeyPatch,
        told: Callable[[], list[str]], instrumentor: str) -> None:
    """With an instrumentor added, each call is traced twice (the instrumentor's span and
    the SDK's metadata-only one, inside it or beside it): the row's answer is the
    instrumentor's, which ends last, and nobody is told of a missing answer."""
    monkeypatch.delenv(CONTENT_MODE, raising=False)
    db = tmp_path / f"{instrumentor}.duckdb"
    _trace_into(db, messages_server, instrumentor)
    rows = query(db, "SELECT row_id, instruction, output, s.scope_name FROM pipeline_rows p "
                     "JOIN spans s ON s.span_id = p.llm_span_id ORDER BY row_id")
    assert [r[:3] for r in rows] == [("failed", "What is this?", None),
                                     ("streamed", "How many digits?", "two digits"),
                                     ("whole", "Which digit is this?", "three")]
    assert all("instrumentation.anthropic" in scope for *_, scope in rows), rows
    # the same call twice: the SDK's record is stored too, without the messages
    assert query(db, "SELECT row_id, count(*), count(output) FROM llm_records "
                     "WHERE row_id <> 'failed' GROUP BY ALL ORDER BY ALL") == [
        ("streamed", 2, 1), ("whole", 2, 1)]
    assert told() == []


def test_an_answer_the_user_sets_on_llm_span_is_the_rows_and_silences_the_warning(
        tmp_path: Path, messages_server: str, monkeypatch: pytest.MonkeyPatch,
        told: Callable[[], list[str]]) -> None:
    """The SDK's metadata-only call inside vlmscope's own ``llm_span``, which the user gives
    the answer: that span ends last and answers the row."""
    monkeypatch.delenv(CONTENT_MODE, raising=False)
    db = tmp_path / "own.duckdb"
    vlmscope.configure(db=db)
    client = anthropic.Anthropic(base_url=messages_server, api_key="not-a-key", max_retries=0)
    try:
        with vlmscope.trace_row("own", expected="three"), \
                vlmscope.llm_span(model=REQUEST_MODEL, provider="anthropic",
                                  instruction="Which digit is this?") as span:
            reply = client.messages.create(model=REQUEST_MODEL, max_tokens=16, messages=[
                {"role": "user", "content": "Which digit is this?"}])
            span.set_output(reply.content[0].text)
    finally:
        vlmscope.shutdown()
    assert query(db, "SELECT instruction, output FROM pipeline_rows") == [
        ("Which digit is this?", "three")]
    assert told() == []


def test_claude_asked_per_image_after_a_batched_encoder_answers_each_row(
        tmp_path: Path, messages_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """One batched encoder forward, then Claude asked per image inside ``trace_row`` for
    each of the batch's rows: each row gets its own call's instruction and answer, and the
    batch keeps one row per id."""
    monkeypatch.setenv(CONTENT_MODE, "content")
    db = tmp_path / "batched.duckdb"
    vlmscope.configure(db=db)
    encoder = torchvision.models.resnet18(weights=None).eval()
    hooks = vlmscope.instrument_encoder(encoder, top_k=3)
    client = anthropic.Anthropic(base_url=messages_server, api_key="not-a-key", max_retries=0)
    images, _ = digit_images(2)
    questions = {"r0": "Which digit is this?", "r1": "How many digits?"}
    try:
        with vlmscope.trace_batch(list(questions), expected=["three", "two"]), torch.no_grad():
            encoder(images)
            for row_id, question in questions.items():
                with vlmscope.trace_row(row_id):
                    client.messages.create(model=REQUEST_MODEL, max_tokens=16, messages=[
                        {"role": "user", "content": question}])
    finally:
        hooks.uninstrument()
        vlmscope.shutdown()
    assert query(db, "SELECT row_id, expected, instruction, output, "
                     "top_k_labels IS NOT NULL, batch_size FROM pipeline_rows "
                     "ORDER BY row_id") == [
        ("r0", "three", "Which digit is this?", "three", True, 2),
        ("r1", "two", "How many digits?", "two digits", True, 2)]
