"""Read-only means read-only: hostile SQL through the collector's /v1/query and through
`vlmscope sql --db`, refused, with the store's bytes and row counts unchanged; and the same
statements refused by DuckDB itself, with vlmscope's statement check switched off."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import requests

from tests.helpers import collector, query, request
from vlmscope.cli import main
from vlmscope.collectors.query import QueryLimits, ReadOnlyQueryError
from vlmscope.collectors.store import StoreWriter

PROTOBUF_HEADERS = {"Content-Type": "application/x-protobuf"}

# Every write, DDL, settings change, extension load and file read or write, bare and wrapped.
WRITES = [
    "UPDATE spans SET name = 'forged'",
    "INSERT INTO spans SELECT * FROM spans",
    "DELETE FROM spans",
    "DROP TABLE spans CASCADE",
    "TRUNCATE spans",
    "ALTER TABLE spans ADD COLUMN forged INTEGER",
    "CREATE TABLE forged AS SELECT 1 AS x",
    "CREATE VIEW forged AS SELECT 1 AS x",
    "CREATE MACRO forged(x) AS x + 1",
    "CREATE SEQUENCE forged",
    "CREATE INDEX forged ON spans (name)",
    "CREATE SCHEMA forged",
    "DROP VIEW pipeline_rows",
    "COMMENT ON TABLE spans IS 'forged'",
    "EXPLAIN ANALYZE UPDATE spans SET name = 'forged'",
    "EXPLAIN ANALYZE DELETE FROM spans",
    "EXPLAIN ANALYZE DROP TABLE spans CASCADE",
    "EXPLAIN ANALYZE INSERT INTO spans SELECT * FROM spans",
    "EXPLAIN ANALYZE CREATE TABLE forged AS SELECT 1 AS x",
    "EXPLAIN ANALYZE CREATE MACRO forged(x) AS x",
]
SETTINGS = [
    "SET memory_limit = '1GB'",
    "SET enable_external_access = true",
    "SET lock_configuration = false",
    "RESET memory_limit",
    "PRAGMA threads = 1",
    "PRAGMA enable_profiling",
    "SET profiling_output = '{tmp}/profile.json'",
]
EXTENSIONS = [
    "INSTALL httpfs",
    "LOAD httpfs",
    "FORCE INSTALL json",
]
FILES = [
    "COPY spans TO '{tmp}/out.csv'",
    "COPY (SELECT 1 AS x) TO '{tmp}/out.parquet' (FORMAT parquet)",
    "EXPLAIN ANALYZE COPY (SELECT 'x' AS x) TO '{tmp}/c2.csv'",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_blob('/etc/hostname')",
    "SELECT * FROM glob('/etc/*')",
    "SELECT * FROM read_parquet('{tmp}/*.parquet')",
    "WITH t AS (SELECT * FROM read_text('/etc/passwd')) SELECT * FROM t",
    "EXPORT DATABASE '{tmp}/exported'",
    "IMPORT DATABASE '{tmp}/exported'",
    "ATTACH '{tmp}/other.duckdb' AS other",
    "CREATE PERSISTENT SECRET forged (TYPE s3, KEY_ID 'a', SECRET 'b')",
]
# Refused by vlmscope's statement check; DuckDB allows them inside a read-only transaction
# (they change the session's catalog, not the store), so they are not in ENGINE below.
CATALOG = [
    "ATTACH ':memory:' AS scratch",
    "DETACH vlmscope_store",
    "USE memory",
    "CHECKPOINT",
    "CALL checkpoint()",
    "SELECT 1; DELETE FROM spans",
    "COMMIT; DROP TABLE spans",
    "SELECT * FROM query('DELETE FROM spans')",
]
HOSTILE = WRITES + SETTINGS + EXTENSIONS + FILES + CATALOG
ENGINE = WRITES + SETTINGS + EXTENSIONS + FILES


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _counts(db: Path) -> list[tuple]:
    return query(db, "SELECT (SELECT count(*) FROM spans), (SELECT count(*) FROM "
                     "pipeline_rows), (SELECT count(*) FROM duckdb_tables()), "
                     "(SELECT count(*) FROM duckdb_views() WHERE NOT internal)")


def _files(tmp: Path) -> set[str]:
    return {str(p) for p in tmp.rglob("*")}


def test_the_hostile_list_is_long_enough():
    assert len(HOSTILE) >= 40 and len(set(HOSTILE)) == len(HOSTILE)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store with 20 spans, written by a collector that then stopped."""
    db = tmp_path / "store.duckdb"
    with collector(db) as running:
        for _ in range(2):
            message, _ = request(10)
            answer = requests.post(running.traces_url, data=message.SerializeToString(),
                                   headers=PROTOBUF_HEADERS, timeout=30)
            assert answer.status_code == 200
    return db


