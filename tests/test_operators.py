"""The engine's linear stages are scikit-image's warp and scipy's Gaussian filter, as operators.

A linear operator is known by its images of unit impulses.  At the 17
published scales and at per-sample scales of the [1, 4] file, for orders 1
and 3, with and without the anti-aliasing prefilter and a centre shift:

* the engine's resampling matrices before they are put on a grid
  (``AxisGeometry``'s tap weights, composed with the prefilter as the engine
  composes them) equal scikit-image's ``warp`` of each unit impulse of the
  28 x 28 input, column by column, within a few units in the last place;
* its smoothing matrices before the grid equal scipy's ``gaussian_filter`` of
  each unit impulse of the canvas, within the 2**-45 grid of the kernel's sum;
* on their grids (the resampling read from the engine's own plans,
  ``plan_axis``; the smoothing kernels from ``AxisGeometry``), each weight lies
  within half a grid step of those, except the largest of each set of taps,
  which takes the others' rounding so that the set sums to exactly 1 (it lies
  within the sum of their errors).  With the prefilter, the Gaussian's 2**-45
  grid adds to each tolerance.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from scipy import ndimage

from mnist_large_scale import recipe as reference
from mnist_large_scale.build import draw_scales
from mnist_large_scale.engine import grids, skimage_weights
from mnist_large_scale.engine.geometry import AxisGeometry
from mnist_large_scale.engine.plan import compose_prefilter, plan_axis
from mnist_large_scale.engine.skimage_weights import gaussian_weights
from mnist_large_scale.exactmath import to_grid
from mnist_large_scale.names import PUBLISHED_TEST_SCALES, ScaleSpec
from mnist_large_scale.recipe import Recipe

LENGTH, N_IN = 112, 28
# The warp's products of two weights (each below 1.25), in Horner form: a few ulp of 1.
ULPS = 8 * np.finfo(np.float64).eps
# The Gaussian's samples are put on a grid of 2**-45 before they are normalised.
KERNEL_GRID = 2.0**-45
PER_SAMPLE = draw_scales(ScaleSpec("1p000", "4p000"), 6, 20200605, "train")
VARIANTS = [
    pytest.param({"order": order, "antialias": antialias, "centre_shift": shift}, id=f"order{order}-aa{int(antialias)}-shift{shift[0]:g}")
    for order in (1, 3)
    for antialias in (False, True)
    for shift in ((0.0, 0.0), (0.5, -0.25))
]
SCALES = [pytest.param(np.array([s]), id=f"s{s:.3f}") for s in PUBLISHED_TEST_SCALES] + [pytest.param(PER_SAMPLE, id="per-sample")]


def engine_resampling(geometry: AxisGeometry, rcp: Recipe) -> np.ndarray:
    """The engine's ``R`` (or ``R P`` with the prefilter) before the grid, as ``plan_axis`` forms it.

    ``skimage_weights.resampling_matrix`` (also the fit's float model) scatters the taps.
    """
    matrix = skimage_weights.resampling_matrix(geometry.first, geometry.weights, N_IN)
    if rcp.antialias:
        matrix = compose_prefilter(matrix, skimage_weights.prefilter_matrix(geometry.prefilter, N_IN))
    return matrix


def warped_impulses(scale: float, rcp: Recipe, margin: int, axis: int) -> np.ndarray:
    """scikit-image's canvases (N_IN, canvas, canvas) of the unit impulses at input pixel ``a`` of ``axis``, 13 of the other.

    The recipe's own calls (``recipe.prefilter``, ``recipe.resample``): each
    canvas is the outer product of column ``a`` of one axis's ``R`` and column
    13 of the other's.
    """
    responses = []
    for a in range(N_IN):
        impulse = np.zeros((N_IN, N_IN))
        impulse[(a, 13) if axis == 0 else (13, a)] = 1.0
        if rcp.antialias:
            impulse = reference.prefilter(impulse, float(skimage_weights.antialias_sigma(scale)), rcp.truncate)
        responses.append(reference.resample(impulse, scale, (LENGTH, LENGTH), margin, rcp.order, rcp.centre_shift))
    return np.stack(responses)


def canvas_rows(geometry: AxisGeometry, j: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices into the geometry's canvas pixels of image ``j`` that lie on its canvas, and their canvas indices."""
    margin = int(geometry.radius[j]) + 1
    canvas = geometry.p + margin
    kept = np.nonzero((canvas >= 0) & (canvas < LENGTH + 2 * margin))[0]
    return kept, canvas[kept]


@pytest.mark.parametrize("changes", VARIANTS)
@pytest.mark.parametrize("scales", SCALES)
def test_resampling_matrices_are_the_warp_of_unit_impulses(scales, changes):
    rcp = replace(Recipe(), **changes)
    geometries = [AxisGeometry.of(scales, LENGTH, N_IN, rcp, rcp.centre_shift[axis]) for axis in (0, 1)]
    matrices = [engine_resampling(geometry, rcp) for geometry in geometries]
    for j, scale in enumerate(scales):
        margin = int(geometries[0].radius[j]) + 1
        rows = [canvas_rows(geometry, j) for geometry in geometries]
        (ky, cy), (kx, cx) = rows
        # every canvas pixel that the frame's smoothing reads is one of the engine's
        assert cy[0] <= 1 and cy[-1] >= LENGTH + 2 * margin - 2 and cx[0] <= 1 and cx[-1] >= LENGTH + 2 * margin - 2
        column_y, column_x = matrices[0][j][ky], matrices[1][j][kx]  # (canvas pixels, N_IN)
        # with the prefilter, its Gaussian's samples (on the 2**-45 grid) add to the ulps
        tolerance = ULPS + (3 * KERNEL_GRID if rcp.antialias else 0.0)
        for axis in (0, 1):
            responses = warped_impulses(float(scale), rcp, margin, axis)[:, cy][:, :, cx]
            if axis == 0:  # impulse at (a, 13): column a of R_y times column 13 of R_x
                expected = np.einsum("ya,x->ayx", column_y, column_x[:, 13])
            else:
                expected = np.einsum("y,xa->ayx", column_y[:, 13], column_x)
            np.testing.assert_allclose(expected, responses, rtol=0, atol=tolerance, err_msg=f"s={scale}, axis {axis}")


def engine_smoothing(kernel: np.ndarray, j: int, margin: int) -> np.ndarray:
    """Dense ``G`` (LENGTH, canvas) of image ``j``: frame pixel ``o`` reads canvas pixels around ``o + margin``."""
    return skimage_weights.kernel_band(kernel[j : j + 1], LENGTH, LENGTH + 2 * margin, margin)[0]


@pytest.mark.parametrize("truncate", [4.0, 2.5])
@pytest.mark.parametrize("scales", SCALES)
def test_smoothing_matrices_are_the_gaussian_filter_of_unit_impulses(scales, truncate):
    rcp = replace(Recipe(), truncate=truncate)
    sigma = rcp.sigma_per_scale * scales
    radius, kernel = gaussian_weights(sigma, truncate)
    geometry = AxisGeometry.of(scales, LENGTH, N_IN, rcp, 0.0)
    for j, s in enumerate(sigma):
        margin = int(radius[j]) + 1
        canvas = LENGTH + 2 * margin
        # column c: scipy's filter of the unit impulse at canvas pixel c, on the frame's rows
        expected = ndimage.gaussian_filter(np.eye(canvas), float(s), mode="constant", cval=0.0, truncate=truncate, axes=(0,))
        expected = expected[margin : margin + LENGTH]
        np.testing.assert_allclose(engine_smoothing(kernel, j, margin), expected, rtol=0, atol=KERNEL_GRID)
        # on the grid: within half a step (and the kernel's error) of scipy's, the largest tap aside
        bits = int(grids.weight_grid_bits(2 * radius[j] + 1, grids.canvas_bound(rcp)))
        rounded = engine_smoothing(geometry.kernel, j, margin)
        assert np.array_equal(to_grid(rounded, bits), rounded)
        largest = rounded == rounded.max(axis=1, keepdims=True)
        error = np.abs(rounded - expected)
        assert np.all(error[~largest] <= math.ldexp(0.5, -bits) + KERNEL_GRID), f"sigma {s}: {error[~largest].max()}"
        np.testing.assert_array_equal(rounded.sum(axis=1), 1.0)


def planned_resampling(scales: np.ndarray, rcp: Recipe, x_axis: bool) -> np.ndarray:
    """The resampling matrices (k, K, N_IN) of the engine's own plan (``plan_axis``), in grey levels.

    Every canvas pixel within reach of the frame is kept (``clip_moves_zero``), so the
    rows are the geometry's canvas pixels; the x axis's blocks are stored
    transposed, in data units.
    """
    plan = plan_axis(scales, LENGTH, N_IN, rcp, (0, N_IN), True, x_axis)
    matrix = np.zeros((len(scales), plan.size, plan.input_width))
    for a, b, q0, q1, block in plan.resample.blocks:
        matrix[:, a:b, q0:q1] = block.transpose(0, 2, 1) if x_axis else block
    return matrix / 2.0**grids.UNIT_BITS if x_axis else matrix


def assert_sets_within_half_a_step(rounded: np.ndarray, exact: np.ndarray, step: float) -> None:
    """Tap weights (taps, k, K) on a grid of ``step`` against the weights before it.

    Every weight but the largest of its set lies within half a step; the
    largest takes the others' rounding (the set sums to exactly 1), so it
    lies within the sum of their errors.
    """
    error = np.abs(rounded - exact)
    first_largest = np.abs(exact).argmax(axis=0)[None]
    largest = first_largest == np.arange(len(exact)).reshape(-1, 1, 1)
    assert np.all(error[~largest] <= step / 2 + ULPS), f"worst {float(error[~largest].max() / step):.3g} grid steps"
    others = np.where(largest, 0.0, error).sum(axis=0)
    taken = np.take_along_axis(error, first_largest, axis=0)[0]
    assert np.all(taken <= others + ULPS), "the largest weight took more than the others' rounding"
    np.testing.assert_array_equal(rounded.sum(axis=0), 1.0)


@pytest.mark.parametrize("changes", VARIANTS)
@pytest.mark.parametrize("scales", SCALES)
def test_rounded_resampling_weights_lie_within_half_a_grid_step(scales, changes):
    rcp = replace(Recipe(), **changes)
    geometry = AxisGeometry.of(scales, LENGTH, N_IN, rcp, rcp.centre_shift[0])
    data_bits = int(grids.weight_grid_bits(skimage_weights.TAPS[rcp.order], grids.RESAMPLED_BOUND))
    filtered = geometry.prefilter_radius > 0
    # the tap weights of every image that the prefilter leaves alone (all of them without antialias)
    raw = geometry.raw_weights[:, ~filtered] / 2.0**grids.UNIT_BITS
    assert_sets_within_half_a_step(raw, geometry.weights[:, ~filtered], math.ldexp(1.0, -grids.RAW_BITS))
    assert_sets_within_half_a_step(geometry.data_weights[:, ~filtered], geometry.weights[:, ~filtered], math.ldexp(1.0, -data_bits))
    # the engine's own planned matrices, on each axis (its own centre shift): these tap weights where
    # there is no prefilter, and R P rounded entry by entry where there is, within half a step of it
    bits = grids.weight_grid_bits(skimage_weights.TAPS[rcp.order] + 2 * geometry.prefilter_radius, grids.RESAMPLED_BOUND)
    for x_axis, shift in ((False, rcp.centre_shift[0]), (True, rcp.centre_shift[1])):
        axis = AxisGeometry.of(scales, LENGTH, N_IN, rcp, shift)
        quantized = axis.raw_weights / 2.0**grids.UNIT_BITS if x_axis else axis.data_weights
        grid = np.where(filtered, bits, grids.RAW_BITS if x_axis else data_bits)
        planned = planned_resampling(scales, rcp, x_axis)
        np.testing.assert_array_equal(planned[~filtered], skimage_weights.resampling_matrix(axis.first, quantized, N_IN)[~filtered])
        step = np.ldexp(1.0, -grid)[filtered][:, None, None]
        exact = engine_resampling(axis, rcp)[filtered]
        assert np.all(np.abs(planned[filtered] - exact) <= step / 2 + ULPS), "a prefiltered weight past half a grid step"
