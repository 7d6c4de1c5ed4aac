"""Evaluators describe themselves: their declared options are their constructors', and an
evaluator added with one registration line shows in `vlmscope eval --list`, runs with its own
flag, is gated on by `--fail-under`, prints its metric and appears in the HTML report."""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import vlmscope
from vlmscope.cli import main
from vlmscope.evaluators import EVALUATORS, Metric, Option, RowEvaluator, register
from vlmscope.evaluators.declaration import REQUIRED
from vlmscope.evaluators.runner import EVALUATORS as RUNNER_EVALUATORS

ANSWERS = ["a cat", "A DOG", "OK", "two birds", "NO CAT HERE", None]


class ShoutedAnswers(RowEvaluator):
    """A toy evaluator, as a user would write one: an answer in capitals fails."""

    name = "shouted_answers"
    description = "answers written in capitals fail"
    required_columns = ("row_id", "trace_id", "span_id", "output")
    options = (Option("min_letters", "int", 3, "letters an answer needs to count as "
                      "shouted", flag="--shout-min-letters", parse=int, metavar="N"),)
    summary_metrics = (Metric("calm_rate", "share of answers not shouted", key="accuracy",
                              gated=True),)
    merged_from = "judged, passed and skipped rows"

    def __init__(self, *, min_letters: int = 3) -> None:
        super().__init__()
        self.min_letters = int(min_letters)

    def config(self) -> dict[str, Any]:
        return {"min_letters": self.min_letters}

    def skip_reason_sql(self) -> str:
        return "CASE WHEN output IS NULL THEN 'no answer' END"

    def judge_sql(self, source: str) -> str:
        shouted = (f"(length(regexp_replace(output, '[^A-Za-z]', '', 'g')) >= "
                   f"{self.min_letters} AND output = upper(output))")
        return (f"SELECT row_id, trace_id, span_id, CASE WHEN {shouted} THEN 0.0 ELSE 1.0 END "
                f"AS score, NOT {shouted} AS passed, CASE WHEN {shouted} THEN 'shouted' ELSE "
                f"'calm' END AS label, '' AS explanation, '{{}}' AS metadata FROM {source} "
                f"WHERE output IS NOT NULL")


