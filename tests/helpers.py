"""Helpers shared by test modules (fixtures live in ``conftest.py``; plain functions and
classes here): reading a store, real images, the package's modules and imports, and a
`vlmscope collect` subprocess with OTLP requests to send it."""

from __future__ import annotations

import ast
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

ROOT = Path(__file__).resolve().parent.parent
"""The repository's root."""

PYTHON = sys.executable
"""The interpreter the tests run in (for subprocesses)."""


@contextlib.contextmanager
def local_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """``http://127.0.0.1:<port>`` of an HTTP server answering with ``handler`` in a thread,
    for the block (a stand-in for a hosted LLM's API)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


def query(db_path: Path, sql: str, params: list | None = None) -> list[tuple]:
    """Run a read-only query on a store (after ``vlmscope.shutdown()``)."""
    from vlmscope.collectors.store import read_connection

    with read_connection(db_path) as con:
        return con.execute(sql, params or []).fetchall()


def digit_images(n: int, size: int = 64):
    """``n`` real handwritten digit scans (scikit-learn) as an Nx3xSxS float tensor, and
    their labels."""
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    digits = load_digits()
    scans = torch.tensor(digits.images[:n], dtype=torch.float32)[:, None] / 16.0
    pixels = F.interpolate(scans, size=size, mode="bilinear").expand(-1, 3, -1, -1)
    return pixels.contiguous(), [int(t) for t in digits.target[:n]]


def pyproject() -> dict:
    """``pyproject.toml``, parsed."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def package_modules() -> dict[str, Path]:
    """Every module of the distribution, by dotted name, from ``pyproject.toml``'s
    ``package-dir`` (a folder ``sdk/`` is the package ``vlmscope``, and so on), so a module
    added or split later is found without naming it here."""
    package_dir = pyproject()["tool"]["setuptools"]["package-dir"]
    modules: dict[str, Path] = {}
    for package, folder in package_dir.items():
        base = ROOT / folder
        for path in sorted(base.rglob("*.py")):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            name = ".".join([package, *parts])
            # a sub-folder that package-dir maps elsewhere (none today) is not this package's
            modules.setdefault(name, path)
    return modules


def extension_modules() -> set[str]:
    """The distribution's C extension modules, by dotted name (``pyproject.toml``)."""
    return {ext["name"] for ext in pyproject()["tool"]["setuptools"].get("ext-modules", [])}


@dataclass(frozen=True)
class ImportedName:
    """One import statement's target as the importing module sees it."""

    module: str
    """The module imported (``from a.b import c`` where ``a.b.c`` is a module: ``a.b.c``)."""
    name: str | None
    """The name taken from ``module`` (None for ``import a.b``)."""
    line: int
    bound: str
    """The local name the import binds."""


def parse_python(source: str, filename: str = "<unknown>") -> ast.Module:
    """``ast.parse``, tried again when CPython 3.11 fails it spuriously: its AST constructor
    counts recursion in state that threads share, so a parse can fail with "AST constructor
    recursion depth mismatch" while another thread of the test process (Ray's, say) runs
    Python (python/cpython#106905). The same parse again succeeds; a real error repeats."""
    for _ in range(2):
        try:
            return ast.parse(source, filename=filename)
        except SystemError:
            pass
    return ast.parse(source, filename=filename)


def imports_of(path: Path, name: str) -> Iterator[ImportedName]:
    """Every import in the module ``name`` (file ``path``), function-level and
    ``TYPE_CHECKING`` imports included, relative ones resolved."""
    tree = parse_python(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield ImportedName(alias.name, None, node.lineno,
                                   alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            for alias in node.names:
                yield ImportedName(module, alias.name, node.lineno, alias.asname or alias.name)


# -- a `vlmscope collect` subprocess and OTLP requests for it


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
