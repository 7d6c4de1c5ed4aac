"""The generated reference pages in docs/reference/ are what the code says today."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.helpers import PYTHON

ROOT = Path(__file__).resolve().parents[2]


def test_the_reference_pages_are_up_to_date():
    result = subprocess.run([PYTHON, str(ROOT / "scripts" / "gen_reference.py"), "--check"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_every_attribute_constant_is_in_the_attribute_reference():
    from vlmscope import conventions

    page = (ROOT / "docs" / "reference" / "attributes.md").read_text()
    names = [n for n in vars(conventions) if n.isupper() and not n.startswith("_")]
    assert names and all(f"| `{name}` |" in page for name in names)
