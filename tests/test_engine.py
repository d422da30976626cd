"""The batched engine equals the per-image reference recipe within its documented bound,
and its result for an image does not depend on the images computed beside it.

Most checks run on synthetic digit-like images (always available, with ink on
the 28 x 28 border so that the warp's edge handling is exercised); the same
checks run on real MNIST digits (the session fixture fetches them when the
checkout has none).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from scipy.ndimage import _filters as scipy_filters

from mnist_large_scale import engine, recipe
from mnist_large_scale import recipe as recipe_module
from mnist_large_scale.build import draw_scales
from mnist_large_scale.engine import grids, skimage_weights, stages, transform_images, workspace
from mnist_large_scale.engine.band import Band
from mnist_large_scale.engine.geometry import AxisGeometry
from mnist_large_scale.engine.plan import plan_axis, shared_plan
from mnist_large_scale.names import PUBLISHED_TEST_SCALES, ScaleSpec
from mnist_large_scale.recipe import Recipe

# The engine computes on exact grids: within this of the float reference.
TOLERANCE = engine.ENGINE_TOLERANCE
# With the default recipe, on real digits (measured: at most 1.07e-9).
REAL_DIGITS_BOUND = 1.5e-9
OUT = (112, 112)
SCALES = [0.5, 0.595, 1.0, 1.189, 2.0, 3.0, 4.0, 5.657, 8.0]


def synthetic_digits(n: int, seed: int = 0) -> np.ndarray:
    """Digit-like uint8 images: strokes of Gaussian blobs, saturated cores, ink on the border.

    Returns
    -------
    (n, 28, 28) ndarray of uint8
        Image 0 is blank, image 1 has ink along all four borders; the others
        are random strokes, some running off the frame.
    """
    rng = np.random.default_rng(seed)
    rows, cols = np.indices((28, 28), dtype=np.float64)
    images = np.zeros((n, 28, 28))
    for k in range(2, n):
        start, end = rng.uniform(-2, 30, 2), rng.uniform(-2, 30, 2)
        width = rng.uniform(0.8, 2.5)
        for t in np.linspace(0, 1, 12):
            r, c = start + t * (end - start)
            images[k] += 400 * np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / (2 * width**2))
        images[k] += rng.uniform(0, 40, (28, 28)) * (rng.random((28, 28)) < 0.05)
    if n > 1:
        images[1, [0, -1], :] = 255
        images[1, :, [0, -1]] = 200
        images[1, 10:18, 10:18] = 255
    return np.clip(np.rint(images), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def synthetic() -> np.ndarray:
    return synthetic_digits(12)


@pytest.fixture(scope="module")
def real(mnist_train_images) -> np.ndarray:
    return mnist_train_images[:12]


def log_uniform(n: int, low: float, high: float, seed: int) -> np.ndarray:
    """Per-sample scales drawn log-uniformly in [low, high)."""
    rng = np.random.default_rng(seed)
    return np.exp(rng.uniform(np.log(low), np.log(high), n))


def max_difference(images, scales, out_shape=OUT, rcp: Recipe = Recipe(), threads: int = 1) -> float:
    expected = recipe.transform_images(images, scales, out_shape, rcp)
    got = transform_images(images, scales, out_shape, rcp, threads=threads)
    assert got.shape == expected.shape and got.dtype == np.float64
    return float(np.abs(got - expected).max())


@pytest.mark.parametrize("scale", SCALES)
def test_single_scales_equal_the_reference(synthetic, scale):
    assert max_difference(synthetic, scale) <= TOLERANCE


@pytest.mark.parametrize("low, high", [(1.0, 4.0), (0.5, 8.0)])
def test_per_sample_scales_equal_the_reference(synthetic, low, high):
    images = np.concatenate([synthetic, synthetic[::-1]])
    assert max_difference(images, log_uniform(len(images), low, high, seed=3)) <= TOLERANCE


@pytest.mark.parametrize(
    "scales, out_shape, changes",
    [
        (2.0, (64, 48), {}),
        (0.7, (33, 57), {}),
        (5.0, (33, 57), {}),
        (3.0, OUT, {"clip": False}),
        ("mixed", (33, 57), {"clip": False}),
        (3.0, OUT, {"stretch": True}),
        (0.5, OUT, {"stretch": True}),
        ("mixed", (64, 48), {"stretch": True}),
        (1.7, OUT, {"sigma_per_scale": 0.0}),
        ("mixed", (50, 51), {"sigma_per_scale": 0.0}),
        (2.3, OUT, {"truncate": 2.5}),
        ("mixed", OUT, {"truncate": 3.0}),
        (2.3, (40, 41), {"order": 1}),
        (0.77, (60, 61), {"order": 0}),
        (2.3, OUT, {"order": 0, "clip": False}),
        (2.3, OUT, {"clip_min": 10.0, "clip_max": 200.0}),
        ("mixed", (40, 40), {"clip_min": 10.0, "clip_max": 200.0}),
        (1.3, OUT, {"gain": 0.05, "offset": 100.0}),
        (0.5, OUT, {"antialias": True}),
        (0.6, (33, 57), {"antialias": True, "order": 1}),
        (2.0, OUT, {"antialias": True}),
        ("mixed", OUT, {"antialias": True}),
        ("mixed", (40, 41), {"antialias": True, "clip": False}),
        (2.0, OUT, {"centre_shift": (0.5, 0.5)}),
        (0.7, (33, 57), {"centre_shift": (-0.25, 1.5)}),
        ("mixed", OUT, {"centre_shift": (0.5, -0.5), "antialias": True}),
    ],
)
def test_recipe_variants_equal_the_reference(synthetic, scales, out_shape, changes):
    if isinstance(scales, str):
        scales = log_uniform(len(synthetic), 0.5, 8.0, seed=5)
    assert max_difference(synthetic, scales, out_shape, replace(Recipe(), **changes)) <= TOLERANCE


@pytest.mark.parametrize("scale", [0.5, 1 / 3, 1.0, 1.5, 7.3, 8.0])
@pytest.mark.parametrize("out_shape", [(112, 112), (33, 57)])
def test_the_resampling_alone_equals_the_warp(synthetic, scale, out_shape):
    """No clip, no smoothing: the output is the thresholded warp, edge pixels and all."""
    assert max_difference(synthetic, scale, out_shape, Recipe(clip=False, sigma_per_scale=0.0)) <= TOLERANCE


def test_integer_float_input_gives_the_bytes_of_uint8(synthetic):
    np.testing.assert_array_equal(transform_images(synthetic.astype(np.float32), 2.5, OUT), transform_images(synthetic, 2.5, OUT))


@pytest.mark.parametrize("change", [lambda x: x * 1.6 - 60, lambda x: x + 0.5, lambda x: x * 1.6])
def test_input_off_the_exact_grid_is_refused(synthetic, change):
    """Inputs must be integer grey levels in [0, 255], or the products are not exact."""
    with pytest.raises(ValueError, match="integer grey levels"):
        transform_images(change(synthetic.astype(np.float64)), 2.5, OUT)


def test_a_clip_range_too_wide_for_exact_grids_is_refused(synthetic):
    with pytest.raises(ValueError, match="too wide"):
        transform_images(synthetic, 2.0, OUT, Recipe(clip_max=1000.0))


def test_a_groups_support_spans_the_ink_extents_of_its_images(synthetic):
    """The shared plans' input window is the union of the images' own ink boxes; blank is (0, 0)."""
    images = np.concatenate([np.roll(synthetic, (3, -4), axis=(1, 2))[2:6], np.zeros((2, 28, 28), np.uint8)])
    extents = stages.ink_extents(images)
    inked = extents[:, 1] > 0
    union = ((extents[inked, 0].min(), extents[inked, 1].max()), (extents[inked, 2].min(), extents[inked, 3].max()))
    assert stages.input_support(images) == union
    assert stages.input_support(images[inked][:1]) == ((extents[0, 0], extents[0, 1]), (extents[0, 2], extents[0, 3]))
    assert stages.input_support(images[~inked]) == ((0, 0), (0, 0)) and not stages.ink_extents(images[~inked]).any()


def test_blank_images_give_the_background(synthetic):
    blank = np.zeros((3, 28, 28), np.uint8)
    got = transform_images(blank, 2.0, OUT)
    assert np.all(got == engine.background_value(Recipe()))
    assert np.all(got == recipe.transform_images(blank, 2.0, OUT))


@pytest.mark.parametrize("scales", [2.0, "mixed"])
def test_threads_give_the_same_result(synthetic, scales):
    images = np.concatenate([synthetic] * 4)
    if isinstance(scales, str):
        scales = log_uniform(len(images), 1, 4, seed=2)
    one = transform_images(images, scales, OUT, threads=1)
    two = transform_images(images, scales, OUT, threads=2)
    np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize(
    "rcp", [Recipe(), Recipe(antialias=True), Recipe(centre_shift=[0.3, -0.2], order=1)], ids=["default", "antialias", "shifted"]
)
def test_chunks_give_the_result_of_the_whole_batch(synthetic, rcp):
    images = np.concatenate([synthetic] * 3)
    # 0.3 .. 8: kernels of 5 to 57 taps and prefilters of several widths, whose
    # weights sit on grids of several widths
    scales = log_uniform(len(images), 0.3, 8, seed=4)
    whole = transform_images(images, scales, OUT, rcp)
    parts = np.concatenate(
        [transform_images(images[a : a + 7], scales[a : a + 7], OUT, rcp) for a in range(0, len(images), 7)]
    )
    np.testing.assert_array_equal(whole, parts)


@pytest.mark.parametrize("rcp", [Recipe(), Recipe(antialias=True, centre_shift=[4.5, -7.25])], ids=["default", "antialias+shift"])
def test_aligned_per_sample_groups_give_each_image_alone(synthetic, rcp):
    """Per-sample groups put each image's matrices where its own ink is: digits rolled across
    the input, in two groups, at scales whose regions run past the frame's edges or stay
    inside it, give the bytes of each image computed alone."""
    moved = [np.roll(synthetic, (dy, dx), axis=(1, 2)) for dy, dx in [(0, 0), (-4, -5), (5, 4), (-5, 5)]]
    images = np.concatenate(moved * 2)
    images[:: len(synthetic) + 1] = 0  # and a few blank ones
    scales = log_uniform(len(images), 0.4, 8.0, seed=12)
    whole = transform_images(images, scales, (64, 80), rcp)
    alone = np.concatenate([transform_images(images[i : i + 1], scales[i : i + 1], (64, 80), rcp) for i in range(len(images))])
    np.testing.assert_array_equal(whole, alone)


@pytest.mark.parametrize("scale", [1.0, 3.0])
def test_the_order_of_the_images_does_not_matter(synthetic, scale):
    """At larger scales the engine groups images by ink extent; results stay in place."""
    images = np.concatenate([synthetic] * 3)
    order = np.random.default_rng(6).permutation(len(images))
    whole = transform_images(images, scale, OUT)
    np.testing.assert_array_equal(transform_images(images[order], scale, OUT), whole[order])


@pytest.mark.parametrize("scales", [0.5, 1.5, 6.0, "mixed"])
def test_out_is_filled_in_place_whatever_it_held(synthetic, scales):
    """The writer reuses its buffers: every pixel of ``out`` must be written, background included."""
    images = synthetic.copy()
    images[::5] = 0  # blank images have no region: only their background is written
    if scales == "mixed":
        scales = np.geomspace(0.5, 8.0, len(images))
    out = np.full((len(images), *OUT), np.nan)
    result = transform_images(images, scales, OUT, out=out)
    assert result is out
    np.testing.assert_array_equal(out, transform_images(images, scales, OUT))


def test_empty_batch():
    assert transform_images(np.zeros((0, 28, 28), np.uint8), 2.0, OUT).shape == (0, *OUT)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"images": np.zeros((28, 28))}, ValueError),
        ({"scales": 0.0}, ValueError),
        ({"scales": -1.0}, ValueError),
        ({"scales": np.nan}, ValueError),
        ({"recipe": Recipe(order=2)}, NotImplementedError),
        ({"recipe": Recipe(truncate=-1.0)}, ValueError),
        ({"threads": 0}, ValueError),
        ({"out": np.zeros((2, 112, 112), np.float32)}, ValueError),
    ],
)
def test_bad_arguments_are_refused(kwargs, error):
    arguments = {"images": np.zeros((2, 28, 28), np.uint8), "scales": 2.0, "out_shape": OUT, **kwargs}
    with pytest.raises(error):
        transform_images(**arguments)


@pytest.mark.parametrize("sigma", [1e-20, 0.05, 0.4375, 0.875, 1.0, 2.7, 7.0])
@pytest.mark.parametrize("truncate", [4.0, 2.5, 0.0])
def test_gaussian_weights_are_scipys(sigma, truncate):
    radius, weights = skimage_weights.gaussian_weights(np.array([sigma, 2.0]), truncate)
    if sigma <= 1e-15:  # scipy's gaussian_filter skips the axis
        np.testing.assert_array_equal(weights[0][weights[0] != 0], [1.0])
        return
    expected = scipy_filters._gaussian_kernel1d(sigma, 0, int(truncate * sigma + 0.5))
    reach = weights.shape[1] // 2
    np.testing.assert_allclose(weights[0, reach - radius[0] : reach + radius[0] + 1], expected, rtol=1e-14, atol=1e-13)
    assert np.all(weights[0, : reach - radius[0]] == 0) and np.all(weights[0, reach + radius[0] + 1 :] == 0)


def test_blas_is_held_to_one_thread_inside_the_limit():
    from threadpoolctl import threadpool_info

    assert any(info["user_api"] == "blas" for info in threadpool_info()), "numpy's BLAS not found"
    with engine.blas_threads_limited(1):
        assert all(info["num_threads"] == 1 for info in threadpool_info() if info["user_api"] == "blas")


@pytest.mark.parametrize("scale", PUBLISHED_TEST_SCALES)
def test_real_digits_at_every_published_scale(mnist_test_images, scale):
    """The documented bound, on 200 real test digits at each of the 17 published scales."""
    assert max_difference(mnist_test_images[:200], scale) <= REAL_DIGITS_BOUND


def test_real_digits_at_per_sample_scales(mnist_train_images):
    images = mnist_train_images[:300]
    assert max_difference(images, draw_scales(ScaleSpec.parse("1p000-4p000"), len(images), 20200605, "train")) <= REAL_DIGITS_BOUND


def test_a_flat_region_stays_exactly_flat():
    """Interpolation and smoothing weights sum to exactly 1: inside a big white square
    the canvas is exactly 255 and the output exactly the threshold of 255."""
    square = np.zeros((1, 28, 28), np.uint8)
    square[0, 4:24, 4:24] = 255
    out = transform_images(square, 8.0, OUT)
    assert np.all(out[0, 40:72, 40:72] == stages.threshold_table(Recipe()).scalar(255.0))


@pytest.mark.parametrize(
    ("rcp", "scale", "near", "far"), [(Recipe(), 1.0, 1.1, 8.0), (Recipe(antialias=True), 0.7, 0.72, 0.25)], ids=["default", "antialias"]
)
def test_an_image_does_not_depend_on_the_scales_beside_it(synthetic, rcp, scale, near, far):
    """Per-sample matrices are built for a stack of images at once; an image's own
    weights (and the grid they sit on) must not depend on the others' kernels or prefilters."""
    images = np.concatenate([synthetic[3:4], synthetic[4:5]])
    beside_near = transform_images(images, [scale, near], OUT, rcp)[0]
    beside_far = transform_images(images, [scale, far], OUT, rcp)[0]
    np.testing.assert_array_equal(beside_near, beside_far)


