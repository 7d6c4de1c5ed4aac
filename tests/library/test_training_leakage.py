"""find_leakage on a seeded cohort of scikit-learn digits: 10 exact copies of training images,
10 slightly perturbed copies and 80 unseen images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")

import vlmscope  # noqa: E402
from tests.helpers import query  # noqa: E402
from vlmscope import conventions as cv  # noqa: E402
from vlmscope.training import find_leakage  # noqa: E402


def _cohort() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """1,000 training digits and a 100-image evaluation cohort (ids say what each row is),
    with the cohort's labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(images))
    train_rows, unseen_rows = order[:1000], order[1000:1080]
    copied = rng.choice(1000, size=20, replace=False)
    exact = images[train_rows[copied[:10]]]
    originals = images[train_rows[copied[10:]]]
    # slightly perturbed: pixel noise of 3 % of the range, a contrast and a brightness change
    noise = rng.normal(0.0, 0.03, originals.shape).astype(np.float32)
    contrast = rng.uniform(0.9, 1.1, (10, 1, 1)).astype(np.float32)
    brightness = rng.uniform(-0.05, 0.05, (10, 1, 1)).astype(np.float32)
    perturbed = originals * contrast + brightness + noise
    cohort = np.concatenate([exact, perturbed, images[unseen_rows]])
    labels = np.concatenate([digits.target[train_rows[copied]], digits.target[unseen_rows]])
    ids = ([f"exact-{i}" for i in range(10)] + [f"near-{i}" for i in range(10)]
           + [f"unseen-{i}" for i in range(80)])
    return images[train_rows], cohort, labels, copied, ids


def test_exact_and_near_copies_of_training_images_are_found_without_false_positives() -> None:
    train, cohort, _, copied, ids = _cohort()
    report = find_leakage(train, cohort, eval_ids=ids, record=False)
    assert report.exact_rows == [f"exact-{i}" for i in range(10)]
    assert len(report.near_rows) >= 8 and all(r.startswith("near-") for r in report.near_rows)
    assert not [row for row in report.leaked if row.row_id.startswith("unseen-")]
    by_id = {row.row_id: row for row in report.leaked}
    assert [by_id[f"exact-{i}"].train_index for i in range(10)] == list(copied[:10])
    assert all(by_id[r].train_index == copied[10 + int(r.split("-")[1])]
               for r in report.near_rows)
    assert not report.passed and report.label == "leaked"
    assert report.score == len(report.leaked) / 100


def test_the_report_recomputes_the_metrics_without_the_leaked_rows() -> None:
    train, cohort, labels, _, ids = _cohort()
    # a model that remembers its training images and guesses wrong on every unseen one
    predictions = labels.copy()
    predictions[20:] = (labels[20:] + 1) % 10
    predictions[20:40] = labels[20:40]
    report = find_leakage(train, cohort, eval_ids=ids, predictions=predictions, labels=labels,
                          record=False)
    leaked = len(report.leaked)
    assert report.metrics_all["accuracy"] == pytest.approx(0.4)
    assert report.metrics_clean["accuracy"] == pytest.approx((40 - leaked) / (100 - leaked))
    assert any("without the leaked ones" in reason for reason in report.reasons)


def test_a_cohort_of_unseen_images_is_clean() -> None:
    train, cohort, _, _, ids = _cohort()
    report = find_leakage(train, cohort[20:], eval_ids=ids[20:], record=False)
    assert report.passed and report.leaked == [] and report.label == "ok"


def test_embeddings_from_an_encoder_replace_the_pixel_embeddings() -> None:
    rng = np.random.default_rng(0)
    train = rng.normal(size=(50, 8, 8))
    cohort = rng.normal(size=(5, 8, 8))
    train_embeddings = rng.normal(size=(50, 16))
    eval_embeddings = rng.normal(size=(5, 16))
    eval_embeddings[3] = 2.0 * train_embeddings[41]  # same direction: cosine 1
    report = find_leakage(train, cohort, train_embeddings=train_embeddings,
                          eval_embeddings=eval_embeddings, record=False)
    assert [(row.eval_index, row.train_index, row.kind) for row in report.leaked] == [
        (3, 41, "near")]
    assert report.leaked[0].similarity == pytest.approx(1.0)


def test_bad_leakage_arguments_say_what_was_expected() -> None:
    images = np.zeros((3, 8, 8))
    with pytest.raises(ValueError, match="cosine similarity in \\(0, 1\\]"):
        find_leakage(images, images, threshold=1.5)
    with pytest.raises(ValueError, match="2 eval_ids for 3"):
        find_leakage(images, images, eval_ids=["a", "b"])
    with pytest.raises(ValueError, match="images of one shape"):
        find_leakage(images, np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="both train_embeddings and eval_embeddings"):
        find_leakage(images, images, train_embeddings=np.ones((3, 2)))


def test_the_leakage_report_is_recorded_as_an_evaluator_span(traced: Path) -> None:
    train, cohort, _, _, ids = _cohort()
    report = find_leakage(train, cohort, eval_ids=ids)
    vlmscope.shutdown()
    rows = query(traced, f"""
        SELECT attributes->>'$."{cv.VLMSCOPE_TRAINING_CHECK_NAME}"',
               attributes->>'$."{cv.OPENINFERENCE_SPAN_KIND}"',
               (attributes->>'$."{cv.VLMSCOPE_TRAINING_CHECK_SCORE}"')::DOUBLE,
               attributes->>'$."{cv.METADATA}"'
        FROM spans WHERE name = '{cv.TRAINING_CHECK_SPAN_NAME}'""")
    assert [(name, kind) for name, kind, _, _ in rows] == [("leakage", cv.SPAN_KIND_EVALUATOR)]
    assert rows[0][2] == pytest.approx(report.score)
    metadata = json.loads(rows[0][3])
    assert metadata["exact_rows"] == report.exact_rows
    assert metadata["thresholds"] == {"threshold": 0.99}
