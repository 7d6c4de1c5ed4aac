"""Rows traced in processes forked from a traced one reach the store.

A forked child inherits the span processor with no worker thread and the parent's store
connection; before, every row it traced was lost without a word. Each scenario runs in a
fresh interpreter (forking pytest's own process, with its threads, would test pytest), with
the real ``multiprocessing`` fork start method and the real store.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.helpers import collector, query

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="no fork on Windows")

_ROW = """
def row(row_id):
    with vlmscope.trace_row(row_id, expected="seven", instruction="which digit ?"):
        with vlmscope.llm_span(model="head", provider="local", instruction="which digit ?") as s:
            s.set_output("seven " + row_id)
    return row_id
"""


def _answers(db: Path) -> list[tuple[str, str]]:
    return query(db, "SELECT row_id, output FROM pipeline_rows ORDER BY row_id")


@pytest.mark.parametrize("destination", ["store", "endpoint"])
def test_rows_of_a_forked_pool_killed_at_the_end_reach_the_store(
        tmp_path: Path, destination: str) -> None:
    """``with Pool()`` ends with ``terminate()``: the workers are killed, not exited, so each
    row must be written when it ends. The parent's own rows before and after stay, once.
    The same through ``vlmscope collect`` with the official OTLP exporter."""
    db = tmp_path / "pool.duckdb"
    script = """
        vlmscope.configure(**{sys.argv[2]: sys.argv[1]})
        row("parent-before")
        vlmscope.force_flush()
        with multiprocessing.get_context("fork").Pool(2) as pool:
            assert pool.map(row, [f"child-{i}" for i in range(8)]) is not None
        row("parent-after")
        vlmscope.shutdown()
    """
    if destination == "store":
        _run(script, db, "db")
    else:
        with collector(db) as running:
            _run(script, running.url, "endpoint")
    ids = [f"child-{i}" for i in range(8)] + ["parent-after", "parent-before"]
    assert _answers(db) == [(i, "seven " + i) for i in sorted(ids)]
    assert query(db, "SELECT count(*), count(DISTINCT span_id) FROM spans") == [(20, 20)]
    assert not any((tmp_path / "pool.duckdb.spool").glob("*"))  # all committed


def _run(script: str, destination: Path | str, key: str = "db") -> subprocess.CompletedProcess:
    code = "import os, sys, multiprocessing, vlmscope\n" + _ROW + textwrap.dedent(script)
    return subprocess.run([sys.executable, "-c", code, str(destination), key],
                          capture_output=True, text=True, timeout=180, check=True)


def test_a_bare_forked_child_that_exits_writes_its_row_and_does_not_wait(tmp_path: Path) -> None:
    db = tmp_path / "fork.duckdb"
    done = _run("""
        import time
        vlmscope.configure(db=sys.argv[1])
        row("parent")
        vlmscope.force_flush()
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            row("child")
            sys.exit(0)
        os.waitpid(pid, 0)
        print(time.monotonic() - started)
        vlmscope.shutdown()
    """, db)
    assert float(done.stdout.split()[-1]) < 3.0  # the child did not wait for the held store
    assert _answers(db) == [("child", "seven child"), ("parent", "seven parent")]


def test_a_forked_child_does_not_write_the_parents_waiting_spans_twice(tmp_path: Path) -> None:
    """Spans the parent had not written yet when it forked are the parent's to write: the
    child starts with none of them."""
    db = tmp_path / "waiting.duckdb"
    _run("""
        vlmscope.configure(db=sys.argv[1], schedule_delay_ms=60_000)
        row("before-fork")  # still waiting in the parent's processor
        ctx = multiprocessing.get_context("fork")
        child = ctx.Process(target=row, args=("child",))
        child.start()
        child.join()
        vlmscope.shutdown()
    """, db)
    assert _answers(db) == [("before-fork", "seven before-fork"), ("child", "seven child")]
    assert query(db, "SELECT count(*), count(DISTINCT span_id) FROM spans") == [(4, 4)]


def test_the_parents_store_is_sound_after_many_forked_children(tmp_path: Path) -> None:
    db = tmp_path / "many.duckdb"
    started = time.monotonic()
    _run("""
        vlmscope.configure(db=sys.argv[1])
        ctx = multiprocessing.get_context("fork")
        for round in range(3):
            with ctx.Pool(3) as pool:
                pool.map(row, [f"r{round}-{i}" for i in range(12)])
            row(f"parent-{round}")
        vlmscope.shutdown()
    """, db)
    assert time.monotonic() - started < 120
    rows = _answers(db)
    assert len(rows) == 39 and all(output == "seven " + row_id for row_id, output in rows)
    ((checked,),) = query(db, "SELECT count(*) FROM pragma_storage_info('spans')")
    assert checked > 0
