"""Optional dependencies (torch, transformers, Pillow, uvicorn, ...), checked once each."""

from __future__ import annotations

import functools
import importlib
from types import ModuleType

_EXTRA_OF = {"torch": "torch", "torchvision": "torch", "transformers": "hf",
             "tokenizers": "hf", "PIL": "images", "sklearn": "demo", "scipy": "cohorts",
             "matplotlib": "report", "ray": "ray", "fsspec": "ray", "timm": "encoders",
             "open_clip": "encoders", "uvicorn": "collector",
             "pandas": "pandas", "polars": "polars"}
"""The smallest pip extra that installs each optional module (``tests/project/test_packaging.py``
holds it to ``pyproject.toml``): a missing Pillow asks for ``images``, not ``all``."""


class MissingExtraError(ImportError):
    """A feature needs an optional dependency that is not installed; names the extra."""


def extra_of(module: str) -> str:
    """The smallest extra that installs ``module`` (``all`` for a module none names)."""
    return _EXTRA_OF.get(module.split(".")[0], "all")


@functools.cache
def require(module: str, feature: str = "this feature") -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming the pip extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        extra = extra_of(module)
        raise MissingExtraError(
            f"{feature} needs {module}, which is not installed: "
            f"pip install 'vlmscope[{extra}]'"
        ) from error
