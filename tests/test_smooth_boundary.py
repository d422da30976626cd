"""The recipe's switch for the frame's edge (``recipe.smooth_boundary``).

``canvas`` smooths a canvas with a margin (the frame as a window on an
unbounded plane); ``reflect``, ``constant`` and ``nearest`` smooth the frame
itself with scipy.ndimage's boundary mode.  Here: the reference recipe is
scipy on the frame, the float model of the fit and the folded matrices equal
scipy, the exact engine equals the reference within its bound and keeps its
same-bytes properties in every mode, and files record the switch only when it
is not the default.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace

import h5py
import numpy as np
import pytest
from scipy import ndimage

from mnist_large_scale import engine, recipe
from mnist_large_scale.engine import grids, workspace
from mnist_large_scale.engine import plan as plan_module
from mnist_large_scale.engine import run as run_module
from mnist_large_scale.engine.geometry import AxisGeometry
from mnist_large_scale.engine.plan import plan_axis, shared_plan
from mnist_large_scale.engine.skimage_weights import boundary_index, folded_band, gaussian_weights
from mnist_large_scale.recipe import RECORDED_WHEN_SET, SMOOTH_BOUNDARIES, Recipe, recorded
from mnist_large_scale.recipe_fit import pre_threshold
from tests.test_engine import exact_rounded_product, log_uniform, synthetic_digits

FRAME_MODES = [mode for mode in SMOOTH_BOUNDARIES if mode != "canvas"]
OUT = (112, 112)


@pytest.fixture(scope="module")
def digits(mnist_train_images) -> np.ndarray:
    return mnist_train_images[:8]


@pytest.fixture(scope="module")
def synthetic() -> np.ndarray:
    """Digit-like strokes with ink on the 28 x 28 border: they reach the frame's edge from s = 2.9."""
    return synthetic_digits(12)


def max_difference(images, scales, out_shape=OUT, rcp: Recipe = Recipe(), threads: int = 1) -> float:
    expected = recipe.transform_images(images, scales, out_shape, rcp)
    got = engine.transform_images(images, scales, out_shape, rcp, threads=threads)
    return float(np.abs(got - expected).max())


@pytest.mark.parametrize("mode", FRAME_MODES)
@pytest.mark.parametrize("scale", [1.0, 5.657, 8.0])
def test_the_reference_smooths_the_frame_with_scipys_mode(digits, mode, scale):
    rcp = Recipe(smooth_boundary=mode)
    frame = np.clip(recipe.resample(digits[3], scale, OUT), 0, 255)
    smoothed = ndimage.gaussian_filter(frame, rcp.sigma(scale), mode=mode, cval=0.0, truncate=rcp.truncate)
    expected = recipe.soft_threshold(smoothed, rcp.gain, rcp.offset)
    np.testing.assert_array_equal(recipe.transform_image(digits[3], scale, OUT, rcp), expected)


@pytest.mark.parametrize("mode", SMOOTH_BOUNDARIES)
@pytest.mark.parametrize("scales", [2.0, 8.0, "per sample"])
def test_the_fits_float_model_equals_the_reference(digits, mode, scales):
    rcp = Recipe(smooth_boundary=mode, centre_shift=(0.5, -1.0))
    scales = np.geomspace(1.0, 8.0, len(digits)) if scales == "per sample" else np.full(len(digits), scales)
    model = (2 / math.pi) * np.arctan(rcp.gain * (pre_threshold(digits, scales, OUT, rcp) - rcp.offset))
    assert np.abs(model - recipe.transform_images(digits, scales, OUT, rcp)).max() < 1e-12


