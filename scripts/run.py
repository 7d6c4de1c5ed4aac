#!/usr/bin/env python3
"""The project's two commands, for a fresh machine with only Python 3.11 and pip.

    python3 scripts/run.py demo [ARGS...]   # the main job: `vlmscope demo` on vlmscope.duckdb
    python3 scripts/run.py test [ARGS...]   # the test suite (pytest)

Each creates the virtual environment ``.venv`` beside this repository on first use (or
reuses it), installs vlmscope with the extras it needs, and reinstalls when pyproject.toml
changes. Set VLMSCOPE_VENV to use another folder.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("VLMSCOPE_VENV", ROOT / ".venv"))
EXTRAS = {"demo": "all", "test": "all,dev"}


def _python() -> Path:
    return VENV / "bin" / "python"


def ensure_environment(extras: str) -> Path:
    """Create or reuse the venv and install vlmscope[extras] when anything changed."""
    if not _python().exists():
        print(f"creating virtual environment {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
        subprocess.run([str(_python()), "-m", "pip", "install", "-q", "--upgrade", "pip"],
                       check=True)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode())
    stamp = VENV / f".vlmscope-installed-{extras.replace(',', '-')}"
    if not stamp.exists() or stamp.read_text() != digest.hexdigest():
        print(f"installing vlmscope[{extras}] into {VENV} (first time: a few minutes)",
              flush=True)
        subprocess.run([str(_python()), "-m", "pip", "install", "-q", "-e",
                        f"{ROOT}[{extras}]"], check=True)
        stamp.write_text(digest.hexdigest())
    return _python()


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in EXTRAS:
        print(__doc__, file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    python = ensure_environment(EXTRAS[command])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    if command == "demo":
        args = [str(python), "-m", "vlmscope", "demo", *rest]
    else:
        args = [str(python), "-m", "pytest", *rest]
    return subprocess.run(args, cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
