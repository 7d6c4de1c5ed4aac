"""Shared fixtures: a fresh store per test, vlmscope configured onto it, real images."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import vlmscope

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

PYTHON = sys.executable


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where this test's DuckDB store lives."""
    return tmp_path / "traces.duckdb"


@pytest.fixture
def traced(db_path: Path) -> Iterator[Path]:
    """vlmscope configured onto a fresh store; flushed and shut down after the test."""
    vlmscope.configure(db=db_path, service_name="tests")
    yield db_path
    vlmscope.shutdown()


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


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory):
    """The small demo's store, report folder and argv, built once per session (it trains its
    models on this CPU, so tests that read a real demo store share it).
    ``VLMSCOPE_TEST_DEMO_CACHE`` names a checkpoint cache to reuse between sessions."""
    pytest.importorskip("torchvision")
    pytest.importorskip("transformers")
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    from vlmscope.cli import main

    folder = tmp_path_factory.mktemp("demo")
    db, out = folder / "demo.duckdb", folder / "out"
    argv = ["demo", "--db", str(db), "--out", str(out), "--size", "small",
            "--cache", os.environ.get("VLMSCOPE_TEST_DEMO_CACHE") or str(folder / "cache")]
    assert main(argv) == 0
    return db, out, argv