@pytest.mark.parametrize("mode", FRAME_MODES)
@pytest.mark.parametrize("length", [1, 2, 7, 30])
@pytest.mark.parametrize("sigma", [0.7, 3.0, 12.0])
def test_the_folded_band_is_scipys_correlation_with_that_boundary(mode, length, sigma):
    """Kernels wider than the line reflect (or repeat) more than once; on the engine's grid, rows sum exactly."""
    radius, kernel = gaussian_weights(np.array([sigma]), 4.0)
    kernel = grids.quantize_weights(kernel, grids.weight_grid_bits(2 * radius + 1, 255.0)[:, None], axis=1)
    line = np.random.default_rng(length).uniform(-1, 1, (length, 3))
    band = folded_band(kernel, 0, 0, length, length, length, mode)[0]
    expected = ndimage.correlate1d(line, kernel[0], axis=0, mode=mode, cval=0.0)
    np.testing.assert_allclose(band @ line, expected, rtol=0, atol=1e-12)
    sums = band.sum(axis=1)
    if mode == "constant":
        assert np.all(sums <= 1.0) and (length > 2 * int(4 * sigma + 0.5) or sums.max() < 1.0)
    else:
        assert np.all(sums == 1.0)  # a sum of the kernel's weights, all of them


def test_boundary_index_reflects_about_the_edge_repeatedly():
    index = np.arange(-7, 10)
    assert boundary_index(index, 3, "reflect").tolist() == [0, 0, 1, 2, 2, 1, 0, 0, 1, 2, 2, 1, 0, 0, 1, 2, 2]
    assert boundary_index(index, 3, "nearest").tolist() == [0] * 8 + [1] + [2] * 8
    assert boundary_index(index, 3, "constant").tolist() == [-1] * 7 + [0, 1, 2] + [-1] * 7


def test_the_default_is_recorded_without_the_key_and_the_others_with_it():
    assert RECORDED_WHEN_SET == {"smooth_boundary": "canvas", "transform": "exact"}
    assert "smooth_boundary" not in Recipe().recorded()
    assert Recipe().recorded() == {key: value for key, value in Recipe().as_dict().items() if key not in RECORDED_WHEN_SET}
    assert Recipe(smooth_boundary="reflect").recorded()["smooth_boundary"] == "reflect"
    assert recorded({"order": 3, "smooth_boundary": "canvas"}) == {"order": 3}
    assert Recipe.from_config(Recipe().recorded()) == Recipe()


def test_an_unknown_boundary_is_refused():
    with pytest.raises(ValueError, match="smooth_boundary must be one of canvas, reflect, constant, nearest, got 'wrap'"):
        Recipe(smooth_boundary="wrap")


@pytest.mark.parametrize("mode", SMOOTH_BOUNDARIES)
def test_a_file_records_the_boundary_only_when_set_and_validation_names_a_mismatch(tmp_path, mnist_base, mnist_paths, mode):
    from mnist_large_scale import NUMERICS_VERSION
    from mnist_large_scale.build import build_file
    from mnist_large_scale.names import parse_name
    from mnist_large_scale.validate import attribute_differences

    spec = parse_name("mnist_large_scale_te4_outsize48-48_scte1p500.h5")
    rcp = Recipe(smooth_boundary=mode)
    path = tmp_path / spec.name
    build_file(spec, mnist_base, mnist_paths, path, rcp, recipe.transform_images, seed=1)
    with h5py.File(path, "r") as h5:
        attrs = dict(h5.attrs)
    assert json.loads(attrs["recipe"]) == rcp.recorded()
    assert ("smooth_boundary" in json.loads(attrs["recipe"])) == (mode != "canvas")
    assert attribute_differences(attrs, spec, mnist_base, rcp, 1, NUMERICS_VERSION) == []
    other = Recipe(smooth_boundary="nearest" if mode != "nearest" else "canvas")
    assert attribute_differences(attrs, spec, mnist_base, other, 1, NUMERICS_VERSION) == [
        f"recipe.smooth_boundary is {mode!r} in the file, {other.smooth_boundary!r} in the config"
    ]


# --- the exact engine ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", FRAME_MODES)
@pytest.mark.parametrize("scale", [0.5, 1.0, 2.0, 3.0, 4.0, 5.657, 8.0])
def test_the_engine_equals_the_reference_in_each_mode(synthetic, mode, scale):
    assert max_difference(synthetic, scale, rcp=Recipe(smooth_boundary=mode)) <= engine.ENGINE_TOLERANCE


