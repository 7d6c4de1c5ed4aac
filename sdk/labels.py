"""Class names that ship with libraries (no download)."""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def imagenet_labels() -> list[str] | None:
    """The 1,000 ImageNet-1k class names from torchvision's weights metadata (the metadata
    ships with torchvision; no weights are downloaded), or None without torchvision."""
    try:
        from torchvision.models import ResNet18_Weights
    except ImportError:
        return None
    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def object_names(objects: Any) -> list[str]:
    """The names in a list of objects as vlmscope stores them: a string is one object
    (``"cat"``, not its letters), a ``None`` entry is left out (it names nothing), anything
    else is written with ``str``."""
    if isinstance(objects, str):
        return [objects]
    return [str(o) for o in objects if o is not None]