def test_hostile_sql_is_refused_by_the_collector_and_the_store_is_unchanged(store, tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    before_counts = _counts(store)
    with collector(store) as running:
        for template in HOSTILE:
            sql = template.format(tmp=scratch)
            answer = requests.post(running.url + "/v1/query", json={"sql": sql}, timeout=60)
            assert 400 <= answer.status_code < 500, (sql, answer.status_code, answer.text)
            assert answer.json()["message"], sql
        alive = requests.post(running.url + "/v1/query",
                              json={"sql": "SELECT count(*) FROM spans"}, timeout=60)
        assert alive.status_code == 200 and alive.json()["rows"] == [[20]]
        # Ingest still works after the whole list.
        message, _ = request(3)
        assert requests.post(running.traces_url, data=message.SerializeToString(),
                             headers=PROTOBUF_HEADERS, timeout=30).status_code == 200
    assert _counts(store)[0][0] == before_counts[0][0] + 3
    assert _counts(store)[0][1:] == before_counts[0][1:]
    assert _files(scratch) == set()


def test_hostile_sql_is_refused_by_vlmscope_sql_and_the_file_is_byte_identical(
        store, tmp_path, capsys):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    digest, counts = _digest(store), _counts(store)
    for template in HOSTILE:
        sql = template.format(tmp=scratch)
        assert main(["sql", "--db", str(store), sql]) == 2, sql
        assert capsys.readouterr().err.startswith("error:"), sql
    assert _digest(store) == digest
    assert _counts(store) == counts
    assert _files(scratch) == set()


def test_vlmscope_sql_reads_other_files_only_when_asked(store, tmp_path, capsys):
    other = tmp_path / "other.csv"
    other.write_text("a\n41\n")
    assert main(["sql", "--db", str(store), f"SELECT a + 1 AS b FROM read_csv('{other}')"]) == 2
    assert "error:" in capsys.readouterr().err
    assert main(["sql", "--db", str(store), "--allow-file-access", "--format", "csv",
                 f"SELECT a + 1 AS b FROM read_csv('{other}')"]) == 0
    assert capsys.readouterr().out.split() == ["b", "42"]
    # Even then, the store cannot be written.
    digest = _digest(store)
    assert main(["sql", "--db", str(store), "--allow-file-access",
                 "EXPLAIN ANALYZE DELETE FROM spans"]) == 2
    assert _digest(store) == digest


@pytest.mark.parametrize("template", ENGINE)
def test_duckdb_itself_refuses_without_the_statement_check(tmp_path, template):
    """The engine's barriers alone (``checked=False``) on the collector's kind of writer."""
    db, scratch = tmp_path / "engine.duckdb", tmp_path / "scratch"
    scratch.mkdir()
    writer = StoreWriter(db, config={"enable_external_access": False},
                         query_limits=QueryLimits(timeout_s=20))
    try:
        writer.open()
        before = writer.run_query("SELECT (SELECT count(*) FROM duckdb_tables()), "
                                  "current_setting('memory_limit'), "
                                  "current_setting('enable_external_access')")
        with pytest.raises(ReadOnlyQueryError) as refused:
            writer.run_query(template.format(tmp=scratch), checked=False)
        assert refused.value.status in (400, 403)
        assert writer.run_query("SELECT (SELECT count(*) FROM duckdb_tables()), "
                                "current_setting('memory_limit'), "
                                "current_setting('enable_external_access')") == before
    finally:
        writer.close()
    assert _files(scratch) == set()
    assert not any(name.startswith("forged") for (name,) in query(
        db, "SELECT table_name FROM duckdb_tables() UNION ALL "
            "SELECT view_name FROM duckdb_views() UNION ALL "
            "SELECT function_name FROM duckdb_functions() WHERE NOT internal"))


def test_only_the_first_statement_runs_without_the_check(tmp_path):
    db = tmp_path / "one.duckdb"
    writer = StoreWriter(db, query_limits=QueryLimits())
    try:
        writer.open()
        assert writer.run_query("SELECT 7 AS x; DELETE FROM spans", checked=False) == (
            ["x"], [(7,)])
        writer.run_query("COMMIT; DROP TABLE spans", checked=False)
        assert writer.run_query("SELECT count(*) FROM duckdb_tables() "
                                "WHERE table_name = 'spans'") == (["count_star()"], [(1,)])
    finally:
        writer.close()


def test_in_process_readers_cannot_write_the_store(store):
    from vlmscope.collectors import read_connection

    digest = _digest(store)
    with read_connection(store) as con:
        for sql in ("DELETE FROM spans", "DROP TABLE spans", "CREATE TABLE x (a INT)"):
            with pytest.raises(Exception, match="read-only"):
                con.execute(sql)
    assert _digest(store) == digest



def test_hostile_sql_is_refused_on_a_parquet_export_and_no_file_changes(store, tmp_path,
                                                                       capsys):
    export = tmp_path / "export"
    assert main(["export", "--db", str(store), "--format", "parquet", "-o", str(export)]) == 0
    capsys.readouterr()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    before = {p: p.read_bytes() for p in export.rglob("*") if p.is_file()}
    assert main(["sql", "--parquet", str(export), "--format", "csv",
                 "SELECT count(*) AS n FROM spans"]) == 0
    assert capsys.readouterr().out.split() == ["n", "20"]
    for template in HOSTILE:
        sql = template.format(tmp=scratch)
        assert main(["sql", "--parquet", str(export), sql]) == 2, sql
        assert capsys.readouterr().err.startswith("error:"), sql
    assert {p: p.read_bytes() for p in export.rglob("*") if p.is_file()} == before
    assert _files(scratch) == set()
