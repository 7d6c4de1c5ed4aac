"""Helpers for the collector tests: a `vlmscope collect` subprocess on a free loopback port
(always ended), and OTLP trace requests built with chosen ids and attributes."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Collector:
    """A running ``vlmscope collect`` process."""

    def __init__(self, db: Path, *args: str, startup_s: float = 30.0) -> None:
        self.db = db
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = db.with_name(db.name + f".{self.port}.log")
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "vlmscope", "collect", "--db", str(db),
                 "--port", str(self.port), *args],
                stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + startup_s
        while True:
            if self.process.poll() is not None:
                raise RuntimeError("collector exited: " + self.log())
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            if time.monotonic() > deadline:
                self.stop(signal.SIGKILL)
                raise RuntimeError("collector did not start")
            time.sleep(0.05)

    @property
    def traces_url(self) -> str:
        """Where OTLP/HTTP trace requests go."""
        return self.url + "/v1/traces"

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> int:
        """Send ``sig`` and wait for the process; kill it if it does not end in time."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout_s)
        return self.process.returncode

    def log(self) -> str:
        """What the collector printed so far."""
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def collector(db: Path, *args: str) -> Iterator[Collector]:
    """A collector for the length of the block, stopped with SIGTERM after it."""
    running = Collector(db, *args)
    try:
        yield running
    finally:
        running.stop()



def any_value(value: Any) -> AnyValue:
    """A Python value as an OTLP ``AnyValue``."""
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    out = AnyValue()
    for item in value:
        out.array_value.values.append(any_value(item))
    return out


def request(n: int, *, service: str = "tests", attributes: dict[str, Any] | None = None,
            trace_id: bytes | None = None, start_ns: int = 1_700_000_000_000_000_000
            ) -> tuple[ExportTraceServiceRequest, list[tuple[str, str]]]:
    """A request with ``n`` spans of one new trace; returns it and the (trace, span) hex ids."""
    message = ExportTraceServiceRequest()
    resource_spans = message.resource_spans.add()
    resource_spans.resource.attributes.append(
        KeyValue(key="service.name", value=AnyValue(string_value=service)))
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "tests"
    trace = trace_id or os.urandom(16)
    ids = []
    for i in range(n):
        span = scope_spans.spans.add()
        span.trace_id = trace
        span.span_id = os.urandom(8)
        span.name = f"span-{i}"
        span.kind = 1
        span.start_time_unix_nano = start_ns + i
        span.end_time_unix_nano = start_ns + i + 1_000_000
        for key, value in (attributes or {"i": i}).items():
            span.attributes.append(KeyValue(key=key, value=any_value(value)))
        ids.append((trace.hex(), span.span_id.hex()))
    return message, ids
