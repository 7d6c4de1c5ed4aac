"""Shared fixtures: a fresh store per test, vlmscope configured onto it, an in-memory span
exporter with its tracer provider, a small store of traced rows, and the small demo's store
(built once per session). Plain helpers
(``query``, ``digit_images``, the collector subprocess) are in ``helpers.py``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import vlmscope

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


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


@pytest.fixture
def span_exporter() -> Iterator[InMemorySpanExporter]:
    """The SDK's in-memory exporter: the finished spans, to assert on names and
    attributes."""
    exporter = InMemorySpanExporter()
    yield exporter
    exporter.clear()


@pytest.fixture
def tracer_provider(span_exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    """vlmscope configured onto a tracer provider whose spans reach ``span_exporter`` as
    each ends (the global provider left alone); shut down after the test."""
    provider = vlmscope.configure(exporter=span_exporter, batch=False, service_name="tests",
                                  set_global=False)
    yield provider
    vlmscope.shutdown()


@pytest.fixture
def memory(span_exporter: InMemorySpanExporter,
           tracer_provider: TracerProvider) -> InMemorySpanExporter:
    """vlmscope configured onto the in-memory exporter, one export per ended span."""
    return span_exporter


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


SMALL_STORE_ROWS = 6
"""Rows in :func:`small_store`: even rows answer ``dog`` to an expected ``cat``."""


@pytest.fixture
def small_store(db_path: Path) -> Path:
    """A store holding :data:`SMALL_STORE_ROWS` traced pipeline rows (row span and LLM span
    each, half of them wrong), written and closed."""
    vlmscope.configure(db=db_path, service_name="tests")
    try:
        for i in range(SMALL_STORE_ROWS):
            with vlmscope.trace_row(f"r{i}", cohort="day", expected="cat"):
                with vlmscope.llm_span(model="m", instruction="what is it?") as span:
                    span.set_output("cat" if i % 2 else "dog", input_tokens=3,
                                    output_tokens=1)
    finally:
        vlmscope.shutdown()
    return db_path
