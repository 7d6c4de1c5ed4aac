"""`vlmscope collect` fed bad requests: every answer is a 2xx or 4xx, the collector never
crashes or hangs, and what it stored before is unchanged."""

from __future__ import annotations

import gzip
import random

import orjson
import pytest
import requests

from tests.helpers import collector, request

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


def _span_json(rng: random.Random) -> dict:
    return {"traceId": rng.randbytes(rng.choice([16, 15, 17, 0])).hex(),
            "spanId": rng.randbytes(rng.choice([8, 7, 9])).hex(), "name": "fuzz",
            "startTimeUnixNano": str(rng.getrandbits(63)),
            "attributes": [{"key": "k", "value": {"stringValue": "v" * rng.choice([1, 300_000])}}]}


def bad_request(rng: random.Random) -> tuple[bytes, dict[str, str]]:
    """One malformed, hostile or unusual request body with its headers."""
    good, _ = request(rng.randint(1, 20), service="fuzz")
    valid = good.SerializeToString()
    kind = rng.randrange(12)
    if kind == 0:
        return rng.randbytes(rng.randint(0, 4000)), {"Content-Type": PROTOBUF}
    if kind == 1:
        return valid[:rng.randint(1, len(valid) - 1)], {"Content-Type": PROTOBUF}
    if kind == 2:
        depth = rng.choice([100, 2000, 50_000])
        return b"[" * depth + b"]" * depth, {"Content-Type": JSON}
    if kind == 3:
        depth = rng.choice([20, 200, 5000])
        nested = b'{"arrayValue":{"values":[' * depth + b'{"stringValue":"leaf"}' + b"]}}" * depth
        span = orjson.dumps(_span_json(rng) | {"attributes": [{"key": "deep", "value": 0}]})
        span = span.replace(b'"value":0', b'"value":' + nested)
        return b'{"resourceSpans":[{"scopeSpans":[{"spans":[' + span + b"]}]}]}", {
            "Content-Type": JSON}
    if kind == 4:
        document = {"resourceSpans": [{"scopeSpans": [{"spans": [_span_json(rng)]}]}]}
        return orjson.dumps(document), {"Content-Type": JSON}
    if kind == 5:
        body = orjson.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [_span_json(rng)]}]}]})
        cut = rng.randrange(len(body))
        return body[:cut] + b"\xff\xfe" + body[cut:], {"Content-Type": JSON}
    if kind == 6:
        # Invalid UTF-8 inside a protobuf string field (the span name).
        mutated = bytearray(valid)
        at = mutated.find(b"span-")
        mutated[at:at + 2] = b"\xc3\x28"
        return bytes(mutated), {"Content-Type": PROTOBUF}
    if kind == 7:
        return valid, {"Content-Type": rng.choice(["text/plain", "", "application/grpc",
                                                   "multipart/form-data"])}
    if kind == 8:
        flipped = bytearray(valid)
        for _ in range(rng.randint(1, 8)):
            flipped[rng.randrange(len(flipped))] = rng.randrange(256)
        return bytes(flipped), {"Content-Type": PROTOBUF}
    if kind == 9:
        return gzip.compress(rng.randbytes(200))[:-rng.randint(1, 10)], {
            "Content-Type": PROTOBUF, "Content-Encoding": "gzip"}
    if kind == 10:
        document = rng.choice([[], "x", 1, None, {"resourceSpans": [1]},
                               {"resourceSpans": [{"scopeSpans": [{"spans": ["x"]}]}]},
                               {"resourceSpans": [{"scopeSpans": [{"spans": [{"kind": "x"}]}]}]}])
        return orjson.dumps(document), {"Content-Type": JSON}
    return rng.randbytes(64), {"Content-Type": PROTOBUF, "Content-Encoding": "deflate"}


def fuzz(db, count: int, seed: int) -> None:
    """Post ``count`` bad requests to a collector on ``db`` holding some spans already."""
    rng = random.Random(seed)
    with collector(db) as c:
        session = requests.Session()
        before, _ = request(30, service="before")
        assert session.post(c.traces_url, data=before.SerializeToString(),
                            headers={"Content-Type": PROTOBUF}, timeout=30).status_code == 200
        snapshot_sql = {"sql": "SELECT trace_id, span_id, attributes FROM spans "
                               "WHERE service_name = 'before' ORDER BY span_id"}
        snapshot = session.post(c.url + "/v1/query", json=snapshot_sql, timeout=30).json()
        statuses: dict[int, int] = {}
        for _ in range(count):
            body, headers = bad_request(rng)
            answer = session.post(c.traces_url, data=body, headers=headers, timeout=30)
            statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
            assert 200 <= answer.status_code < 500, (answer.status_code, answer.text[:200])
        assert session.get(c.url + "/health", timeout=30).status_code == 200
        assert session.post(c.url + "/v1/query", json=snapshot_sql, timeout=30).json() == snapshot
        assert c.process.poll() is None
    assert statuses.get(400, 0) > count // 4


def test_a_few_hundred_bad_requests_get_4xx_or_2xx_and_change_nothing_stored(tmp_path):
    fuzz(tmp_path / "s.duckdb", 300, seed=1)


@pytest.mark.slow
def test_ten_thousand_bad_requests_get_4xx_or_2xx_and_change_nothing_stored(tmp_path):
    fuzz(tmp_path / "s.duckdb", 10_000, seed=2)
