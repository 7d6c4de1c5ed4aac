"""Every example in README.md and docs/ runs, against a store this test builds.

The fenced blocks are read from the documents themselves:

* ```` ```python ```` blocks run each in a fresh interpreter, in a folder holding a copy of the
  demo store as ``vlmscope.duckdb``, with only the user's own objects defined
  (``tests/docs_stand_ins.py``: their encoder, class names, LLM client, pipeline); a block that
  forgets an import or names anything else fails.
* ```` ```sql ```` blocks run statement by statement on the demo store and must return rows.
* every ``vlmscope ...`` command of a ```` ```bash ```` block runs as a user types it, in that
  folder (``vlmscope.duckdb`` and ``traces.duckdb`` are copies of the demo store; the export
  of one command is what the next reads); ``vlmscope collect`` starts a real collector the
  block's other commands talk to. A command fails the test when it exits 2 or raises, exits 1
  where the text does not say it gates, or prints an empty result (``(0 rows)``, ``0 rows
  scored``) where the text promises rows.

The only commands not run are the two of the README that build this very store and run this
very suite (:data:`NOT_RUN`). The demo store is the small demo (``tests/conftest.py``).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("torchvision")
pytest.importorskip("transformers")
pytest.importorskip("sklearn")

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
RUN_LANGUAGES = {"python", "bash", "sql"}
"""Fenced blocks in these languages are examples; other fences (diagrams, text) are not."""

NOT_RUN = {
    "python3 scripts/run.py demo": "builds the demo store this test runs everything against",
    "python3 scripts/run.py test": "runs this suite",
}
"""Lines of bash blocks that are not ``vlmscope`` commands and why they are not run here."""

GATES = ("--fail-under", "--max-drop", "diff ")
"""A command carrying one of these may exit 1 (a failed gate); any other must exit 0."""

DEFAULT_PORTS = ("127.0.0.1:4318", "localhost:6006")
"""Endpoints the examples name: they point at the collector the block started, or else at
:func:`receiver`."""


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    language: str
    text: str

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks() -> list[Block]:
    """Every fenced example block of the documents, in order."""
    found = []
    for path in DOCUMENTS:
        lines = path.read_text(encoding="utf-8").splitlines()
        i = 0
        while i < len(lines):
            match = re.match(r"^```(\w*)\s*$", lines[i])
            if not match:
                i += 1
                continue
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            if match.group(1) in RUN_LANGUAGES:
                found.append(Block(path, i + 1, match.group(1), "\n".join(lines[i + 1:end])))
            i = end + 1
    return found


def commands(block: Block) -> list[str]:
    """The ``vlmscope ...`` command lines of a bash block (continuations joined)."""
    joined, current = [], ""
    for line in block.text.splitlines():
        current += line.rstrip()[:-1] + " " if line.rstrip().endswith("\\") else line
        if not line.rstrip().endswith("\\"):
            joined.append(current.strip())
            current = ""
    out = []
    for line in joined:
        if not line or line.startswith("#"):
            continue
        if line.startswith("vlmscope "):
            out.append(line)
        elif line.startswith("export "):
            continue  # an environment variable for the user's agents, shown beside commands
        else:
            assert any(line.startswith(known) for known in NOT_RUN), (
                f"{block.id}: {line!r} is neither a vlmscope command nor a known exception")
    return out


BLOCKS = blocks()


def test_the_documents_have_examples_of_every_kind():
    languages = {b.language for b in BLOCKS}
    assert languages == RUN_LANGUAGES
    assert len([c for b in BLOCKS if b.language == "bash" for c in commands(b)]) >= 20


@pytest.fixture(scope="module")
def workspace(demo_store, tmp_path_factory):
    """A folder as a user has it after ``vlmscope demo``: the store under the names the
    examples use, and a folder of images with a labels file."""
    from tests.docs_stand_ins import write_image_folder

    folder = tmp_path_factory.mktemp("docs")
    db, _, _ = demo_store
    for name in ("vlmscope.duckdb", "traces.duckdb"):
        shutil.copyfile(db, folder / name)
    write_image_folder(folder)
    (folder / "my-objects.txt").write_text("cat\ndog\nfox\nsofa\n")
    return folder


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "tests"), *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_VERBOSITY", "error")
    return env


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.language == "python"],
                         ids=lambda b: b.id)
def test_every_python_example_runs(block, workspace):
    if "distributed" in block.text:
        pytest.importorskip("ray")
    code = "from docs_stand_ins import *\n" + block.text
    result = subprocess.run([sys.executable, "-c", code], cwd=workspace, env=_environment(),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{block.id}\n{result.stderr[-3000:]}"


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.language == "sql"],
                         ids=lambda b: b.id)
def test_every_sql_example_returns_rows(block, demo_store):
    from vlmscope.collectors.store import read_connection

    statements = [s.strip() for s in block.text.split(";") if _code(s)]
    assert statements
    with read_connection(demo_store[0]) as con:
        # A query with ``$row_id`` is asked about a row that failed (what the text says it
        # is for).
        ((failing,),) = con.execute(
            "SELECT min(row_id) FROM evaluations WHERE NOT passed").fetchall()
        for statement in statements:
            params = {"row_id": failing} if "$row_id" in statement else None
            rows = con.execute(statement, params).fetchall()
            assert rows, f"{block.id}: no rows from\n{statement}"


def _code(sql: str) -> str:
    return "\n".join(x for x in sql.splitlines() if not x.strip().startswith("--")).strip()


def _promises_rows_but_is_empty(output: str) -> str | None:
    for pattern in (r"^\((0) rows\)", r"\b(0) rows scored\b"):
        found = re.search(pattern, output, re.MULTILINE)
        if found:
            return found.group(0)
    return None


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.language == "bash"],
                         ids=lambda b: b.id)
def test_every_command_runs_and_finds_rows(block, workspace, request):
    from tests.helpers import Collector

    lines = commands(block)
    if not lines:
        pytest.skip(f"{block.id} holds only {', '.join(NOT_RUN)}")
    if any("--engine ray" in line for line in lines):
        pytest.importorskip("ray")
    collector = None
    try:
        for line in lines:
            argv = shlex.split(line, comments=True)[1:]
            if argv[0] == "collect":
                db = workspace / argv[argv.index("--db") + 1]
                rest = [a for i, a in enumerate(argv[1:], 1)
                        if a != "--db" and argv[i - 1] != "--db"]
                collector = Collector(db, *rest)
                continue
            if any(endpoint in line for endpoint in DEFAULT_PORTS):
                target = collector or request.getfixturevalue("receiver")
                argv = [_at_collector(a, target.port) for a in argv]
            result = subprocess.run([sys.executable, "-m", "vlmscope", *argv], cwd=workspace,
                                    env=_environment(), capture_output=True, text=True,
                                    timeout=600)
            output = result.stdout + result.stderr
            allowed = (0, 1) if any(g in line + " " for g in GATES) else (0,)
            assert result.returncode in allowed, (
                f"{block.id}: `{line}` exited {result.returncode}\n{output[-3000:]}")
            empty = _promises_rows_but_is_empty(output)
            assert empty is None, f"{block.id}: `{line}` printed {empty!r}\n{output[-2000:]}"
    finally:
        if collector is not None:
            collector.stop()


@pytest.fixture(scope="module")
def receiver(workspace):
    """A real OTLP/HTTP receiver (``vlmscope collect`` on its own store) standing in for the
    backend an example sends to (Phoenix at localhost:6006)."""
    from tests.helpers import Collector

    collector = Collector(workspace / "received.duckdb")
    yield collector
    collector.stop()


def _at_collector(argument: str, port: int) -> str:
    for endpoint in DEFAULT_PORTS:
        argument = argument.replace(endpoint, f"127.0.0.1:{port}")
    return argument


def test_every_link_of_the_documents_points_to_a_file_in_the_repository():
    broken = []
    for path in DOCUMENTS:
        text = path.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"^[a-z]+://", target) or target.startswith("#"):
                continue
            resolved = (path.parent / target.split("#")[0]).resolve()
            if not resolved.is_relative_to(ROOT) or not resolved.exists():
                broken.append(f"{path.relative_to(ROOT)}: {target}")
        for outside in re.findall(r"\.\./shared\b|/work/\S+", text):
            broken.append(f"{path.relative_to(ROOT)}: names {outside}")
    assert broken == []
