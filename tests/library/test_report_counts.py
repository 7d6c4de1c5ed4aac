"""The report counts each row once, however many times `vlmscope eval` judged its run."""

from __future__ import annotations

import re
from pathlib import Path

import vlmscope
from tests.digits import TRAIN_ROWS, digit_model, digit_pipeline, digits_dataset
from tests.helpers import query
from vlmscope.cli import main


def test_the_report_reads_the_latest_evaluation_after_repeated_evals(tmp_path: Path,
                                                                      capsys) -> None:
    db = tmp_path / "evals.duckdb"
    vlmscope.configure(db=db)
    try:
        digits_dataset("held-out", stop=TRAIN_ROWS + 60).run(
            digit_pipeline(digit_model(0)), name="early", batch_size=30, progress=False)
    finally:
        vlmscope.shutdown()
    for _ in range(3):
        assert main(["eval", "--db", str(db), "--run", "early", "--evaluators",
                     "ground_truth_match"]) == 0
    capsys.readouterr()
    ((judgements,),) = query(db, "SELECT count(*) FROM evaluations "
                                 "WHERE evaluator = 'ground_truth_match'")
    assert judgements == 4 * 60  # the run's own evaluation and three more
    ((failing,),) = query(db, "SELECT count(*) FROM pipeline_rows WHERE output <> expected")
    out = tmp_path / "report.html"
    assert main(["report", "--db", str(db), "-o", str(out)]) == 0
    html = out.read_text()
    summary = re.search(r'<td>early</td><td>[^<]*</td><td><span class="num">(\d+)</span>',
                        html)
    assert summary and int(summary.group(1)) == 60
    assert f"Every failing row ({failing})" in html
    # One ground_truth_match verdict per failing row in its verdict table.
    verdicts = html[html.index('<section id="failures">'):]
    assert verdicts.count(">ground_truth_match<") == failing
