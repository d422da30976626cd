"""The reference recipe (docs/recipe.md): geometry, smoothing, range and background."""

import math

import numpy as np
import pytest

from mnist_large_scale.recipe import (
    Recipe,
    canvas_margin,
    recorded,
    soft_threshold,
    transform_image,
    transform_images,
)

BACKGROUND = -0.76292
RECIPE = Recipe()


def weighted_centroid_and_radius(image: np.ndarray, background: float) -> tuple[np.ndarray, float]:
    """Centroid (row, col) and radius of gyration of the pixels above background, intensity-weighted."""
    weight = np.clip(image - background, 0, None)
    rows, cols = np.indices(image.shape)
    total = weight.sum()
    centre = np.array([(weight * rows).sum(), (weight * cols).sum()]) / total
    radius = math.sqrt((weight * ((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2)).sum() / total)
    return centre, radius


def test_background_is_the_soft_threshold_of_zero():
    assert soft_threshold(0.0, 0.02, 128) == pytest.approx(BACKGROUND, abs=1e-5)
    assert soft_threshold(255.0, 0.02, 128) == pytest.approx(0.76123, abs=1e-5)
    out = transform_image(np.zeros((28, 28), np.uint8), 2.0, (112, 112))
    assert np.all(out == soft_threshold(0.0, 0.02, 128))


@pytest.mark.parametrize("scale", [0.5, 1.0, 2 ** 0.25, 2.0, 4.0, 8.0])
def test_a_centred_blob_stays_at_the_frame_centre(scale):
    rows, cols = np.indices((28, 28))
    blob = 255 * np.exp(-((rows - 13.5) ** 2 + (cols - 13.5) ** 2) / (2 * 2.0**2))
    out = transform_image(blob, scale, (112, 112))
    centre, _ = weighted_centroid_and_radius(out, out.min())
    assert centre == pytest.approx([55.5, 55.5], abs=1e-6)


def test_a_digit_grows_by_s_and_its_centroid_offset_too(mnist_train_images):
    digits = mnist_train_images[:20].astype(float)
    ref_centres, ref_radii = zip(*(weighted_centroid_and_radius(transform_image(d, 1.0, (112, 112)), BACKGROUND) for d in digits), strict=True)
    for scale in (2.0, 2 ** 1.5, 4.0):
        centres, radii = zip(*(weighted_centroid_and_radius(transform_image(d, scale, (112, 112)), BACKGROUND) for d in digits), strict=True)
        ratio = np.median(np.array(radii) / np.array(ref_radii))
        assert ratio == pytest.approx(scale, rel=0.03)
        offsets = np.array(centres) - 55.5
        ref_offsets = np.array(ref_centres) - 55.5
        assert np.abs(offsets - scale * ref_offsets).max() < 1.0


def test_mean_centroid_at_scale_two_sits_past_the_centre_as_in_the_published_files(mnist_train_images):
    centres = [weighted_centroid_and_radius(transform_image(d, 2.0, (112, 112)), BACKGROUND)[0] for d in mnist_train_images[:200]]
    mean = np.mean(centres, axis=0)
    assert 55.7 < mean[0] < 57.5 and 55.7 < mean[1] < 57.5


@pytest.mark.parametrize("scale", [0.5, 1.0, 2.0, 4.0, 8.0])
def test_range_and_background_on_real_digits(mnist_test_images, scale):
    out = np.stack([transform_image(d, scale, (112, 112)) for d in mnist_test_images[:10]])
    assert np.isfinite(out).all()
    assert out.min() >= soft_threshold(0.0, 0.02, 128) - 1e-12
    assert out.max() <= soft_threshold(255.0, 0.02, 128) + 1e-12
    if scale <= 4:
        assert np.all(out[:, 0, 0] == out.min())


def test_smoothing_is_computed_beyond_the_frame():
    # A digit overflowing the frame: cropping before smoothing would darken the edges.
    image = np.full((28, 28), 255, np.uint8)
    out = transform_image(image, 8.0, (112, 112))
    assert np.allclose(out, soft_threshold(255.0, 0.02, 128), atol=1e-12)


def test_canvas_margin_covers_scipys_kernel_radius():
    for sigma in (0.4375, 0.875, 3.5, 7.0):
        assert canvas_margin(sigma, 4.0) == int(4.0 * sigma + 0.5) + 1


def test_stretch_makes_the_maximum_the_arctan_of_clip_max(mnist_train_images):
    out = transform_image(mnist_train_images[0], 1.0, (112, 112), Recipe(stretch=True))
    assert out.max() == pytest.approx(soft_threshold(255.0, 0.02, 128), abs=1e-12)


def test_clip_off_lets_bicubic_overshoot_through(mnist_train_images):
    # At s = 1 resampling is the identity; at s = 2**0.25 bicubic over- and undershoots.
    clipped = transform_image(mnist_train_images[0], 2**0.25, (112, 112), Recipe(sigma_per_scale=0))
    raw = transform_image(mnist_train_images[0], 2**0.25, (112, 112), Recipe(sigma_per_scale=0, clip=False))
    assert raw.min() < clipped.min() == soft_threshold(0.0, 0.02, 128)
    assert raw.max() > clipped.max()


@pytest.mark.parametrize(
    "changes",
    [{}, {"antialias": True}, {"order": 1}, {"stretch": True}, {"clip": False}, {"centre_shift": (0.5, -0.25)}, {"round_to_float32": True}, {"sigma_per_scale": 0.0}, {"smooth_boundary": "reflect"}, {"smooth_boundary": "nearest", "stretch": True}],
)
def test_the_batched_transform_gives_each_image_its_values_alone(mnist_test_images, changes):
    """recipe.transform_images (the scikit-image build): batches of one scale, threads, the bytes of transform_image."""
    images = mnist_test_images[:70]
    rng = np.random.default_rng(1)
    recipe = Recipe(**changes)
    for scales in (np.full(70, 0.6), np.where(rng.random(70) < 0.5, 2.0, 5.657), rng.uniform(0.5, 8.0, 70)):
        batched = transform_images(images, scales, (64, 48), recipe, threads=2)
        alone = np.stack([transform_image(image, float(scale), (64, 48), recipe) for image, scale in zip(images, scales, strict=True)])
        np.testing.assert_array_equal(batched, alone)


def test_transform_is_recorded_only_when_not_exact():
    assert "transform" not in Recipe().recorded() and Recipe().as_dict()["transform"] == "exact"
    assert Recipe(transform="scikit-image").recorded()["transform"] == "scikit-image"
    assert recorded({"order": 3, "transform": "exact"}) == {"order": 3}
    assert recorded({"order": 3, "transform": "scikit-image"}) == {"order": 3, "transform": "scikit-image"}
    with pytest.raises(ValueError, match="transform must be one of exact, scikit-image"):
        Recipe(transform="scipy")
