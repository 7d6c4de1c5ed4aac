"""Interchange: OTLP JSON Lines export → import is lossless (property test), evaluations
travel as EVALUATOR spans without loss or duplication, Hive-partitioned Parquet reads as a
store, and replay delivers the same spans to a collector."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import duckdb
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceState

from tests.helpers import collector, query
from vlmscope import conventions as cv
from vlmscope.cli import main
from vlmscope.collectors.convert import spans_to_batch
from vlmscope.collectors.store import StoreWriter, read_connection
from vlmscope.conventions import ROLE_EVALUATION

SPAN_COLUMNS = ("trace_id, span_id, parent_span_id, name, kind, start_time, end_time, "
                "duration_ms, status_code, status_message, service_name, scope_name, "
                "scope_version, trace_state, trace_flags, dropped_attributes, dropped_events, "
                "dropped_links")

texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
keys = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
ints = st.integers(-(2**63), 2**63 - 1)
floats = st.floats(allow_nan=False, allow_infinity=False)
float32s = st.floats(allow_nan=False, allow_infinity=False, width=32)
values = st.one_of(texts, ints, floats, st.booleans(), st.lists(texts, max_size=4),
                   st.lists(ints, max_size=4), st.lists(floats, max_size=4),
                   st.lists(st.booleans(), max_size=4))
attributes = st.dictionaries(keys, values, max_size=6)
trace_ids = st.integers(1, 2**128 - 1)
span_ids = st.integers(1, 2**64 - 1)
times = st.integers(0, 2**62)


@st.composite
def spans(draw: st.DrawFn) -> list[ReadableSpan]:
    """A few spans of random shape: attributes, events, links, status, kind, resource and, on
    EMBEDDING spans, float32 embedding vectors."""
    resource = Resource(draw(st.dictionaries(keys, values, max_size=3)) | {
        "service.name": draw(st.sampled_from(["agent", "judge"]))},
        draw(st.sampled_from(["", "https://opentelemetry.io/schemas/1.21.0"])))
    out = []
    used: set[tuple[int, int]] = set()
    for _ in range(draw(st.integers(1, 4))):
        trace_id, span_id = draw(trace_ids), draw(span_ids)
        if (trace_id, span_id) in used:
            continue
        used.add((trace_id, span_id))
        start = draw(times)
        attrs: dict = draw(attributes)
        if draw(st.booleans()):
            vectors = draw(st.lists(st.lists(float32s, min_size=1, max_size=8),
                                    min_size=1, max_size=3))
            attrs[cv.OPENINFERENCE_SPAN_KIND] = cv.SPAN_KIND_EMBEDDING
            attrs.update({cv.embedding_vector_key(i): [float(x) for x in v]
                          for i, v in enumerate(vectors)})
        state = TraceState([("vendor", "v1")]) if draw(st.booleans()) else TraceState()
        parent = SpanContext(trace_id, draw(span_ids), False) if draw(st.booleans()) else None
        status_code = draw(st.sampled_from(list(StatusCode)))
        out.append(ReadableSpan(
            name=draw(texts), context=SpanContext(trace_id, span_id, False, trace_flags=1,
                                                  trace_state=state),
            parent=parent, resource=resource, attributes=attrs,
            events=[Event(draw(texts), draw(st.dictionaries(keys, values, max_size=3)),
                          draw(times)) for _ in range(draw(st.integers(0, 2)))],
            links=[Link(SpanContext(draw(trace_ids), draw(span_ids), False, trace_state=state),
                        draw(st.dictionaries(keys, values, max_size=2)))
                   for _ in range(draw(st.integers(0, 2)))],
            kind=draw(st.sampled_from(list(SpanKind))),
            # OTLP (proto3) cannot tell an empty status message from none.
            status=Status(status_code, draw(keys) if status_code is StatusCode.ERROR
                          else None),
            start_time=start, end_time=start + draw(st.integers(0, 10**12)),
            instrumentation_scope=None,
        ))
    return out


def stored(db: Path) -> dict[str, list]:
    """Every span column (JSON columns parsed) and every embedding, in a stable order."""
    with read_connection(db) as con:
        columns = con.execute(f"SELECT {SPAN_COLUMNS}, attributes, events, links, resource "
                              "FROM spans ORDER BY trace_id, span_id").fetchall()
        embeddings = con.execute("SELECT * FROM embeddings ORDER BY trace_id, span_id, "
                                 "record_index").fetchall()
    rows = [(*row[:-4], *(orjson.loads(v) if v else v for v in row[-4:])) for row in columns]
    return {"spans": rows, "embeddings": embeddings}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spans())
def test_export_then_import_is_lossless_for_every_span_field(batch: list[ReadableSpan]):
    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "a.duckdb", Path(folder) / "b.duckdb"
        writer = StoreWriter(source)
        writer.write(spans_to_batch(batch))
        writer.close()
        assert main(["export", "--db", str(source), "-o", f"{folder}/t.jsonl"]) == 0
        assert main(["import", f"{folder}/t.jsonl", "--db", str(target)]) == 0
        before, after = stored(source), stored(target)
        assert after == before
        assert len(after["spans"]) == len(batch)


@pytest.fixture
def judged_store(small_store):
    """The small store's pipeline rows with their evaluations, and a person's review."""
    assert main(["eval", "--db", str(small_store), "--evaluators", "ground_truth_match"]) == 0
    with duckdb.connect(str(small_store)) as con:
        con.execute("INSERT INTO evaluations VALUES ('human-1', NULL, NULL, NULL, 'review', "
                    "NULL, NULL, 'ok', 'looked fine', '{\"by\": \"ana\"}', 'HUMAN')")
    return small_store


def evaluations(db: Path) -> list[tuple]:
    """The evaluations rows, sorted."""
    return sorted(query(db, "SELECT * FROM evaluations"), key=repr)


def test_evaluations_travel_as_linked_evaluator_spans_and_come_back_once(judged_store,
                                                                          tmp_path, capsys):
    exported = tmp_path / "t.jsonl"
    assert main(["export", "--db", str(judged_store), "-o", str(exported)]) == 0
    assert "7 evaluations" in capsys.readouterr().out
    evaluation_spans = [
        span for line in exported.read_text().splitlines()
        for rs in json.loads(line)["resourceSpans"] for ss in rs["scopeSpans"]
        for span in ss["spans"]
        if {"key": cv.VLMSCOPE_SPAN_ROLE, "value": {"stringValue": ROLE_EVALUATION}}
        in span["attributes"]]
    assert len(evaluation_spans) == 7
    judged = {(r[0], r[1]) for r in query(judged_store, "SELECT trace_id, span_id FROM "
                                                        "evaluations WHERE span_id IS NOT NULL")}
    linked = {(s["links"][0]["traceId"], s["links"][0]["spanId"])
              for s in evaluation_spans if "links" in s}
    assert linked == judged and len(linked) == 6
    kinds = {a["value"]["stringValue"] for s in evaluation_spans for a in s["attributes"]
             if a["key"] == cv.OPENINFERENCE_SPAN_KIND}
    assert kinds == {cv.SPAN_KIND_EVALUATOR}

    target = tmp_path / "b.duckdb"
    for _ in range(2):
        assert main(["import", str(exported), "--db", str(target)]) == 0
    assert evaluations(target) == evaluations(judged_store)
    assert query(target, "SELECT count(*) FROM spans") == query(
        judged_store, "SELECT count(*) FROM spans")


@pytest.mark.parametrize("converter", ["native", "python"])
def test_evaluations_go_out_under_openinference_names_and_old_names_still_import(
        judged_store, tmp_path, monkeypatch, converter):
    """OpenInference names an annotation's score ``annotation.score`` (its
    ``AnnotationAttributes``); vlmscope wrote ``annotation.result.score`` before, and files
    exported then import to the same evaluations."""
    from vlmscope.collectors import convert, otlp

    exported = tmp_path / "t.jsonl"
    assert main(["export", "--db", str(judged_store), "-o", str(exported)]) == 0
    text = exported.read_text()
    keys = {a["key"] for line in text.splitlines()
            for rs in json.loads(line)["resourceSpans"] for ss in rs["scopeSpans"]
            for span in ss["spans"] for a in span["attributes"]}
    assert {cv.ANNOTATION_NAME, cv.ANNOTATION_SCORE, cv.ANNOTATION_LABEL,
            cv.ANNOTATION_EXPLANATION, cv.ANNOTATION_ANNOTATOR_KIND} <= keys
    assert not any(key.startswith("annotation.result.") for key in keys)

    old = tmp_path / "old.jsonl"
    old.write_text(text.replace(f'"{cv.ANNOTATION_SCORE}"', f'"{cv.LEGACY_ANNOTATION_SCORE}"')
                   .replace(f'"{cv.ANNOTATION_LABEL}"', f'"{cv.LEGACY_ANNOTATION_LABEL}"')
                   .replace(f'"{cv.ANNOTATION_EXPLANATION}"',
                            f'"{cv.LEGACY_ANNOTATION_EXPLANATION}"'))
    assert cv.LEGACY_ANNOTATION_SCORE in old.read_text()
    if converter == "python":
        monkeypatch.setattr(convert, "_native", None)
        monkeypatch.setattr(otlp, "_native", None)
    elif not convert.native_converter():
        pytest.skip("the native converter is not built")
    target = tmp_path / "old.duckdb"
    assert main(["import", str(old), "--db", str(target)]) == 0
    assert evaluations(target) == evaluations(judged_store)
    assert query(target, "SELECT count(*) FROM evaluations WHERE score IS NOT NULL")[0][0] == 6


def test_training_check_evaluations_are_exported_once_as_their_own_spans(tmp_path):
    from vlmscope.collectors.otlp import decode_request, parse_json

    check = {"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"spans": [
        {"traceId": "ab" * 16, "spanId": "01" * 8, "name": "vlmscope.training.run",
         "startTimeUnixNano": "1", "endTimeUnixNano": "2",
         "attributes": [{"key": cv.VLMSCOPE_SPAN_ROLE,
                         "value": {"stringValue": cv.ROLE_TRAINING_RUN}}]},
        {"traceId": "ab" * 16, "spanId": "02" * 8, "parentSpanId": "01" * 8,
         "name": cv.TRAINING_CHECK_SPAN_NAME, "startTimeUnixNano": "1",
         "endTimeUnixNano": "2", "attributes": [
             {"key": cv.VLMSCOPE_SPAN_ROLE, "value": {"stringValue": cv.ROLE_TRAINING_CHECK}},
             {"key": cv.VLMSCOPE_TRAINING_CHECK_NAME, "value": {"stringValue": "overfit"}},
             {"key": cv.VLMSCOPE_TRAINING_CHECK_PASSED, "value": {"boolValue": False}}]}]}]}]}
    source = tmp_path / "a.duckdb"
    writer = StoreWriter(source)
    writer.write(decode_request(parse_json(orjson.dumps(check))).batch)
    writer.close()
    assert len(evaluations(source)) == 1
    assert main(["export", "--db", str(source), "-o", str(tmp_path / "t.jsonl")]) == 0
    assert main(["import", str(tmp_path / "t.jsonl"), "--db", str(tmp_path / "b.duckdb")]) == 0
    assert evaluations(tmp_path / "b.duckdb") == evaluations(source)


def test_parquet_export_is_hive_partitioned_and_reads_as_a_store(judged_store, tmp_path,
                                                                 capsys):
    folder = tmp_path / "pq"
    assert main(["export", "--db", str(judged_store), "--format", "parquet",
                 "-o", str(folder)]) == 0
    partitions = {p.relative_to(folder / "spans").parent.as_posix()
                  for p in (folder / "spans").glob("**/*.parquet")}
    assert partitions == {f"date={d}/service=tests" for (d,) in query(
        judged_store, "SELECT DISTINCT strftime(start_time, '%Y-%m-%d') FROM spans")}
    plain = duckdb.sql(f"SELECT count(*), any_value(service) FROM read_parquet("
                       f"'{folder}/spans/**/*.parquet', hive_partitioning = true)").fetchall()
    assert plain == [(query(judged_store, "SELECT count(*) FROM spans")[0][0], "tests")]

    sql = "SELECT row_id, output FROM pipeline_rows ORDER BY row_id"
    capsys.readouterr()
    assert main(["sql", "--parquet", str(folder), "--format", "json", sql]) == 0
    from_parquet = json.loads(capsys.readouterr().out)
    assert main(["sql", "--db", str(judged_store), "--format", "json", sql]) == 0
    assert from_parquet == json.loads(capsys.readouterr().out) and len(from_parquet) == 6

    args = ["eval", "--evaluators", "ground_truth_match", "--format", "json"]
    assert main([*args, "--parquet", str(folder)]) == 0
    on_parquet = json.loads(capsys.readouterr().out)
    assert main([*args, "--db", str(judged_store)]) == 0
    on_store = json.loads(capsys.readouterr().out)
    assert on_parquet["answer_accuracy"] == on_store["answer_accuracy"] == 0.5
    assert main(["export", "--db", str(judged_store), "--format", "parquet",
                 "-o", str(folder)]) == 2


def test_replay_delivers_what_an_import_stores(judged_store, tmp_path):
    token = tmp_path / "token"
    token.write_text("t0ken")
    with collector(tmp_path / "replayed.duckdb", "--token-file", str(token)) as c:
        assert main(["replay", "--db", str(judged_store), "--endpoint", c.traces_url]) == 2
        assert main(["replay", "--db", str(judged_store), "--endpoint", c.traces_url,
                     "--token-file", str(token)]) == 0
    assert main(["export", "--db", str(judged_store), "-o", str(tmp_path / "t.jsonl")]) == 0
    assert main(["import", str(tmp_path / "t.jsonl"), "--db", str(tmp_path / "i.duckdb")]) == 0
    assert stored(c.db) == stored(tmp_path / "i.duckdb")
    assert evaluations(c.db) == evaluations(judged_store)


def test_a_bad_line_is_named_and_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"resourceSpans": []}\n{not json\n')
    assert main(["import", str(bad), "--db", str(tmp_path / "b.duckdb")]) == 2
    assert "line 2" in capsys.readouterr().err


class _Flaky:
    """A real HTTP server on 127.0.0.1 that answers the first ``busy`` POSTs with ``status``
    (and ``Retry-After: 0``), then 200, keeping the spans of every accepted request."""

    def __init__(self, busy: int, status: int = 503) -> None:
        import http.server
        import threading

        self.answers: list[int] = []
        self.accepted: list[int] = []
        flaky = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
                import gzip

                from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
                    ExportTraceServiceRequest,
                )
                body = self.rfile.read(int(self.headers["Content-Length"]))
                code = status if len(flaky.answers) < busy else 200
                flaky.answers.append(code)
                if code == 200:
                    request = ExportTraceServiceRequest.FromString(gzip.decompress(body))
                    flaky.accepted.append(sum(len(s.spans) for r in request.resource_spans
                                              for s in r.scope_spans))
                self.send_response(code)
                self.send_header("Retry-After", "0")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("status", [429, 503])
def test_replay_retries_a_busy_backend_and_then_delivers_everything(judged_store, status):
    from vlmscope.collectors.interchange import replay

    flaky = _Flaky(busy=2, status=status)
    try:
        with read_connection(judged_store) as con:
            sent = replay(con, flaky.url, spans_per_request=5)
            ((total,),) = con.execute("SELECT count(*) FROM spans").fetchall()
    finally:
        flaky.close()
    assert flaky.answers[:3] == [status, status, 200]
    # Every request arrived once; spans and evaluation spans together.
    assert sum(flaky.accepted) == sent.spans + sent.evaluations
    assert sent.spans == total


@pytest.mark.parametrize(("status", "tries"), [(503, 3), (400, 1)])
def test_replay_gives_up_and_says_what_the_backend_answered(judged_store, status, tries):
    """A busy backend is retried max_retries times; a refusal (400) is not retried."""
    from vlmscope.collectors.interchange import replay

    flaky = _Flaky(busy=100, status=status)
    try:
        with read_connection(judged_store) as con, \
                pytest.raises(RuntimeError, match=f"answered {status} after 0 spans"):
            replay(con, flaky.url, max_retries=2)
    finally:
        flaky.close()
    assert flaky.answers == [status] * tries


def test_a_parquet_folder_from_before_a_column_was_added_still_reads(judged_store, tmp_path):
    """eval_runs gained run_name in schema 6: a folder written before reads it as NULL."""
    from vlmscope.collectors.parquet import open_parquet_folder

    folder = tmp_path / "pq"
    assert main(["export", "--db", str(judged_store), "--format", "parquet",
                 "-o", str(folder)]) == 0
    files = list((folder / "eval_runs").glob("**/*.parquet"))
    assert files
    for path in files:  # rewrite each file as an older vlmscope wrote it
        duckdb.execute(f"COPY (SELECT * EXCLUDE (run_name) FROM read_parquet('{path}')) "
                       f"TO '{path}.old' (FORMAT parquet)")
        Path(f"{path}.old").replace(path)
    con = open_parquet_folder(folder)
    try:
        runs = con.execute("SELECT count(*), count(run_name) FROM eval_runs").fetchall()
    finally:
        con.close()
    with read_connection(judged_store) as store:
        ((stored,),) = store.execute("SELECT count(*) FROM eval_runs").fetchall()
    assert runs == [(stored, 0)] and stored > 0