@pytest.mark.parametrize("scales", [2.0, "mixed"])
def test_a_float32_round_trip_gives_float32_values_of_the_reference(synthetic, scales):
    """Each value is a float32, and the one nearest the reference's unless the reference sits
    within the engine's tolerance of a rounding boundary (then one float32 step away)."""
    if isinstance(scales, str):
        scales = log_uniform(len(synthetic), 0.5, 8.0, seed=5)
    recipe = Recipe(round_to_float32=True)
    ours = transform_images(synthetic, scales, OUT, recipe)
    assert np.array_equal(ours, ours.astype(np.float32).astype(np.float64))
    theirs = recipe_module.transform_images(synthetic, scales, OUT, recipe)
    assert np.abs(ours - theirs).max() <= np.spacing(np.float32(1.0)) / 2
    assert engine.background_value(recipe) == float(np.float32(engine.background_value(Recipe())))


def test_switches_off_leave_the_default_bytes(synthetic):
    """antialias at scales >= 1 and a zero centre shift change nothing, to the bit."""
    scales = log_uniform(len(synthetic), 1.0, 8.0, seed=3)
    default = transform_images(synthetic, scales, OUT)
    assert np.array_equal(transform_images(synthetic, scales, OUT, Recipe(antialias=True, centre_shift=[0.0, 0.0])), default)


