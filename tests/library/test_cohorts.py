"""Paraphrased-image cohorts on real images (digits, scikit-image photos) and embedding drift
between stored cohorts."""

from __future__ import annotations

import numpy as np
import pytest

import vlmscope
from tests.digits import digit_model, digit_pipeline, digits_dataset
from tests.helpers import query
from vlmscope.cohorts import (
    CORRUPTIONS,
    SEVERITY_CONSTANTS,
    corrupt,
    derived_row_id,
    drift,
    perturb,
    robustness,
)

skimage_data = pytest.importorskip("skimage.data")
skimage_color = pytest.importorskip("skimage.color")
Image = pytest.importorskip("PIL.Image")


def photos() -> vlmscope.Dataset:
    """Three real photographs from scikit-image, shrunk to 96 pixels on the long side."""
    records = []
    for name in ("astronaut", "coffee", "chelsea"):
        image = Image.fromarray(getattr(skimage_data, name)())
        image.thumbnail((96, 96))
        records.append({"id": name, "image": image, "expected": name, "tags": ["photo"]})
    return vlmscope.Dataset.from_records("photos", records)


def test_derived_rows_keep_their_source_ground_truth_and_size() -> None:
    source = photos()
    derived = perturb(source, severities=[1, 5], seed=0)
    assert derived.name == "photos+perturbed" and derived.derived_from == "photos"
    assert [r.id for r in derived.rows[:3]] == ["astronaut", "coffee", "chelsea"]
    assert len(derived) == 3 + 3 * len(CORRUPTIONS) * 2
    for row in derived.rows[3:]:
        clean = source.row(row.source_row_id)
        assert row.id == derived_row_id(clean.id, row.corruption, row.severity)
        assert row.expected == clean.expected and row.severity in (1, 5)
        assert row.tags == ("photo", f"corruption:{row.corruption}")
        assert row.image.size == clean.image.size and row.image.mode == "RGB"


def test_perturbation_is_seeded_per_row_and_changes_with_the_seed() -> None:
    source = photos()
    first = perturb(source, ["gaussian_noise", "crop", "rotation"], [3], seed=7,
                    include_clean=False)
    again = perturb(source, ["gaussian_noise", "crop", "rotation"], [3], seed=7,
                    include_clean=False)
    other = perturb(source, ["gaussian_noise"], [3], seed=8, include_clean=False)
    assert all(np.array_equal(np.asarray(a.image), np.asarray(b.image))
               for a, b in zip(first, again, strict=True))
    assert not np.array_equal(np.asarray(first.row("astronaut~gaussian_noise@3").image),
                              np.asarray(other.row("astronaut~gaussian_noise@3").image))


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_severity_five_moves_a_photo_further_from_its_source_than_severity_one(
        corruption: str) -> None:
    rng = np.random.default_rng(0)
    for row in photos():
        clean = np.asarray(row.image)
        distance = [np.abs(corrupt(clean, corruption, s, rng).astype(float) - clean).mean()
                    for s in (1, 5)]
        assert 0 < distance[0] < distance[1]


def test_brightness_matches_scikit_image_hsv_at_imagenet_c_constants() -> None:
    clean = np.asarray(photos().row("astronaut").image)
    for severity, c in enumerate(SEVERITY_CONSTANTS["brightness"], start=1):
        hsv = skimage_color.rgb2hsv(clean)
        hsv[..., 2] = np.clip(hsv[..., 2] + c, 0, 1)
        reference = np.clip(skimage_color.hsv2rgb(hsv), 0, 1) * 255
        ours = corrupt(clean, "brightness", severity, np.random.default_rng(0)).astype(float)
        assert np.abs(ours - reference).max() <= 1.0


def test_unknown_corruptions_and_severities_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown corruption"):
        perturb(photos(), ["fog"])
    with pytest.raises(ValueError, match="severities must be among 1..5"):
        perturb(photos(), ["contrast"], [0])


