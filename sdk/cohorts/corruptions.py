"""Image corruptions at five severities, after ImageNet-C (Hendrycks & Dietterich, 2019).

Each corruption maps an RGB ``uint8`` image (``HxWx3``) and a severity ``s`` in 1..5 to an
image of the same size. With ``x`` the image scaled to [0, 1] and ``c = C[s]`` the severity
constant (ImageNet-C's values where the paper defines the corruption):

* ``gaussian_noise`` - ``x + N(0, c^2)``, c = 0.08, 0.12, 0.18, 0.26, 0.38.
* ``gaussian_blur`` - Gaussian filter of standard deviation c = 1, 2, 3, 4, 6 pixels.
* ``brightness`` - in HSV, ``V <- min(V + c, 1)``, c = 0.1, 0.2, 0.3, 0.4, 0.5; hue and
  saturation unchanged, so ``rgb <- rgb * min(V + c, 1) / V`` (a black pixel becomes grey c).
* ``contrast`` - ``(x - m) * c + m`` with ``m`` the per-channel mean, c = 0.4, 0.3, 0.2, 0.1,
  0.05.
* ``jpeg_compression`` - JPEG at quality c = 25, 18, 15, 10, 7.
* ``pixelate`` - box-downsample to ``c * size`` and box-upsample back, c = 0.6, 0.5, 0.4,
  0.3, 0.25.

ImageNet-C defines neither of these two; vlmscope's choice:

* ``crop`` - keep a window of side ``c * side`` (c = 0.9, 0.8, 0.7, 0.6, 0.5 of width and
  height) at a random offset, resized back bilinearly.
* ``rotation`` - rotate by ``c`` degrees (c = 5, 10, 15, 20, 30) in a random direction about
  the centre, bilinear, corners filled black, same size.

Results are clipped to [0, 1] and rounded to ``uint8``. The random draws (noise, crop offset,
rotation direction) come from the generator passed in, so a seed fixes every image.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np

from vlmscope._optional import require

SEVERITIES = (1, 2, 3, 4, 5)
"""The severity levels every corruption defines."""

SEVERITY_CONSTANTS: dict[str, tuple[float, ...]] = {
    "brightness": (0.1, 0.2, 0.3, 0.4, 0.5),
    "contrast": (0.4, 0.3, 0.2, 0.1, 0.05),
    "gaussian_blur": (1.0, 2.0, 3.0, 4.0, 6.0),
    "gaussian_noise": (0.08, 0.12, 0.18, 0.26, 0.38),
    "jpeg_compression": (25, 18, 15, 10, 7),
    "pixelate": (0.6, 0.5, 0.4, 0.3, 0.25),
    "crop": (0.9, 0.8, 0.7, 0.6, 0.5),
    "rotation": (5.0, 10.0, 15.0, 20.0, 30.0),
}
"""The constant ``c`` of each corruption at severities 1..5 (see the module docstring)."""

CORRUPTIONS = tuple(SEVERITY_CONSTANTS)
"""Every corruption vlmscope applies, by name."""


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def _pil(array: np.ndarray) -> Any:
    return require("PIL.Image", "vlmscope.cohorts.perturb").fromarray(array)


def brightness(image: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    """Raise the HSV value by ``c`` (hue and saturation kept)."""
    x = image.astype(np.float64) / 255.0
    value = x.max(axis=2, keepdims=True)
    raised = np.minimum(value + c, 1.0)
    scale = np.divide(raised, value, out=np.zeros_like(value), where=value > 0)
    return _to_uint8(np.where(value > 0, x * scale, raised))


def contrast(image: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    """Shrink every channel towards its mean by the factor ``c``."""
    x = image.astype(np.float64) / 255.0
    mean = x.mean(axis=(0, 1), keepdims=True)
    return _to_uint8((x - mean) * c + mean)


def gaussian_noise(image: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    """Add white Gaussian noise of standard deviation ``c`` (intensity units)."""
    x = image.astype(np.float64) / 255.0
    return _to_uint8(x + rng.normal(scale=c, size=x.shape))


def gaussian_blur(image: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    """Blur with a Gaussian of standard deviation ``c`` pixels."""
    image_filter = require("PIL.ImageFilter", "vlmscope.cohorts.perturb")
    return np.asarray(_pil(image).filter(image_filter.GaussianBlur(radius=c)))


def jpeg_compression(image: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    """Encode as JPEG at quality ``c`` and decode."""
    pil_image = require("PIL.Image", "vlmscope.cohorts.perturb")
    buffer = io.BytesIO()
    _pil(image).save(buffer, format="JPEG", quality=int(c))
    with pil_image.open(io.BytesIO(buffer.getvalue())) as decoded:
        return np.asarray(decoded.convert("RGB"))


def pixelate(image: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    """Box-downsample by the factor ``c`` and box-upsample to the original size."""
    pil_image = require("PIL.Image", "vlmscope.cohorts.perturb")
    height, width = image.shape[:2]
    small = _pil(image).resize((max(1, int(width * c)), max(1, int(height * c))),
                               pil_image.Resampling.BOX)
    return np.asarray(small.resize((width, height), pil_image.Resampling.BOX))


def crop(image: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    """Keep a ``c``-sized window at a random offset and resize it back."""
    pil_image = require("PIL.Image", "vlmscope.cohorts.perturb")
    height, width = image.shape[:2]
    keep_h, keep_w = max(1, round(height * c)), max(1, round(width * c))
    top = int(rng.integers(0, height - keep_h + 1))
    left = int(rng.integers(0, width - keep_w + 1))
    window = _pil(image[top:top + keep_h, left:left + keep_w])
    return np.asarray(window.resize((width, height), pil_image.Resampling.BILINEAR))


def rotation(image: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    """Rotate by ``c`` degrees, clockwise or anticlockwise at random."""
    pil_image = require("PIL.Image", "vlmscope.cohorts.perturb")
    angle = c if rng.random() < 0.5 else -c
    return np.asarray(_pil(image).rotate(angle, resample=pil_image.Resampling.BILINEAR))


CORRUPTION_FUNCTIONS: dict[str, Callable[[np.ndarray, float, np.random.Generator],
                                         np.ndarray]] = {
    "brightness": brightness,
    "contrast": contrast,
    "gaussian_blur": gaussian_blur,
    "gaussian_noise": gaussian_noise,
    "jpeg_compression": jpeg_compression,
    "pixelate": pixelate,
    "crop": crop,
    "rotation": rotation,
}
"""Each corruption's function ``f(image, c, rng) -> image``."""


def corrupt(image: np.ndarray, corruption: str, severity: int,
            rng: np.random.Generator) -> np.ndarray:
    """``image`` (RGB uint8, HxWx3) under ``corruption`` at ``severity`` (1..5)."""
    if corruption not in CORRUPTION_FUNCTIONS:
        raise ValueError(f"unknown corruption {corruption!r}; use any of "
                         f"{', '.join(CORRUPTIONS)}")
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of 1..5, got {severity}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"corrupt takes an RGB uint8 HxWx3 image, got {image.dtype} "
                         f"{image.shape}")
    c = SEVERITY_CONSTANTS[corruption][severity - 1]
    return CORRUPTION_FUNCTIONS[corruption](image, c, rng)