@pytest.mark.parametrize("order", engine.SUPPORTED_ORDERS)
def test_the_largest_tap_is_numpys_argmax(order):
    """The interpolation weights' rounding correction goes to the tap that argmax picks
    (the first of the largest magnitudes), ties at fraction 1/2 included."""
    fraction = np.concatenate([np.linspace(0.0, 1.0, 20001, endpoint=False), 0.5 + np.arange(-40, 41) * 2.0**-53])
    weights = skimage_weights.tap_weights(fraction, order)
    np.testing.assert_array_equal(skimage_weights.largest_tap(weights, order), np.abs(weights).argmax(axis=0))


def exact_rounded_product(band: Band, x: np.ndarray, stack: np.ndarray, rows_out: int) -> np.ndarray:
    """rint(C + F) for a rounded band, from its dense rows split into coarse and fine parts."""
    result = np.empty((len(x), rows_out, x.shape[2]))
    for i, matrix in enumerate(stack):
        dense = np.zeros((rows_out, x.shape[1]))
        for r in np.flatnonzero(band._row_blocks[:rows_out] != -2):  # zero rows stay zero
            start, weights = band._row(int(r), int(matrix))
            dense[r, start : start + len(weights)] = weights
        coarse, fine = grids.split_weights(dense)
        # each part's product is exact (integers on its grid), whatever the order
        result[i] = np.rint(coarse @ x[i] + fine @ x[i])
    return result


