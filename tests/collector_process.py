"""A `vlmscope collect` subprocess for tests: started on a free loopback port, always ended."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import requests


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