@pytest.fixture
def toy() -> Iterator[type[ShoutedAnswers]]:
    register(ShoutedAnswers)  # the one registration line
    try:
        yield ShoutedAnswers
    finally:
        EVALUATORS.pop(ShoutedAnswers.name)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    db = tmp_path / "store.duckdb"
    vlmscope.configure(db=db)
    try:
        for i, answer in enumerate(ANSWERS):
            with vlmscope.trace_row(f"row-{i}", expected="cat", run="toy-run"), \
                    vlmscope.llm_span(model="head", instruction="what is it?") as span:
                if answer is not None:
                    span.set_output(answer)
    finally:
        vlmscope.shutdown()
    return db


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["eval", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_a_registered_toy_evaluator_is_listed_flagged_gated_printed_and_reported(
        store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Before its registration line nothing knows it.
    _, out, _ = run_cli(capsys, "--list")
    assert "shouted_answers" not in out
    status, _, err = run_cli(capsys, "--db", str(store), "--fail-under", "calm_rate=0.5")
    assert status == 2 and "names no metric" in err
    with pytest.raises(SystemExit):
        main(["eval", "--db", str(store), "--shout-min-letters", "2"])
    capsys.readouterr()

    register(ShoutedAnswers)
    try:
        _, out, _ = run_cli(capsys, "--list")
        assert "\nshouted_answers        answers written in capitals fail\n" in out
        assert "option  min_letters: int = 3 [--shout-min-letters]" in out
        assert "metric  calm_rate (gated) - share of answers not shouted" in out

        # "OK" has 2 letters: shouted only with --shout-min-letters 2.
        status, out, _ = run_cli(capsys, "--db", str(store), "--evaluators", "shouted_answers",
                                 "--shout-min-letters", "2", "--fail-under",
                                 "calm_rate=0.5", "--format", "json")
        summary = json.loads(out)
        assert status == 1
        assert summary["calm_rate"] == 2 / 5 and summary["shouted_answers"]["judged"] == 5
        assert summary["thresholds"] == [{"metric": "calm_rate", "threshold": 0.5,
                                          "value": 2 / 5, "passed": False}]
        status, out, _ = run_cli(capsys, "--db", str(store), "--evaluators", "shouted_answers",
                                 "--fail-under", "calm_rate=0.5")
        assert status == 0 and "calm_rate" in out and "0.6000" in out  # "OK" is calm now

        assert main(["report", "--db", str(store), "-o", str(tmp_path / "r.html")]) == 0
        page = (tmp_path / "r.html").read_text()
        section = page[page.index('id="evaluator-metrics"'):]
        section = section[:section.index("</table>")]
        assert "shouted_answers" in section and "calm_rate" in section
        assert "0.600" in section and "share of answers not shouted" in section
    finally:
        EVALUATORS.pop(ShoutedAnswers.name)


def test_a_name_or_a_shared_flag_that_reads_otherwise_cannot_be_registered_twice(toy) -> None:
    class Impostor(ShoutedAnswers):
        pass

    with pytest.raises(ValueError, match="registered already"):
        register(Impostor)

    class ModeClash(ShoutedAnswers):
        name = "mode_clash"
        options = (Option("mode", "int", 1, "a mode", flag="--mode", parse=int),)

    with pytest.raises(ValueError, match="--mode is declared by ground_truth_match"):
        register(ModeClash)
    assert "mode_clash" not in EVALUATORS


@pytest.mark.parametrize("cls", list(RUNNER_EVALUATORS.values()), ids=lambda c: c.name)
def test_declared_options_are_the_constructors_arguments_with_their_defaults(cls) -> None:
    parameters = {name: p for name, p in inspect.signature(cls.__init__).parameters.items()
                  if name != "self"}
    declared = {o.name: o for o in cls.options if o.keyword}
    assert set(declared) == set(parameters)
    for name, option in declared.items():
        default = parameters[name].default
        expected = REQUIRED if default is inspect.Parameter.empty else default
        assert option.default == expected, name
    assert cls.summary_metrics and cls.merged_from and cls.description


@pytest.mark.parametrize("cls", list(RUNNER_EVALUATORS.values()), ids=lambda c: c.name)
def test_every_declared_flag_is_a_flag_of_vlmscope_eval(
        cls, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    text = capsys.readouterr().out
    for option in cls.options:
        if option.flag is not None:
            assert f"{option.flag} " in text or f"{option.flag}\n" in text


def test_the_evaluator_reference_page_lists_every_declared_option_and_metric() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "reference"
            / "evaluators.md").read_text()
    for name, cls in RUNNER_EVALUATORS.items():
        section = page[page.index(f"## `{name}`"):]
        section = section[:section.find("\n## ", 1) if "\n## " in section[1:] else None]
        assert all(f"| `{o.name}` |" in section for o in cls.options), name
        assert all(f"| `{m.name}` |" in section for m in cls.summary_metrics), name


def test_vlmscope_diff_compares_a_registered_evaluators_declared_metrics(
        toy, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import numpy as np

    db = tmp_path / "runs.duckdb"
    answers = {"base": ["a cat", "a cat", "a cat", "a cat"],
               "candidate": ["a cat", "A CAT", "A CAT", "a cat"]}
    vlmscope.configure(db=db)
    try:
        dataset = vlmscope.Dataset.from_records("toy", [
            {"id": f"r{i}", "image": np.full((8, 8, 3), i * 40, np.uint8), "expected": "cat"}
            for i in range(4)]).add_evaluation(ShoutedAnswers())
        for name, said in answers.items():
            dataset.run(lambda row, said=said: said[int(row.id[1:])], name=name,
                        progress=False)
    finally:
        vlmscope.shutdown()
    main(["diff", "--db", str(db), "--base", "base", "--candidate", "candidate",
          "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert report["metrics"] == [{"evaluator": "shouted_answers", "metric": "calm_rate",
                                  "base": 1.0, "candidate": 0.5, "delta": -0.5,
                                  "gated": True}]
    assert [s["evaluator"] for s in report["evaluators"]] == ["shouted_answers"]
    main(["diff", "--db", str(db), "--base", "base", "--candidate", "candidate"])
    assert "shouted_answers  calm_rate  1.0000  0.5000     -0.5000" in capsys.readouterr().out
