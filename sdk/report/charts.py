"""Charts for the HTML report, drawn by matplotlib as inline SVG (no network, no JavaScript)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from vlmscope._optional import require

_COLORS = {"encoder": "#d62728", "language_head": "#1f77b4", "both": "#9467bd",
           "unattributable": "#7f7f7f", "correct": "#2ca02c"}


def _pyplot() -> Any:
    matplotlib = require("matplotlib", "vlmscope report")
    matplotlib.use("Agg")
    matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: smaller, selectable
    matplotlib.rcParams["font.size"] = 9
    return require("matplotlib.pyplot", "vlmscope report")


def _svg(figure: Any) -> str:
    plt = _pyplot()
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog: the SVG sits inside HTML


def confusion_heatmap(labels: Sequence[str], counts: Sequence[Sequence[int]],
                      title: str) -> str:
    """Row-normalised confusion matrix (rows: expected, columns: predicted), counts in cells."""
    plt = _pyplot()
    size = max(3.0, 0.42 * len(labels) + 1.5)
    figure, axes = plt.subplots(figsize=(size, size * 0.9))
    shares = [[c / max(1, sum(row)) for c in row] for row in counts]
    axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(range(len(labels)), labels, rotation=60, ha="right")
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted (encoder top-1)")
    axes.set_ylabel("expected")
    axes.set_title(title)
    for i, row in enumerate(counts):
        for j, value in enumerate(row):
            if value:
                axes.text(j, i, str(value), ha="center", va="center", fontsize=7,
                          color="white" if shares[i][j] > 0.6 else "black")
    return _svg(figure)


def precision_recall_bars(labels: Sequence[str], precision: Sequence[float],
                          recall: Sequence[float], title: str) -> str:
    """Per-class precision and recall, side by side."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(max(4.0, 0.5 * len(labels) + 1.5), 2.6))
    xs = range(len(labels))
    axes.bar([x - 0.2 for x in xs], precision, width=0.4, label="precision", color="#1f77b4")
    axes.bar([x + 0.2 for x in xs], recall, width=0.4, label="recall", color="#ff7f0e")
    axes.set_xticks(list(xs), labels, rotation=60, ha="right")
    axes.set_ylim(0, 1.05)
    axes.set_title(title)
    axes.legend(loc="lower right", fontsize=7)
    return _svg(figure)


def reliability_diagram(confidence: Sequence[float | None], accuracy: Sequence[float | None],
                        rows: Sequence[int], title: str) -> str:
    """Accuracy per equal-width confidence bin (bars), and accuracy at each bin's mean
    confidence (points); the diagonal is perfect calibration."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(3.2, 3.0))
    bins = len(rows)
    centres = [(i + 0.5) / bins for i in range(bins)]
    heights = [a if a is not None else 0.0 for a in accuracy]
    axes.bar(centres, heights, width=1 / bins, edgecolor="#333", color="#8fbce6",
             label="accuracy")
    points = [(c, a) for c, a, n in zip(confidence, accuracy, rows, strict=True)
              if n and c is not None and a is not None]
    if points:
        axes.plot([c for c, _ in points], [a for _, a in points], "o-", color="#d62728",
                  markersize=3, linewidth=1, label="accuracy at mean confidence")
    axes.plot([0, 1], [0, 1], "--", color="#555", linewidth=1)
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_xlabel("confidence (encoder top-1 score)")
    axes.set_ylabel("accuracy")
    axes.set_title(title)
    axes.legend(loc="upper left", fontsize=7)
    return _svg(figure)


def blame_bars(groups: Sequence[str], shares: dict[str, Sequence[float]], title: str) -> str:
    """Stacked shares of failing rows blamed on each side, one bar per group."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(max(4.0, 1.1 * len(groups) + 2), 2.8))
    bottom = [0.0] * len(groups)
    for label, values in shares.items():
        axes.bar(groups, values, bottom=bottom, label=label, color=_COLORS.get(label, "#bbb"))
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    axes.set_ylim(0, 1.05)
    axes.set_ylabel("share of failing rows")
    axes.set_title(title)
    axes.tick_params(axis="x", labelrotation=20)
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1, 1))
    return _svg(figure)
