"""Each native extension loads only after a self-test passes; otherwise, or with
``VLMSCOPE_PURE_PYTHON=1``, the Python reference does the work, and one log line says why."""

from __future__ import annotations

import logging
import subprocess
import sys
from typing import Any

import pytest

from vlmscope.collectors import convert, otlp


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


def test_vlmscope_pure_python_switches_both_extensions_off() -> None:
    code = ("from vlmscope.collectors import convert, otlp; "
            "print(convert.native_converter(), otlp.native_decoder())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**_env(), "VLMSCOPE_PURE_PYTHON": "1"}, check=True, timeout=120)
    assert done.stdout.split() == ["False", "False"]


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)