@pytest.mark.parametrize("scales", [[2.0], [3.3], [0.7], list(np.geomspace(1.0, 1.2, 5))], ids=["s2", "s3.3", "s0.7", "stack"])
@pytest.mark.parametrize("stage", ["resample", "smooth", "last smooth"])
def test_a_rounded_product_rounds_as_the_exact_two_parts(scales, stage):
    """The one-part product of the rounded stages (the rows' resampling, both smoothings),
    checked and repaired, equals the rounded two-part result on data at the stage's bound;
    also when every element is repaired."""
    rcp = Recipe(antialias=True)
    plan = plan_axis(np.array(scales), 112, 28, rcp, (0, 28), False, stage == "last smooth")
    band = getattr(plan, stage.split()[-1])
    k = len(scales)
    # (input rows, output rows): input pixels to canvas pixels, or canvas pixels to frame pixels
    width, columns = (28, plan.size) if stage == "resample" else (plan.size, plan.rows)
    bound = grids.RESAMPLED_BOUND if stage == "resample" else grids.canvas_bound(rcp)
    rng = np.random.default_rng(7)
    x = np.rint(rng.uniform(-1, 1, (k, width, 40)) ** 3 * math.ldexp(bound, grids.UNIT_BITS))
    expected = exact_rounded_product(band, x, np.arange(k), columns)
    work = workspace.Workspace()
    got = band.left_rounded(x, np.empty((k, columns, 40)), slice(None), work)
    np.testing.assert_array_equal(got, expected)
    forced = replace(band, error_bound=0.49)  # nearly every element goes through the exact repair
    np.testing.assert_array_equal(forced.left_rounded(x, np.empty((k, columns, 40)), slice(None), work), expected)


