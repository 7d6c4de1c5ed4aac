"""Parquet shards under one dataset root: committed shards are read once, retries replace."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest

from vlmscope.collectors.shards import ShardRoot, open_root, shard_name


def spans(trace: str, count: int, day: str = "2026-12-06") -> pa.Table:
    start = dt.datetime.fromisoformat(f"{day}T10:00:00")
    return pa.table({
        "trace_id": [trace] * count, "span_id": [f"{trace}-{i}" for i in range(count)],
        "name": ["vlmscope.row"] * count,
        "start_time": pa.array([start] * count, pa.timestamp("ns")),
        "date": [day] * count, "service": ["tests"] * count})


def write(root: ShardRoot, trace: str, count: int, day: str = "2026-12-06",
          commit: bool = True) -> str:
    shard = shard_name("rows", "run", trace)
    files = {"spans": root.write_table("spans", spans(trace, count, day), shard,
                                       ("date", "service"))}
    if commit:
        root.commit(shard, files, kind="rows")
    return shard


def span_ids(root: ShardRoot) -> list[str]:
    con = root.connect()
    try:
        return sorted(r[0] for r in con.execute("SELECT span_id FROM spans").fetchall())
    finally:
        con.close()


def test_shard_names_are_the_same_for_the_same_rows_and_differ_otherwise() -> None:
    assert shard_name("rows", "run", "a", "b") == shard_name("rows", "run", "a", "b")
    assert shard_name("rows", "run", "a", "b") != shard_name("rows", "run", "ab")
    assert len(shard_name("x")) == 32


def test_a_retried_shard_replaces_the_first_attempt_even_under_another_date(
        tmp_path: Path) -> None:
    root = ShardRoot(str(tmp_path / "root"))
    write(root, "t1", 3)
    write(root, "t2", 2)
    # The retry of t1's batch: other spans, written after midnight, committed again.
    shard = shard_name("rows", "run", "t1")
    retry = spans("t1", 4, "2026-12-07").set_column(
        1, "span_id", pa.array([f"retry-{i}" for i in range(4)]))
    files = {"spans": root.write_table("spans", retry, shard, ("date", "service"))}
    root.commit(shard, files, kind="rows")
    assert span_ids(root) == ["retry-0", "retry-1", "retry-2", "retry-3", "t2-0", "t2-1"]
    assert len(list((tmp_path / "root").glob("spans/**/*.parquet"))) == 3  # one stale file


def test_files_of_an_attempt_that_never_committed_are_not_read(tmp_path: Path) -> None:
    root = ShardRoot(str(tmp_path / "root"))
    write(root, "t1", 2)
    write(root, "t9", 5, commit=False)
    assert span_ids(root) == ["t1-0", "t1-1"]
    assert [len(p["spans"]) for p in root.partitions()] == [1]


def test_a_plain_export_folder_reads_file_by_file_and_partitions_by_folder(
        tmp_path: Path) -> None:
    folder = tmp_path / "export"
    for day in ("2026-12-05", "2026-12-06"):
        target = folder / "spans" / f"date={day}" / "service=tests"
        target.mkdir(parents=True)
        import pyarrow.parquet as pq

        pq.write_table(spans(day, 2, day).drop_columns(["date", "service"]),
                       target / "data_0.parquet")
    root = ShardRoot(str(folder))
    assert not root.is_sharded()
    assert len(root.partitions()) == 2
    con = open_root(folder)
    assert con.execute("SELECT count(*), count(DISTINCT date) FROM "
                       "(SELECT strftime(start_time, '%Y-%m-%d') AS date FROM spans)"
                       ).fetchall() == [(4, 2)]


def test_a_root_on_an_fsspec_filesystem_is_written_and_read_back() -> None:
    fsspec = pytest.importorskip("fsspec")
    memory = fsspec.filesystem("memory")
    root = ShardRoot("/vlmscope-test-root", memory)
    write(root, "t1", 3)
    assert span_ids(root) == ["t1-0", "t1-1", "t1-2"]
    memory.rm("/vlmscope-test-root", recursive=True)


def test_a_root_without_spans_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no vlmscope Parquet"):
        open_root(tmp_path)


def test_committed_shards_group_into_partitions_of_about_the_rows_asked(
        tmp_path: Path) -> None:
    root = ShardRoot(str(tmp_path / "root"))
    for i in range(5):
        shard = shard_name("rows", "run", str(i))
        files = {"spans": root.write_table("spans", spans(f"t{i}", 2), shard,
                                           ("date", "service"))}
        root.commit(shard, files, kind="rows", rows=100, run="run")
    assert [len(p["spans"]) for p in root.partitions()] == [1] * 5
    assert [len(p["spans"]) for p in root.partitions(run="run")] == [1] * 5
    assert [len(p["spans"]) for p in root.partitions(200)] == [2, 2, 1]
    assert [len(p["spans"]) for p in root.partitions(10_000)] == [5]
    assert root.partitions(run="another run") == []
    assert len(root.partitions(10_000, run="run")) == 1
    alone = write(root, "t9", 1)  # a shard that does not say its rows stands alone
    groups = root.partitions(10_000)
    assert sum(len(p["spans"]) for p in groups) == 6
    assert [p["spans"] for p in groups if any(alone in f for f in p["spans"])] == [
        [f for p in groups for f in p["spans"] if alone in f]]
    assert len(groups) <= 3


def test_a_relative_root_means_the_callers_folder_wherever_it_is_read(tmp_path: Path,
                                                                      monkeypatch) -> None:
    """A root travels to Ray workers whose working folder differs from the caller's."""
    monkeypatch.chdir(tmp_path)
    root = ShardRoot("shards")
    assert root.root == str(tmp_path / "shards")
    monkeypatch.chdir(tmp_path.parent)  # as in a worker started elsewhere
    root.write_table("spans", pa.table({"x": [1]}), "s1")
    assert (tmp_path / "shards" / "spans" / "s1.parquet").exists()


