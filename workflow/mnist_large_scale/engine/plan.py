"""One axis's matrices for a stack of scales: the resampling ``R`` and the smoothing ``G`` as bands.

A plan keeps only the canvas pixels that the images' ink reaches *and* that
lie within the Gaussian's reach ``r`` of the frame, and only the frame pixels
within ``r`` of those (the rest are the smoothed zero plane, i.e. the
background).  Its bands (``band.py``) are split into row blocks that skip
their zero columns; the Gaussian's interior blocks are all one Toeplitz piece
and go through BLAS in one strided call.  A plan serves one scale (shared by
a group of images, cached across calls, keyed by the group's ink extent) or a
stack of per-image matrices, aligned: each image's input, canvas and frame
pixels start where its own ink does, so that the group's canvas spans its
largest digit, not the union of the digits' positions.

Canvas rows are counted in frame coordinates throughout: ``p = c - margin`` is
the frame pixel a canvas pixel sits on (negative in the margin), which lines up
the Gaussian bands of different scales.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..exactmath import to_grid
from ..recipe import Recipe
from .band import Band
from .geometry import AxisGeometry
from .grids import RAW_BITS, RESAMPLED_BOUND, UNIT_BITS, canvas_bound, padded_data_bound, weight_grid_bits
from .skimage_weights import TAPS, folded_band, prefilter_matrix
from .workspace import Workspace

# Row-block heights of the banded products: a block's GEMM reads its rows plus
# the band's reach (2 r columns for the Gaussian, about 4 + rows / s for the
# resampling), so short blocks skip more zeros; below 8 rows BLAS slows down.
# Measured on the development machine (AMD EPYC, AVX-512, OpenBLAS).
_SMOOTH_BLOCK = 16
_RESAMPLE_BLOCK = 16


@dataclass(frozen=True)
class AxisPlan:
    """The recipe's two linear stages on one axis, for one scale or a stack of scales.

    Each matrix of the stack has its own windows, all of the same lengths: the
    input pixels it reads, the canvas pixels it forms and the frame pixels it
    computes.  A shared plan (one matrix) reads the input in place; an
    aligned stack reads each image from its own ``input_start``, so digits of
    like size but different positions share tight matrices.

    Attributes
    ----------
    size : int
        Kept canvas pixels ``K`` per matrix: those the input's support reaches
        (all of them when the clip maps zero to a nonzero value) within the
        Gaussian's reach of the frame, and zero rows where a matrix needs fewer.
    rows : int
        Frame pixels computed per matrix: ``origin .. origin + rows``.  Every
        other frame pixel is exactly the smoothed zero plane; those past the
        frame's end are computed but never stored.
    origin : (k,) ndarray of int
        Each matrix's first computed frame pixel.
    input_start : (k,) ndarray of int
        Each matrix's input column 0, as an input pixel.
    input_width : int
        Input pixels each matrix reads (an aligned image is handed in as
        ``input_width`` pixels from ``input_start``, zeros past the input).
    resample : Band or None
        ``R`` (k, K, input_width): on the x axis stored transposed, for
        right-multiplication of the raw images (exact); on the y axis rounded
        (``Band.with_error_bound``).
    smooth : Band or None
        ``G`` (k, rows, K), rounded; on the x axis (the last stage) applied
        from the left to the transposed rows.
    """

    size: int
    rows: int
    origin: np.ndarray
    input_start: np.ndarray
    input_width: int
    resample: Band | None
    smooth: Band | None

    @property
    def empty(self) -> bool:
        """True when no frame pixel differs from the background."""
        return self.size == 0 or self.rows <= 0


_EMPTY_PLAN = AxisPlan(0, 0, np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64), 0, None, None)


def plan_axis(
    scales: np.ndarray,
    length: int,
    n_in: int,
    recipe: Recipe,
    support: tuple,
    clip_moves_zero: bool,
    x_axis: bool,
    work: Workspace | None = None,
    geometry: AxisGeometry | None = None,
    aligned: bool = False,
) -> AxisPlan:
    """Build one axis's matrices for a stack of scales, vectorised over the stack.

    Parameters
    ----------
    scales : (k,) ndarray of float64
        Magnifications s > 0.
    length : int
        Output frame pixels on this axis.
    n_in : int
        Input pixels on this axis.
    recipe : Recipe
    support : (lo, hi), ints or (k,) arrays of int
        Input pixels ``lo:hi`` hold every nonzero input value: of all the
        images this plan serves, or of each image.  The others contribute
        nothing and are left out.
    clip_moves_zero : bool
        The clip maps 0 to a nonzero value: every canvas pixel within reach
        of the frame matters, ink or not, and is kept.
    x_axis : bool
        The x axis, the raw-integer stage: its resampling reads the raw
        images (right-multiplication, exact, weights in data units) and its
        band holds transposed blocks.  Otherwise the y axis, whose resampling
        reads data units and is checked (``Band.with_error_bound``).  Both
        smoothing bands are checked.
    work : Workspace, optional
        Scratch memory for the intermediate arrays; the plan itself never
        points into it, so a cached plan may be built with one too.
    geometry : AxisGeometry, optional
        ``AxisGeometry.of`` these scales and this axis, when already at hand.
    aligned : bool
        Give each matrix its own windows, where its image's ink is (see
        ``AxisPlan``); the caller hands each image in from its
        ``input_start``.  Otherwise every matrix has the windows of the whole
        stack and reads the input in place.  An image without ink on this axis
        gets zero matrices.

    Returns
    -------
    AxisPlan
    """
    if geometry is None:
        geometry = AxisGeometry.of(scales, length, n_in, recipe, recipe.centre_shift[1 if x_axis else 0])
    scratch = _scratch(work, "plan x" if x_axis else "plan y")
    n_taps = TAPS[recipe.order]
    lo, hi = _input_support(support, len(scales), geometry, n_in)
    k_lo, k_hi = _kept_canvas_runs(geometry, lo, hi, n_in, n_taps, clip_moves_zero)
    inked = k_hi > k_lo
    if not inked.any():
        return _EMPTY_PLAN
    if not aligned:  # one window for the stack: the first and last canvas pixel any image needs
        k_lo, k_hi = np.full(len(scales), k_lo[inked].min()), np.full(len(scales), k_hi[inked].max())
    window = _AxisWindow.of(geometry, k_lo, k_hi, lo, hi, inked, length, aligned)
    first, quantized, weights = _kept_taps(geometry, window, k_lo, x_axis, aligned)
    matrix, row_sum = _resampling_matrix(first, quantized, weights, geometry, window, n_taps, x_axis, aligned, scratch)
    resample = _resampling_band(matrix, row_sum, first, geometry, window, n_taps, x_axis, aligned)
    # G (k, rows, K): output row i (frame pixel o0 + i) reads canvas indices
    # centre + i - reach .. centre + i + reach; rounded to the data grid.
    kernel = geometry.kernel
    smooth = smoothing_band(kernel, window.origin, window.start, window.rows, window.kept, length, window.centre, recipe.smooth_boundary)
    # Folding the edge in only moves weights within a row (constant drops some): the
    # kernel's width and sum of |weights| bound every row's terms and sum.
    smooth = smooth.with_error_bound(kernel.shape[1], float(np.abs(kernel).sum(axis=1).max()), padded_data_bound(canvas_bound(recipe)))
    origin, input_start = (window.origin, lo) if aligned else (window.origin[:1].copy(), lo[:1].copy())
    return AxisPlan(window.kept, window.rows, origin, input_start, window.width, resample, smooth)


def _scratch(work: Workspace | None, prefix: str) -> Callable[..., np.ndarray]:
    """``scratch(name, shape, dtype)``: an array of ``work`` named ``prefix name``, or a fresh one without ``work``."""

    def scratch(name: str, shape: tuple[int, ...], dtype=np.float64) -> np.ndarray:
        return np.empty(shape, dtype) if work is None else work.get(f"{prefix} {name}", shape, dtype)

    return scratch


def _input_support(support: tuple, stack: int, geometry: AxisGeometry, n_in: int) -> tuple[np.ndarray, np.ndarray]:
    """Each matrix's input pixels ``lo:hi`` (k,) that can be nonzero: the ink, spread by the prefilter."""
    lo = np.broadcast_to(np.asarray(support[0], dtype=np.int64), (stack,))
    hi = np.broadcast_to(np.asarray(support[1], dtype=np.int64), (stack,))
    prefilter_reach = geometry.prefilter.shape[1] // 2
    if prefilter_reach:  # the prefilter spreads the support; zero outside the input
        lo, hi = np.maximum(0, lo - prefilter_reach), np.minimum(n_in, hi + prefilter_reach)
    return lo, hi


