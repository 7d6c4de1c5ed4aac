"""The core imports without the heavy extras, and says which extra a feature needs."""

from __future__ import annotations

import ast
import re
import subprocess
import sys

from tests.helpers import PYTHON, imports_of, package_modules, parse_python, pyproject


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, timeout=120)


def test_importing_vlmscope_imports_neither_torch_nor_transformers():
    result = _run("import sys, vlmscope, vlmscope.collectors, vlmscope.evaluators, "
                  "vlmscope.cli\n"
                  "print(sorted(m for m in ('torch', 'torchvision', 'transformers') "
                  "if m in sys.modules))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_feature_whose_extra_is_missing_names_the_extra():
    result = _run(
        "import sys\n"
        "sys.modules['torch'] = None\n"  # makes `import torch` fail as if not installed
        "import vlmscope\n"
        "try:\n"
        "    vlmscope.instrument_encoder(object())\n"
        "except vlmscope.MissingExtraError as e:\n"
        "    print(e)\n"
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'vlmscope[torch]'" in result.stdout


def test_the_package_layout_maps_the_three_folders_into_one_namespace():
    result = _run("import vlmscope, vlmscope.collectors as c, vlmscope.evaluators as e\n"
                  "print(vlmscope.__file__, c.__file__, e.__file__)")
    sdk, collectors, evaluators = result.stdout.split()
    assert sdk.endswith("sdk/__init__.py") or "site-packages/vlmscope/" in sdk
    assert collectors.endswith("collectors/__init__.py")
    assert evaluators.endswith("evaluators/__init__.py")


# Import names whose distribution is called otherwise (longest prefix wins); any other
# import is its own distribution's name.
DISTRIBUTION_OF = {
    "PIL": "pillow", "sklearn": "scikit-learn", "open_clip": "open-clip-torch",
    "opentelemetry": "opentelemetry-api", "opentelemetry.sdk": "opentelemetry-sdk",
    "opentelemetry.proto": "opentelemetry-proto",
    "opentelemetry.exporter.otlp.proto.http": "opentelemetry-exporter-otlp-proto-http",
    "google.protobuf": "protobuf", "google.rpc": "googleapis-common-protos",
}


def _distribution(module: str) -> str:
    best = max((name for name in DISTRIBUTION_OF
                if module == name or module.startswith(name + ".")), key=len, default=None)
    return DISTRIBUTION_OF[best] if best else module.split(".")[0].lower().replace("_", "-")


def _requirement_name(requirement: str) -> str:
    return re.split(r"[\[<>=!~;\s]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _third_party_imports() -> dict[str, set[str]]:
    """Every third-party module the package imports (at module level, in a function, or by
    ``require("...")``), with the modules that import it."""
    found: dict[str, set[str]] = {}
    for name, path in package_modules().items():
        imported = [i.module if i.name is None or i.module else i.name
                    for i in imports_of(path, name)]
        for node in ast.walk(parse_python(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "require" and node.args
                    and isinstance(node.args[0], ast.Constant)):
                imported.append(node.args[0].value)
        for module in imported:
            top = module.split(".")[0]
            if top and top not in sys.stdlib_module_names and top not in ("vlmscope",
                                                                          "__future__"):
                found.setdefault(module, set()).add(name)
    return found


def _extras() -> dict[str, set[str]]:
    """Each extra's distributions, extras it names (``vlmscope[a,b]``) expanded."""
    raw = pyproject()["project"]["optional-dependencies"]

    def expand(extra: str, seen: frozenset[str] = frozenset()) -> set[str]:
        names: set[str] = set()
        for requirement in raw[extra]:
            if _requirement_name(requirement) == "vlmscope":
                inner = re.search(r"\[(.*)\]", requirement).group(1)
                for other in inner.split(","):
                    if other.strip() not in seen:
                        names |= expand(other.strip(), seen | {extra})
            else:
                names.add(_requirement_name(requirement))
        return names

    return {extra: expand(extra) for extra in raw}


def test_every_imported_third_party_package_is_declared_in_the_core_or_an_extra():
    core = {_requirement_name(r) for r in pyproject()["project"]["dependencies"]}
    declared = core.union(*_extras().values())
    undeclared = {f"{module} ({_distribution(module)}), imported by {sorted(users)[0]}"
                  for module, users in _third_party_imports().items()
                  if _distribution(module) not in declared}
    assert not undeclared, "\n".join(sorted(undeclared))


def test_no_requirement_is_listed_twice_in_the_core_and_the_extras():
    project = pyproject()["project"]
    core = [_requirement_name(r) for r in project["dependencies"]]
    assert len(core) == len(set(core))
    for extra, requirements in project["optional-dependencies"].items():
        names = [_requirement_name(r) for r in requirements]
        assert len(names) == len(set(names)), extra
        assert not set(names) & set(core), (extra, set(names) & set(core))


def test_each_optional_module_names_the_smallest_extra_that_installs_it():
    """Pillow asks for ``images`` and scipy for ``cohorts``, not ``all`` (which pulls torch);
    every module the package ``require``s has an extra of its own."""
    from vlmscope._optional import _EXTRA_OF, extra_of

    extras = _extras()
    core = {_requirement_name(r) for r in pyproject()["project"]["dependencies"]}
    optional = {m.split(".")[0] for m in _third_party_imports()
                if _distribution(m) not in core}
    assert optional <= set(_EXTRA_OF), optional - set(_EXTRA_OF)
    for module in _EXTRA_OF:
        providing = [e for e, names in extras.items()
                     if _distribution(module) in names and e != "dev"]
        assert providing, module
        smallest = min(providing, key=lambda e: (len(extras[e]), e))
        assert extra_of(module) == smallest, (module, extra_of(module), smallest)
    assert extra_of("PIL.Image") == "images" and extra_of("scipy.stats") == "cohorts"


def test_a_missing_pillow_asks_for_the_images_extra():
    result = _run("import sys\n"
                  "sys.modules['PIL'] = None\n"
                  "from vlmscope._optional import MissingExtraError, require\n"
                  "try:\n"
                  "    require('PIL.Image', 'decoding images')\n"
                  "except MissingExtraError as e:\n"
                  "    print(e)\n")
    assert result.returncode == 0, result.stderr
    assert "pip install 'vlmscope[images]'" in result.stdout


def test_collect_without_its_server_says_which_extra_and_the_core_still_works(tmp_path):
    """uvicorn is in the ``collector`` extra: without it ``vlmscope collect`` says so (exit
    2), and tracing into the store and querying it work."""
    db = tmp_path / "t.duckdb"
    result = _run("import sys\n"
                  "sys.modules['uvicorn'] = None\n"
                  "import vlmscope\n"
                  "from vlmscope.cli import main\n"
                  f"vlmscope.configure(db={str(db)!r})\n"
                  "with vlmscope.trace_row('r1', expected='cat'):\n"
                  "    pass\n"
                  "vlmscope.shutdown()\n"
                  f"assert main(['sql', '--db', {str(db)!r}, "
                  "'SELECT count(*) FROM pipeline_rows']) == 0\n"
                  f"sys.exit(main(['collect', '--db', {str(db)!r}, '--port', '0']))\n")
    assert result.returncode == 2, result.stderr
    assert "pip install 'vlmscope[collector]'" in result.stderr
    assert "1" in result.stdout  # the query answered before collect was refused


def test_every_test_module_has_tests():
    """A ``test_*.py`` file without a test is a helper in the wrong place (``helpers.py``)."""
    from tests.helpers import ROOT

    empty = []
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        tree = parse_python(path.read_text())
        if not any(isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                   and node.name.startswith("test") for node in ast.walk(tree)):
            empty.append(path.name)
    assert not empty, empty


def test_no_test_module_imports_another():
    """Shared helpers live in modules of their own under ``tests/`` (``helpers.py``,
    ``digits.py``, ``pipeline_row_reference.py``, ...), never in a test module."""
    from tests.helpers import ROOT

    crossing = []
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        for node in ast.walk(parse_python(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and any(
                    part.startswith("test_") for part in node.module.split(".")):
                crossing.append(f"{path.relative_to(ROOT)}: from {node.module}")
    assert not crossing, crossing
