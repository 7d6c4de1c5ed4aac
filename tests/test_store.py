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


def test_the_writer_leaves_a_core_to_the_application_and_other_connections_still_open(
        tmp_path):
    from vlmscope.collectors.store import StoreWriter, writer_threads

    path = tmp_path / "threads.duckdb"
    writer = StoreWriter(path)
    writer.open()
    try:
        with writer.cursor() as cursor:
            ((threads,),) = cursor.execute("SELECT current_setting('threads')").fetchall()
        assert int(threads) == writer_threads() == max(1, len(os.sched_getaffinity(0)) - 1)
        # Set on the connection, not in its config: this process's own connections to the
        # file still open (a different config would refuse them).
        other = duckdb.connect(str(path))
        assert other.execute("SELECT count(*) FROM spans").fetchall() == [(0,)]
        other.close()
    finally:
        writer.close()
    pinned = StoreWriter(tmp_path / "pinned.duckdb", config={"threads": 2})
    pinned.open()
    with pinned.cursor() as cursor:
        assert cursor.execute("SELECT current_setting('threads')").fetchall() == [(2,)]
    pinned.close()
