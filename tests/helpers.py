"""Helpers shared by test modules (fixtures live in ``conftest.py``; plain functions here)."""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
"""The repository's root."""


def pyproject() -> dict:
    """``pyproject.toml``, parsed."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def package_modules() -> dict[str, Path]:
    """Every module of the distribution, by dotted name, from ``pyproject.toml``'s
    ``package-dir`` (a folder ``sdk/`` is the package ``vlmscope``, and so on), so a module
    added or split later is found without naming it here."""
    package_dir = pyproject()["tool"]["setuptools"]["package-dir"]
    modules: dict[str, Path] = {}
    for package, folder in package_dir.items():
        base = ROOT / folder
        for path in sorted(base.rglob("*.py")):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            name = ".".join([package, *parts])
            # a sub-folder that package-dir maps elsewhere (none today) is not this package's
            modules.setdefault(name, path)
    return modules


def extension_modules() -> set[str]:
    """The distribution's C extension modules, by dotted name (``pyproject.toml``)."""
    return {ext["name"] for ext in pyproject()["tool"]["setuptools"].get("ext-modules", [])}


@dataclass(frozen=True)
class ImportedName:
    """One import statement's target as the importing module sees it."""

    module: str
    """The module imported (``from a.b import c`` where ``a.b.c`` is a module: ``a.b.c``)."""
    name: str | None
    """The name taken from ``module`` (None for ``import a.b``)."""
    line: int
    bound: str
    """The local name the import binds."""


def imports_of(path: Path, name: str) -> Iterator[ImportedName]:
    """Every import in the module ``name`` (file ``path``), function-level and
    ``TYPE_CHECKING`` imports included, relative ones resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield ImportedName(alias.name, None, node.lineno,
                                   alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            for alias in node.names:
                yield ImportedName(module, alias.name, node.lineno, alias.asname or alias.name)

