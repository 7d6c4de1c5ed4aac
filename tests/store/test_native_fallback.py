"""Each native extension loads only after a self-test passes; otherwise, or with
``VLMSCOPE_PURE_PYTHON=1``, the Python reference does the work, and one log line says why."""

from __future__ import annotations

import logging
import subprocess
import sys
from typing import Any

import pytest

from vlmscope.collectors import _assembly, convert, otlp


class _Wrapped:
    """A native module whose one entry point is changed; everything else is the module's."""

    def __init__(self, module: Any, **changed: Any) -> None:
        self._module = module
        self.__dict__.update(changed)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)


def test_the_native_converter_out_of_step_with_the_reference_is_not_used(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A twin that reads an attribute under another name (as after an edit on one side
    only) fails the self-test on real SDK spans, and the reference is used."""
    if convert._native is None:
        pytest.skip("the native span converter is not built")
    names = convert._native_names()
    monkeypatch.setattr(convert, "_native_names",
                        lambda: {**names, "top_k_labels": "vision.encoder.top_k.label"})
    try:
        with caplog.at_level(logging.INFO, logger="vlmscope"):
            assert convert._load_native() is None
        lines = [r for r in caplog.records if "native span converter" in r.getMessage()]
        assert len(lines) == 1 and lines[0].levelno == logging.WARNING
        assert "encoder_records differ" in lines[0].getMessage()
    finally:
        convert._native.setup(names)  # the module is shared: give it its names back
    monkeypatch.undo()
    assert convert._load_native() is convert._native  # in step again: it loads


def test_the_native_otlp_decoder_that_drops_a_span_is_not_used(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    if otlp._native is None:
        pytest.skip("the native OTLP decoder is not built")
    real = otlp._native

    def decode(*args: Any) -> list:
        return real.decode(*args)[:-1]

    import vlmscope.collectors as package

    monkeypatch.setattr(package, "_otlp_native", _Wrapped(real, decode=decode))
    with caplog.at_level(logging.INFO, logger="vlmscope"):
        assert otlp._load_native() is None
    lines = [r for r in caplog.records if "native OTLP decoder" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING
    monkeypatch.undo()
    assert otlp._load_native() is real


def test_the_native_assembler_that_picks_another_record_is_not_used(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A twin whose pick differs from the SQL assembler's on the self-test's records (here:
    every row's LLM part taken from the encoder's pick) is not used; DuckDB assembles."""
    real = pytest.importorskip("vlmscope.collectors._assembly_native",
                               reason="the native assembler is not built")

    def pick(*args: Any) -> tuple:
        traces, rows, row_at, second_at, first_at = real.pick(*args)
        return traces, rows, row_at, second_at, second_at

    import vlmscope.collectors as package

    monkeypatch.delenv("VLMSCOPE_PURE_PYTHON", raising=False)  # also in CI's pure-Python part
    monkeypatch.setattr(package, "_assembly_native", _Wrapped(real, pick=pick))
    with caplog.at_level(logging.INFO, logger="vlmscope"):
        assert _assembly._load_native() is None
    lines = [r for r in caplog.records if "native pipeline-row assembler" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING
    assert "differ from the SQL assembler" in lines[0].getMessage()
    monkeypatch.setattr(package, "_assembly_native", real)
    assert _assembly._load_native() is real


def test_a_built_native_assembler_passes_its_self_test_and_is_used() -> None:
    """Where the twin is built and not switched off, the writer uses it: a twin out of step
    with the SQL assembler would otherwise go unnoticed behind its fallback."""
    real = pytest.importorskip("vlmscope.collectors._assembly_native",
                               reason="the native assembler is not built")
    if _env().get("VLMSCOPE_PURE_PYTHON", "0") not in ("", "0"):
        pytest.skip("VLMSCOPE_PURE_PYTHON=1 switches it off")
    assert _assembly._load_native() is real
    assert _assembly.native_twin() is real


_WITHOUT_PANDAS = """
import importlib.abc, logging, sys

class NoPandas(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "pandas":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NoPandas())
logging.basicConfig(level=logging.WARNING)
from vlmscope.collectors import _assembly, convert, otlp
print(_assembly.native_twin() is not None, convert.native_converter(), otlp.native_decoder())
"""


def test_every_built_extension_passes_its_self_test_without_pandas() -> None:
    """A bare install has no pandas (it is no dependency). The assembler's self-test read
    nanosecond timestamps into Python, which pyarrow does only through pandas, so there it
    failed, warned on every import and left the work to DuckDB (seen in CI's wheel check)."""
    pytest.importorskip("vlmscope.collectors._assembly_native",
                        reason="the native assembler is not built")
    if _env().get("VLMSCOPE_PURE_PYTHON", "0") not in ("", "0"):
        pytest.skip("VLMSCOPE_PURE_PYTHON=1 switches them off")
    done = subprocess.run([sys.executable, "-c", _WITHOUT_PANDAS], capture_output=True,
                          text=True, env=_env(), check=True, timeout=120)
    assert "self-test" not in done.stderr, done.stderr
    assert done.stdout.split() == ["True", str(convert._native is not None),
                                   str(otlp._native is not None)]


def test_vlmscope_pure_python_switches_every_extension_off() -> None:
    code = ("from vlmscope.collectors import _assembly, convert, otlp; "
            "print(convert.native_converter(), otlp.native_decoder(), "
            "_assembly.native_twin() is not None)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**_env(), "VLMSCOPE_PURE_PYTHON": "1"}, check=True, timeout=120)
    assert done.stdout.split() == ["False", "False", "False"]


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)
