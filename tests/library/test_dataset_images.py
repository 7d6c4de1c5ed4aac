"""Dataset rows hand the pipeline the user's image as it was given (numpy arrays, tensors,
PIL images); paths and encoded bytes load as RGB PIL images. Hashes are of the image as
given, thumbnails of the documented canonical RGB form."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import vlmscope
from tests.helpers import query
from vlmscope.dataset import decode_image, pipeline_image

torch = pytest.importorskip("torch")
Image = pytest.importorskip("PIL.Image")
sklearn_datasets = pytest.importorskip("sklearn.datasets")


def _digit(index: int) -> np.ndarray:
    """A real 8x8 handwritten digit scan (scikit-learn), as float32 intensities in [0, 1]."""
    return (sklearn_datasets.load_digits().images[index] / 16.0).astype(np.float32)


def _images(tmp_path: Path) -> dict[str, Any]:
    """The same digits in every form a user may hold them in."""
    grey = np.rint(_digit(2) * 255).astype(np.uint8)
    png = tmp_path / "digit.png"
    Image.fromarray(grey).save(png)
    buffer = io.BytesIO()
    Image.fromarray(np.stack([grey] * 3, axis=-1)).save(buffer, format="PNG")
    return {
        "numpy-float32": _digit(0),
        "numpy-uint8-rgb": np.stack([np.rint(_digit(1) * 255).astype(np.uint8)] * 3, axis=-1),
        "numpy-float64-chw": np.stack([_digit(3).astype(np.float64)] * 3) * 0.5,
        "tensor-float": torch.from_numpy(_digit(4))[None].expand(3, -1, -1).clone(),
        "tensor-uint8": torch.from_numpy(np.rint(_digit(5) * 255).astype(np.uint8)),
        "pil-grey": Image.fromarray(grey),
        "path": str(png),
        "bytes": buffer.getvalue(),
    }


def _same(given: Any, got: Any) -> bool:
    if isinstance(given, np.ndarray):
        return (got is given and got.dtype == given.dtype and got.shape == given.shape)
    if isinstance(given, torch.Tensor):
        return got is given
    return got is given


@pytest.mark.parametrize("batch_size", [None, 3])
def test_the_pipeline_gets_the_users_image_unchanged_and_files_as_pil(
        batch_size, traced: Path, tmp_path: Path) -> None:
    images = _images(tmp_path)
    snapshots = {k: (v.copy() if isinstance(v, np.ndarray) else
                     v.clone() if isinstance(v, torch.Tensor) else None)
                 for k, v in images.items()}
    dataset = vlmscope.Dataset.from_records(
        f"forms-{batch_size}", [{"id": k, "image": v, "expected": "ok"} for k, v in images.items()])
    got: dict[str, Any] = {}

    def pipeline(rows):
        for row in rows if isinstance(rows, list) else [rows]:
            got[row.id] = row.image
        return ["ok"] * len(rows) if isinstance(rows, list) else "ok"

    result = dataset.run(pipeline, name=f"forms-run-{batch_size}", batch_size=batch_size,
                         progress=False)
    assert result.summary["failed"] == 0
    for key in ("numpy-float32", "numpy-uint8-rgb", "numpy-float64-chw", "tensor-float",
                "tensor-uint8", "pil-grey"):
        assert got[key] is images[key], key
    for key in ("numpy-float32", "numpy-uint8-rgb", "numpy-float64-chw"):
        assert got[key].dtype == snapshots[key].dtype and got[key].shape == snapshots[key].shape
        assert np.array_equal(got[key], snapshots[key])
    for key in ("tensor-float", "tensor-uint8"):
        assert torch.equal(got[key], snapshots[key]) and got[key].dtype == snapshots[key].dtype
    assert got["pil-grey"].mode == "L"
    for key in ("path", "bytes"):
        assert isinstance(got[key], Image.Image) and got[key].mode == "RGB", key
    on_disk = np.asarray(Image.open(images["path"]))
    assert np.array_equal(np.asarray(got["path"])[..., 0], on_disk)

    vlmscope.shutdown()
    stored = dict((r[0], r[1:]) for r in query(
        traced, "SELECT d.row_id, d.image_sha256, p.image_sha256, d.thumbnail "
                "FROM dataset_rows d JOIN pipeline_rows p USING (row_id) "
                f"WHERE p.run = 'forms-run-{batch_size}'"))
    assert set(stored) == set(images)
    for key, image in images.items():
        dataset_hash, row_hash, thumbnail = stored[key]
        assert dataset_hash == row_hash == vlmscope.image_sha256(image), key
        canonical = np.asarray(decode_image(image))
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(thumbnail))), canonical), key


def test_the_canonical_form_scales_floats_from_zero_one_and_keeps_uint8() -> None:
    scan = _digit(0)
    canonical = np.asarray(decode_image(scan))
    assert canonical.shape == (8, 8, 3) and canonical.dtype == np.uint8
    assert np.array_equal(canonical[..., 1], np.rint(scan * 255).astype(np.uint8))
    grey = np.rint(scan * 255).astype(np.uint8)
    assert np.array_equal(np.asarray(decode_image(grey))[..., 2], grey)
    chw = torch.from_numpy(scan)[None].expand(3, -1, -1)
    assert np.array_equal(np.asarray(decode_image(chw)), canonical)


def test_only_files_are_loaded_for_the_pipeline(tmp_path: Path) -> None:
    images = _images(tmp_path)
    for key in ("numpy-float32", "tensor-float", "pil-grey"):
        assert pipeline_image(images[key]) is images[key]
    assert pipeline_image(Path(images["path"])).mode == "RGB"
    with pytest.raises(vlmscope.dataset.ImageDecodeError):
        pipeline_image(b"not an image")
