"""A group of images through the stages: resampled, clipped, smoothed, stretched, thresholded and stored.

Also where the images' ink lies (``input_support``, ``ink_extents``), which
the plans cut their matrices to, and the background value that every frame
pixel out of the ink's reach takes.
"""

from __future__ import annotations

import math

import numpy as np

from .. import threshold
from ..recipe import Recipe
from .grids import UNIT_BITS, canvas_bound
from .plan import AxisPlan
from .workspace import Workspace


def input_support(images: np.ndarray) -> tuple[tuple[int, int], tuple[int, int]]:
    """Row and column ranges that hold every nonzero pixel of a group of images.

    Parameters
    ----------
    images : (m, h, w) ndarray

    Returns
    -------
    rows, cols : (lo, hi) pairs
        ``(0, 0)`` on both axes when every pixel is zero.
    """
    union = (images != 0).any(axis=0)  # (h, w): reducing the stack first is cheapest
    row_lo, row_hi, col_lo, col_hi = ink_extents(union[None])[0].tolist()
    return (row_lo, row_hi), (col_lo, col_hi)


def ink_extents(images: np.ndarray) -> np.ndarray:
    """Each image's inked rows and columns: (n, 4) int64 ``(row lo, row hi, column lo, column hi)``, zeros when blank."""
    inked = images != 0
    extents = np.zeros((len(images), 4), dtype=np.int64)
    for axis, (rows_or_cols, length) in enumerate(((inked.any(axis=2), images.shape[1]), (inked.any(axis=1), images.shape[2]))):
        any_ink = rows_or_cols.any(axis=1)
        extents[any_ink, 2 * axis] = rows_or_cols[any_ink].argmax(axis=1)
        extents[any_ink, 2 * axis + 1] = length - rows_or_cols[any_ink, ::-1].argmax(axis=1)
    return extents


def ink_order(images: np.ndarray) -> np.ndarray:
    """An order of the images that puts those with similar ink extents next to each other.

    A shared group's matrices span the union of its images' ink, so grouping
    digits of like extent (narrow ones together, by first inked column, then
    width, then rows) shrinks the canvas that the group computes.

    Parameters
    ----------
    images : (n, h, w) ndarray

    Returns
    -------
    (n,) ndarray of int
        Blank images come first.
    """
    row_lo, row_hi, col_lo, col_hi = ink_extents(images).T
    return np.lexsort((row_hi - row_lo, row_lo, col_hi - col_lo, col_lo))


def smoothed_region(
    images: np.ndarray, plan_y: AxisPlan, plan_x: AxisPlan, recipe: Recipe, work: Workspace, stack: slice = slice(None)
) -> np.ndarray:
    """The smoothed frame pixels that can differ from the background, before the threshold.

    Parameters
    ----------
    images : (m, h, w) ndarray of float64, C-contiguous
        Integer grey levels in [0, RAW_MAX]: the whole inputs for shared plans,
        the windows from each plan's ``input_start`` for aligned ones.
    plan_y, plan_x : AxisPlan
        Row and column matrices; shared by all images or one per image.
    recipe : Recipe
    work : Workspace
    stack : slice
        The m images' entries in per-image plans.

    Returns
    -------
    (m, plan_x.rows, plan_y.rows) ndarray of float64
        A view into ``work``: each image's computed frame pixels (from the
        plans' ``origin``), transposed (columns first), in units of
        ``2**-threshold.BITS`` grey levels, the same on every machine.
    """
    m, h = images.shape[:2]
    rows, cols = plan_y.rows, plan_x.rows
    unit = math.ldexp(1.0, UNIT_BITS)
    across = plan_x.resample.right(images, work.get("across", (m, h, plan_x.size)), stack)
    np.rint(across, out=across)
    canvas = plan_y.resample.left_rounded(across, work.get("canvas", (m, plan_y.size, plan_x.size)), stack, work)
    if recipe.clip:
        np.clip(canvas, recipe.clip_min * unit, recipe.clip_max * unit, out=canvas)
    # Rows first: the canvas's margin rows go through the batched left products,
    # which run closer to peak than the right products' strided column blocks.
    smoothed = plan_y.smooth.left_rounded(canvas, work.get("smoothed", (m, rows, plan_x.size)), stack, work)
    region = plan_x.smooth.left_rounded(smoothed.transpose(0, 2, 1), work.get("region", (m, cols, rows)), stack, work)
    region *= math.ldexp(1.0, threshold.BITS - UNIT_BITS)  # to the threshold's units, exactly
    return region


