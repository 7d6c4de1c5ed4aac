"""`vlmscope collect`: real OTLP clients against a collector subprocess, answers as the OTLP
specification says, tokens, exactly-once retries and reads through the collector."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from tests.helpers import Collector, collector, query, request
from vlmscope import conventions as cv
from vlmscope.cli import main
from vlmscope.cli.collect import exposure_warning
from vlmscope.collectors.ingest import SpanIngestor
from vlmscope.collectors.receiver import OtlpReceiver
from vlmscope.collectors.store import StoreWriter

PROTOBUF = {"Content-Type": "application/x-protobuf"}


def count(url: str, sql: str) -> int:
    """A count through the collector's query route."""
    answer = requests.post(url + "/v1/query", json={"sql": sql}, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()["rows"][0][0]


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    """One collector shared by the tests that only add their own traces."""
    with collector(tmp_path_factory.mktemp("collect") / "shared.duckdb") as c:
        yield c


def test_the_official_exporter_lands_every_span_with_attributes_and_embeddings(tmp_path):
    vectors = np.random.default_rng(0).standard_normal((40, 64)).astype(np.float32)
    with collector(tmp_path / "s.duckdb") as c:
        provider = TracerProvider(resource=Resource.create({"service.name": "agent"}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=c.traces_url)))
        tracer = provider.get_tracer("tests")
        for i, vector in enumerate(vectors):
            with tracer.start_as_current_span("vlmscope.row", attributes={
                    cv.VLMSCOPE_SPAN_ROLE: cv.ROLE_ROW, cv.VLMSCOPE_ROW_ID: f"r{i}",
                    cv.VLMSCOPE_COHORT: "day", "tags": ["a", "b"], "score": 0.5}):
                with tracer.start_as_current_span("vision.encoder", attributes={
                        cv.VLMSCOPE_SPAN_ROLE: cv.ROLE_ENCODER,
                        cv.OPENINFERENCE_SPAN_KIND: cv.SPAN_KIND_EMBEDDING,
                        cv.VLMSCOPE_ROW_IDS: [f"r{i}"],
                        cv.embedding_vector_key(0): vector.tolist()}) as span:
                    span.add_event("forward", {"layer": "avgpool"})
        provider.shutdown()
    rows = query(c.db, "SELECT count(*), count(DISTINCT span_id), any_value(service_name) "
                       "FROM spans")
    assert rows == [(80, 80, "agent")]
    row = query(c.db, "SELECT attributes, events FROM spans WHERE name = 'vlmscope.row' "
                      "AND attributes->>'$.\"vlmscope.row.id\"' = 'r3'")[0]
    assert json.loads(row[0]) == {cv.VLMSCOPE_SPAN_ROLE: cv.ROLE_ROW, cv.VLMSCOPE_ROW_ID: "r3",
                                  cv.VLMSCOPE_COHORT: "day", "tags": ["a", "b"], "score": 0.5}
    stored = query(c.db, "SELECT row_id, vector FROM embeddings ORDER BY row_id")
    assert len(stored) == 40
    for row_id, vector in stored:
        assert np.array_equal(np.array(vector, dtype=np.float32), vectors[int(row_id[1:])])
    assert query(c.db, "SELECT count(*) FROM pipeline_rows WHERE encoder_span_id IS NOT NULL"
                 ) == [(40,)]


def test_otlp_json_posted_with_curl_lands(running):
    body = {"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "curl"}}]},
        "scopeSpans": [{"scope": {"name": "sh"}, "spans": [{
            "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
            "name": "from-curl", "kind": 2, "startTimeUnixNano": "1700000000000000000",
            "endTimeUnixNano": "1700000000500000000",
            "attributes": [{"key": "n", "value": {"intValue": "9007199254740993"}}],
            "status": {"code": 2, "message": "boom"}}]}]}]}
    result = subprocess.run(
        ["curl", "-sS", "-o", "-", "-w", "%{http_code}", "-X", "POST",
         "-H", "Content-Type: application/json", "--data-binary", json.dumps(body),
         running.traces_url], capture_output=True, text=True, timeout=30, check=True)
    assert result.stdout.endswith("200")
    answer = requests.post(running.url + "/v1/query", json={"sql": (
        "SELECT kind, duration_ms, status_code, status_message, attributes FROM spans "
        "WHERE span_id = 'eee19b7ec3c1b174'")}, timeout=30).json()
    assert answer["rows"] == [["SERVER", 500.0, "ERROR", "boom", '{"n":9007199254740993}']]