@pytest.mark.parametrize("mode", FRAME_MODES)
@pytest.mark.parametrize("scales", [5.657, 8.0, "per sample [1, 4]"])
@pytest.mark.parametrize("stretch", [False, True])
def test_the_engine_equals_the_reference_on_real_digits(mnist_test_images, mode, scales, stretch):
    """Also with the stretch, which scales each image's error by clip_max over its peak (on
    synthetic images with a faint peak that exceeds the bound at s = 8, with the canvas too)."""
    images = mnist_test_images[:24]
    if isinstance(scales, str):
        scales = log_uniform(len(images), 1.0, 4.0, seed=8)
    rcp = Recipe(smooth_boundary=mode, stretch=stretch)
    assert max_difference(images, scales, rcp=rcp) <= engine.ENGINE_TOLERANCE


@pytest.mark.parametrize("mode", FRAME_MODES)
@pytest.mark.parametrize("low, high", [(1.0, 4.0), (0.5, 8.0)])
def test_per_sample_scales_equal_the_reference_in_each_mode(synthetic, mode, low, high):
    images = np.concatenate([synthetic, synthetic[::-1]])
    scales = log_uniform(len(images), low, high, seed=3)
    assert max_difference(images, scales, rcp=Recipe(smooth_boundary=mode)) <= engine.ENGINE_TOLERANCE


@pytest.mark.parametrize(
    "scales, out_shape, changes",
    [
        (5.0, (33, 57), {}),  # a kernel (radius 18) beyond half the frame
        (8.0, (20, 24), {}),  # a kernel (radius 28) wider than the frame: repeated reflections
        ("mixed", (20, 24), {}),
        (6.0, OUT, {"clip": False}),
        ("mixed", OUT, {"stretch": True}),
        (6.0, OUT, {"clip_min": 10.0, "clip_max": 200.0}),  # zero clips to 10: the whole frame
        ("mixed", (40, 40), {"clip_min": 10.0, "clip_max": 200.0}),
        (0.5, OUT, {"antialias": True}),
        ("mixed", OUT, {"antialias": True, "centre_shift": (0.5, -0.5)}),
        (6.0, OUT, {"centre_shift": (20.5, -30.0)}),
        (4.5, (40, 41), {"order": 1}),
        (4.5, (60, 61), {"order": 0}),
        (7.0, OUT, {"sigma_per_scale": 0.0}),
        (7.0, OUT, {"truncate": 2.5}),
        (7.0, OUT, {"gain": 0.05, "offset": 100.0}),
    ],
)
@pytest.mark.parametrize("mode", FRAME_MODES)
def test_recipe_variants_equal_the_reference_in_each_mode(synthetic, mode, scales, out_shape, changes):
    if isinstance(scales, str):
        scales = log_uniform(len(synthetic), 0.5, 8.0, seed=5)
    rcp = replace(Recipe(smooth_boundary=mode), **changes)
    assert max_difference(synthetic, scales, out_shape, rcp) <= engine.ENGINE_TOLERANCE


@pytest.mark.parametrize("mode", FRAME_MODES)
def test_where_no_ink_reaches_the_edge_every_mode_gives_the_canvas_values(mnist_test_images, mode):
    """In 112-px frames ink comes within the kernel's reach of the edge only above s = 2.9
    (ink on the 28 x 28 border); at s <= 2 every mode smooths the same pixels."""
    images = mnist_test_images[:64]
    for scale in [0.5, 0.841, 1.0, 1.414, 2.0]:
        canvas = engine.transform_images(images, scale, OUT)
        framed = engine.transform_images(images, scale, OUT, Recipe(smooth_boundary=mode))
        assert np.abs(framed - canvas).max() <= engine.ENGINE_TOLERANCE, scale
        reference = recipe.transform_images(images[:4], np.full(4, scale), OUT, Recipe(smooth_boundary=mode))
        assert np.abs(reference - recipe.transform_images(images[:4], np.full(4, scale), OUT)).max() < 1e-12, scale
    scales = log_uniform(len(images), 1.0, 2.0, seed=4)
    canvas = engine.transform_images(images, scales, OUT)
    assert np.abs(engine.transform_images(images, scales, OUT, Recipe(smooth_boundary=mode)) - canvas).max() <= engine.ENGINE_TOLERANCE


