"""The core imports without the heavy extras, and says which extra a feature needs."""

from __future__ import annotations

import subprocess

from .conftest import PYTHON


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