def _kept_canvas_runs(
    geometry: AxisGeometry, lo: np.ndarray, hi: np.ndarray, n_in: int, n_taps: int, clip_moves_zero: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Each matrix's canvas pixels ``k_lo:k_hi`` (indices into ``geometry.p``) whose taps meet its support.

    A run in each image, as u grows with p; every canvas pixel with ``clip_moves_zero``.
    """
    stack, pixels = geometry.first.shape
    if clip_moves_zero:
        return np.zeros(stack, dtype=np.int64), np.full(stack, pixels)
    # Rows offset by more than any tap's range make first one sorted array: one
    # search finds every run's ends.
    spread = int(geometry.first[:, -1].max() - geometry.first[:, 0].min()) + n_in + n_taps + 1
    offsets = np.arange(0, stack * spread, spread)
    keyed = (geometry.first + offsets[:, None]).reshape(-1)
    ends = np.searchsorted(keyed, np.concatenate([offsets + lo - (n_taps - 1), offsets + hi]))
    rows = np.arange(0, stack * pixels, pixels)
    return ends[:stack] - rows, ends[stack:] - rows


@dataclass(frozen=True)
class _AxisWindow:
    """Where a plan's matrices lie on the input, the canvas and the frame.

    Attributes
    ----------
    lo, hi : (k,) ndarrays of int
        Input pixels ``lo:hi`` of each matrix that can be nonzero.
    origin : (k,) ndarray of int
        Each matrix's first computed frame pixel ``o0``.
    start : (k,) ndarray of int
        Each matrix's first kept canvas pixel, in frame coordinates.
    centre : int
        Frame pixel ``origin + i`` reads canvas indices around ``centre + i``
        (one Gaussian band for all matrices).
    kept, rows, width : int
        Kept canvas pixels, computed frame pixels and input pixels read, per matrix.
    """

    lo: np.ndarray
    hi: np.ndarray
    origin: np.ndarray
    start: np.ndarray
    centre: int
    kept: int
    rows: int
    width: int

    @classmethod
    def of(
        cls, geometry: AxisGeometry, k_lo: np.ndarray, k_hi: np.ndarray, lo: np.ndarray, hi: np.ndarray, inked: np.ndarray, length: int, aligned: bool
    ) -> _AxisWindow:
        """The window of kept canvas pixels ``k_lo:k_hi``; ``inked`` marks the matrices with any."""
        reach = geometry.kernel.shape[1] // 2
        p0, size = geometry.p[0] + k_lo, k_hi - k_lo
        # Frame pixels within reach of a kept canvas pixel: all of them when the zero
        # plane itself is not zero after the clip (then p0 = -reach and size = p.size).
        o0, o1 = np.maximum(0, p0 - reach), np.minimum(length, p0 + size + reach)
        # Every matrix reads canvas pixels around frame pixel o0 + i at the same index
        # centre + i (one Gaussian band for all), so its canvas starts at o0 - centre;
        # centre is -reach unless the frame's edge cuts some image's frame pixels.
        centre = int((o0 - p0)[inked].max())
        start = o0 - centre
        kept = int((p0 + size - start)[inked].max())
        rows = int((o1 - o0)[inked].max())
        width = int((hi - lo)[inked].max()) if aligned else int(hi[0] - lo[0])
        return cls(lo, hi, o0, start, centre, kept, rows, width)


def _kept_taps(geometry: AxisGeometry, window: _AxisWindow, k_lo: np.ndarray, x_axis: bool, aligned: bool) -> tuple:
    """The kept canvas pixels' ``first`` taps (k, K), grid weights and unrounded weights (taps, k, K).

    The unrounded weights are None for an aligned plan without a prefilter
    (nothing composes them).
    """
    quantized = geometry.raw_weights if x_axis else geometry.data_weights
    if aligned:
        # Each image's canvas pixels, as indices into p (never below 0: start >= p0 -
        # reach >= p[0]).  Those past p lie beyond the frame's reach: zero rows.
        prefiltered = geometry.prefilter.shape[1] > 1
        unrounded = geometry.weights if prefiltered else None
        return _canvas_windows(window.start - geometry.p[0], window.kept, geometry.first, quantized, unrounded)
    cut = slice(int(k_lo[0]), int(k_lo[0]) + window.kept)
    return geometry.first[:, cut], quantized[:, :, cut], geometry.weights[:, :, cut]


def _tap_entries(first: np.ndarray, window: _AxisWindow, n_taps: int, aligned: bool, scratch: Callable) -> np.ndarray:
    """Flat indices (taps, k, K) of each tap's entry in ``R`` padded with one column each side.

    Taps off an image's support go to the pad columns, which are then dropped
    (so a canvas pixel whose taps all miss the support is a zero row).
    """
    stack, kept = first.shape
    lo, hi, width = window.lo, window.hi, window.width
    entries = scratch("entries", (n_taps, stack, kept), np.int64)
    np.subtract(first, (lo - 1)[:, None], out=entries[0])
    for t in range(1, n_taps):
        np.add(entries[0], t, out=entries[t])
    if aligned:  # past an image's own support (which may end before width): the pad
        end = (hi - lo + 1)[:, None]
        np.clip(entries, 0, end, out=entries)
        np.putmask(entries, entries == end, width + 1)
    else:
        np.clip(entries, 0, width + 1, out=entries)
    entries += np.arange(0, stack * kept * (width + 2), width + 2).reshape(stack, kept)
    return entries


def _resampling_matrix(
    first: np.ndarray,
    quantized: np.ndarray,
    weights: np.ndarray | None,
    geometry: AxisGeometry,
    window: _AxisWindow,
    n_taps: int,
    x_axis: bool,
    aligned: bool,
    scratch: Callable,
) -> tuple[np.ndarray, float]:
    """``R`` (k, K, width) over each image's input columns ``lo:lo + width``, and the largest row sum of |weights|.

    The columns' resampling reads the raw integers and takes its weights whole,
    in data units; the rows' resampling reads those units (``AxisGeometry``'s
    grids).  With a prefilter, ``R P`` is composed in a fixed order and then
    rounded to the grid, entry by entry, each image on its own grid (its
    prefilter's width, never the group's widest); an image without a
    prefilter keeps ``R``.
    """
    stack, kept = first.shape
    width = window.width
    entries = _tap_entries(first, window, n_taps, aligned, scratch)

    def scattered(name: str, part: np.ndarray) -> np.ndarray:
        # one assignment into a matrix with one extra column each side
        padded = scratch(name, (stack, kept, width + 2))
        padded.fill(0.0)
        padded.reshape(-1)[entries.reshape(-1)] = part.reshape(-1)
        return padded[:, :, 1 : 1 + width]

    row_sum = float(np.abs(quantized).sum(axis=0).max())
    matrix = scattered("R", quantized)
    if geometry.prefilter.shape[1] > 1:
        composed = compose_prefilter(scattered("R raw", weights), prefilter_matrix(geometry.prefilter, width))
        if x_axis:
            composed = np.ldexp(to_grid(composed, RAW_BITS), UNIT_BITS)
        else:
            bits = weight_grid_bits(n_taps + 2 * geometry.prefilter_radius, RESAMPLED_BOUND)
            composed = to_grid(composed, bits[:, None, None])
        filtered = geometry.prefilter_radius > 0
        matrix[filtered] = composed[filtered]
        row_sum = max(row_sum, float(np.abs(matrix).sum(axis=2).max()))
    return matrix, row_sum


def _resampling_band(
    matrix: np.ndarray, row_sum: float, first: np.ndarray, geometry: AxisGeometry, window: _AxisWindow, n_taps: int, x_axis: bool, aligned: bool
) -> Band:
    """``R`` as a band: on the x axis stored transposed (exact), on the y axis rounded and checked."""
    prefilter_reach = geometry.prefilter.shape[1] // 2
    lo, hi = window.lo, window.hi
    # Column bounds of R's rows, nondecreasing: so is each image's (first grows with
    # p, and the bounds are clipped to its support), and so their min and max.
    span = (hi - lo)[:, None]
    tap_starts = np.clip(first - (prefilter_reach + lo)[:, None], 0, span).min(axis=0)
    tap_stops = np.clip(first + (n_taps + prefilter_reach - lo)[:, None], 0, span).max(axis=0)
    offset = 0 if aligned else int(lo[0])
    resample = Band.from_matrix(matrix, tap_starts, tap_stops, _RESAMPLE_BLOCK, x_axis, column_offset=offset)
    if not x_axis:  # the rows' resampling is rounded to the data grid: one part, checked
        resample = resample.with_error_bound(n_taps + 2 * prefilter_reach, row_sum, padded_data_bound(RESAMPLED_BOUND))
    return resample


def smoothing_band(
    kernel: np.ndarray, origin: np.ndarray, start: np.ndarray, rows: int, kept: int, length: int, centre: int, boundary: str
) -> Band:
    """The smoothing ``G`` (k, rows, kept) of a plan as a band: the kernel's Toeplitz band, with the frame's edge folded in.

    Row ``i`` reads canvas indices ``centre + i - reach .. centre + i + reach``
    with the kernel's weights.  With a boundary mode (``boundary`` not
    ``canvas``) the canvas is the frame (``start`` its first kept pixel per
    matrix, ``origin`` its first computed one), and the row blocks that come
    within ``reach`` of the frame's edge in any matrix get the weights of
    ``folded_band`` instead: the taps past the edge moved to the pixels the
    mode reads, which lie within the same indices.  Each folded weight is a
    sum of grid weights, so on the kernel's grid; a row of ``reflect`` or
    ``nearest`` still sums to exactly 1, one of ``constant`` to less near the
    edge.  The interior (rows whose taps all lie in the frame) keeps the
    Toeplitz run.
    """
    if boundary == "canvas":
        return Band.from_kernel(kernel, rows, centre, kept, _SMOOTH_BLOCK)
    reach = kernel.shape[1] // 2
    first, last = int(np.min(origin)), int(np.max(origin))

    def folded(a: int, b: int, q0: int, q1: int) -> np.ndarray | None:
        # rows a:b of every matrix lie at least reach inside the frame: the kernel's own rows
        if first + a - reach >= 0 and last + b - 1 + reach < length:
            return None
        return folded_band(kernel, np.asarray(origin) + a, np.asarray(start) + q0, b - a, q1 - q0, length, boundary)

    return Band.from_kernel(kernel, rows, centre, kept, _SMOOTH_BLOCK, folded)


def _canvas_windows(starts: np.ndarray, kept: int, first: np.ndarray, *weights: np.ndarray | None) -> tuple:
    """Each image's ``kept`` canvas pixels from index ``starts[j]`` of its geometry: ``first`` (k, P) and ``weights`` (taps, k, P) each.

    Never below index 0.  Pixels past P lie beyond the frame's reach: their
    weights are zero (and their ``first`` that of the last pixel).
    """
    stack, size = first.shape
    rows = np.arange(stack)
    past = max(0, int(starts.max()) + kept - size)
    if past:  # rare: pad every array with the pixels past P
        first = np.concatenate([first, np.repeat(first[:, -1:], past, axis=1)], axis=1)
        weights = tuple(None if w is None else np.concatenate([w, np.zeros(w.shape[:2] + (past,))], axis=2) for w in weights)
    # Windows of consecutive pixels are views (the last axis repeated, read-only);
    # one fancy index copies each image's.
    def window_view(values: np.ndarray) -> np.ndarray:
        shape, strides = values.shape, values.strides
        return as_strided(values, shape[:-1] + (shape[-1] - kept + 1, kept), strides + strides[-1:], writeable=False)

    return (window_view(first)[rows, starts],) + tuple(None if w is None else window_view(w)[:, rows, starts] for w in weights)


def compose_prefilter(resample: np.ndarray, prefilter: np.ndarray) -> np.ndarray:
    """``R P`` for stacks (k, K, n) and (k, n, n), summed in a fixed order with elementwise IEEE operations.

    A matrix product would round differently on different BLAS kernels; these
    few small products must give the same weights everywhere before the grid.
    """
    composed = np.zeros(resample.shape[:2] + prefilter.shape[2:])
    for a in range(prefilter.shape[1]):
        composed += resample[:, :, a : a + 1] * prefilter[:, a : a + 1, :]
    return composed


@functools.lru_cache(maxsize=512)
def shared_plan(
    scale: float, length: int, n_in: int, recipe: Recipe, support: tuple[int, int], clip_moves_zero: bool, x_axis: bool
) -> AxisPlan:
    """``plan_axis`` for one scale, kept across calls: the writer calls the engine chunk by chunk."""
    return plan_axis(np.array([scale]), length, n_in, recipe, support, clip_moves_zero, x_axis)
