"""The collector's query route beside its ingest: limits that answer 4xx and leave the
collector healthy, ingest that a long query does not stall, every DuckDB type serialised,
invalid ids rejected, and spans acknowledged while another process holds the file."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)

from tests.helpers import PYTHON, collector, query, request

PROTOBUF = {"Content-Type": "application/x-protobuf"}


def _post(url: str, n: int, **kwargs) -> tuple[requests.Response, list[tuple[str, str]]]:
    message, ids = request(n, **kwargs)
    return requests.post(url, data=message.SerializeToString(), headers=PROTOBUF,
                         timeout=30), ids


def _query(url: str, sql: str) -> requests.Response:
    return requests.post(url + "/v1/query", json={"sql": sql}, timeout=120)


def _ingest_beside_a_long_query(tmp_path: Path) -> tuple[requests.Response, float]:
    """Spans posted while a query scans for longer than its 6 s limit: the answer to the
    post, how long it took, and (checked here) the query's 408 and every span stored."""
    with collector(tmp_path / "busy.duckdb", "--query-timeout", "6") as running:
        assert _post(running.traces_url, 10)[0].status_code == 200
        answers = {}
        long_query = threading.Thread(target=lambda: answers.setdefault("q", _query(
            running.url, "SELECT sum(hash(range)) FROM range(100000000000)")))
        long_query.start()
        time.sleep(1.5)  # the scan is running
        started = time.monotonic()
        answer, _ = _post(running.traces_url, 10)
        took = time.monotonic() - started
        long_query.join(60)
        timed_out = answers["q"]
        assert timed_out.status_code == 408 and "time limit" in timed_out.json()["message"]
        assert _query(running.url, "SELECT count(*) FROM spans").json()["rows"] == [[20]]
    return answer, took


def test_a_long_query_does_not_outlive_its_time_limit_and_ingest_goes_on(tmp_path: Path):
    answer, _ = _ingest_beside_a_long_query(tmp_path)
    assert answer.status_code == 200


@pytest.mark.slow
def test_a_long_query_does_not_stall_ingest_by_the_clock(tmp_path: Path):
    """Slow: the post's time is measured (a loaded host can stall it on its own)."""
    answer, took = _ingest_beside_a_long_query(tmp_path)
    assert answer.status_code == 200 and took < 1.0, took


def test_memory_and_result_limits_answer_413_and_the_collector_stays_healthy(tmp_path):
    with collector(tmp_path / "limits.duckdb", "--query-memory-limit", "64MB",
                   "--query-max-bytes", "1000000") as running:
        big = _query(running.url, "SELECT list(range) FROM range(100000000)")
        assert big.status_code == 413 and "memory" in big.json()["message"], big.text
        wide = _query(running.url, "SELECT repeat('x', 1000) FROM range(10000)")
        assert wide.status_code == 413 and "bytes" in wide.json()["message"], wide.text
        assert _post(running.traces_url, 3)[0].status_code == 200
        ok = _query(running.url, "SELECT count(*) FROM spans")
        assert ok.status_code == 200 and ok.json()["rows"] == [[3]]
        assert requests.get(running.url + "/health", timeout=5).json()["status"] == "ok"


def test_every_duckdb_type_in_a_result_serialises(tmp_path: Path):
    with collector(tmp_path / "types.duckdb") as running:
        answer = _query(running.url, (
            "SELECT 170141183460469231731687303715884105727::HUGEINT AS huge, "
            "sum(hash(x)) AS hashes, 12.50::DECIMAL(10, 2) AS money, "
            "INTERVAL 1 DAY + INTERVAL 2 HOUR AS span, "
            "'8f7c5d1e-1111-4222-8333-944455556666'::UUID AS id, '\\xAA\\x01'::BLOB AS raw, "
            "[1, 2] AS list, {'a': 1, 'b': [true]} AS struct, MAP {'k': 1.5::DOUBLE} AS map, "
            "DATE '2020-01-02' AS day, TIME '10:11:12' AS clock, "
            "TIMESTAMP '2020-01-02 10:11:12' AS moment, 18446744073709551615::UBIGINT AS big "
            "FROM (VALUES (1), (2)) t(x)"))
        assert answer.status_code == 200, answer.text
        columns, (row,) = answer.json()["columns"], answer.json()["rows"]
        got = dict(zip(columns, row, strict=True))
        assert got["huge"] == "170141183460469231731687303715884105727"
        assert isinstance(got["hashes"], str) and int(got["hashes"]) > 0
        assert got["money"] == "12.50"
        assert got["span"] == "P0M1DT7200S"
        assert got["id"] == "8f7c5d1e-1111-4222-8333-944455556666"
        assert got["raw"] == "qgE="
        assert got["list"] == [1, 2] and got["struct"] == {"a": 1, "b": [True]}
        assert got["map"] == [["k", 1.5]]
        assert got["day"] == "2020-01-02" and got["clock"] == "10:11:12"
        assert got["moment"].startswith("2020-01-02T10:11:12")
        assert got["big"] == 18446744073709551615


def test_all_zero_ids_are_rejected_through_partial_success(tmp_path: Path):
    db = tmp_path / "ids.duckdb"
    with collector(db) as running:
        answer, _ = _post(running.traces_url, 3, trace_id=bytes(16))
        assert answer.status_code == 200
        response = ExportTraceServiceResponse.FromString(answer.content)
        assert response.partial_success.rejected_spans == 3
        assert "all-zero" in response.partial_success.error_message
        good, _ = _post(running.traces_url, 2)
        assert good.status_code == 200
    assert query(db, "SELECT count(*), count(*) FILTER (WHERE trace_id = repeat('0', 32)) "
                     "FROM spans") == [(2, 0)]


_HOLDER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_spans_acknowledged_while_another_process_holds_the_file_are_stored_later(tmp_path):
    db = tmp_path / "shared.duckdb"
    with collector(db) as running:
        assert _post(running.traces_url, 4)[0].status_code == 200
        time.sleep(1.5)  # the writer lets the idle file go
        holder = subprocess.Popen([PYTHON, "-c", _HOLDER, str(db), "4"],
                                  stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout.readline().strip() == "holding"
            answer, ids = _post(running.traces_url, 6)
            assert answer.status_code == 200  # acknowledged: durable in the spool
            assert list((tmp_path / "shared.duckdb.spool").iterdir())
        finally:
            holder.wait(30)
        # With no further request, the collector commits the spool once the file is free.
        deadline = time.monotonic() + 20
        while (tmp_path / "shared.duckdb.spool").exists() and any(
                (tmp_path / "shared.duckdb.spool").iterdir()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any((tmp_path / "shared.duckdb.spool").iterdir())
        count = _query(running.url, "SELECT count(*), count(DISTINCT span_id) FROM spans")
        assert count.json()["rows"] == [[10, 10]]
    assert query(db, "SELECT count(*), count(DISTINCT span_id) FROM spans") == [(10, 10)]
    assert query(db, "SELECT count(*) FROM spans WHERE trace_id = ?", [ids[0][0]]) == [(6,)]
