"""The store: migrations, and derived tables that can be rebuilt from the spans alone."""

from __future__ import annotations

import os
import time

import duckdb
import pytest

import vlmscope
from vlmscope.collectors import normalize
from vlmscope.collectors.schema import SCHEMA_VERSION, applied_version, migrate

DERIVED = ("row_records", "encoder_records", "llm_records")


def _snapshot(con, table: str) -> list[tuple]:
    return sorted(con.execute(f"SELECT * FROM {table}").fetchall(), key=repr)


def test_rebuilding_the_derived_tables_from_spans_reproduces_what_ingest_wrote(traced):
    for b in range(3):
        ids = [f"b{b}-{i}" for i in range(4)]
        with vlmscope.trace_batch(ids, cohort="c", expected=["cat"] * 4,
                                  objects=[["cat", "mat"]] * 4, instructions=["q"] * 4):
            with vlmscope.encoder_span("resnet", checkpoint_sha256="ab" * 32) as enc:
                enc.record(top_k_labels=[["cat", "dog"]] * 4,
                           top_k_scores=[[0.7, 0.2], [0.6, 0.3], [0.5, 0.4], [0.9, 0.1]],
                           entropy=[0.1, 0.2, 0.3, 0.4], image_sha256=list("wxyz"))
            with vlmscope.llm_span(model="m", instruction=["q"] * 4) as llm:
                llm.set_output([f"out {i}" for i in range(4)], input_tokens=[1, 2, 3, 4],
                               output_tokens=[5, 6, 7, 8])
    with vlmscope.trace_row("single", expected="dog"):
        with vlmscope.llm_span(model="m", instruction="q") as llm:
            llm.set_output("dog", input_tokens=3, output_tokens=1)
    vlmscope.shutdown()

    con = duckdb.connect(str(traced))
    before = {t: _snapshot(con, t) for t in DERIVED}
    assert len(before["encoder_records"]) == 12 and len(before["row_records"]) == 13
    assert normalize.rebuild(con) == con.execute("SELECT count(*) FROM spans").fetchall()[0][0]
    assert {t: _snapshot(con, t) for t in DERIVED} == before
    outputs = con.execute("SELECT row_id, output, output_tokens, top_k_scores FROM "
                          "pipeline_rows WHERE row_id LIKE 'b1-%' ORDER BY row_id").fetchall()
    assert outputs[2] == ("b1-2", "out 2", 7, [0.5, 0.4])
    con.close()


def test_migrations_run_once_and_a_newer_store_is_refused(tmp_path):
    con = duckdb.connect(str(tmp_path / "m.duckdb"))
    assert applied_version(con) == 0
    assert migrate(con) == SCHEMA_VERSION
    assert migrate(con) == SCHEMA_VERSION  # idempotent
    versions = con.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
    assert [v for (v,) in versions] == list(range(1, SCHEMA_VERSION + 1))
    con.execute("INSERT INTO schema_migrations (version, name) VALUES (?, 'future')",
                [SCHEMA_VERSION + 1])
    with pytest.raises(RuntimeError, match="newer than this vlmscope understands"):
        migrate(con)
    con.close()


def test_open_creates_and_migrates_the_store_before_any_write(tmp_path):
    from vlmscope.collectors.store import StoreWriter, read_connection

    path = tmp_path / "opened.duckdb"
    writer = StoreWriter(path, idle_close_s=0.05)
    writer.open()
    assert path.exists()
    time.sleep(0.3)  # idle: the writer lets the file go, readers get in
    with read_connection(path, timeout_s=5) as con:
        ((count,),) = con.execute("SELECT count(*) FROM spans").fetchall()
    assert count == 0
    writer.close()
    with pytest.raises(RuntimeError, match="closed"):
        writer.open()


def _batch(count: int, start: int = 0):
    """A batch of ``count`` plain spans (ids from ``start``), converted as the exporter
    converts them."""
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace import SpanContext, TraceFlags

    from vlmscope.collectors.convert import spans_to_batch

    return spans_to_batch([
        ReadableSpan(name=f"s{i}", context=SpanContext(i + 1, i + 1, False, TraceFlags(1)),
                     attributes={"n": i}, start_time=1_000 + i, end_time=2_000 + i)
        for i in range(start, start + count)])


