"""LLM spans written by other instrumentors become the row's LLM record.

The real ``openai`` client, sync and async, talks to a local OpenAI-compatible HTTP server
(below, answering ``/v1/chat/completions`` with and without streaming, and the Responses
API's ``/v1/responses``), traced by the real ``openinference-instrumentation-openai`` or
``opentelemetry-instrumentation-openai`` (OpenLLMetry), inside ``trace_row`` after a hooked
torchvision ResNet-18. The spans reach the
store through ``vlmscope.configure(db=...)`` as the README shows it (no ``set_global``), through
``vlmscope collect`` with the official OTLP exporter, and through export and import.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import itertools
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
openai = pytest.importorskip("openai")

import vlmscope  # noqa: E402
from tests.helpers import collector, digit_images, local_server, query  # noqa: E402
from vlmscope import conventions as cv  # noqa: E402
from vlmscope.cli import main  # noqa: E402
from vlmscope.collectors import convert  # noqa: E402

REQUEST_MODEL, RESPONSE_MODEL = "vision-helper", "vision-helper-2026-01-01"
ANSWERS = {"What animal is this?": "a tabby cat", "How many objects?": "three objects",
           "Which digits are shown?": "three five"}
PROMPT_TOKENS, COMPLETION_TOKENS = 11, 3
_RESPONSE_IDS = itertools.count()


class _ChatCompletions(BaseHTTPRequestHandler):
    """An OpenAI-compatible ``/v1/chat/completions``: answers the last user message from
    :data:`ANSWERS`, whole or streamed as server-sent events (two chunks, then usage)."""

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path.endswith("/responses"):
            self._respond(body)
            return
        question = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
        if isinstance(question, list):  # a multimodal message: its text parts ask
            question = " ".join(p["text"] for p in question if p["type"] == "text")
        answer = ANSWERS[question]
        usage = {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
                 "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS}
        base = {"id": "chatcmpl-1", "created": 1, "model": RESPONSE_MODEL}
        if body.get("stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            head, tail = answer.split(" ", 1)
            chunks = [{"role": "assistant", "content": head + " "}, {"content": tail}]
            for delta in chunks:
                self._event({**base, "object": "chat.completion.chunk", "choices": [
                    {"index": 0, "delta": delta, "finish_reason": None}]})
            self._event({**base, "object": "chat.completion.chunk", "choices": [
                {"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": usage})
            self.wfile.write(b"data: [DONE]\n\n")
            return
        data = json.dumps({**base, "object": "chat.completion", "usage": usage, "choices": [
            {"index": 0, "message": {"role": "assistant", "content": answer},
             "finish_reason": "stop"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _respond(self, body: dict) -> None:
        """The Responses API (``/v1/responses``): the input is a string or messages whose
        content is a string or parts (``input_text``, ``input_image``); each response has
        its own id, as OpenAI's do (OpenLLMetry keys its state by it)."""
        question = body["input"]
        if isinstance(question, list):
            content = [m for m in question if m.get("role") == "user"][-1]["content"]
            question = content if isinstance(content, str) else " ".join(
                p["text"] for p in content if p["type"] == "input_text")
        data = json.dumps({
            "id": f"resp_{next(_RESPONSE_IDS)}", "object": "response", "created_at": 1,
            "model": RESPONSE_MODEL, "status": "completed", "parallel_tool_calls": True,
            "tool_choice": "auto", "tools": [],
            "output": [{"type": "message", "id": "msg_1", "status": "completed",
                        "role": "assistant", "content": [
                            {"type": "output_text", "text": ANSWERS[question],
                             "annotations": []}]}],
            "usage": {"input_tokens": PROMPT_TOKENS, "output_tokens": COMPLETION_TOKENS,
                      "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
                      "input_tokens_details": {"cached_tokens": 0},
                      "output_tokens_details": {"reasoning_tokens": 0}}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _event(self, payload: dict) -> None:
        self.wfile.write(f"data: {json.dumps(payload)}\n\n".encode())


@pytest.fixture(scope="module")
def llm_server() -> Iterator[str]:
    """The base URL of a local OpenAI-compatible server."""
    with local_server(_ChatCompletions) as url:
        yield f"{url}/v1"


class _Instrumented:
    """An instrumentor, instrumented for the block (OpenLLMetry's ``uninstrument`` leaves
    its wrapper on ``Completions.create``, 0.62.4: it is peeled off here, with any on
    ``Responses.create``, so that the next test sees the client as it was)."""

    def __init__(self, name: str, **options: object) -> None:
        if name == "openinference":
            module = pytest.importorskip("openinference.instrumentation.openai")
        else:
            module = pytest.importorskip("opentelemetry.instrumentation.openai")
        self.instrumentor = module.OpenAIInstrumentor(**options)

    def __enter__(self) -> None:
        self.instrumentor.instrument()

    def __exit__(self, *exc: object) -> None:
        from openai.resources import responses
        from openai.resources.chat import completions

        self.instrumentor.uninstrument()
        for cls in (completions.Completions, completions.AsyncCompletions,
                    responses.Responses, responses.AsyncResponses):
            while hasattr(cls.__dict__["create"], "__wrapped__"):
                cls.create = cls.__dict__["create"].__wrapped__


def _run_pipeline(base_url: str) -> None:
    """Two rows: a hooked ResNet-18 reads the image, then the hosted LLM is asked (the
    second row streams its answer)."""
    torch.manual_seed(0)
    encoder = torchvision.models.resnet18(weights=None).eval()
    hooks = vlmscope.instrument_encoder(encoder, top_k=3)
    client = openai.OpenAI(base_url=base_url, api_key="not-a-key", max_retries=0)
    images, _ = digit_images(2)
    try:
        with vlmscope.trace_row("plain", expected="cat"):
            encoder(images[:1])
            client.chat.completions.create(model=REQUEST_MODEL, messages=[
                {"role": "system", "content": "Answer briefly."},
                {"role": "user", "content": "What animal is this?"}])
        with vlmscope.trace_row("streamed", expected="three"):
            encoder(images[1:])
            stream = client.chat.completions.create(
                model=REQUEST_MODEL, stream=True, stream_options={"include_usage": True},
                messages=[{"role": "user", "content": "How many objects?"}])
            assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) \
                == ANSWERS["How many objects?"]
    finally:
        hooks.uninstrument()


def _check_rows(db: Path, instrumentor: str) -> None:
    rows = query(db, "SELECT row_id, llm_model, instruction, output, input_tokens, "
                     "output_tokens, top_k_labels IS NOT NULL, encoder_span_id, llm_span_id "
                     "FROM pipeline_rows ORDER BY row_id")
    model = RESPONSE_MODEL if instrumentor == "openinference" else REQUEST_MODEL
    assert [r[:7] for r in rows] == [
        ("plain", model, "What animal is this?", "a tabby cat", PROMPT_TOKENS,
         COMPLETION_TOKENS, True),
        ("streamed", model, "How many objects?", "three objects", PROMPT_TOKENS,
         COMPLETION_TOKENS, True)]
    for row_id, *_, encoder_span_id, llm_span_id in rows:
        assert encoder_span_id is not None
        # the LLM span is the instrumentor's own, a child of the row span
        ((scope, parent_is_row),) = query(
            db, "SELECT s.scope_name, p.name = ? FROM spans s JOIN spans p "
                "ON p.span_id = s.parent_span_id AND p.trace_id = s.trace_id "
                "WHERE s.span_id = ?", [cv.ROW_SPAN_NAME, llm_span_id])
        assert "openai" in scope and parent_is_row, (row_id, scope)
    models = query(db, "SELECT DISTINCT response_model, provider FROM llm_records")
    assert models == [(RESPONSE_MODEL, "openai")]


@pytest.mark.parametrize("instrumentor", ["openinference", "openllmetry"])
def test_an_instrumented_openai_call_in_a_row_is_its_llm_record(
        tmp_path: Path, llm_server: str, instrumentor: str) -> None:
    """Embedded (configure as the README shows it), then export and import, then a
    rebuild of the store from its spans."""
    db = tmp_path / "embedded.duckdb"
    vlmscope.configure(db=db, service_name="agent")
    try:
        with _Instrumented(instrumentor):
            _run_pipeline(llm_server)
    finally:
        vlmscope.shutdown()
    _check_rows(db, instrumentor)
    exported, imported = tmp_path / "spans.jsonl", tmp_path / "imported.duckdb"
    assert main(["export", "--db", str(db), "-o", str(exported)]) == 0
    assert main(["import", str(exported), "--db", str(imported)]) == 0
    _check_rows(imported, instrumentor)
    # A store written before these spans were read: its records derived again from spans.
    import duckdb

    from vlmscope.collectors.normalize import rebuild

    con = duckdb.connect(str(db))
    con.execute("DELETE FROM llm_records")
    rebuild(con)
    con.close()
    _check_rows(db, instrumentor)


def _ask_about_an_image(base_url: str, png: bytes) -> None:
    """One row whose question to the hosted LLM carries the image as a base64 data URL, the
    way a vision-language pipeline sends it."""
    client = openai.OpenAI(base_url=base_url, api_key="not-a-key", max_retries=0)
    url = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    with vlmscope.trace_row("image", expected="three five", objects=["three", "five"]):
        client.chat.completions.create(model=REQUEST_MODEL, messages=[
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": [
                {"type": "text", "text": "Which digits are shown?"},
                {"type": "image_url", "image_url": {"url": url}}]}])


