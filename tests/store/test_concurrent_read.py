"""One process writes traces while another runs `vlmscope sql` on the same file."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import PYTHON, query

_WRITER = """
import os, sys, time, vlmscope
vlmscope.configure(db=sys.argv[1], schedule_delay_ms=50)
deadline = time.monotonic() + 120  # a bound, should the test die
rows = 0
while not os.path.exists(sys.argv[2]) and time.monotonic() < deadline:
    with vlmscope.trace_row(f"r{rows}", expected="cat"):
        with vlmscope.llm_span(model="m", instruction="q") as span:
            span.set_output("cat")
    rows += 1
    time.sleep(0.001)
vlmscope.shutdown()
stats = vlmscope.export_stats()
print(rows, stats.exported_spans, stats.failed_spans, stats.dropped_spans)
"""


def _vlmscope(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vlmscope", *args], capture_output=True,
                          text=True, timeout=60)


def test_vlmscope_sql_works_while_another_process_is_writing(tmp_path: Path):
    db, stop = tmp_path / "live.duckdb", tmp_path / "stop"
    writer = subprocess.Popen([PYTHON, "-c", _WRITER, str(db), str(stop)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not db.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        counts = []
        while len(counts) < 4:
            result = _vlmscope("sql", "--db", str(db), "--format", "json",
                               "SELECT count(*) AS n FROM pipeline_rows")
            assert result.returncode == 0, result.stderr
            counts.append(json.loads(result.stdout)[0]["n"])
            assert writer.poll() is None, "the writer stopped while being read"
            time.sleep(0.3)
        stop.touch()
        out, err = writer.communicate(timeout=60)
    finally:
        if writer.poll() is None:
            writer.kill()
    rows, exported, failed, dropped = map(int, out.split())
    assert (failed, dropped) == (0, 0), err
    assert exported == 2 * rows
    assert counts == sorted(counts) and counts[-1] > counts[0]
    assert query(db, "SELECT count(*) FROM pipeline_rows") == [(rows,)]


_EXITS_WITHOUT_SHUTDOWN = """
import sys, vlmscope
vlmscope.configure(db=sys.argv[1], schedule_delay_ms=60_000)  # nothing would flush in time
with vlmscope.trace_row("last-words", expected="cat"):
    pass
"""


def test_spans_are_flushed_at_interpreter_exit(tmp_path: Path):
    db = tmp_path / "exit.duckdb"
    subprocess.run([PYTHON, "-c", _EXITS_WITHOUT_SHUTDOWN, str(db)], check=True, timeout=120)
    assert query(db, "SELECT row_id, expected FROM pipeline_rows") == [("last-words", "cat")]
