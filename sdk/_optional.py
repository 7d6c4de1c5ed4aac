"""Optional heavy dependencies (torch, torchvision, transformers), checked once each."""

from __future__ import annotations

import functools
import importlib
from types import ModuleType

_EXTRA_OF = {"torch": "torch", "torchvision": "torch", "transformers": "hf",
             "tokenizers": "hf", "sklearn": "demo", "matplotlib": "report",
             "ray": "ray"}


class MissingExtraError(ImportError):
    """A feature needs an optional dependency that is not installed; names the extra."""


@functools.cache
def require(module: str, feature: str = "this feature") -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming the pip extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        extra = _EXTRA_OF.get(module.split(".")[0], "all")
        raise MissingExtraError(
            f"{feature} needs {module}, which is not installed: "
            f"pip install 'vlmscope[{extra}]'"
        ) from error
