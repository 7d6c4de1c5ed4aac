"""Content hashes and optional base64 capture of images in the forms users pass them."""

from __future__ import annotations

import base64
import hashlib
import io
import os
from pathlib import Path
from typing import Any


def image_sha256(image: Any) -> str:
    """SHA-256 (hex) of an image's content.

    ``bytes`` and file paths hash their bytes; arrays and tensors hash dtype, shape and the
    C-ordered element bytes; PIL images hash mode, size and pixel bytes. Raises ``TypeError``
    for anything else.
    """
    digest = hashlib.sha256()
    if isinstance(image, bytes | bytearray | memoryview):
        digest.update(bytes(image))
    elif isinstance(image, str | os.PathLike):
        with open(image, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    elif hasattr(image, "detach") and hasattr(image, "cpu"):  # torch.Tensor
        import torch

        tensor = image.detach().cpu().contiguous()
        digest.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif hasattr(image, "__array_interface__") and hasattr(image, "tobytes") and hasattr(
        image, "dtype"
    ):  # numpy
        import numpy as np

        array = np.ascontiguousarray(image)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
    elif hasattr(image, "mode") and hasattr(image, "size") and hasattr(image, "tobytes"):  # PIL
        digest.update(f"{image.mode}{image.size}".encode())
        digest.update(image.tobytes())
    else:
        raise TypeError(
            f"cannot hash an image of type {type(image).__name__}: pass bytes, a path, a PIL "
            "image, a numpy array or a torch tensor"
        )
    return digest.hexdigest()


async def image_reference(trace_id: str, span_id: str, image_name: str,
                          base64_string: str) -> str:
    """A stand-in for an image sent to an LLM as base64: ``sha256:<hex>`` of its bytes.

    Pass it as OpenLLMetry's ``upload_base64_image=`` (``OpenAIInstrumentor(
    upload_base64_image=vlmscope.image_reference)``; its other instrumentors take the same
    hook). Without the hook OpenLLMetry drops the whole prompt of a request that carries a
    base64 image, so the row has no instruction; with it the prompt is kept and the image
    part holds this reference instead of the image. The digest equals
    :func:`image_sha256` of the same encoded file's bytes. Nothing is uploaded or stored;
    text that is not base64 gives ``invalid-base64:<n>-characters`` and never raises."""
    del trace_id, span_id, image_name  # the hook's signature; the reference needs none
    try:
        data = base64.b64decode(base64_string + "=" * (-len(base64_string) % 4))
    except (ValueError, TypeError):  # binascii.Error is a ValueError
        return f"invalid-base64:{len(base64_string) if isinstance(base64_string, str) else 0}" \
               "-characters"
    return "sha256:" + hashlib.sha256(data).hexdigest()


def image_base64_png(image: Any, max_length: int) -> str | None:
    """The image as base64 PNG text, or None when it is longer than ``max_length`` characters
    or not in a form that can be encoded (paths and PNG/JPEG bytes are kept as they are)."""
    if isinstance(image, str | os.PathLike):
        data = Path(image).read_bytes()
    elif isinstance(image, bytes | bytearray):
        data = bytes(image)
    else:
        pil = _to_pil(image)
        if pil is None:
            return None
        buffer = io.BytesIO()
        pil.save(buffer, format="PNG")
        data = buffer.getvalue()
    encoded = base64.b64encode(data).decode("ascii")
    return encoded if len(encoded) <= max_length else None


def _to_pil(image: Any) -> Any:
    try:
        from PIL import Image
    except ImportError:
        return None
    if isinstance(image, Image.Image):
        return image
    import numpy as np

    if hasattr(image, "detach"):
        image = image.detach().cpu().numpy()
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
        array = np.moveaxis(array, 0, -1)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.dtype != np.uint8:
        low, high = float(array.min()), float(array.max())
        scale = 255.0 / (high - low) if high > low else 0.0
        array = ((array - low) * scale).astype(np.uint8)
    return Image.fromarray(array)
