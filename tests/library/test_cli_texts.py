"""What the CLI prints tells the truth: every --help renders, cut lists say they are cut,
and the top-k metric is named for the k the encoder recorded."""

from __future__ import annotations

import pytest

from vlmscope.cli import build_parser, main
from vlmscope.cli.eval import _WORST_CLASSES, render_summary

COMMANDS = sorted(build_parser()._subparsers._group_actions[0].choices)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_help_text_renders(command, capsys):
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: vlmscope " + command) and "%%" not in text


def _summary(classes: int, k: int, recorded: int) -> dict:
    per_class = {f"c{i}": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 1,
                           "predicted": 1} for i in range(classes)}
    return {"run_id": "r", "rows": classes, "skipped": 0, "top1": 0.5, "top5": 0.75,
            "macro_f1": 0.5, "k": k, "top_k_recorded": recorded,
            "top_k_metric": f"top{min(k, recorded)}",
            "averages": {mode: {"precision": 0.5, "recall": 0.5, "f1": 0.5}
                         for mode in ("macro", "micro", "weighted")},
            "per_class": per_class, "confusion": [], "ece": None}


def test_a_cut_class_list_says_so_and_a_whole_one_does_not():
    assert f"({_WORST_CLASSES} of 25 shown, truncated)" in render_summary(_summary(25, 5, 5))
    assert "(all 4)" in render_summary(_summary(4, 5, 5))


def test_the_top_k_metric_is_named_for_the_k_recorded():
    three = render_summary(_summary(4, 5, 3))
    assert "top3 (gated as top5)" in three and "\ntop5 " not in three
    assert "\ntop5 " in render_summary(_summary(4, 5, 5))