def test_gzip_protobuf_is_accepted_and_answered_in_protobuf(running):
    message, ids = request(5, service="gzip")
    answer = requests.post(running.traces_url, data=gzip.compress(message.SerializeToString()),
                           headers={**PROTOBUF, "Content-Encoding": "gzip"}, timeout=30)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/x-protobuf"
    response = ExportTraceServiceResponse.FromString(answer.content)
    assert not response.HasField("partial_success")
    assert count(running.url, f"SELECT count(*) FROM spans WHERE trace_id = '{ids[0][0]}'") == 5


def test_spans_with_wrong_id_lengths_or_huge_values_are_rejected_one_by_one(running):
    message, ids = request(4, service="partial")
    spans = message.resource_spans[0].scope_spans[0].spans
    spans[1].span_id = b"\x01\x02\x03"
    spans[2].attributes[0].value.string_value = "x" * 300_000
    answer = requests.post(running.traces_url, data=message.SerializeToString(),
                           headers=PROTOBUF, timeout=30)
    assert answer.status_code == 200
    partial = ExportTraceServiceResponse.FromString(answer.content).partial_success
    assert partial.rejected_spans == 2 and "span_id must be 8 bytes" in partial.error_message
    stored = count(running.url, f"SELECT count(*) FROM spans WHERE trace_id = '{ids[0][0]}'")
    assert stored == 2


@pytest.mark.parametrize(("body", "headers", "status"), [
    (b"\x00garbage", PROTOBUF, 400),
    (b'{"resourceSpans": 3}', {"Content-Type": "application/json"}, 400),
    (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}',
     {"Content-Type": "application/json"}, 400),
    (b"abc", {"Content-Type": "text/plain"}, 415),
    (b"abc", {**PROTOBUF, "Content-Encoding": "br"}, 415),
    (b"not gzip", {**PROTOBUF, "Content-Encoding": "gzip"}, 400),
])
def test_bad_requests_get_the_otlp_error_status(running, body, headers, status):
    before = count(running.url, "SELECT count(*) FROM spans")
    answer = requests.post(running.traces_url, data=body, headers=headers, timeout=30)
    assert answer.status_code == status
    assert answer.json()["message"] if "json" in answer.headers["content-type"] else True
    assert count(running.url, "SELECT count(*) FROM spans") == before


def test_bodies_over_the_limit_get_413_even_when_gzip_hides_it(tmp_path):
    with collector(tmp_path / "s.duckdb", "--max-body-bytes", "10000") as c:
        big, _ = request(200, service="big")
        plain = requests.post(c.traces_url, data=big.SerializeToString(), headers=PROTOBUF,
                              timeout=30)
        bomb = requests.post(c.traces_url, data=gzip.compress(b"\x00" * 5_000_000),
                             headers={**PROTOBUF, "Content-Encoding": "gzip"}, timeout=30)
        small, _ = request(3)
        ok = requests.post(c.traces_url, data=small.SerializeToString(), headers=PROTOBUF,
                           timeout=30)
        assert (plain.status_code, bomb.status_code, ok.status_code) == (413, 413, 200)
        assert count(c.url, "SELECT count(*) FROM spans") == 3


def test_a_retried_request_and_a_repeated_span_are_stored_once(running):
    message, ids = request(10, service="retry")
    spans = message.resource_spans[0].scope_spans[0].spans
    spans.add().CopyFrom(spans[0])
    body = message.SerializeToString()
    for _ in range(3):
        assert requests.post(running.traces_url, data=body, headers=PROTOBUF,
                             timeout=30).status_code == 200
    trace = ids[0][0]
    assert count(running.url, f"SELECT count(*) FROM spans WHERE trace_id = '{trace}'") == 10