@pytest.mark.parametrize("row_group_size", [4096, None])
def test_a_large_append_goes_to_the_file_in_row_groups_of_the_writers_size(
        tmp_path, row_group_size):
    """With a row group size, a transaction that appends at least that many rows has DuckDB
    write them to the file as it commits: the write-ahead log holds little, and the row
    groups have the writer's size; without one, DuckDB's default (122,880) holds them all
    in one row group, through the log."""
    from vlmscope.collectors.store import StoreWriter

    path = tmp_path / "groups.duckdb"
    writer = StoreWriter(path, row_group_size=row_group_size)
    writer.open()
    wal = path.with_name(path.name + ".wal")
    before = wal.stat().st_size if wal.exists() else 0
    assert writer.write(_batch(10_000)) == 10_000
    logged = (wal.stat().st_size if wal.exists() else 0) - before
    with writer.cursor() as cursor:
        groups = cursor.execute("SELECT row_group_id, max(count) FROM pragma_storage_info("
                                "'spans') GROUP BY ALL ORDER BY 1").fetchall()
    writer.close()
    if row_group_size:
        assert [rows for _, rows in groups] == [4096, 4096, 1808]
        assert logged < 100_000  # the spans themselves: over a megabyte
    else:
        assert [rows for _, rows in groups] == [10_000]
        assert logged > 1_000_000
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT count(*), count(DISTINCT span_id) FROM spans"
                           ).fetchall() == [(10_000, 10_000)]


@pytest.mark.parametrize("size", [0, 1000, 2048.0, -2048])
def test_a_row_group_size_that_is_not_a_multiple_of_2048_is_refused(tmp_path, size):
    from vlmscope.collectors.store import StoreWriter

    with pytest.raises(ValueError, match="multiple of 2048"):
        StoreWriter(tmp_path / "x.duckdb", row_group_size=size)


def test_the_writer_leaves_a_core_to_the_application_and_hands_the_file_to_readers_here(
        tmp_path):
    from vlmscope.collectors.store import (
        DEFAULT_ROW_GROUP_SIZE,
        StoreWriter,
        read_connection,
        write_connection,
        writer_threads,
    )

    path = tmp_path / "threads.duckdb"
    writer = StoreWriter(path, idle_close_s=600)
    writer.open()
    try:
        with writer.cursor() as cursor:
            ((threads,),) = cursor.execute("SELECT current_setting('threads')").fetchall()
        assert int(threads) == writer_threads() == max(1, len(os.sched_getaffinity(0)) - 1)
        # The writer attaches the file to a database of its own (for its row group size):
        # a reader or an evaluator in this same process asks for the file and gets it, as
        # one in another process does, long before the writer would let it go when idle.
        started = time.monotonic()
        with read_connection(path) as reader:
            assert reader.execute("SELECT count(*) FROM spans").fetchall() == [(0,)]
        with write_connection(path) as other:
            other.execute("CREATE TABLE scratch AS SELECT 1 AS x")
        assert time.monotonic() - started < 30
        writer.write(_batch(1))  # and the writer takes the file back
        with writer.cursor() as cursor:
            assert cursor.execute("SELECT count(*) FROM spans").fetchall() == [(1,)]
            assert cursor.execute(
                "SELECT max(count) FROM pragma_storage_info('spans')").fetchall()[0][0] <= \
                DEFAULT_ROW_GROUP_SIZE
    finally:
        writer.close()
    pinned = StoreWriter(tmp_path / "pinned.duckdb", config={"threads": 2})
    pinned.open()
    with pinned.cursor() as cursor:
        assert cursor.execute("SELECT current_setting('threads')").fetchall() == [(2,)]
    pinned.close()


def test_a_store_path_with_quotes_and_spaces_is_attached_as_it_is(tmp_path):
    """The writer attaches the file by a SQL string literal: a quote in the path is not
    SQL, and the file is the one named."""
    from vlmscope.collectors.store import StoreWriter, read_connection

    path = tmp_path / "it's a store; DROP TABLE x.duckdb"
    writer = StoreWriter(path)
    assert writer.write(_batch(3)) == 3
    writer.close()
    assert path.exists()
    with read_connection(path) as con:
        assert con.execute("SELECT count(*) FROM spans").fetchall() == [(3,)]