@pytest.mark.parametrize("scales", [0.5, 2.0, 4.0, "mixed"])
def test_repairing_every_element_changes_no_byte(synthetic, scales, monkeypatch):
    """The engine with every rounded product repaired exactly (as if no product could be
    trusted) gives the bytes of the engine as it runs."""
    if scales == "mixed":
        scales = log_uniform(len(synthetic), 0.5, 8.0, seed=9)
    attach_bound = Band.with_error_bound

    def distrusted(band, *args):
        return replace(attach_bound(band, *args), error_bound=0.49)

    for rcp in (Recipe(), Recipe(antialias=True, centre_shift=[0.2, -0.1])):
        shared_plan.cache_clear()
        as_run = transform_images(synthetic, scales, OUT, rcp)
        monkeypatch.setattr(Band, "with_error_bound", distrusted)
        shared_plan.cache_clear()
        repaired = transform_images(synthetic, scales, OUT, rcp)
        monkeypatch.undo()
        shared_plan.cache_clear()
        np.testing.assert_array_equal(repaired, as_run)


def test_a_rounded_product_is_repaired_where_it_rounds_the_other_way():
    """Over 2.2 million products at the data bound, the one-part product of a wide Gaussian
    (s = 7) lands on the other side of a half-integer than the exact result for a few
    elements (2 here with OpenBLAS's Haswell kernel); the check finds and repairs them."""
    rcp = Recipe()
    plan = plan_axis(np.array([7.0]), 112, 28, rcp, (0, 28), False, False)
    x = np.rint(np.random.default_rng(1).uniform(0.5, 1, (1, plan.size, 20000)) * math.ldexp(255.0, grids.UNIT_BITS))
    rows = plan.rows
    got = plan.smooth.left_rounded(x, np.empty((1, rows, x.shape[2])), slice(None), workspace.Workspace())
    np.testing.assert_array_equal(got, exact_rounded_product(plan.smooth, x, np.arange(1), rows))


@pytest.mark.parametrize("rcp", [Recipe(), Recipe(antialias=True, centre_shift=[0.3, 0.0])], ids=["default", "antialias"])
def test_a_geometry_subset_equals_the_geometry_of_its_scales(rcp):
    """Per-sample windows compute one AxisGeometry and hand each group its subset: the
    subset must be exactly what the group's scales alone give (trimmed kernels and pixels)."""
    scales = np.sort(log_uniform(40, 0.3, 8.0, seed=11))
    window = AxisGeometry.of(scales, 112, 28, rcp, 0.3)
    for members in (slice(0, 8), slice(8, 30), slice(30, 40)):
        part, alone = window.subset(members), AxisGeometry.of(scales[members], 112, 28, rcp, 0.3)
        for field in ("radius", "kernel", "prefilter_radius", "prefilter", "p", "first", "fraction", "weights", "raw_weights", "data_weights"):
            np.testing.assert_array_equal(getattr(part, field), getattr(alone, field), err_msg=field)