def test_higher_severity_flips_digit_predictions_at_least_as_often(traced) -> None:
    model = digit_model(0)
    clean = digits_dataset("digits-40", stop=1200 + 40)
    derived = perturb(clean, severities=[1, 5], seed=0)
    pipeline = digit_pipeline(model)
    derived.run(pipeline, name="perturbed-early", batch_size=100, progress=False)
    derived.run(digit_pipeline(digit_model(1)), name="perturbed-late", batch_size=100,
                progress=False)
    vlmscope.force_flush()
    report = robustness("perturbed-early", baseline="perturbed-late")
    by_severity = {s: [level["flip_rate"] for level in report["by_severity"]
                       if level["severity"] == s] for s in (1, 5)}
    assert all(len(rates) == len(CORRUPTIONS) for rates in by_severity.values())
    assert np.mean(by_severity[1]) <= np.mean(by_severity[5])
    assert np.mean(by_severity[5]) > 0
    for level in report["by_severity"]:
        assert level["rows"] == 40
        assert -1 <= level["accuracy_drop"] <= 1 and 0 <= level["flip_rate"] <= 1
    late = {(lv["corruption"], lv["severity"]): lv for lv in robustness(
        "perturbed-late")["by_severity"]}
    for entry in report["by_corruption"]:
        mine = [lv for lv in report["by_severity"] if lv["corruption"] == entry["corruption"]]
        expected_ce = sum(1 - lv["accuracy"] for lv in mine) / sum(
            1 - late[(lv["corruption"], lv["severity"])]["accuracy"] for lv in mine)
        assert entry["ce"] == pytest.approx(expected_ce)
    assert report["mce"] == pytest.approx(np.mean([c["ce"] for c in report["by_corruption"]]))
    vlmscope.shutdown()
    sources = query(traced, "SELECT count(*) FILTER (WHERE source_row_id IS NOT NULL), "
                            "count(*) FILTER (WHERE corruption IS NULL) FROM dataset_rows "
                            "WHERE dataset = 'digits-40+perturbed'")
    assert sources == [(40 * len(CORRUPTIONS) * 2, 40)]


def test_drift_is_found_between_clean_and_blurred_digits_but_not_between_random_halves(
        traced) -> None:
    pipeline = digit_pipeline(digit_model(0))
    clean = digits_dataset("clean", stop=1200 + 200)
    blurred = perturb(clean, ["gaussian_blur"], [3], name="blurred", include_clean=False)
    order = np.random.default_rng(0).permutation(len(clean))
    halves = [vlmscope.Dataset(name, [clean.rows[i] for i in sorted(part)])
              for name, part in (("half-a", order[:100]), ("half-b", order[100:]))]
    clean.run(pipeline, name="clean-run", batch_size=100, progress=False)
    blurred.run(pipeline, name="blurred-run", batch_size=100, progress=False)
    for half in halves:
        half.run(pipeline, name=f"{half.name}-run", batch_size=100, progress=False)
    vlmscope.force_flush()

    shifted = drift("clean-run", "blurred-run", seed=0)
    assert shifted.drifted and shifted.rows_a == shifted.rows_b == 200
    assert shifted.dimension == 512
    assert shifted.methods["mmd"].p_value < 0.05
    assert shifted.methods["domain_classifier"].score > 0.9
    same = drift("half-a", "half-b", seed=0)  # cohort names
    assert not same.drifted and same.rows_a == same.rows_b == 100
    assert not same.methods["mmd"].drifted and not same.methods["domain_classifier"].drifted
    assert same.methods["drifted_dims"].score < shifted.methods["drifted_dims"].score
    assert drift("half-a", "half-b", seed=0).to_dict() == same.to_dict()


def test_drift_on_arrays_needs_matching_dimensions() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="dimensions 4 and 5"):
        drift(rng.normal(size=(10, 4)), rng.normal(size=(10, 5)))
    moved = drift(rng.normal(size=(60, 4)), rng.normal(1.0, 1.0, size=(60, 4)),
                  permutations=100)
    assert moved.drifted and moved.methods["mean_euclidean"].score > 1.5
