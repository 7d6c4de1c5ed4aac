"""CaptionHallucination against the original CHAIR and POPE code: the outputs of the papers'
own scripts, run unchanged, on the captions and answers of ``../shared/reference`` (see its
README). ``chair_compatible=True`` must reproduce CHAIR exactly; the default mode may differ
only where a documented deviation says why."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from vlmscope.collectors.schema import migrate
from vlmscope.evaluators import CaptionHallucination, run_evaluations
from vlmscope.evaluators.base import PIPELINE_ROW_SCHEMA

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"

pytestmark = pytest.mark.skipif(
    not (REFERENCE / "chair_reference.jsonl").is_file(),
    reason=f"the CHAIR/POPE reference data is not at {REFERENCE} (a clone needs ../shared "
           "beside it)")


@cache
def chair_rows() -> list[dict[str, Any]]:
    with open(REFERENCE / "chair_reference.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@cache
def pope_rows() -> list[dict[str, Any]]:
    with open(REFERENCE / "pope_reference.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def summary_json(name: str) -> dict[str, Any]:
    return json.loads((REFERENCE / name).read_text(encoding="utf-8"))


def stored_run(evaluator: CaptionHallucination, rows: Sequence[dict[str, Any]]
               ) -> tuple[dict[str, dict], dict[str, Any]]:
    """Run ``evaluator`` over ``rows`` (pipeline_rows columns) stored in a fresh store: the
    metadata by row id and the run summary."""
    con = duckdb.connect()
    migrate(con)
    con.register("rows_arrow", pa.Table.from_pylist(list(rows), schema=PIPELINE_ROW_SCHEMA))
    con.execute("CREATE TABLE rows AS SELECT * FROM rows_arrow")
    run = run_evaluations(con, [evaluator], source="rows")
    metadata = {row_id: json.loads(m) for row_id, m in con.execute(
        "SELECT row_id, metadata FROM evaluations WHERE run_id = ?", [run.run_id]).fetchall()}
    return metadata, run.summaries[evaluator.name]


def caption_rows() -> list[dict[str, Any]]:
    return [{"row_id": r["id"], "trace_id": "t", "span_id": r["id"], "output": r["caption"],
             "objects": r["objects"]} for r in chair_rows()]


@cache
def chair_compatible_run() -> tuple[dict[str, dict], dict[str, Any]]:
    return stored_run(CaptionHallucination(chair_compatible=True), caption_rows())


def test_chair_compatible_mentions_equal_the_reference_on_every_caption() -> None:
    metadata, _ = chair_compatible_run()
    assert len(metadata) == len(chair_rows()) == 926
    wrong = [(r["id"], metadata[r["id"]]["mentions"], r["reference"]["mentions"])
             for r in chair_rows() if metadata[r["id"]]["mentions"] != r["reference"]["mentions"]]
    assert wrong == []


def test_chair_compatible_hallucinated_objects_equal_the_reference_on_every_caption() -> None:
    metadata, _ = chair_compatible_run()
    wrong = [r["id"] for r in chair_rows()
             if metadata[r["id"]]["hallucinated"] != sorted(set(r["reference"]["hallucinated"]))
             or bool(metadata[r["id"]]["hallucinated"]) != bool(r["reference"]["chair_s"])]
    assert wrong == []


def test_chair_compatible_aggregates_equal_the_reference_compute_chair() -> None:
    _, summary = chair_compatible_run()
    reference = summary_json("chair_reference_summary.json")["reference_compute_chair"]
    assert summary["captions"] == 926
    assert summary["mentions"] == reference["mentions"]
    assert summary["hallucinated_mentions"] == reference["hallucinated_mentions"]
    assert summary["chair_i"] == reference["chair_i"]  # the same float division
    assert summary["chair_s"] == reference["chair_s"]
