"""Nothing handed to the exporter is lost because another process holds the file or the file
is damaged: the spool keeps it, durably, and a writer commits it exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.helpers import PYTHON, query
from vlmscope.cli import main
from vlmscope.collectors.exporter import EXIT_WAIT_ENV
from vlmscope.collectors.spool import Spool

_HOLDER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
con.execute("SELECT count(*) FROM spans").fetchall()
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""

_APP = """
import sys, time, vlmscope
vlmscope.configure(db=sys.argv[1], schedule_delay_ms=20)
rows, prefix = int(sys.argv[2]), sys.argv[3]
for i in range(rows):
    with vlmscope.trace_row(f"{prefix}{i}", expected="cat"):
        with vlmscope.llm_span(model="m", instruction="q") as span:
            span.set_output("cat")
vlmscope.force_flush()
stats = vlmscope.export_stats()
print("flushed", stats.exported_spans, stats.spooled_spans, stats.failed_spans, flush=True)
if len(sys.argv) > 4:
    time.sleep(600)  # to be killed
t = time.monotonic()
vlmscope.shutdown()
print("shutdown", round(time.monotonic() - t, 2), flush=True)
"""


def _new_store(db: Path, rows: int = 1) -> None:
    subprocess.run([PYTHON, "-c", _APP, str(db), str(rows), "seed-"], check=True, timeout=120,
                   capture_output=True)


def _hold(db: Path, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen([PYTHON, "-c", _HOLDER, str(db), str(seconds)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "holding"
    return holder


def _app(db: Path, rows: int, prefix: str, *extra: str,
         env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([PYTHON, "-c", _APP, str(db), str(rows), prefix, *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=None if env is None else {**os.environ, **env})


def _rows(db: Path, prefix: str) -> list[tuple]:
    return query(db, "SELECT count(*), count(DISTINCT row_id), "
                     "count(*) FILTER (WHERE output = 'cat') FROM pipeline_rows "
                     "WHERE starts_with(row_id, ?)", [prefix])


def test_an_app_on_a_held_file_exits_in_time_and_its_spans_are_stored_later(tmp_path):
    db = tmp_path / "held.duckdb"
    _new_store(db)
    holder = _hold(db, 30)
    try:
        app = _app(db, 500, "late-")
        out, err = app.communicate(timeout=90)
        lines = dict(line.split(" ", 1) for line in out.strip().splitlines())
        exported, spooled, failed = map(int, lines["flushed"].split())
        assert (exported, spooled, failed) == (0, 1000, 0), err
        assert float(lines["shutdown"]) < 5 + 2  # the default bound, and some slack
        assert Spool(db).spooled_spans() == 1000
    finally:
        holder.kill()
        holder.wait()
    # The next writer commits the spool, once.
    _new_store(db, 1)
    assert _rows(db, "late-") == [(500, 500, 500)]
    assert query(db, "SELECT count(*) - count(DISTINCT (trace_id, span_id)) FROM spans") == [(0,)]
    assert Spool(db).entries() == []


def test_a_reader_holding_the_file_costs_the_writer_no_span(tmp_path):
    db = tmp_path / "shared.duckdb"
    _new_store(db)
    holder = _hold(db, 4)
    app = _app(db, 3000, "busy-")
    out, err = app.communicate(timeout=120)
    holder.wait(timeout=60)
    assert "shutdown" in out, err
    assert _rows(db, "busy-") == [(3000, 3000, 3000)]
    assert Spool(db).entries() == []


@pytest.mark.slow
def test_a_reader_holding_the_store_for_120_s_costs_an_app_none_of_90000_spans(tmp_path):
    db = tmp_path / "long.duckdb"
    _new_store(db)
    holder = _hold(db, 120)
    app = _app(db, 45_000, "long-")  # a row span and an LLM span each
    out, err = app.communicate(timeout=900)
    lines = dict(line.split(" ", 1) for line in out.strip().splitlines())
    exported, spooled, failed = map(int, lines["flushed"].split())
    assert failed == 0 and exported + spooled == 90_000, err
    assert float(lines["shutdown"]) < 5 + 2
    holder.wait(timeout=300)
    _new_store(db, 1)  # the next writer commits what the app left spooled
    assert _rows(db, "long-") == [(45_000, 45_000, 45_000)]
    assert query(db, "SELECT count(*) - count(DISTINCT (trace_id, span_id)) FROM spans") == [(0,)]
    assert Spool(db).entries() == []


def test_spooled_spans_survive_sigkill_and_are_stored_once(tmp_path):
    db = tmp_path / "killed.duckdb"
    _new_store(db)
    holder = _hold(db, 60)
    try:
        app = _app(db, 300, "killed-", "wait-to-be-killed")
        line = app.stdout.readline()
        assert line.startswith("flushed") and line.split()[2] == "600", line
        app.send_signal(signal.SIGKILL)
        app.wait(timeout=30)
    finally:
        holder.kill()
        holder.wait()
    assert Spool(db).spooled_spans() == 600
    _new_store(db, 1)
    _new_store(db, 1)  # a second writer finds nothing left to commit
    assert _rows(db, "killed-") == [(300, 300, 300)]
    assert query(db, "SELECT count(*) - count(DISTINCT (trace_id, span_id)) FROM spans") == [(0,)]


def test_a_truncated_store_is_never_written_and_the_app_keeps_working(tmp_path, capsys):
    db = tmp_path / "truncated.duckdb"
    _new_store(db, 3000)
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2])
    damaged = db.read_bytes()
    # No waiting for a damaged file, without a clock: shutdown would wait up to 600 s for a
    # store it took for held, far past communicate's 120.
    app = _app(db, 200, "after-", env={EXIT_WAIT_ENV: "600"})
    out, err = app.communicate(timeout=120)
    assert "shutdown" in out, err
    exported, spooled, failed = map(int, out.splitlines()[0].split()[1:])
    assert (exported, spooled, failed) == (0, 400, 0)
    assert err.count("is damaged") == 1 and "mv " in err
    assert db.read_bytes() == damaged
    for command in (["sql", "--db", str(db), "SELECT 1"],
                    ["diff", "--db", str(db), "--base", "a", "--candidate", "b"],
                    ["report", "--db", str(db), "-o", str(tmp_path / "r.html")],
                    ["eval", "--db", str(db)]):
        assert main(command) == 2, command
        message = capsys.readouterr().err.strip().splitlines()[-1]
        assert message.startswith("error:") and "damaged" in message, (command, message)
    # Recovery as the warning says: move it aside, and the spool lands in a new store.
    db.rename(db.with_name("truncated.duckdb.damaged"))
    _new_store(db, 1)
    assert _rows(db, "after-") == [(200, 200, 200)]


@pytest.mark.parametrize("content", [None, b"", b"name,value\n1,2\n" * 10000, "duckdb"])
def test_every_command_says_error_on_a_missing_empty_or_foreign_file(tmp_path, capsys,
                                                                    content):
    db = tmp_path / "odd.duckdb"
    if content == "duckdb":
        import duckdb
        duckdb.connect(str(db)).execute("CREATE TABLE t (a INT)").close()
    elif content is not None:
        db.write_bytes(content)
    for command in (["sql", "--db", str(db), "SELECT 1"],
                    ["diff", "--db", str(db), "--base", "a", "--candidate", "b"],
                    ["report", "--db", str(db), "-o", str(tmp_path / "r.html")],
                    ["eval", "--db", str(db)],
                    ["export", "--db", str(db), "-o", str(tmp_path / "x.jsonl")]):
        assert main(command) == 2, command
        printed = capsys.readouterr().err
        assert "Traceback" not in printed, (command, printed)
        assert printed.strip().splitlines()[-1].startswith("error:"), (command, printed)