def test_without_the_token_requests_get_401_and_store_nothing(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")
    with collector(tmp_path / "s.duckdb", "--token-file", str(token_file)) as c:
        message, _ = request(5)
        body = message.SerializeToString()
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-token"}):
            answer = requests.post(c.traces_url, data=body, headers={**PROTOBUF, **headers},
                                   timeout=30)
            assert answer.status_code == 401
        denied = requests.post(c.url + "/v1/query", json={"sql": "SELECT 1"}, timeout=30)
        assert denied.status_code == 401
        good = {"Authorization": "Bearer s3cret-token"}
        assert requests.post(c.url + "/v1/query", json={"sql": "SELECT count(*) FROM spans"},
                             headers=good, timeout=30).json()["rows"] == [[0]]
        assert requests.post(c.traces_url, data=body, headers={**PROTOBUF, **good},
                             timeout=30).status_code == 200
        # uvicorn re-raises SIGTERM once it has shut down gracefully.
        assert c.stop() == -signal.SIGTERM
        assert "Traceback" not in c.log()
    assert query(c.db, "SELECT count(*) FROM spans") == [(5,)]


@pytest.mark.parametrize(("host", "has_token", "warns"), [
    ("0.0.0.0", False, True), ("192.168.1.5", False, True), ("::", False, True),
    ("0.0.0.0", True, False), ("127.0.0.1", False, False), ("::1", False, False),
    ("localhost", False, False)])
def test_binding_beyond_loopback_without_a_token_warns(host, has_token, warns):
    warning = exposure_warning(host, has_token)
    assert (warning is not None) == warns
    assert warning is None or host in warning


def listening_addresses(port: int) -> set[str]:
    """Local addresses (hex, as the kernel lists them) of TCP sockets listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


def test_the_default_collector_listens_on_loopback_only_and_does_not_warn(running):
    assert "warning" not in running.log()
    assert listening_addresses(running.port) == {"0100007F"}  # 127.0.0.1


def test_a_sigkilled_collector_leaves_no_decoder_process_behind(tmp_path):
    c = Collector(tmp_path / "s.duckdb")
    children = subprocess.run(["pgrep", "-P", str(c.process.pid)], capture_output=True,
                              text=True, check=False).stdout.split()
    assert len(children) >= 2
    c.stop(signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in children) and \
            time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()]


def decoder_pids(collector_pid: int) -> set[str]:
    """The collector's decoder processes (the children multiprocessing spawned; not its
    resource tracker)."""
    children = subprocess.run(["pgrep", "-P", str(collector_pid)], capture_output=True,
                              text=True, check=False).stdout.split()
    return {pid for pid in children
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()}


def test_a_killed_decoder_process_is_replaced_and_its_clients_retry(tmp_path):
    """SIGKILL every decoder process: requests meanwhile get 503 with Retry-After (never a
    hang or a 500), fresh processes take over, and every span a 200 answered is stored."""
    with collector(tmp_path / "s.duckdb") as c:
        before = decoder_pids(c.process.pid)
        assert len(before) >= 2
        for pid in before:
            os.kill(int(pid), signal.SIGKILL)
        statuses, stored = [], 0
        deadline = time.monotonic() + 60
        while stored < 5 and time.monotonic() < deadline:
            message, _ = request(4, service=f"after-kill-{len(statuses)}")
            answer = requests.post(c.traces_url, data=message.SerializeToString(),
                                   headers=PROTOBUF, timeout=30)
            statuses.append(answer.status_code)
            if answer.status_code == 200:
                stored += 1
            else:
                assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
                time.sleep(0.1)
        assert stored == 5, statuses
        after = decoder_pids(c.process.pid)
        assert len(after) >= 2 and not after & before
        assert count(c.url, "SELECT count(*) FROM spans") == 4 * 5
        assert "starting another" in c.log()


def test_sql_through_the_collector_reads_and_rejects_writes(running, capsys):
    message, ids = request(4, service="sql-url")
    requests.post(running.traces_url, data=message.SerializeToString(), headers=PROTOBUF,
                  timeout=30)
    assert main(["sql", "--url", running.url, "--format", "json",
                 f"SELECT count(*) AS n FROM spans WHERE trace_id = '{ids[0][0]}'"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"n": 4}]
    for statement in ("DELETE FROM spans", "CREATE TABLE x (a INT)",
                      "SELECT * FROM read_text('/etc/hostname')"):
        assert main(["sql", "--url", running.url, statement]) == 2
        assert "error:" in capsys.readouterr().err
        refused = requests.post(running.url + "/v1/query", json={"sql": statement}, timeout=30)
        assert refused.status_code == 403
    assert count(running.url, f"SELECT count(*) FROM spans WHERE trace_id = '{ids[0][0]}'") == 4


class BlockedWriter(StoreWriter):
    """A store writer that holds every write until released."""

    def __init__(self, path) -> None:
        super().__init__(path)
        self.release = threading.Event()

    def write(self, batch, prepare=None, **options) -> int:
        self.release.wait(30)
        return super().write(batch, prepare, **options)


async def post(app: OtlpReceiver, body: bytes) -> tuple[int, dict[bytes, bytes]]:
    """One ASGI request to ``app``; returns the status and headers."""
    sent: list[dict] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict:
        return messages.pop(0)

    async def send(message: dict) -> None:
        sent.append(message)

    await app({"type": "http", "method": "POST", "path": "/v1/traces",
               "headers": [(b"content-type", b"application/x-protobuf")]}, receive, send)
    return sent[0]["status"], dict(sent[0]["headers"])


def test_a_lagging_store_answers_503_with_retry_after_and_acknowledges_after_commit(tmp_path):
    writer = BlockedWriter(tmp_path / "s.duckdb")
    app = OtlpReceiver(SpanIngestor(writer.path, writer=writer, max_pending_spans=10))
    first, _ = request(8)
    second, _ = request(8)

    async def scenario() -> tuple:
        waiting = asyncio.create_task(post(app, first.SerializeToString()))
        deadline = time.monotonic() + 60
        while app.ingestor.pending_spans == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # decoded (the decoder processes start first)
        await asyncio.sleep(0.3)
        assert app.ingestor.pending_spans == 8
        assert not waiting.done()  # no answer before the commit
        refused = await post(app, second.SerializeToString())
        writer.release.set()
        return refused, await waiting

    (status, headers), (ok, _) = asyncio.run(scenario())
    app.close()
    assert (status, headers[b"retry-after"], ok) == (503, b"1", 200)
    assert query(writer.path, "SELECT count(*) FROM spans") == [(8,)]


def test_decoding_in_the_server_process_takes_the_same_requests(tmp_path):
    """``--decoders 0`` decodes in a thread of the server process: protobuf and JSON land,
    a body that is no request gets 400, and nothing else changes."""
    with collector(tmp_path / "s.duckdb", "--decoders", "0") as c:
        assert not decoder_pids(c.process.pid)
        message, ids = request(6, service="in-process")
        answer = requests.post(c.traces_url, data=message.SerializeToString(),
                               headers=PROTOBUF, timeout=30)
        assert answer.status_code == 200
        document = {"resourceSpans": [{"scopeSpans": [{"spans": [{
            "traceId": "ab" * 16, "spanId": "cd" * 8, "name": "json",
            "startTimeUnixNano": "1700000000000000000",
            "endTimeUnixNano": "1700000000001000000"}]}]}]}
        assert requests.post(c.traces_url, json=document, timeout=30).status_code == 200
        assert requests.post(c.traces_url, data=b"\xff not protobuf", headers=PROTOBUF,
                             timeout=30).status_code == 400
        assert count(c.url, f"SELECT count(*) FROM spans WHERE trace_id IN "
                            f"('{ids[0][0]}', '{'ab' * 16}')") == 7


@pytest.mark.slow
def test_the_collector_stops_on_sigterm_within_seconds(tmp_path: Path):
    """By the clock, so slow: uvicorn shuts down gracefully and its decoder processes let go
    at once (they waited 10 s each when told only by a transport that closes at the event
    loop's next turn)."""
    with collector(tmp_path / "stop.duckdb") as c:
        message, _ = request(5)
        assert requests.post(c.traces_url, data=message.SerializeToString(),
                             headers=PROTOBUF, timeout=30).status_code == 200
        stopping = time.monotonic()
        assert c.stop() == -signal.SIGTERM
        assert time.monotonic() - stopping < 8
        assert "Traceback" not in c.log()
    assert query(c.db, "SELECT count(*) FROM spans") == [(5,)]