def test_the_modes_differ_where_ink_reaches_the_edge(mnist_test_images):
    """The switch does something: at s = 8 each mode gives other values, and constant's are the darkest at the edge."""
    images = mnist_test_images[:16]
    results = {mode: engine.transform_images(images, 8.0, OUT, Recipe(smooth_boundary=mode)) for mode in SMOOTH_BOUNDARIES}
    for a in SMOOTH_BOUNDARIES:
        for b in SMOOTH_BOUNDARIES:
            assert a == b or np.abs(results[a] - results[b]).max() > 0.05, (a, b)
    edge = np.concatenate([results["constant"][:, [0, -1], :].reshape(-1), results["constant"][:, :, [0, -1]].reshape(-1)])
    for mode in ("canvas", "reflect", "nearest"):
        other = np.concatenate([results[mode][:, [0, -1], :].reshape(-1), results[mode][:, :, [0, -1]].reshape(-1)])
        assert np.all(edge <= other + engine.ENGINE_TOLERANCE) and edge.sum() < other.sum()


@pytest.mark.parametrize("mode", FRAME_MODES)
@pytest.mark.parametrize("scales", [8.0, "mixed"])
def test_threads_and_chunks_give_the_same_bytes_in_each_mode(synthetic, mode, scales):
    images = np.concatenate([synthetic] * 3)
    if isinstance(scales, str):
        scales = log_uniform(len(images), 0.5, 8.0, seed=2)
    scales = np.broadcast_to(np.asarray(scales, dtype=np.float64), (len(images),))
    rcp = Recipe(smooth_boundary=mode)
    one = engine.transform_images(images, scales, OUT, rcp, threads=1)
    np.testing.assert_array_equal(engine.transform_images(images, scales, OUT, rcp, threads=2), one)
    parts = [engine.transform_images(images[a : a + 7], scales[a : a + 7], OUT, rcp) for a in range(0, len(images), 7)]
    np.testing.assert_array_equal(np.concatenate(parts), one)
    alone = [engine.transform_images(images[i : i + 1], scales[i : i + 1], OUT, rcp) for i in range(0, len(images), 5)]
    np.testing.assert_array_equal(np.concatenate(alone), one[::5])


