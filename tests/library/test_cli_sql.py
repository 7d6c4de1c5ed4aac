"""`vlmscope sql`: formats, read-only enforcement, clear errors."""

from __future__ import annotations

import csv
import io
import json

import pytest

import vlmscope
from vlmscope.cli import main


@pytest.fixture
def store(traced):
    for i, cohort in enumerate(["day", "day", "night"]):
        with vlmscope.trace_row(f"r{i}", cohort=cohort, expected="cat", objects=["cat"]):
            with vlmscope.llm_span(model="m", instruction="what is it?") as span:
                span.set_output("cat, 'quoted'", input_tokens=3, output_tokens=i)
    vlmscope.shutdown()
    return str(traced)


QUERY = "SELECT row_id, cohort, objects, output, output_tokens FROM pipeline_rows ORDER BY 1"


def test_json_output_is_a_list_of_objects(store, capsys):
    assert main(["sql", "--db", store, "--format", "json", QUERY]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[2] == {"row_id": "r2", "cohort": "night", "objects": ["cat"],
                       "output": "cat, 'quoted'", "output_tokens": 2}


def test_csv_output_round_trips_through_the_csv_module(store, capsys):
    assert main(["sql", "--db", store, "--format", "csv", QUERY]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["row_id", "cohort", "objects", "output", "output_tokens"]
    assert rows[1] == ["r0", "day", '["cat"]', "cat, 'quoted'", "0"]


def test_table_output_aligns_columns_and_counts_rows(store, capsys):
    assert main(["sql", "--db", store, "SELECT cohort, count(*) AS n FROM pipeline_rows "
                                       "GROUP BY 1 ORDER BY 1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["cohort", "n"]
    assert lines[2].split() == ["day", "2"] and lines[-1] == "(2 rows)"


@pytest.mark.parametrize("statement", [
    "DELETE FROM spans", "DROP TABLE spans", "INSERT INTO spans SELECT * FROM spans",
    "COPY spans TO 'x.csv'", "ATTACH 'other.duckdb'", "SELECT 1; DELETE FROM spans",
])
def test_writes_are_rejected_and_the_store_is_unchanged(store, capsys, statement):
    assert main(["sql", "--db", store, statement]) == 2
    assert "error:" in capsys.readouterr().err
    assert main(["sql", "--db", store, "--format", "json",
                 "SELECT count(*) AS n FROM spans"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"n": 6}]


def test_a_missing_store_and_a_bad_query_are_clear_errors(store, tmp_path, capsys):
    assert main(["sql", "--db", str(tmp_path / "nope.duckdb"), "SELECT 1"]) == 2
    assert "no vlmscope store at" in capsys.readouterr().err
    assert main(["sql", "--db", store, "SELECT nope FROM pipeline_rows"]) == 2
    assert "query failed" in capsys.readouterr().err


def test_a_reader_that_stops_early_gets_no_traceback(store):
    """`vlmscope sql ... | head`: the pipe closes after the first line and the CLI stops
    quietly (status 141, as a tool killed by SIGPIPE reports), with nothing on stderr."""
    import subprocess

    from tests.helpers import PYTHON

    query = "SELECT range AS n, repeat('x', 100) AS pad FROM range(200000)"
    app = subprocess.Popen([PYTHON, "-m", "vlmscope", "sql", "--db", store, "--format", "csv",
                            query], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert app.stdout.readline().startswith(b"n,pad")
    app.stdout.close()  # as head does once it has its lines
    err = app.stderr.read().decode()
    assert app.wait(timeout=120) == 141, err
    assert err == ""