def _store_with_two_runs(db: Path) -> None:
    import numpy as np

    import vlmscope

    vlmscope.configure(db=db)
    try:
        rows = [{"id": f"r{i}", "image": np.full((8, 8, 3), i, np.uint8), "expected": "cat"}
                for i in range(6)]
        data = vlmscope.Dataset.from_records("pets", rows)
        data.run(lambda row: "cat", name="v1", progress=False)
        data.run(lambda row: "cat" if row.id < "r3" else "dog", name="v2", progress=False)
    finally:
        vlmscope.shutdown()


def test_an_export_keeps_the_named_runs_and_diff_reads_them(tmp_path: Path, capsys) -> None:
    from vlmscope.cli import main

    db, folder = tmp_path / "s.duckdb", tmp_path / "pq"
    _store_with_two_runs(db)
    assert main(["export", "--db", str(db), "--format", "parquet", "-o", str(folder)]) == 0
    with open_root(folder) as con:
        assert con.execute("SELECT run_name FROM dataset_runs ORDER BY 1").fetchall() == [
            ("v1",), ("v2",)]
    capsys.readouterr()
    status = main(["diff", "--db", str(db), "--base", "v1", "--candidate", "v2",
                   "--format", "json"])
    from_store = capsys.readouterr().out
    assert main(["diff", "--parquet", str(folder), "--base", "v1", "--candidate", "v2",
                 "--format", "json"]) == status
    assert capsys.readouterr().out == from_store


def test_shards_written_into_a_plain_export_do_not_hide_its_files(tmp_path: Path) -> None:
    db, folder = tmp_path / "s.duckdb", tmp_path / "pq"
    _store_with_two_runs(db)
    from vlmscope.cli import main

    assert main(["export", "--db", str(db), "--format", "parquet", "-o", str(folder)]) == 0
    root = ShardRoot(str(folder))
    exported = root.table_files()
    root.adopt_export()
    root.commit("late", {"eval_runs": root.write_table(
        "eval_runs", pa.table({"run_id": ["x"]}), "late")})
    files = root.table_files()
    assert files["spans"] == exported["spans"]
    assert files["eval_runs"] == sorted([*exported["eval_runs"], "eval_runs/late.parquet"])
