"""A real torchvision ResNet trained on scikit-learn's digits, a traced pipeline over it and
digit datasets: shared by the dataset, diff, cohort and report tests."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest

import vlmscope

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
Image = pytest.importorskip("PIL.Image")
sklearn_datasets = pytest.importorskip("sklearn.datasets")

DIGIT_LABELS = [str(d) for d in range(10)]
TRAIN_ROWS = 1200
FIRST_STEPS = 60
MORE_STEPS = 10
BATCH = 32


def digit_pictures(start: int, stop: int) -> list[tuple[Any, str]]:
    """Real handwritten digits (scikit-learn), upsampled to 16x16 grey PIL images, and labels."""
    digits = sklearn_datasets.load_digits()
    pictures = []
    for scan, label in zip(digits.images[start:stop], digits.target[start:stop], strict=True):
        pixels = np.kron(scan / 16.0, np.ones((2, 2)))
        pictures.append((Image.fromarray(np.rint(pixels * 255).astype(np.uint8)), str(label)))
    return pictures


def digits_dataset(name: str, start: int = TRAIN_ROWS, stop: int = TRAIN_ROWS + 200):
    """Held-out digits as a dataset (ids ``d<index>``)."""
    return vlmscope.Dataset.from_records(name, [
        {"id": f"d{start + i}", "image": image, "expected": label,
         "instruction": "which digit is this?"}
        for i, (image, label) in enumerate(digit_pictures(start, stop))])


def small_resnet():
    from torchvision.models.resnet import BasicBlock, ResNet

    return ResNet(BasicBlock, [1, 1, 1, 1], num_classes=10)


def as_tensor(images: list[Any]):
    array = np.stack([np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
                      for image in images])
    return torch.from_numpy(array).permute(0, 3, 1, 2).contiguous()


@functools.cache
def digit_checkpoints() -> tuple[dict, dict]:
    """Weights of one ResNet after ``FIRST_STEPS`` SGD steps on 1,200 digits, and after
    ``MORE_STEPS`` more: two real checkpoints a few training steps apart."""
    torch.manual_seed(0)
    model = small_resnet()
    pictures = digit_pictures(0, TRAIN_ROWS)
    images = as_tensor([p for p, _ in pictures])
    labels = torch.tensor([int(label) for _, label in pictures])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    generator = torch.Generator().manual_seed(0)
    checkpoints = []
    threads = torch.get_num_threads()
    # Small convolutions on shared cores: one thread is ~10x faster than two fighting others.
    torch.set_num_threads(1)
    try:
        for steps in (FIRST_STEPS, MORE_STEPS):
            model.train()
            for _ in range(steps):
                batch = torch.randint(0, TRAIN_ROWS, (BATCH,), generator=generator)
                optimizer.zero_grad()
                loss = torch.nn.functional.cross_entropy(model(images[batch]), labels[batch])
                loss.backward()
                optimizer.step()
            checkpoints.append({k: v.detach().clone() for k, v in model.state_dict().items()})
    finally:
        torch.set_num_threads(threads)
    return checkpoints[0], checkpoints[1]


def digit_model(which: int = 0):
    """The ResNet with checkpoint ``which`` (0: earlier, 1: a few steps later), in eval mode."""
    model = small_resnet()
    model.load_state_dict(digit_checkpoints()[which])
    return model.eval()


def digit_pipeline(model):
    """A pipeline: the row's image through ``model`` (instrumented, embeddings captured),
    the top-1 digit as the answer. Works on one row or a list of rows."""
    vlmscope.instrument_encoder(model, labels=DIGIT_LABELS, top_k=3, capture_embeddings=True)

    def pipeline(rows):
        batch = rows if isinstance(rows, list) else [rows]
        with torch.no_grad():
            predicted = model(as_tensor([row.image for row in batch])).argmax(1).tolist()
        answers = [DIGIT_LABELS[p] for p in predicted]
        return answers if isinstance(rows, list) else answers[0]

    return pipeline


def predictions(model, dataset) -> dict[str, str]:
    """The model's top-1 digit for every row, computed without vlmscope."""
    with torch.no_grad():
        logits = model(as_tensor([decode(row.image) for row in dataset]))
    return {row.id: DIGIT_LABELS[p] for row, p in zip(dataset, logits.argmax(1).tolist(),
                                                      strict=True)}


def decode(image: Any):
    return vlmscope.dataset.decode_image(image)
