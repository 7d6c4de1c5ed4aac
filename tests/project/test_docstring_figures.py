"""Docstrings and comments say why; measured figures live in ``benchmarks/README.md`` with
the command that produced them, where they can be rerun instead of rotting in the code."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

from tests.helpers import parse_python

ROOT = Path(__file__).resolve().parents[2]

# A measured duration or rate: "3.1 ms", "27.5-34.1 us", "77k spans/s", "1.7x faster".
FIGURE = re.compile(
    r"\d[\d,.]*\s*(?:[-–]\s*\d[\d,.]*\s*)?(?:µs|us|ns|ms)\b"
    r"|\d[\d,.]*\s*k?\s*(?:spans|rows|requests)\s*(?:/s|a second|per second)"
    r"|\d[\d,.]*\s*(?:x|×|times)\s*(?:faster|slower)",
    re.IGNORECASE)


def _texts(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every docstring, attribute docstring and comment in ``path``."""
    source = path.read_text(encoding="utf-8")
    found = []
    for node in ast.walk(parse_python(source)):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) \
                and isinstance(node.value.value, str):
            found.append((node.lineno, node.value.value))
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            found.append((token.start[0], token.string))
    return found


def test_no_docstring_or_comment_carries_a_measured_figure() -> None:
    offenders = []
    for path in sorted((ROOT / "collectors").glob("*.c")):
        for comment in re.finditer(r"/\*.*?\*/", path.read_text(encoding="utf-8"), re.S):
            offenders += [f"{path.relative_to(ROOT)}: {match.group(0)!r}"
                          for match in FIGURE.finditer(comment.group(0))]
    for folder in ("collectors", "sdk", "evaluators"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.name == "migrations.py":  # frozen SQL text, no prose
                continue
            for line, text in _texts(path):
                offenders += [f"{path.relative_to(ROOT)}:{line}: {match.group(0)!r}"
                              for match in FIGURE.finditer(text)]
    assert offenders == []


def test_the_check_finds_a_figure_in_a_docstring_and_in_a_comment(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text('"""Fast: 3.1-4.9 ms a request."""\n# 77,000 spans/s before\nx = 1\n')
    hits = [m.group(0) for _, text in _texts(module) for m in FIGURE.finditer(text)]
    assert hits == ["3.1-4.9 ms", "77,000 spans/s"]
