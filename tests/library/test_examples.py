"""Every example in examples/ runs offline, in the suite, so none rots (training_loop.py runs
in tests/library/test_training_run.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import query

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(script: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, str(EXAMPLES / script), *args],
                            capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr[-2000:]
    return result


def test_the_resnet_and_captioner_example_traces_four_rows(tmp_path):
    pytest.importorskip("transformers")
    db = tmp_path / "a.duckdb"
    _run("instrument_resnet_captioner.py", str(db))
    rows = query(db, "SELECT count(*), count(DISTINCT image_sha256), min(len(top_k_labels)), "
                     "min(output_tokens), any_value(llm_model) FROM pipeline_rows")
    assert rows[0][:4] == (4, 4, 5, 5)


def test_the_hosted_llm_example_records_model_tokens_and_the_encoder_link(tmp_path):
    db = tmp_path / "b.duckdb"
    _run("hosted_llm_span.py", str(db))
    rows = query(db, "SELECT row_id, llm_model, output, input_tokens, output_tokens, "
                     "encoder_span_id IS NOT NULL FROM pipeline_rows ORDER BY row_id")
    assert rows == [("photo-1", "gpt-4o-mini", "It looks like a tabby cat.", 10, 6, True),
                    ("photo-2", "gpt-4o-mini", "It looks like a golden retriever.", 10, 6,
                     True)]


def test_the_regression_gate_example_fails_the_undertrained_candidate(tmp_path):
    pytest.importorskip("sklearn")
    result = _run("regression_gate.py", str(tmp_path / "c.duckdb"), check=False)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "regression, do not ship" in result.stdout


def test_the_sql_recipes_run_on_a_scored_store(tmp_path):
    db = tmp_path / "d.duckdb"
    _run("hosted_llm_span.py", str(db))
    scored = subprocess.run([sys.executable, "-m", "vlmscope", "eval", "--db", str(db),
                             "--evaluators", "failure_attribution,caption_hallucination"],
                            capture_output=True, text=True, timeout=120)
    assert scored.returncode == 0, scored.stderr
    out = _run("sql_recipes.py", str(db)).stdout
    for title in ("worst classes", "encoder right, head wrong", "latency by checkpoint",
                  "hallucinated objects by frequency"):
        assert f"-- {title}" in out
    assert "tabby cat" in out  # the worst-classes recipe lists the classes