@pytest.mark.parametrize("mode", FRAME_MODES)
@pytest.mark.parametrize("blocks", [(8, 8, 4), (32, 24, 64)])
def test_block_sizes_and_groups_change_no_byte(synthetic, monkeypatch, mode, blocks):
    """Row blocks of the bands, images per group: how the work is cut never shows in the bytes."""
    images = np.concatenate([synthetic] * 2)
    rcp = Recipe(smooth_boundary=mode)
    cases = [(8.0, None), (3.0, None), (None, log_uniform(len(images), 0.5, 8.0, seed=6))]
    shared_plan.cache_clear()
    as_run = [engine.transform_images(images, scales if scale is None else scale, OUT, rcp) for scale, scales in cases]
    smooth_block, resample_block, group = blocks
    monkeypatch.setattr(plan_module, "_SMOOTH_BLOCK", smooth_block)
    monkeypatch.setattr(plan_module, "_RESAMPLE_BLOCK", resample_block)
    monkeypatch.setattr(run_module, "_GROUP_MAX", group)
    monkeypatch.setattr(run_module, "_PLAN_GROUP", max(2, group // 2))
    shared_plan.cache_clear()
    try:
        for (scale, scales), expected in zip(cases, as_run, strict=True):
            np.testing.assert_array_equal(engine.transform_images(images, scales if scale is None else scale, OUT, rcp), expected)
    finally:
        shared_plan.cache_clear()


@pytest.mark.parametrize("mode", FRAME_MODES)
@pytest.mark.parametrize("scales", [[8.0], [3.3], list(np.geomspace(4.0, 8.0, 5))], ids=["s8", "s3.3", "stack"])
@pytest.mark.parametrize("axis", ["smooth", "last smooth"])
def test_a_folded_product_rounds_as_the_exact_two_parts(mode, scales, axis):
    """The folded smoothing band, checked and repaired, equals the rounded two-part (exact)
    result on data at the canvas bound; also when every element is repaired."""
    rcp = Recipe(smooth_boundary=mode)
    plan = plan_axis(np.array(scales), 112, 28, rcp, (0, 28), False, axis == "last smooth")
    band = plan.smooth
    k = len(scales)
    rng = np.random.default_rng(7)
    x = np.rint(rng.uniform(-1, 1, (k, plan.size, 40)) ** 3 * math.ldexp(grids.canvas_bound(rcp), grids.UNIT_BITS))
    expected = exact_rounded_product(band, x, np.arange(k), plan.rows)
    work = workspace.Workspace()
    np.testing.assert_array_equal(band.left_rounded(x, np.empty((k, plan.rows, 40)), slice(None), work), expected)
    forced = replace(band, error_bound=0.49)
    np.testing.assert_array_equal(forced.left_rounded(x, np.empty((k, plan.rows, 40)), slice(None), work), expected)


@pytest.mark.parametrize("mode", FRAME_MODES)
@pytest.mark.parametrize("scales", [[8.0], list(np.geomspace(4.0, 8.0, 5))], ids=["s8", "stack"])
def test_folded_rows_keep_the_kernels_grid_and_sum(mode, scales):
    """Every weight of a folded band lies on its kernel's grid; rows sum to exactly 1 (reflect,
    nearest) or at most 1 (constant), and a row inside the frame is the kernel's."""
    rcp = Recipe(smooth_boundary=mode)
    plan = plan_axis(np.array(scales), 112, 28, rcp, (0, 28), False, False)
    geometry = AxisGeometry.of(np.array(scales), 112, 28, rcp, 0.0)
    bits = grids.grid_bits(geometry.kernel)
    dense = np.zeros((len(scales), plan.rows, plan.size))
    for i, matrix in enumerate(range(len(scales))):
        for r in range(plan.rows):
            start, weights = plan.smooth._row(r, matrix)
            dense[i, r, start : start + len(weights)] = weights
    assert grids.grid_bits(dense) <= bits
    frame = plan.origin[:, None] + np.arange(plan.rows) if len(plan.origin) > 1 else plan.origin[0] + np.arange(plan.rows)[None, :]
    inside = np.broadcast_to(frame < 112, dense.shape[:2])
    sums = dense.sum(axis=2)[inside]
    if mode == "constant":
        assert np.all(sums <= 1.0) and sums.min() < 0.6
    else:
        assert np.all(sums == 1.0)


@pytest.mark.parametrize("mode", FRAME_MODES)
@pytest.mark.parametrize("smooth_block", [1, 5])
def test_every_row_block_at_the_edge_is_folded(synthetic, monkeypatch, mode, smooth_block):
    """Row blocks of one and five rows put block boundaries at every distance from the edge:
    a block that the fold misses by one row would be off the reference by far more than the bound."""
    monkeypatch.setattr(plan_module, "_SMOOTH_BLOCK", smooth_block)
    shared_plan.cache_clear()
    try:
        rcp = Recipe(smooth_boundary=mode)
        assert max_difference(synthetic, 8.0, rcp=rcp) <= engine.ENGINE_TOLERANCE
        assert max_difference(synthetic, log_uniform(len(synthetic), 3.0, 8.0, seed=11), (33, 57), rcp) <= engine.ENGINE_TOLERANCE
    finally:
        shared_plan.cache_clear()


@pytest.mark.parametrize("mode", FRAME_MODES)
@pytest.mark.parametrize("name", ["mnist_large_scale_te60_outsize112-112_scte8p000.h5", "mnist_large_scale_tr60_vl20_te20_outsize112-112_sctr1p000-4p000_scte1p000-4p000.h5"])
def test_a_file_built_in_a_frame_mode_passes_validation(tmp_path, mnist_base, mnist_paths, mode, name):
    """The engine's file, checked against the reference recipe of its own mode (and failing the canvas's)."""
    from mnist_large_scale.build import build_file
    from mnist_large_scale.names import parse_name
    from mnist_large_scale.validate import ValidationSettings, validate_file

    rcp = Recipe(smooth_boundary=mode)
    path = tmp_path / name
    build_file(parse_name(name), mnist_base, mnist_paths, path, rcp, engine.transform_images, seed=1)
    settings = ValidationSettings(sample_images=20)
    report = validate_file(path, mnist_base, mnist_paths, rcp, 1, settings=settings)
    assert report["ok"], [check for check in report["checks"] if not check["ok"]]
    assert not validate_file(path, mnist_base, mnist_paths, Recipe(), 1, settings=settings)["ok"]