def _digit_png() -> bytes:
    from PIL import Image

    images, _ = digit_images(1)
    pixels = (images[0, 0] * 255).clamp(0, 255).to(torch.uint8).numpy()
    buffer = io.BytesIO()
    Image.fromarray(pixels).resize((224, 224)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("instrumentor, options", [
    ("openinference", {}),
    ("openllmetry", {"upload_base64_image": vlmscope.image_reference}),
], ids=["openinference", "openllmetry-with-image-reference"])
def test_a_question_with_a_base64_image_keeps_its_instruction(
        tmp_path: Path, llm_server: str, instrumentor: str, options: dict,
        caplog: pytest.LogCaptureFixture) -> None:
    """The instruction is the user message's text part; with OpenLLMetry the image part
    holds ``vlmscope.image_reference``'s digest of the PNG, not the image."""
    png = _digit_png()
    db = tmp_path / "image.duckdb"
    vlmscope.configure(db=db)
    try:
        with _Instrumented(instrumentor, **options), caplog.at_level("DEBUG", "vlmscope"):
            _ask_about_an_image(llm_server, png)
    finally:
        vlmscope.shutdown()
    assert query(db, "SELECT row_id, instruction, output FROM pipeline_rows") == [
        ("image", "Which digits are shown?", "three five")]
    assert not [r for r in caplog.records if "not the prompt" in r.getMessage()]
    ((attributes,),) = query(db, "SELECT attributes FROM spans WHERE scope_name LIKE '%openai%'")
    if instrumentor == "openllmetry":
        messages = json.loads(json.loads(attributes)[cv.GEN_AI_INPUT_MESSAGES])
        assert messages[-1]["parts"][1] == {
            "type": "uri", "modality": "image",
            "uri": "sha256:" + hashlib.sha256(png).hexdigest()}
        assert base64.b64encode(png).decode("ascii")[:200] not in attributes


@pytest.mark.parametrize("instrumentor, options", [
    ("openinference", {}),
    ("openllmetry", {"upload_base64_image": vlmscope.image_reference}),
], ids=["openinference", "openllmetry-with-image-reference"])
def test_the_responses_api_is_the_rows_llm_record(
        tmp_path: Path, llm_server: str, instrumentor: str, options: dict) -> None:
    """OpenAI's Responses API (``client.responses.create``), as OpenAI now recommends it:
    a string input, then instructions with a question and its image as input parts."""
    url = "data:image/png;base64," + base64.b64encode(_digit_png()).decode("ascii")
    db = tmp_path / "responses.duckdb"
    vlmscope.configure(db=db)
    try:
        with _Instrumented(instrumentor, **options):
            client = openai.OpenAI(base_url=llm_server, api_key="not-a-key", max_retries=0)
            with vlmscope.trace_row("text", expected="cat"):
                assert client.responses.create(
                    model=REQUEST_MODEL, input="What animal is this?").output_text \
                    == "a tabby cat"
            with vlmscope.trace_row("image", expected="three five"):
                client.responses.create(model=REQUEST_MODEL, instructions="Answer briefly.",
                                        input=[{"role": "user", "content": [
                                            {"type": "input_text",
                                             "text": "Which digits are shown?"},
                                            {"type": "input_image", "image_url": url}]}])
    finally:
        vlmscope.shutdown()
    assert query(db, "SELECT row_id, instruction, output, input_tokens, output_tokens, "
                     "llm_span_id IS NOT NULL FROM pipeline_rows ORDER BY row_id") == [
        ("image", "Which digits are shown?", "three five", PROMPT_TOKENS, COMPLETION_TOKENS,
         True),
        ("text", "What animal is this?", "a tabby cat", PROMPT_TOKENS, COMPLETION_TOKENS,
         True)]


@pytest.mark.parametrize("instrumentor", ["openinference", "openllmetry"])
def test_concurrent_rows_of_an_async_agent_each_get_their_own_answer(
        tmp_path: Path, llm_server: str, instrumentor: str) -> None:
    """An asyncio agent answers many images at once (``asyncio.gather`` over rows, each
    awaiting ``AsyncOpenAI``): the rows interleave, and each gets its own call."""
    questions = list(ANSWERS) * 3
    db = tmp_path / "async.duckdb"
    vlmscope.configure(db=db)

    async def row(i: int, question: str) -> None:
        with vlmscope.trace_row(f"r{i:02d}", expected="x"):
            await asyncio.sleep(0.01 * (len(questions) - i))  # the last starts first
            await client.chat.completions.create(
                model=REQUEST_MODEL, messages=[{"role": "user", "content": question}])

    async def agent() -> None:
        await asyncio.gather(*(row(i, q) for i, q in enumerate(questions)))

    try:
        with _Instrumented(instrumentor):
            client = openai.AsyncOpenAI(base_url=llm_server, api_key="not-a-key",
                                        max_retries=0)
            asyncio.run(agent())
    finally:
        vlmscope.shutdown()
    rows = query(db, "SELECT row_id, instruction, output FROM pipeline_rows ORDER BY row_id")
    assert rows == [(f"r{i:02d}", q, ANSWERS[q]) for i, q in enumerate(questions)]


def test_openllmetry_without_an_image_hook_loses_the_prompt_and_the_user_is_told_once(
        tmp_path: Path, llm_server: str, caplog: pytest.LogCaptureFixture) -> None:
    """OpenLLMetry 0.62's default ``upload_base64_image`` is not awaitable, so it records
    no prompt for a request with a base64 image: vlmscope cannot get it back, and says so,
    once, naming the hook that keeps it."""
    from vlmscope import rows

    rows._warned.discard("prompt-missing")
    png = _digit_png()
    db = tmp_path / "image.duckdb"
    vlmscope.configure(db=db)
    try:
        with _Instrumented("openllmetry"), caplog.at_level("WARNING", "vlmscope"):
            _ask_about_an_image(llm_server, png)
            _ask_about_an_image(llm_server, png)
    finally:
        vlmscope.shutdown()
    assert query(db, "SELECT instruction, output FROM pipeline_rows") == [
        (None, "three five")] * 2
    warnings = [r.getMessage() for r in caplog.records if "not the prompt" in r.getMessage()]
    assert len(warnings) == 1
    assert "'openai.chat'" in warnings[0] and "upload_base64_image=vlmscope.image_reference" \
        in warnings[0]


def test_image_reference_digests_what_it_can_decode_and_never_raises() -> None:
    data = bytes(range(256)) * 3
    encoded = base64.b64encode(data).decode("ascii")
    reference = asyncio.run(vlmscope.image_reference("1", "2", "a.png", encoded))
    assert reference == "sha256:" + hashlib.sha256(data).hexdigest() \
        == "sha256:" + vlmscope.image_sha256(data)
    # missing padding is tolerated; text that is not base64 is named, not raised
    assert asyncio.run(vlmscope.image_reference("1", "2", "a", encoded.rstrip("="))) \
        == reference
    assert asyncio.run(vlmscope.image_reference("1", "2", "a", "abcde")) \
        == "invalid-base64:5-characters"


def _ask(client, question: str) -> str:
    return client.chat.completions.create(model=REQUEST_MODEL, messages=[
        {"role": "user", "content": question}]).choices[0].message.content


def test_an_llm_call_in_a_worker_thread_is_the_rows_when_opentelemetrys_context_follows(
        tmp_path: Path, llm_server: str) -> None:
    """A thread pool does not carry the row's context; OpenTelemetry's threading
    instrumentation (and agent frameworks) hand over OpenTelemetry's context only. The call
    is then tied to its row through its parent: the row span itself, or a span of the
    agent's own started in the row. In a batch of two, as in the row's own thread, a call
    belongs to no single row. Without either context, nothing is tied."""
    threading_instrumentation = pytest.importorskip("opentelemetry.instrumentation.threading")
    from concurrent.futures import ThreadPoolExecutor

    from opentelemetry import trace

    db = tmp_path / "threads.duckdb"
    vlmscope.configure(db=db)
    client = openai.OpenAI(base_url=llm_server, api_key="not-a-key", max_retries=0)
    instrumentor = threading_instrumentation.ThreadingInstrumentor()
    try:
        with _Instrumented("openinference"):
            with ThreadPoolExecutor(2) as bare:  # made before: no context is handed over
                with vlmscope.trace_row("unlinked", expected="x"):
                    bare.submit(_ask, client, "What animal is this?").result()
            instrumentor.instrument()
            try:
                with ThreadPoolExecutor(2) as pool:
                    with vlmscope.trace_row("pooled", expected="cat"):
                        pool.submit(_ask, client, "What animal is this?").result()
                    with vlmscope.trace_row("nested", expected="three"):
                        with trace.get_tracer("agent").start_as_current_span("plan"):
                            pool.submit(_ask, client, "How many objects?").result()
                    with vlmscope.trace_batch(["b1", "b2"]):
                        pool.submit(_ask, client, "How many objects?").result()
            finally:
                instrumentor.uninstrument()
    finally:
        vlmscope.shutdown()
    assert query(db, "SELECT row_id, instruction, output FROM pipeline_rows ORDER BY row_id") \
        == [("b1", None, None), ("b2", None, None),
            ("nested", "How many objects?", "three objects"),
            ("pooled", "What animal is this?", "a tabby cat"), ("unlinked", None, None)]
    # the unlinked call is a trace of its own; the batch's call is in the batch's trace
    assert query(db, "SELECT count(*) FROM llm_records WHERE row_id IS NULL") == [(2,)]


@pytest.mark.parametrize("instrumentor", ["openinference", "openllmetry"])
def test_an_instrumented_openai_call_reaches_pipeline_rows_through_vlmscope_collect(
        tmp_path: Path, llm_server: str, instrumentor: str) -> None:
    with collector(tmp_path / "collected.duckdb") as running:
        vlmscope.configure(endpoint=running.url, service_name="agent")
        try:
            with _Instrumented(instrumentor):
                _run_pipeline(llm_server)
        finally:
            vlmscope.shutdown()
    _check_rows(running.db, instrumentor)


@pytest.mark.parametrize("converter", ["native", "python"])
def test_a_hand_built_span_with_only_genai_attributes_is_the_rows_llm_record(
        db_path: Path, converter: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Deprecated GenAI names (indexed prompts and completions, prompt/completion tokens,
    gen_ai.system), and current ones (JSON messages), on spans of a plain OTel tracer."""
    if converter == "native" and not convert.native_converter():
        pytest.skip("the native span converter is not built")
    if converter == "python":
        monkeypatch.setattr(convert, "_native", None)
    from opentelemetry import trace

    vlmscope.configure(db=db_path)
    tracer = trace.get_tracer("my-agent")
    with vlmscope.trace_row("old-names"), tracer.start_as_current_span("chat", attributes={
            cv.GEN_AI_SYSTEM: "anthropic", cv.GEN_AI_REQUEST_MODEL: "claude-x",
            "gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "first question",
            "gen_ai.prompt.1.role": "assistant", "gen_ai.prompt.1.content": "an answer",
            "gen_ai.prompt.2.role": "user", "gen_ai.prompt.2.content": "Is there a dog?",
            "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": "no",
            cv.GEN_AI_USAGE_PROMPT_TOKENS: 30, cv.GEN_AI_USAGE_COMPLETION_TOKENS: 1}):
        pass
    with vlmscope.trace_row("current-names"), tracer.start_as_current_span(
            "chat m", attributes={
                cv.GEN_AI_OPERATION_NAME: "chat", cv.GEN_AI_PROVIDER_NAME: "local",
                cv.GEN_AI_REQUEST_MODEL: "m", cv.GEN_AI_RESPONSE_MODEL: "m-1",
                cv.GEN_AI_INPUT_MESSAGES: json.dumps([{"role": "user", "parts": [
                    {"type": "image", "content": "..."}, {"type": "text", "content": "Name"},
                    {"type": "text", "content": " it"}]}]),
                cv.GEN_AI_OUTPUT_MESSAGES: json.dumps([{"role": "assistant", "parts": [
                    {"type": "text", "content": "a fox"}]}]),
                cv.GEN_AI_USAGE_INPUT_TOKENS: 5, cv.GEN_AI_USAGE_OUTPUT_TOKENS: 2}):
        pass
    with vlmscope.trace_row("not-an-llm"), tracer.start_as_current_span(
            "GET /", attributes={"http.request.method": "GET"}):
        pass
    vlmscope.shutdown()
    rows = query(db_path, "SELECT row_id, llm_model, instruction, output, input_tokens, "
                          "output_tokens FROM pipeline_rows ORDER BY row_id")
    assert rows == [("current-names", "m", "Name it", "a fox", 5, 2),
                    ("not-an-llm", None, None, None, None, None),
                    ("old-names", "claude-x", "Is there a dog?", "no", 30, 1)]
    assert query(db_path, "SELECT row_id, provider, response_model FROM llm_records "
                          "ORDER BY row_id") == [("current-names", "local", "m-1"),
                                                 ("old-names", "anthropic", None)]


def test_two_llm_calls_in_a_row_are_both_records_and_the_later_one_answers(
        db_path: Path, llm_server: str) -> None:
    vlmscope.configure(db=db_path)
    client = openai.OpenAI(base_url=llm_server, api_key="not-a-key", max_retries=0)
    try:
        with _Instrumented("openinference"), vlmscope.trace_row("agent"):
            for question in ("What animal is this?", "How many objects?"):
                client.chat.completions.create(model=REQUEST_MODEL, messages=[
                    {"role": "user", "content": question}])
    finally:
        vlmscope.shutdown()
    assert query(db_path, "SELECT output FROM llm_records ORDER BY start_time") == [
        ("a tabby cat",), ("three objects",)]
    assert query(db_path, "SELECT output FROM pipeline_rows") == [("three objects",)]


def _overlapping_calls() -> None:
    """One row whose agent made two LLM calls that overlap: the first to start ("slow")
    ends after the second ("quick") has answered."""
    import time

    from opentelemetry import trace

    tracer = trace.get_tracer("my-agent")
    with vlmscope.trace_row("agent"):
        now = time.time_ns()
        spans = {}
        for name, start in (("slow", now), ("quick", now + 100_000_000)):
            spans[name] = tracer.start_span(f"chat {name}", start_time=start, attributes={
                cv.GEN_AI_OPERATION_NAME: "chat", cv.GEN_AI_REQUEST_MODEL: f"m-{name}",
                cv.GEN_AI_OUTPUT_MESSAGES: json.dumps([{"role": "assistant", "parts": [
                    {"type": "text", "content": f"the {name} answer"}]}])})
        spans["quick"].end(end_time=now + 200_000_000)
        spans["slow"].end(end_time=now + 300_000_000)


def _check_the_last_to_end_answers(db: Path) -> None:
    assert query(db, "SELECT output FROM llm_records ORDER BY start_time") == [
        ("the slow answer",), ("the quick answer",)]
    assert query(db, "SELECT llm_model, output FROM pipeline_rows") == [
        ("m-slow", "the slow answer")]


@pytest.mark.parametrize("where", ["embedded", "collect"])
def test_the_rows_answer_is_the_llm_call_that_ended_last_not_the_one_that_started_last(
        tmp_path: Path, where: str) -> None:
    """In process and through ``vlmscope collect``; then (embedded) through export and
    import, and after a rebuild of the store from its spans."""
    if where == "collect":
        with collector(tmp_path / "collected.duckdb") as running:
            vlmscope.configure(endpoint=running.url, service_name="agent")
            try:
                _overlapping_calls()
            finally:
                vlmscope.shutdown()
        _check_the_last_to_end_answers(running.db)
        return
    db = tmp_path / "embedded.duckdb"
    vlmscope.configure(db=db)
    try:
        _overlapping_calls()
    finally:
        vlmscope.shutdown()
    _check_the_last_to_end_answers(db)
    exported, imported = tmp_path / "spans.jsonl", tmp_path / "imported.duckdb"
    assert main(["export", "--db", str(db), "-o", str(exported)]) == 0
    assert main(["import", str(exported), "--db", str(imported)]) == 0
    _check_the_last_to_end_answers(imported)
    import duckdb

    from vlmscope.collectors.normalize import rebuild

    con = duckdb.connect(str(db))
    con.execute("DELETE FROM llm_records")
    rebuild(con)
    con.close()
    _check_the_last_to_end_answers(db)


_APP_OWNS_THE_PROVIDER = """
import json, sys
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import vlmscope
from vlmscope import conventions as cv

app_spans = InMemorySpanExporter()
app_provider = TracerProvider()
app_provider.add_span_processor(SimpleSpanProcessor(app_spans))
trace.set_tracer_provider(app_provider)          # the application's own, set first

vlmscope.configure(db=sys.argv[1])
with vlmscope.trace_row("r1"):
    with trace.get_tracer("instrumentor").start_as_current_span("chat", attributes={
            cv.GEN_AI_OPERATION_NAME: "chat", cv.GEN_AI_REQUEST_MODEL: "m",
            cv.GEN_AI_OUTPUT_MESSAGES: json.dumps([{"role": "assistant", "parts": [
                {"type": "text", "content": "hello"}]}])}):
        pass
vlmscope.shutdown()
print(json.dumps([s.name for s in app_spans.get_finished_spans()]))
"""

_FOREIGN_GLOBAL_PROVIDER = """
import logging, sys
from opentelemetry import trace

class Elsewhere(trace.NoOpTracerProvider):
    pass

logging.basicConfig(level=logging.WARNING, format="%(message)s")
trace.set_tracer_provider(Elsewhere())
import vlmscope
vlmscope.configure(db=sys.argv[1])
vlmscope.configure(db=sys.argv[1])
vlmscope.shutdown()
"""


def _python(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script), *args],
                          capture_output=True, text=True, timeout=120, check=True)


def test_an_app_that_set_its_own_provider_first_keeps_it_and_the_store_gets_its_spans(
        tmp_path: Path) -> None:
    db = tmp_path / "app.duckdb"
    done = _python(_APP_OWNS_THE_PROVIDER, str(db))
    assert json.loads(done.stdout.strip().splitlines()[-1]) == ["chat"]  # the app's exporter
    assert query(db, "SELECT row_id, llm_model, output FROM pipeline_rows") == [
        ("r1", "m", "hello")]


def test_a_global_provider_of_another_kind_is_warned_about_once(tmp_path: Path) -> None:
    done = _python(_FOREIGN_GLOBAL_PROVIDER, str(tmp_path / "x.duckdb"))
    warnings = [line for line in done.stderr.splitlines() if "global tracer provider" in line]
    assert len(warnings) == 1 and "Elsewhere" in warnings[0]


def test_set_global_false_leaves_the_global_provider_alone(tmp_path: Path) -> None:
    done = _python("""
        import sys
        from opentelemetry import trace
        import vlmscope
        vlmscope.configure(db=sys.argv[1], set_global=False)
        print(type(trace.get_tracer_provider()).__name__)
        vlmscope.configure(db=sys.argv[1])
        print(type(trace.get_tracer_provider()).__name__)
        vlmscope.shutdown()
    """, str(tmp_path / "x.duckdb"))
    assert done.stdout.split() == ["ProxyTracerProvider", "TracerProvider"]


@pytest.mark.parametrize(("scope", "switch"), [
    ("opentelemetry.instrumentation.openai_v2",
     "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=span_only"),
    ("opentelemetry.instrumentation.openai.v1", "TRACELOOP_TRACE_CONTENT=false"),
    ("openinference.instrumentation.openai", "OPENINFERENCE_HIDE_OUTPUTS"),
    ("my-agent", None)])
def test_a_row_whose_llm_call_recorded_no_answer_names_its_instrumentations_switch(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, scope: str, switch: str | None
) -> None:
    """A GenAI span that recorded no messages (an instrumentation's default that keeps
    content off) leaves its row without an answer: the user is told once, with the switch of
    the instrumentation that wrote it (by its scope), OpenTelemetry's own before OpenLLMetry's,
    whose scopes share a prefix; none for a tracer vlmscope does not know."""
    from opentelemetry import trace

    from vlmscope import rows

    rows._warned.discard("answer-missing")
    vlmscope.configure(db=tmp_path / "s.duckdb")
    try:
        with caplog.at_level("WARNING", "vlmscope"), vlmscope.trace_row("r", expected="cat"), \
                trace.get_tracer(scope).start_as_current_span("chat m", attributes={
                    cv.GEN_AI_OPERATION_NAME: "chat", cv.GEN_AI_REQUEST_MODEL: "m"}):
            pass
    finally:
        vlmscope.shutdown()
    (warning,) = [r.getMessage() for r in caplog.records if "has no answer" in r.getMessage()]
    assert scope in warning
    if switch is None:
        assert "did not assemble a streamed answer (vlmscope goes on" in warning
    else:
        assert switch in warning and sum(
            name in warning for name in ("TRACELOOP", "OTEL_INSTRUMENTATION_GENAI",
                                         "OPENINFERENCE", "ANTHROPIC")) == 1
