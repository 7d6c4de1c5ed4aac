"""`vlmscope collect` under SIGKILL: acknowledged spans survive exactly once, no request lands
in part, and clients retrying after the restart create no duplicates."""

from __future__ import annotations

import signal
import threading
import time

import requests

from tests.helpers import Collector, query, request

SPANS_PER_REQUEST = 50


def send_until_killed(url: str, sender: int, acked: list, sent: list, stop: threading.Event
                      ) -> None:
    """Post requests of fresh spans until the collector stops answering; remember which
    requests got a 2xx."""
    session = requests.Session()
    for number in range(10_000):
        if stop.is_set():
            return
        tag = f"{sender}-{number}"
        message, ids = request(SPANS_PER_REQUEST, attributes={"request": tag})
        body = message.SerializeToString()
        sent.append((tag, body, ids))
        try:
            answer = session.post(url, data=body, timeout=10,
                                  headers={"Content-Type": "application/x-protobuf"})
        except requests.RequestException:
            return
        if answer.status_code == 200:
            acked.append((tag, ids))


def test_sigkill_under_load_loses_no_acknowledged_span_and_leaves_no_partial_request(tmp_path):
    db = tmp_path / "s.duckdb"
    first = Collector(db)
    acked: list = []
    sent: list = []
    stop = threading.Event()
    senders = [threading.Thread(target=send_until_killed,
                                args=(first.traces_url, i, acked, sent, stop))
               for i in range(3)]
    for thread in senders:
        thread.start()
    deadline = time.monotonic() + 30
    while len(acked) < 40 and time.monotonic() < deadline:
        time.sleep(0.01)
    first.stop(signal.SIGKILL)
    stop.set()
    for thread in senders:
        thread.join(30)
    assert len(acked) >= 40, first.log()

    stored = dict(query(db, "SELECT attributes->>'$.request', count(*) FROM spans GROUP BY 1"))
    assert set(stored.values()) <= {SPANS_PER_REQUEST}, "a request landed in part"
    assert {tag for tag, _ in acked} <= set(stored)
    assert query(db, "SELECT count(*) - count(DISTINCT (trace_id, span_id)) FROM spans") == [(0,)]

    # Every client retries everything it sent; the restarted collector stores each span once.
    second = Collector(db)
    try:
        session = requests.Session()
        for _, body, _ in sent:
            answer = session.post(second.traces_url, data=body, timeout=30,
                                  headers={"Content-Type": "application/x-protobuf"})
            assert answer.status_code == 200
    finally:
        second.stop()
    ids = {span for _, _, spans in sent for span in spans}
    assert query(db, "SELECT count(*), count(DISTINCT (trace_id, span_id)) FROM spans") == [
        (len(ids), len(ids))]
