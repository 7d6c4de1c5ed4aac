"""Group commit in the exporter's writer thread: batches already queued are committed in one
transaction, up to a cap; the counts, the loss on failure and force_flush stay exact, and
the store ends up as if each batch had been written alone."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import vlmscope
from tests.helpers import query
from tests.pipeline_row_reference import REFERENCE
from vlmscope.collectors.exporter import DuckDBSpanExporter
from vlmscope.collectors.store import StoreWriter


def _spans(rows: int) -> list:
    """Finished spans of ``rows`` traced rows (row, encoder, LLM span each)."""
    memory = InMemorySpanExporter()
    vlmscope.configure(exporter=memory, batch=False)
    for i in range(rows):
        with vlmscope.trace_row(f"row-{i}", expected="cat"):
            with vlmscope.encoder_span("resnet18") as enc:
                enc.record(top_k_labels=[["cat", "dog"]], top_k_scores=[[0.9, 0.1]])
            with vlmscope.llm_span(model="head", instruction="what?") as llm:
                llm.set_output(f"answer {i}")
    vlmscope.shutdown()
    return list(memory.get_finished_spans())


class _Held(StoreWriter):
    """A store writer whose first write waits for ``release``; records every write's size
    and fails those listed in ``fail`` (by the order of writes)."""

    def __init__(self, path: Path, fail: tuple[int, ...] = ()) -> None:
        super().__init__(path)
        self.release = threading.Event()
        self.sizes: list[int] = []
        self.fail = fail

    def write(self, batch, prepare=None, **options):
        self.release.wait()
        self.sizes.append(batch.num_spans)
        if len(self.sizes) - 1 in self.fail:
            raise OSError("disk full")
        return super().write(batch, prepare, **options)


def _export_while_held(exporter: DuckDBSpanExporter, writer: _Held, spans: list,
                       size: int) -> None:
    """The first batch is taken and held; the rest queue up; then the writer goes on."""
    chunks = [spans[i:i + size] for i in range(0, len(spans), size)]
    exporter.export(chunks[0])
    while exporter._queue.unfinished_tasks and exporter._queue.qsize():
        threading.Event().wait(0.005)  # until the writer has taken the first one
    for chunk in chunks[1:]:
        exporter.export(chunk)
    writer.release.set()
    assert exporter.force_flush()


def test_queued_batches_are_committed_together_and_the_store_equals_the_join(
        tmp_path: Path) -> None:
    spans = _spans(40)  # 120 spans, a row's spans split over batches of 7
    path = tmp_path / "grouped.duckdb"
    writer = _Held(path)
    exporter = DuckDBSpanExporter(writer=writer, pending_batches=32, max_group_spans=50)
    _export_while_held(exporter, writer, spans, 7)
    # Everything handed over is committed once force_flush returns.
    assert exporter.stats.exported_spans == 120 and exporter.stats.failed_spans == 0
    assert writer.sizes[0] == 7 and max(writer.sizes) <= 50 and len(writer.sizes) < 10
    assert sum(writer.sizes) == 120
    exporter.shutdown()
    assert query(path, "SELECT count(*), count(DISTINCT span_id) FROM spans") == [(120, 120)]
    rows = sorted(query(path, "SELECT * FROM pipeline_rows"), key=repr)
    assert len(rows) == 40 and rows == sorted(query(path, REFERENCE), key=repr)


def test_a_batch_larger_than_the_cap_is_committed_alone(tmp_path: Path) -> None:
    spans = _spans(10)
    writer = _Held(tmp_path / "cap.duckdb")
    exporter = DuckDBSpanExporter(writer=writer, pending_batches=8, max_group_spans=4)
    _export_while_held(exporter, writer, spans, 6)
    exporter.shutdown()
    assert writer.sizes == [6] * 5
    assert exporter.stats.exported_spans == 30


def test_a_failed_group_loses_all_its_spans_and_batches_and_warns_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spans = _spans(20)  # 60 spans: 1 held batch of 10, then 5 grouped
    writer = _Held(tmp_path / "failed.duckdb", fail=(1,))
    exporter = DuckDBSpanExporter(writer=writer, pending_batches=8, max_group_spans=1000)
    with caplog.at_level(logging.DEBUG, logger="vlmscope"):
        _export_while_held(exporter, writer, spans, 10)
        exporter.shutdown()
    assert writer.sizes == [10, 50]
    stats = exporter.stats
    assert (stats.exported_spans, stats.failed_spans, stats.failed_batches) == (10, 50, 5)
    assert "disk full" in stats.last_error
    warned = [r for r in caplog.records if r.levelno == logging.WARNING
              and "could not write" in r.getMessage()]
    assert len(warned) == 1 and "50 spans" in warned[0].getMessage()
    assert query(tmp_path / "failed.duckdb", "SELECT count(*) FROM spans") == [(10,)]


def test_bad_group_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_group_spans"):
        DuckDBSpanExporter(tmp_path / "x.duckdb", max_group_spans=0)
