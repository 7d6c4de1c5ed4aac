"""Rows and evaluators for the merge tests (test_eval_merge_parts.py, test_ray.py): random
pipeline rows with every kind of instruction and answer, the evaluators with their options,
and the same rows traced with the SDK and exported as Parquet."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from tests.hallucination_corpus import USER_VOCABULARY
from tests.hallucination_corpus import random_rows as caption_rows
from vlmscope.evaluators import (
    CustomEvaluation,
    Evaluator,
    ImageInstructionAdherence,
    MultiLabelReport,
)
from vlmscope.evaluators.base import PIPELINE_ROW_SCHEMA

INSTRUCTIONS = [
    "How many dogs are there?", "Answer in one word: what animal is this?",
    "List the objects in JSON.", "Is there a cat? Answer yes or no.",
    "How many cats? Answer with a number.", "Describe the image in at most 5 words.",
    "Which object is on the left?", "Tell me about the picture.", "Hello there",
]
OUTPUTS = ["2", "two dogs", "dog", "yes", "No.", '["dog", "cat"]', "I'm sorry, I cannot help",
           "", "a dog and a cat on a sofa", "cat, dog and a bicycle", "3.5", "Yes there is"]


def judge(image: Any, instruction: str, answer: str | None) -> tuple[float, str]:
    """A deterministic stand-in for an LLM judge (no model runs here): the score is a
    function of the answer's length, with fractions whose float sum depends on order."""
    return (len(answer or "") % 7) / 7, "by length"


def length_score(row: dict) -> float | None:
    """A Python custom rule: irregular scores in [0, 1], none for an empty answer."""
    return (len(row["output"]) * 0.37) % 1 if row["output"] else None


def merged_evaluators(variant: int = 0) -> list[Evaluator]:
    """One of each (a run keys summaries by evaluator name), in two sets of options."""
    if variant == 0:
        return [ImageInstructionAdherence(["coco", USER_VOCABULARY], judge=judge),
                MultiLabelReport(),
                CustomEvaluation("tenth", sql="length(output) / 10.0", threshold=0.3),
                CustomEvaluation("by_length", fn=length_score)]
    return [ImageInstructionAdherence(["coco"], encoder_threshold=0.3),
            MultiLabelReport(encoder_threshold=0.3,
                             classes=["dog", "cat", "person", "bicycle", "flan", "car"]),
            CustomEvaluation("tenth", sql="length(output) / 10.0", threshold=0.3),
            CustomEvaluation("by_length", fn=length_score)]


def random_rows(seed: int, count: int) -> pa.Table:
    """Caption rows (objects, encoder top-k, captions, object probes) with instructions of
    every kind and answers of every form mixed in, multi-label and single-label encoders."""
    rng = random.Random(seed)
    rows = caption_rows(seed, count)
    for row in rows:
        if rng.random() < 0.5:
            row["instruction"] = rng.choice(INSTRUCTIONS)
            row["output"] = rng.choice(OUTPUTS)
        row["encoder_multi_label"] = rng.random() < 0.5
        if row["top_k_scores"] is not None and rng.random() < 0.5:
            # Ties across rows: average precision groups equal scores.
            row["top_k_scores"] = [None if s is None else round(s, 1)
                                   for s in row["top_k_scores"]]
    return pa.Table.from_pylist(rows, schema=PIPELINE_ROW_SCHEMA)


def traced_export(tmp_path: Path, table: pa.Table, services: int) -> Path:
    """The rows of ``table`` traced with the SDK (row, encoder and LLM spans) into one DuckDB
    file, a share under each of ``services`` service names, and exported as Parquet: one
    ``date=/service=`` partition per service."""
    import vlmscope
    from vlmscope.collectors.parquet import export_parquet

    db = tmp_path / "store.duckdb"
    rows = table.to_pylist()
    for k in range(services):
        vlmscope.configure(db=db, service_name=f"service-{k}")
        try:
            for row in rows[k::services]:
                with vlmscope.trace_row(row["row_id"], objects=row["objects"],
                                        instruction=row["instruction"], run="run"):
                    if row["top_k_labels"] is not None:
                        with vlmscope.encoder_span(
                                "tagger", multi_label=row["encoder_multi_label"]) as encoder:
                            encoder.record(
                                top_k_labels=[row["top_k_labels"]],
                                top_k_scores=[[s or 0.0 for s in row["top_k_scores"]]])
                    with vlmscope.llm_span(model="head",
                                           instruction=row["instruction"]) as span:
                        span.set_output(row["output"])
        finally:
            vlmscope.shutdown()
    con = duckdb.connect(str(db))
    try:
        export_parquet(con, tmp_path / "export")
    finally:
        con.close()
    return tmp_path / "export"
