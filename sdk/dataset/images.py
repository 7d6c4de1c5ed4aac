"""Dataset images: what the pipeline gets, and the canonical form thumbnails are made from.

A dataset row's image may be a path, encoded bytes, a PIL image, a numpy array or a torch
tensor. The pipeline gets it as the user gave it (:func:`pipeline_image`): an array, a tensor
or a PIL image is handed over unchanged (the same object: dtype, shape and values as given);
only a path or encoded bytes, which are files rather than images, are loaded, as an RGB PIL
image.

Beside that, vlmscope reads every image in one canonical form, an RGB ``PIL.Image``
(:func:`decode_image`), to make its thumbnail: arrays and tensors are read as ``HxW``,
``HxWxC`` or ``CxHxW`` (``C`` in 1, 3, 4); unsigned 8-bit values are taken as they are,
floating-point values as intensities in [0, 1] (``round(255 * clip(x, 0, 1))``). The content
hash is taken of the image as given (:func:`vlmscope.image_sha256`: file bytes, or dtype,
shape and element bytes of an array or tensor, or mode, size and pixels of a PIL image), so
it is the same hash the row span records.
"""

from __future__ import annotations

import io
import os
from typing import Any

from vlmscope._optional import require

THUMBNAIL_SIZE = 64
"""Longest side, in pixels, of the PNG thumbnail kept for every dataset row."""


class ImageDecodeError(ValueError):
    """A dataset row's image could not be read as an image."""


def _pil() -> Any:
    return require("PIL.Image", "vlmscope datasets")


def _array_to_pil(array: Any) -> Any:
    import numpy as np

    image = _pil()
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
        array = np.moveaxis(array, 0, -1)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise ImageDecodeError(f"an image array must be HxW, HxWxC or CxHxW with C in 1, 3, "
                               f"4; got shape {array.shape}")
    if array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.floating):
            raise ImageDecodeError(f"an image array must be uint8 or float in [0, 1]; got "
                                   f"{array.dtype}")
        array = np.rint(np.clip(array, 0.0, 1.0) * 255.0).astype(np.uint8)
    return image.fromarray(np.ascontiguousarray(array))


def decode_image(source: Any) -> Any:
    """``source`` as an RGB ``PIL.Image.Image``; raises :class:`ImageDecodeError` when it is
    not an image (unreadable file, bytes that are no image format, a wrong array shape)."""
    image = _pil()
    try:
        if isinstance(source, image.Image):
            decoded = source
        elif isinstance(source, bytes | bytearray | memoryview):
            decoded = image.open(io.BytesIO(bytes(source)))
            decoded.load()
        elif isinstance(source, str | os.PathLike):
            with image.open(source) as opened:
                opened.load()
                decoded = opened.copy()
        elif hasattr(source, "detach") and hasattr(source, "cpu"):
            decoded = _array_to_pil(source.detach().cpu().numpy())
        elif hasattr(source, "__array_interface__"):
            decoded = _array_to_pil(source)
        else:
            raise ImageDecodeError(
                f"cannot read an image of type {type(source).__name__}: pass a path, bytes, a "
                "PIL image, a numpy array or a torch tensor")
    except ImageDecodeError:
        raise
    except image.UnidentifiedImageError as error:
        raise ImageDecodeError("cannot decode the image: not in a format Pillow reads") \
            from error
    except Exception as error:  # PIL raises several types for a broken file
        raise ImageDecodeError(f"cannot decode the image: {type(error).__name__}: {error}") \
            from error
    return decoded if decoded.mode == "RGB" else decoded.convert("RGB")


def pipeline_image(source: Any) -> Any:
    """The image a pipeline gets for a row: ``source`` itself, except a path or encoded bytes,
    which are loaded as an RGB ``PIL.Image`` (:class:`ImageDecodeError` when they are not an
    image)."""
    if isinstance(source, bytes | bytearray | memoryview | str | os.PathLike):
        return decode_image(source)
    return source


def thumbnail_png(image: Any, size: int = THUMBNAIL_SIZE) -> bytes:
    """A PNG of ``image`` whose longest side is at most ``size`` pixels (aspect kept)."""
    small = image.copy()
    small.thumbnail((size, size))
    buffer = io.BytesIO()
    small.save(buffer, format="PNG")
    return buffer.getvalue()


def stored_bytes(source: Any, decoded: Any) -> bytes:
    """What ``dataset_images`` keeps of an image: the file's or the caller's encoded bytes
    as they are, else a lossless PNG of the decoded image."""
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source)
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as handle:
            return handle.read()
    buffer = io.BytesIO()
    decoded.save(buffer, format="PNG")
    return buffer.getvalue()