def value_range(recipe: Recipe) -> tuple[float, float]:
    """The range of a smoothed pixel, in grey levels: the canvas's (the smoothing averages).

    With ``smooth_boundary`` ``constant`` a pixel near the edge averages with
    the zeros past it, so the range takes in 0.
    """
    low, high = (recipe.clip_min, recipe.clip_max) if recipe.clip else (-canvas_bound(recipe), canvas_bound(recipe))
    if recipe.smooth_boundary == "constant":
        return min(low, 0.0), max(high, 0.0)
    return low, high


def stretch_in_place(region: np.ndarray, windows: list[list[int]], frame: tuple[int, int], clip_max: float) -> None:
    """Scale each image so that its frame maximum becomes ``clip_max`` (the recipe's stretch).

    ``region`` (m, columns, rows) holds, transposed, the computed pixels of
    each image; ``windows`` (``frame_windows``) says which of them lie in its
    frame of shape ``frame``.  Outside them the frame is zero, which counts
    toward the maximum unless the window is the whole frame.  Images whose
    maximum is not positive stay as they are.  ``clip_max`` is in the region's
    units.  Computed pixels outside the frame are set to zero (never stored).
    """
    peak = np.empty(len(windows))
    for j, (y0, y1, x0, x1) in enumerate(windows):
        peak[j] = region[j, : x1 - x0, : y1 - y0].max()
        if [y0, y1, x0, x1] != [0, frame[0], 0, frame[1]]:
            peak[j] = max(peak[j], 0.0)
        region[j, x1 - x0 :] = 0.0
        region[j, :, y1 - y0 :] = 0.0
    positive = peak > 0
    factor = np.ones_like(peak)
    # Same expression as the reference: frame * (clip_max / peak).
    factor[positive] = clip_max / peak[positive]
    region *= factor[:, None, None]


def threshold_table(recipe: Recipe) -> threshold.SoftThreshold:
    """The soft threshold's table over every value a smoothed pixel can take."""
    low, high = value_range(recipe)
    return threshold.soft_threshold_table(recipe.gain, recipe.offset, low, high)


def background_value(recipe: Recipe, table: threshold.SoftThreshold | None = None) -> float:
    """The output value of a zero frame pixel, computed as the threshold computes any pixel.

    ``table`` is the recipe's ``threshold_table``, when at hand.  With
    ``round_to_float32`` the value is rounded to float32, as every output value.
    """
    value = (threshold_table(recipe) if table is None else table).scalar(0.0)
    return float(np.float32(value)) if recipe.round_to_float32 else value


def frame_windows(plan_y: AxisPlan, plan_x: AxisPlan, stack: slice, m: int, frame: tuple[int, int]) -> list[list[int]]:
    """Where the computed pixels of the m images ``stack`` of the plans lie in their frames: ``[y0, y1, x0, x1]`` each."""
    windows = np.empty((m, 4), dtype=np.int64)
    for axis, (plan, length) in enumerate(((plan_y, frame[0]), (plan_x, frame[1]))):
        windows[:, 2 * axis] = plan.origin if len(plan.origin) == 1 else plan.origin[stack]
        np.minimum(windows[:, 2 * axis] + plan.rows, length, out=windows[:, 2 * axis + 1])
    return windows.tolist()


def store(out: np.ndarray, index, values: np.ndarray, windows: list[list[int]], background: float | None) -> None:
    """Write thresholded regions into their output frames, background around them.

    Parameters
    ----------
    out : (n, H, W) ndarray of float64
    index : slice or (m,) ndarray of int
        The frames of ``out`` that the m regions belong to (a slice: one
        window for all).
    values : (m, columns, rows) ndarray of float64
        Thresholded regions, transposed (columns first).
    windows : list of m [y0, y1, x0, x1]
        ``frame_windows``: the frame pixels each region's first rows and
        columns go to (the rest lie past the frame).
    background : float or None
        None when ``out`` holds the background everywhere already.
    """
    # Filling whole frames, then the region, beats filling the border strips:
    # those are many short strided runs.
    if isinstance(index, slice):
        y0, y1, x0, x1 = windows[0]
        if background is not None and (y1 - y0, x1 - x0) != out.shape[1:]:
            out[index] = background
        out[index, y0:y1, x0:x1] = values[:, : x1 - x0, : y1 - y0].transpose(0, 2, 1)
        return
    # Frame by frame (contiguous writes, faster than one fancy assignment), the
    # region right after the fill, while the frame is still in cache.
    for j, (i, (y0, y1, x0, x1)) in enumerate(zip(index.tolist(), windows, strict=True)):
        if background is not None and (y1 - y0, x1 - x0) != out.shape[1:]:
            out[i] = background
        out[i, y0:y1, x0:x1] = values[j, : x1 - x0, : y1 - y0].T
