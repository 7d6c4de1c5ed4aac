"""The demo's training is reproducible: the same seed and plan on one machine give the same
checkpoints (SHA-256 of the weights), and another seed gives others."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
pytest.importorskip("transformers")
pytest.importorskip("sklearn")

from vlmscope import checkpoint_sha256  # noqa: E402
from vlmscope.demo.models import TrainingPlan, load_or_train  # noqa: E402

TINY = TrainingPlan(train_scenes=48, encoder_epochs=1, head_examples=64, head_epochs=1,
                    candidate_scenes=16, seed=3)


def digests(models) -> tuple[str, str, str]:
    return (checkpoint_sha256(models.baseline), checkpoint_sha256(models.candidate),
            checkpoint_sha256(models.head.gpt) + checkpoint_sha256(models.head.prefix))


def test_the_same_seed_and_plan_give_the_same_checkpoints(tmp_path) -> None:
    threads = torch.get_num_threads()
    first = load_or_train(TINY, cache_dir=tmp_path / "a")
    second = load_or_train(TINY, cache_dir=tmp_path / "b")
    assert first.trained_now and second.trained_now
    assert digests(first) == digests(second)
    assert torch.get_num_threads() == threads  # the training settings are restored
    assert not torch.are_deterministic_algorithms_enabled()
    other = load_or_train(TrainingPlan(**{**TINY.__dict__, "seed": 4}), cache_dir=tmp_path / "c")
    assert digests(other)[0] != digests(first)[0]
    cached = load_or_train(TINY, cache_dir=tmp_path / "a")
    assert not cached.trained_now and digests(cached) == digests(first)
