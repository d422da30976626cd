"""Production engine: the reference recipe (``recipe.py``) as batched matrix products,
on exact grids, so that its bytes are the same on every machine.

Before the soft threshold the recipe is two separable linear stages with an
elementwise clip between them.  On one axis of length ``L`` (output pixels) with
an input of ``n`` pixels, at scale ``s``:

* resampling ``R`` (canvas x n): canvas pixel ``c`` reads the input at
  ``u = c / s + (n-1)/2 - (margin + (L-1)/2) / s``, with the weights of
  scikit-image's Cython interpolation (Keys cubic convolution, a = -0.5, for
  order 3; derived in ``skimage_weights.py``) and zero outside the input (the recipe's ``centre_shift`` moves
  ``u`` by ``-shift / s``; with ``antialias`` below scale 1, ``R`` is composed
  with the input's Gaussian prefilter ``P`` as ``R P``, summed in a fixed
  order before it is put on its grid);
* Gaussian smoothing and crop ``G`` (L x canvas): scipy's sampled kernel
  (``skimage_weights.gaussian_weights``), a band
  of half-width ``r = int(truncate * sigma + 0.5)`` around canvas pixel
  ``margin + o`` for frame pixel ``o``.

So ``frame = G_y clip(R_y I R_x^T) G_x^T``, computed as batched products
(columns resampled, rows resampled, clip, rows smoothed, columns smoothed; the
last as ``G_x`` from the left on the transposed rows, so that the region comes
out transposed and is stored so).

With ``recipe.smooth_boundary`` one of scipy's boundary modes (``reflect``,
``constant``, ``nearest``) instead of ``canvas``, the canvas is the frame
itself (margin 0: ``R`` has L rows, the taps at ``u = c / s + (n-1)/2 -
((L-1)/2 + shift) / s`` as the reference's warp evaluates them) and ``G`` is
the frame's L x L Gaussian with the edge folded in: the weight of a tap that
falls past the edge is added to the frame pixel the mode reads there
(``boundary_index``; ``constant`` drops it).  Only the row blocks within the
kernel's reach of the edge differ from the Toeplitz band (``smoothing_band``).

Same bytes everywhere
---------------------
A matrix product's result depends on the order of its additions, on fused
multiply-adds and so on the BLAS kernel, the SIMD level and the thread count;
unless every product and every partial sum is exact.  That holds when the
weights and the data are integer multiples of powers of two and every partial
sum stays below 2**53 of its grid.  So:

* data between stages, and the last stage's result, are integers in units of
  ``2**-UNIT_BITS`` grey levels (``rint`` after each stage: exact, the same
  everywhere);
* weights are rounded to multiples of ``2**-bits`` (the rows of each matrix
  still summing to exactly 1).  The columns' resampling reads the raw integers
  (0..255): its products are exact;
* the other three stages would be exact with their weights split into a
  coarse part on ``2**-HI_BITS`` and a fine remainder (each part's product
  exact, their sum rounded once).  Their results are rounded to the data grid
  at once, so they take one product of the unsplit weights instead, which may
  round but lies within a proven bound of the two-part sum
  (``Band.rounded``); every result farther than that bound from a
  half-integer rounds as the two-part sum does, and the rare others are
  recomputed exactly from the two parts (``Band.left_rounded``).  So these
  stages give the exact method's integers at half its multiply-adds;
* the Gaussian's exponentials come from ``exactmath.exp``, and its
  normalisation sums numbers on a grid, exactly;
* a folded edge (a boundary mode) keeps the argument: each folded weight is
  a sum of the quantised kernel's weights, all on that kernel's grid and of
  total at most 1, so it is exact and on the same grid; a row still has at
  most ``2 r + 1`` nonzero weights of total magnitude at most 1 (exactly 1
  for ``reflect`` and ``nearest``, less near the edge for ``constant``), which
  is all that the grid bits (``split_bits``) and the rounding bound
  (``Band.rounded``) assume;
* the soft threshold is ``threshold.SoftThreshold``, a table with a Taylor
  polynomial, built from ``exactmath.arctan``;
* each image's result depends only on that image and its scale, never on the
  images computed beside it (blocks, groups, ink extents only add exact zeros).

The result differs from the float reference (``recipe.py``) by at most
``ENGINE_TOLERANCE`` after the threshold (a few 1e-10 are typical; the
tests check the bound on real digits at every published scale and per sample).

Speed
-----
Only canvas pixels that the images' ink reaches *and* that lie within ``r`` of
the frame are formed, and only frame pixels within ``r`` of those are computed
(the rest are the smoothed zero plane, i.e. the background).  The banded
matrices are split into row blocks that skip their zero columns; the Gaussian's
interior blocks are all one Toeplitz piece and go through BLAS in one strided
call.  Images go through in groups small enough for the intermediates to stay
in the core's cache.  A group at one scale shares its matrices (cached across
calls, keyed by the group's ink extent); at larger scales the images are
grouped by ink extent, so that narrow digits make narrow canvases.  With
per-sample scales (the scale-range file) the images are sorted by scale, and
groups of like ink size among a few scale-sorted neighbours get a stack of
per-image matrices, built vectorised (both axes of a square frame share the
kernels, tap positions and weights) and aligned: each image's input, canvas
and frame pixels start where its own ink does, so that the group's canvas
spans its largest digit, not the union of the digits' positions.
``threads`` workers take groups in turn; BLAS is held to one thread.

Canvas rows are counted in frame coordinates throughout: ``p = c - margin`` is
the frame pixel a canvas pixel sits on (negative in the margin), which lines up
the Gaussian bands of different scales.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
from numpy.lib.stride_tricks import as_strided
from threadpoolctl import ThreadpoolController

from . import threshold
from .exactmath import to_grid
from .recipe import Recipe
from .skimage_weights import (
    SUPPORTED_ORDERS,
    TAPS,
    gaussian_radius,
    gaussian_weights,
    largest_tap,
    tap_positions,
    tap_weights,
)

__all__ = ["transform_images", "SUPPORTED_ORDERS", "ENGINE_TOLERANCE", "blas_threads_limited", "background_value"]

#: Largest difference to the float reference recipe after the soft threshold, on
#: MNIST's 0..255 grey levels (measured: see tests/test_engine.py).
ENGINE_TOLERANCE = 1e-8

#: Data between stages are integers in units of 2**-UNIT_BITS grey levels.
UNIT_BITS = 24

#: The coarse part of a split weight is a multiple of 2**-HI_BITS.
HI_BITS = 20

#: Weights of the columns' resampling, which reads the raw 8-bit integers: 2**-RAW_BITS.
RAW_BITS = 40

#: Largest input value: the engine's bytes are exact for integer inputs in [0, RAW_MAX].
RAW_MAX = 255

# The largest sum of |weights| of one interpolation (Keys' cubic at fraction 1/2),
# and so the largest magnitude of a pixel resampled along one axis.
_KEYS_ABS_SUM = 1.25
_RESAMPLED_BOUND = RAW_MAX * _KEYS_ABS_SUM

# Row-block heights of the banded products: a block's GEMM reads its rows plus
# the band's reach (2 r columns for the Gaussian, about 4 + rows / s for the
# resampling), so short blocks skip more zeros; below 8 rows BLAS slows down.
# Measured on the development machine (AMD EPYC, AVX-512, OpenBLAS).
_SMOOTH_BLOCK = 16
_RESAMPLE_BLOCK = 16

# Images computed together: about this many bytes of canvas, so that the
# canvas and the smoothed rows stay in cache (1 MB L2 per core, 32 MB L3 on the
# development machine), and enough images to amortise the per-call costs; with
# per-image matrices (per-sample scales) fewer, as each brings its own.
_GROUP_BYTES = 3 << 19
_GROUP_MAX = 16
_GROUP_MAX_PER_SAMPLE = 8

# Per-sample scales: images sorted by scale are taken _SCALE_WINDOW at a time
# (their kernels, tap positions and weights computed once), ordered by ink size
# within, and share one set of aligned matrix stacks per _PLAN_GROUP: few
# enough for a tight canvas (the plan spans their largest digit), of close
# enough scales for narrow kernels, and enough to build the matrices cheaply
# per image (measured on the [1, 4] file's draw).
_SCALE_WINDOW = 128
_PLAN_GROUP = 64

# One scale: images are grouped by ink extent when the canvas is at least this
# big (pixels); below it the saved canvas work does not pay for the scattered
# (non-consecutive) output writes.
_SORT_MIN_CANVAS = 64 * 64


# --------------------------------------------------------------------------- #
# BLAS threads
# --------------------------------------------------------------------------- #

@functools.lru_cache(maxsize=1)
def _blas_controller() -> ThreadpoolController:
    """threadpoolctl's view of the loaded BLAS libraries; finding them costs about a
    millisecond, so it is done once per process (numpy's BLAS is loaded with numpy)."""
    return ThreadpoolController()


def blas_threads_limited(n_threads: int = 1):
    """Context manager: the process's BLAS libraries use at most ``n_threads`` threads inside.

    The engine runs its own worker threads, so BLAS must not add more:
    ``threads=1`` means one core.  The limit is process-wide.
    """
    return _blas_controller().limit(limits=n_threads, user_api="blas")


# --------------------------------------------------------------------------- #
# One axis: the weights (skimage_weights.py) on their grids, for a stack of scales
# --------------------------------------------------------------------------- #


def split_bits(taps, bound: float):
    """Grid bits of weights whose fine part stays exact on data of magnitude ``bound`` grey levels.

    The fine part of a split weight is below ``2**-(HI_BITS+1)``; ``taps`` of them
    times data up to ``bound * 2**UNIT_BITS`` units sum to at most
    ``taps * bound * 2**(UNIT_BITS - HI_BITS - 1)``, which must stay below 2**53
    of the weights' grid.  ``taps`` may be an array (one kernel per image): the
    bits of an image's weights depend on its own kernel only, never on the
    images computed beside it.
    """
    magnitude = np.asarray(taps, dtype=np.float64) * bound * math.ldexp(1.0, UNIT_BITS - HI_BITS - 1)
    # ceil(log2(magnitude)) from the exact binary exponent, not from a library's log2
    mantissa, exponent = np.frexp(magnitude)
    return np.minimum(RAW_BITS, 52 - np.where(mantissa == 0.5, exponent - 1, exponent).astype(np.int64))


def quantize_weights(weights: np.ndarray, bits, axis: int, largest: np.ndarray | None = None) -> np.ndarray:
    """Weights that sum to 1 along ``axis``, rounded to multiples of ``2**-bits``, summing to exactly 1.

    The rounding error of each set goes to its largest weight (the first of
    the largest magnitudes; ``largest``, when the caller knows it, holds
    their indices), so that a flat region stays exactly flat through
    interpolation and smoothing.
    """
    quantized = to_grid(weights, bits)
    # Sums of values on the grid are exact; the correction is a multiple of 2**-bits.
    correction = 1.0 - quantized.sum(axis=axis)
    if largest is None:
        largest = np.abs(weights).argmax(axis=axis)
    # Flat positions of the largest weights (one index array is far faster than
    # numpy's broadcast fancy indices): ``quantized`` is C-contiguous, fresh.
    step = math.prod(quantized.shape[axis + 1 :])
    position = np.arange(correction.size).reshape(correction.shape)
    if axis:
        outer, inner = np.divmod(position, step)
        position = outer * (quantized.shape[axis] * step) + inner
    position += largest * step
    quantized.reshape(-1)[position.reshape(-1)] += correction.reshape(-1)
    return quantized


def split_weights(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``weights`` (on a finer grid) as a part on ``2**-HI_BITS`` plus the remainder, both exact."""
    coarse = to_grid(weights, HI_BITS)
    return coarse, weights - coarse


def grid_bits(weights: np.ndarray, finest: int = 64) -> int:
    """The smallest ``g <= finest`` such that every weight is a multiple of ``2**-g``; ``finest`` when none is."""
    low, high = 0, finest
    while low < high:  # on a grid of 2**-g means on every finer one: bisect
        middle = (low + high) // 2
        if np.array_equal(to_grid(weights, middle), weights):
            high = middle
        else:
            low = middle + 1
    return low


class Workspace:
    """Reusable scratch arrays of one worker thread.

    Fresh large arrays cost page faults on every use (the allocator hands big
    blocks back to the system when freed); these are allocated once per call.
    """

    def __init__(self) -> None:
        self._buffers: dict[tuple[str, type], np.ndarray] = {}
        self._views: dict[tuple[str, type], dict[tuple[int, ...], np.ndarray]] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype=np.float64) -> np.ndarray:
        """A C-contiguous array of ``shape`` (contents undefined), reusing the memory of ``name``.

        The same shape gives the same view again (the engine asks for a few
        shapes thousands of times).
        """
        key = (name, dtype)
        views = self._views.get(key)
        view = None if views is None else views.get(shape)
        if view is not None:
            return view
        size = math.prod(shape)
        buffer = self._buffers.get(key)
        if buffer is None or buffer.size < size:
            buffer = self._buffers[key] = np.empty(max(size, 1), dtype=dtype)
            views = self._views[key] = {}  # views of the old memory stay valid, but are not handed out again
        view = views[shape] = buffer[:size].reshape(shape)
        return view


def toeplitz_piece(kernel: np.ndarray, rows: int) -> np.ndarray:
    """The band of a correlation with centred kernels, for ``rows`` consecutive outputs.

    Parameters
    ----------
    kernel : (k, 2 r + 1) ndarray of float64
    rows : int

    Returns
    -------
    (k, rows, rows + 2 r) ndarray of float64
        ``piece[j, i, c] = kernel[j, c - i]`` (zero off the band): output
        ``o + i`` reads inputs ``o - r + c``.
    """
    stack, width = kernel.shape
    piece = np.zeros((stack, rows, rows + width - 1))
    # Entry (j, i, t) of this view is piece[j, i, i + t]: the band's diagonals.
    band = as_strided(piece, (stack, rows, width), (piece.strides[0], piece.strides[1] + piece.strides[2], piece.strides[2]))
    band[...] = kernel[:, None, :]
    return piece


@dataclass(frozen=True)
class Band:
    """A stack of banded matrices ``A`` (k, P, Q), as row blocks without their zero columns.

    ``k`` is 1 for a matrix shared by all images, else one matrix per image.

    The weights lie on power-of-two grids.  Split into a coarse part (on
    ``2**-HI_BITS``) and a fine remainder, each part's product with the data
    is exact, in any summation order; their sum, rounded once, is the exact
    method's result.  A band whose products are rounded to integers
    afterwards (``left_rounded``) takes one product of the unsplit weights
    instead, which may round: it costs half the multiply-adds, and
    ``rounding`` bounds how far it can lie from the two-part result (see
    ``rounded``); the rare results that bound leaves in doubt are computed
    again from the two parts.

    Attributes
    ----------
    blocks : tuple of (a, b, q0, q1, block)
        ``A[:, a:b, q0:q1]`` holds every nonzero of rows ``a:b``.  ``block`` is
        that slice, shape (k, b-a, q1-q0), or, for a band built for
        right-multiplication (``from_matrix`` with ``transpose``), its
        transpose (k, q1-q0, b-a).
    zero_rows : tuple of (a, b)
        Row ranges that are zero in every matrix.
    run : (a, count, q0, piece) or None
        ``count`` further blocks of equal height ``h`` and equal content
        ``piece`` (as a block above), at rows ``a + i h`` and columns
        ``q0 + i h ..``: the interior of a Toeplitz band, done in one call.
    rounding : float
        The largest distance between the product, as any BLAS computes it,
        and the two-part result, in data units; 0 when the product is exact.
    """

    blocks: tuple[tuple[int, int, int, int, np.ndarray], ...]
    zero_rows: tuple[tuple[int, int], ...]
    run: tuple[int, int, int, np.ndarray] | None = None
    rounding: float = 0.0

    @classmethod
    def from_matrix(
        cls,
        matrix: np.ndarray,
        starts: np.ndarray,
        stops: np.ndarray,
        block: int,
        transpose: bool,
        column_offset: int = 0,
    ) -> Band:
        """Cut ``matrix`` (k, P, Q) into row blocks of ``block`` rows, copying each.

        ``starts`` and ``stops`` (P,) bound the columns that may be nonzero in
        each row (of any of the k matrices); both must be nondecreasing, as in a
        band.  The matrix holds columns ``column_offset ..`` of ``A``.
        ``transpose``: store the blocks transposed, for ``right``.
        """
        blocks, zero_rows = [], []
        for a in range(0, matrix.shape[1], block):
            b = min(matrix.shape[1], a + block)
            q0, q1 = int(starts[a]), int(stops[b - 1])
            if q1 <= q0:
                zero_rows.append((a, b))
                continue
            piece = matrix[:, a:b, q0:q1]
            blocks.append((a, b, q0 + column_offset, q1 + column_offset, np.ascontiguousarray(piece.transpose(0, 2, 1) if transpose else piece)))
        return cls(tuple(blocks), tuple(zero_rows))

    @classmethod
    def from_kernel(
        cls, kernel: np.ndarray, rows: int, first_column: int, columns: int, block: int, folded: Callable | None = None
    ) -> Band:
        """The correlation ``out[o] = sum_d kernel[d + r] x[o + d]`` as a band.

        Parameters
        ----------
        kernel : (k, 2 r + 1) ndarray of float64
        rows : int
            Outputs ``o = 0 .. rows-1``.
        first_column : int
            Input index of output 0's centre; inputs are ``0 .. columns-1``.
        columns : int
        block : int
            Rows per block.
        folded : callable, optional
            ``folded(a, b, q0, q1)``: the block of rows ``a:b`` and columns
            ``q0:q1`` (k, b - a, q1 - q0) where it is not the kernel's (the
            frame's edge folded in), else None.  Such rows must lie at the ends.

        Every interior block is the same Toeplitz piece (they form ``run``), and
        the blocks at the ends are parts of it (views) or ``folded``'s.
        """
        reach = kernel.shape[1] // 2
        block = min(block, rows)
        width = block + 2 * reach
        piece = toeplitz_piece(kernel, block)
        blocks, zero_rows, interior = [], [], []
        for a in range(0, rows, block):
            b = min(rows, a + block)
            start = first_column + a - reach  # input read by piece column 0
            q0, q1 = max(0, start), min(columns, start + width)
            own = None if folded is None or q1 <= q0 else folded(a, b, q0, q1)
            if q1 <= q0:
                zero_rows.append((a, b))
            elif own is not None:
                blocks.append((a, b, q0, q1, own))
            elif (q0, q1, b - a) == (start, start + width, block):
                interior.append((a, q0))
            else:  # a view: BLAS reads its row stride
                blocks.append((a, b, q0, q1, piece[:, : b - a, q0 - start : q1 - start]))
        run = (interior[0][0], len(interior), interior[0][1], piece) if interior else None
        if interior and interior[-1][0] != interior[0][0] + (len(interior) - 1) * block:
            raise AssertionError("the band's interior blocks must be consecutive")
        return cls(tuple(blocks), tuple(zero_rows), run)

    @property
    def shared(self) -> bool:
        """True when one matrix serves every image."""
        pieces = [block for *_, block in self.blocks] + ([self.run[3]] if self.run else [])
        return all(piece.shape[0] == 1 for piece in pieces)

    def left(self, x: np.ndarray, out: np.ndarray, images: slice = slice(None)) -> np.ndarray:
        """``out = A @ x``: x (m, Q, N) -> out (m, P, N).

        ``images`` selects the m matrices of a per-image stack; a shared matrix
        broadcasts.
        """
        m, n = x.shape[0], x.shape[2]
        for a, b, q0, q1, block in self.blocks:
            np.matmul(block if block.shape[0] == 1 else block[images], x[:, q0:q1], out=out[:, a:b])
        if self.run is not None:
            a, count, q0, piece = self.run
            height, width = piece.shape[1], piece.shape[2]
            # (count, m, rows, N) windows of x (overlapping) and of out (splitting an
            # axis, always a view), one GEMM per (block, image).
            sm, sq, sn = x.strides
            windows = as_strided(x[:, q0:], (count, m, width, n), (height * sq, sm, sq, sn), writeable=False)
            targets = out[:, a : a + count * height].reshape(m, count, height, n).transpose(1, 0, 2, 3)
            np.matmul(piece if piece.shape[0] == 1 else piece[images], windows, out=targets)
        for a, b in self.zero_rows:
            out[:, a:b] = 0.0
        return out

    def _weights(self) -> list[np.ndarray]:
        """Every stored block and the run's piece."""
        return [block for *_, block in self.blocks] + ([self.run[3]] if self.run else [])

    def rounded(self, terms: int, row_sum: float, data_bound: float) -> Band:
        """This band, with ``rounding`` set for its products with data up to ``data_bound`` units.

        ``terms`` bounds the nonzero weights in a row and ``row_sum`` the sum
        of their magnitudes.  A product of a row with ``K`` nonzero weights,
        summed in any order, with or without fused multiply-adds, lies within
        ``gamma_K S`` of the exact sum ``E``, where
        ``S = sum |w| |x| <= row_sum data_bound`` and
        ``gamma_K = K u / (1 - K u)``, ``u = 2**-53`` (Higham, *Accuracy and
        Stability of Numerical Algorithms*, 2nd ed., section 3.1; a zero
        weight adds an exact zero, which rounds nothing).  The two-part result
        ``fl(C + F)`` lies within ``u |E|`` of ``E``.  So the two differ by at
        most ``(gamma_K + u) S``.

        A shared matrix whose weights all lie on a grid coarse enough that
        every product and partial sum is exact (the resampling at scales that
        are powers of two, say) gets ``rounding`` 0.
        """
        pieces = self._weights()
        if not pieces:  # every row is zero: nothing to round
            return self
        largest = row_sum * data_bound
        if all(piece.shape[0] == 1 for piece in pieces):
            if largest < math.ldexp(1.0, 53 - max(grid_bits(piece) for piece in pieces)):
                return replace(self, rounding=0.0)
        inner = min(terms, max(piece.shape[2] for piece in pieces))
        unit = math.ldexp(1.0, -53)
        gamma = inner * unit / (1.0 - inner * unit)
        # A hair above the bound, so that its own evaluation cannot make it smaller.
        return replace(self, rounding=(gamma + unit) * largest * (1.0 + 2.0**-20))

    def left_rounded(
        self, x: np.ndarray, out: np.ndarray, images: slice = slice(None), work: Workspace | None = None
    ) -> np.ndarray:
        """``out = rint(A @ x)``, equal to the rounded two-part (exact) result.

        Where the product may round (``rounding`` > 0) every element farther
        than ``rounding`` from a half-integer rounds as the two-part result
        does, and the rare others (about one in ``1 / (2 rounding)``) are
        computed again exactly, as the two parts would.
        """
        if not self.rounding:
            return np.rint(self.left(x, out, images), out=out)
        product = self.left(x, work.get("unrounded", out.shape), images)
        np.rint(product, out=out)
        if not out.size:
            return out
        # Few elements are that close, often none.  The largest distance over the
        # images (reducing the leading axis is the fast one) finds their
        # positions, then the images there that need it.
        distance = np.abs(np.subtract(product, out, out=product), out=product)
        limit = 0.5 - self.rounding
        row, column = np.nonzero(distance.max(axis=0) >= limit)
        if row.size:
            image, which = np.nonzero(distance[:, row, column] >= limit)
            self._repair_left(x, out, (image, row[which], column[which]), images)
        return out

    def _repair_left(self, x: np.ndarray, out: np.ndarray, where: tuple[np.ndarray, ...], images: slice) -> None:
        """Set ``out[where]`` to the rounded two-part result, computed exactly element by element.

        Each part's products and sums are exact (integers on their grids), so
        the summation order does not matter; their sum rounds once.
        """
        image, row, column = where
        if not self.shared:  # per-image matrices: few elements, each from its own row
            matrices = np.arange(max(piece.shape[0] for piece in self._weights()))[images]
            for i, r, n in zip(image.tolist(), row.tolist(), column.tolist(), strict=True):
                start, weights = self._row(r, int(matrices[i]))
                coarse, fine = split_weights(weights)
                data = x[i, start : start + len(weights), n]
                out[i, r, n] = np.rint(float(coarse @ data) + float(fine @ data))
            return
        starts, coarse, fine = self._split_rows
        starts, coarse, fine = starts[row], coarse[row], fine[row]
        taps = np.minimum(starts[:, None] + np.arange(coarse.shape[1]), x.shape[1] - 1)
        data = x[image[:, None], taps, column[:, None]]
        out[where] = np.rint((coarse * data).sum(axis=1) + (fine * data).sum(axis=1))

    def _row(self, row: int, matrix: int) -> tuple[int, np.ndarray]:
        """The first stored column of row ``row`` of matrix ``matrix``, and the stored weights from there on."""
        kind = int(self._row_blocks[row])
        if kind >= 0:
            a, _, q0, _, piece = self.blocks[kind]
            start, within = q0, row - a
        else:  # the run (never asked for a zero row: its product is an exact zero)
            a, _, q0, piece = self.run
            step, within = divmod(row - a, piece.shape[1])
            start = q0 + step * piece.shape[1]
        return start, piece[matrix if piece.shape[0] > 1 else 0, within]

    @functools.cached_property
    def _split_rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every row of a shared band (``_row``, zero-padded; zero rows stay zero), split into its coarse and fine parts."""
        rows = len(self._row_blocks)
        starts = np.zeros(rows, dtype=np.int64)
        weights = np.zeros((rows, max(piece.shape[2] for piece in self._weights())))
        for row in np.flatnonzero(self._row_blocks != -2).tolist():
            starts[row], stored = self._row(row, 0)
            weights[row, : len(stored)] = stored
        return (starts, *split_weights(weights))

    @functools.cached_property
    def _row_blocks(self) -> np.ndarray:
        """For each row of the band: the index of its block, -1 in the run, -2 in a zero range."""
        ends = [b for _, b, *_ in self.blocks] + [b for _, b in self.zero_rows]
        if self.run is not None:
            ends.append(self.run[0] + self.run[1] * self.run[3].shape[1])
        kind = np.full(max(ends, default=0), -2, dtype=np.int64)
        for j, (a, b, *_) in enumerate(self.blocks):
            kind[a:b] = j
        if self.run is not None:
            kind[self.run[0] : ends[-1]] = -1
        return kind

    def right(self, x: np.ndarray, out: np.ndarray, images: slice = slice(None)) -> np.ndarray:
        """``out = x @ A^T``: x (m, N, Q) -> out (m, N, P), for a band built with ``transpose``.

        A shared matrix turns the whole group into one GEMM of m N rows.
        """
        result, (m, n) = out, x.shape[:2]
        if self.shared and x.flags.c_contiguous and out.flags.c_contiguous:
            x, out = x.reshape(1, m * n, -1), out.reshape(1, m * n, -1)
        for a, b, q0, q1, block in self.blocks:
            matrix = block if block.shape[0] == 1 else block[images]
            np.matmul(x[:, :, q0:q1], matrix, out=out[:, :, a:b])
        for a, b in self.zero_rows:
            out[:, :, a:b] = 0.0
        return result


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
        (``Band.rounded``).
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


@dataclass(frozen=True)
class AxisGeometry:
    """What an axis's plan takes from the scales alone, before the images' support cuts it.

    Both axes of a square frame with the same shift on each share it.

    Attributes
    ----------
    radius : (k,) ndarray of int
        Each scale's Gaussian radius (its canvas margin is one more).
    kernel : (k, 2 reach + 1) ndarray of float64
        Each scale's Gaussian, quantised (on the grid its own width allows).
    prefilter_radius : (k,) ndarray of int
        The anti-aliasing prefilter's radius at each scale (0 when off).
    prefilter : (k, 2 r + 1) ndarray of float64
        The anti-aliasing prefilter's kernels (identities when off).
    p : (K,) ndarray of int
        Canvas pixels within reach of the frame, in frame coordinates: the
        frame and a margin of the widest kernel's reach (``canvas``), or the
        frame alone (a boundary mode of ``recipe.smooth_boundary``).
    first, fraction : (k, K) ndarrays
        ``tap_positions`` of each canvas pixel.
    weights : (taps, k, K) ndarray of float64
        ``tap_weights`` of each canvas pixel.
    raw_weights, data_weights : (taps, k, K) ndarrays of float64
        ``weights`` on their grids (``quantize_weights``): for the columns'
        resampling, which reads the raw integers (in data units), and for the
        rows', which reads data units.
    """

    radius: np.ndarray
    kernel: np.ndarray
    prefilter_radius: np.ndarray
    prefilter: np.ndarray
    p: np.ndarray
    first: np.ndarray
    fraction: np.ndarray
    weights: np.ndarray
    raw_weights: np.ndarray
    data_weights: np.ndarray
    frame_only: bool = False

    @classmethod
    def of(cls, scales: np.ndarray, length: int, n_in: int, recipe: Recipe, centre_shift: float) -> AxisGeometry:
        """The geometry of an axis of ``length`` output and ``n_in`` input pixels."""
        scales = np.asarray(scales, dtype=np.float64)
        sigma = recipe.sigma_per_scale * scales
        radius = gaussian_radius(sigma, recipe.truncate)
        # recipe.canvas_margin; on the frame itself (a boundary mode) the canvas is the frame
        margin = radius + 1 if recipe.on_canvas else np.zeros_like(radius)
        _, kernel = gaussian_weights(sigma, recipe.truncate)
        # Each scale's kernel on the grid its own width allows (2 radius + 1 taps).
        kernel = quantize_weights(kernel, split_bits(2 * radius + 1, canvas_bound(recipe))[:, None], axis=1)
        reach = kernel.shape[1] // 2
        # The warp's matrix as scikit-image evaluates it: u = (1/s) c + t with c = p + margin.
        p = np.arange(-reach, length + reach) if recipe.on_canvas else np.arange(length)
        shift = (n_in - 1) / 2 - (margin + (length - 1) / 2 + centre_shift) / scales
        u = (1.0 / scales)[:, None] * (p[None, :] + margin[:, None]).astype(np.float64) + shift[:, None]
        first, fraction = tap_positions(u, recipe.order)
        weights = tap_weights(fraction, recipe.order)
        # Rounded to their grids so that each set of taps still sums to 1.
        largest = largest_tap(weights, recipe.order)
        raw_weights = quantize_weights(weights, RAW_BITS, 0, largest) * math.ldexp(1.0, UNIT_BITS)
        data_weights = quantize_weights(weights, int(split_bits(TAPS[recipe.order], _RESAMPLED_BOUND)), 0, largest)
        return cls(radius, kernel, *antialias_kernels(scales, recipe), p, first, fraction, weights, raw_weights, data_weights, not recipe.on_canvas)

    def subset(self, images: slice) -> AxisGeometry:
        """The geometry of some of the scales, equal to ``of`` those scales alone.

        Their kernels and canvas pixels are trimmed to the reach of the widest
        kernel among them (beyond it the padding is zeros and pixels never kept);
        a frame-only geometry keeps its pixels, the frame's.
        """
        cut = self.kernel.shape[1] // 2 - int(self.radius[images].max())
        pixels = slice(None) if self.frame_only else slice(cut, len(self.p) - cut)
        prefilter_cut = self.prefilter.shape[1] // 2 - int(self.prefilter_radius[images].max())
        return AxisGeometry(
            self.radius[images],
            self.kernel[images, cut : self.kernel.shape[1] - cut],
            self.prefilter_radius[images],
            self.prefilter[images, prefilter_cut : self.prefilter.shape[1] - prefilter_cut],
            self.p[pixels],
            self.first[images, pixels],
            self.fraction[images, pixels],
            self.weights[:, images, pixels],
            self.raw_weights[:, images, pixels],
            self.data_weights[:, images, pixels],
            self.frame_only,
        )


def plan_axis(
    scales: np.ndarray,
    length: int,
    n_in: int,
    recipe: Recipe,
    support: tuple,
    keep_all: bool,
    transpose: bool,
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
    keep_all : bool
        Keep every canvas pixel within reach of the frame, zero or not (needed
        when the clip maps zero to a nonzero value).
    transpose : bool
        The x axis: its resampling band holds transposed blocks (right-
        multiplication of the raw images, exact, weights in data units).
        Otherwise the y axis, whose resampling is rounded (``Band.rounded``).
        Both smoothing bands are rounded.
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
    scratch_name = "plan x" if transpose else "plan y"

    def scratch(name: str, shape: tuple[int, ...], dtype=np.float64) -> np.ndarray:
        return np.empty(shape, dtype) if work is None else work.get(f"{scratch_name} {name}", shape, dtype)

    if geometry is None:
        geometry = AxisGeometry.of(scales, length, n_in, recipe, recipe.centre_shift[1 if transpose else 0])
    stack = len(scales)
    kernel, prefilter_kernel, p = geometry.kernel, geometry.prefilter, geometry.p
    reach = kernel.shape[1] // 2
    lo = np.broadcast_to(np.asarray(support[0], dtype=np.int64), (stack,))
    hi = np.broadcast_to(np.asarray(support[1], dtype=np.int64), (stack,))
    prefilter_reach = prefilter_kernel.shape[1] // 2
    if prefilter_reach:  # the prefilter spreads the support; zero outside the input
        lo, hi = np.maximum(0, lo - prefilter_reach), np.minimum(n_in, hi + prefilter_reach)
    n_taps = TAPS[recipe.order]

    # Canvas pixels k_lo:k_hi (indices into p) have taps that meet the support:
    # a run in each image, as u grows with p.  Rows offset by more than any tap's
    # range make first one sorted array: one search finds every run's ends.
    if keep_all:
        k_lo, k_hi = np.zeros(stack, dtype=np.int64), np.full(stack, p.size)
    else:
        spread = int(geometry.first[:, -1].max() - geometry.first[:, 0].min()) + n_in + n_taps + 1
        offsets = np.arange(0, stack * spread, spread)
        keyed = (geometry.first + offsets[:, None]).reshape(-1)
        ends = np.searchsorted(keyed, np.concatenate([offsets + lo - (n_taps - 1), offsets + hi]))
        k_lo, k_hi = ends[:stack] - np.arange(0, stack * p.size, p.size), ends[stack:] - np.arange(0, stack * p.size, p.size)
    inked = k_hi > k_lo
    if not inked.any():
        return _EMPTY_PLAN
    if not aligned:  # one window for the stack: the first and last canvas pixel any image needs
        k_lo, k_hi = np.full(stack, k_lo[inked].min()), np.full(stack, k_hi[inked].max())
    p0, size = p[0] + k_lo, k_hi - k_lo

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
    quantized = geometry.raw_weights if transpose else geometry.data_weights
    if aligned:
        # Each image's canvas pixels, as indices into p (never below 0: start >= p0 -
        # reach >= p[0]).  Those past p lie beyond the frame's reach: zero rows.
        first, quantized, weights = _canvas_windows(
            start - p[0], kept, geometry.first, quantized, geometry.weights if prefilter_reach else None
        )
        width = int((hi - lo)[inked].max())
    else:
        cut = slice(int(k_lo[0]), int(k_lo[0]) + kept)
        first, quantized, weights = geometry.first[:, cut], quantized[:, :, cut], geometry.weights[:, :, cut]
        width = int(hi[0] - lo[0])

    # R (k, K, width) over each image's input columns lo:lo + width, scattered in
    # one assignment into a matrix with one extra column each side: taps off an
    # image's support are put into those columns, which are then dropped.  (So a
    # canvas pixel whose taps all miss the support is a zero row.)
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

    def scattered(name: str, part: np.ndarray) -> np.ndarray:
        padded = scratch(name, (stack, kept, width + 2))
        padded.fill(0.0)
        padded.reshape(-1)[entries.reshape(-1)] = part.reshape(-1)
        return padded[:, :, 1 : 1 + width]

    # The columns' resampling reads the raw integers and takes its weights whole, in
    # data units; the rows' resampling reads those units (AxisGeometry's grids).
    row_sum = float(np.abs(quantized).sum(axis=0).max())
    matrix = scattered("R", quantized)
    if prefilter_reach:
        # R P, composed in a fixed order and then rounded to the grid, entry by
        # entry, each image on its own grid (its prefilter's width, never the
        # group's widest); an image without a prefilter keeps R as above.
        composed = compose_prefilter(scattered("R raw", weights), prefilter_matrix(prefilter_kernel, width))
        if transpose:
            composed = np.ldexp(to_grid(composed, RAW_BITS), UNIT_BITS)
        else:
            bits = split_bits(n_taps + 2 * geometry.prefilter_radius, _RESAMPLED_BOUND)
            composed = to_grid(composed, bits[:, None, None])
        filtered = geometry.prefilter_radius > 0
        matrix[filtered] = composed[filtered]
        row_sum = max(row_sum, float(np.abs(matrix).sum(axis=2).max()))
    # Column bounds of R's rows, nondecreasing: so is each image's (first grows with
    # p, and the bounds are clipped to its support), and so their min and max.
    span = (hi - lo)[:, None]
    tap_starts = np.clip(first - (prefilter_reach + lo)[:, None], 0, span).min(axis=0)
    tap_stops = np.clip(first + (n_taps + prefilter_reach - lo)[:, None], 0, span).max(axis=0)
    offset = 0 if aligned else int(lo[0])
    resample = Band.from_matrix(matrix, tap_starts, tap_stops, _RESAMPLE_BLOCK, transpose, column_offset=offset)
    if not transpose:  # the rows' resampling is rounded to the data grid: one part, checked
        resample = resample.rounded(n_taps + 2 * prefilter_reach, row_sum, data_units(_RESAMPLED_BOUND))

    # G (k, rows, K): output row i (frame pixel o0 + i) reads canvas indices
    # centre + i - reach .. centre + i + reach; rounded to the data grid.
    smooth = smoothing_band(kernel, o0, start, rows, kept, length, centre, recipe.smooth_boundary)
    # Folding the edge in only moves weights within a row (constant drops some): the
    # kernel's width and sum of |weights| bound every row's terms and sum.
    smooth = smooth.rounded(kernel.shape[1], float(np.abs(kernel).sum(axis=1).max()), data_units(canvas_bound(recipe)))
    return AxisPlan(kept, rows, o0 if aligned else o0[:1].copy(), lo if aligned else lo[:1].copy(), width, resample, smooth)


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


def data_units(grey: float) -> float:
    """A bound, in data units (``2**-UNIT_BITS`` grey), of data whose nominal bound is ``grey`` grey levels.

    The margin covers the rounding of every stage's result to the grid (half
    a unit) and row sums of quantised weights a few ``2**-40`` above nominal.
    """
    return math.ldexp(grey, UNIT_BITS) * (1.0 + 2.0**-20) + 1.0


def antialias_kernels(scales: np.ndarray, recipe: Recipe) -> tuple[np.ndarray, np.ndarray]:
    """The anti-aliasing prefilter's kernels (``gaussian_weights``), identities when it is off or s >= 1."""
    if not recipe.antialias:
        return np.zeros(len(scales), dtype=np.int64), np.ones((len(scales), 1))
    # recipe.antialias_sigma, elementwise: max(0, (1/s - 1) / 2)
    return gaussian_weights(np.maximum(0.0, (1.0 / scales - 1.0) / 2.0), recipe.truncate)


def kernel_band(kernel: np.ndarray, rows: int, columns: int, first_centre: int = 0) -> np.ndarray:
    """Dense banded matrices (k, rows, columns): row ``a`` holds the centred kernel around column ``a + first_centre``.

    ``kernel`` is (k, 2 r + 1), as ``gaussian_weights`` gives it; the band is
    simply cut at the matrix's edges (zero outside: nothing wraps or reflects).
    """
    reach = kernel.shape[1] // 2
    offset = np.arange(columns)[None, :] - (np.arange(rows)[:, None] + first_centre) + reach
    inside = (offset >= 0) & (offset <= 2 * reach)
    return np.where(inside, kernel[:, np.clip(offset, 0, 2 * reach)], 0.0)


def boundary_index(index: np.ndarray, length: int, mode: str) -> np.ndarray:
    """The frame pixel that scipy.ndimage's boundary ``mode`` reads for pixel ``index`` of a line of ``length``.

    Parameters
    ----------
    index : ndarray of int
        Pixels of the line extended past its ends (any integers).
    length : int
        Pixels of the line (the frame's axis).
    mode : {"reflect", "nearest", "constant"}
        ``reflect``: mirrored about the edge of the last pixel, repeatedly
        (``d c b a | a b c d | d c b a``, period ``2 length``); ``nearest``:
        the nearest edge pixel; ``constant``: none (the value outside).

    Returns
    -------
    ndarray of int64
        Pixels in ``[0, length)``; -1 where ``constant`` reads the value outside.
    """
    index = np.asarray(index, dtype=np.int64)
    if mode == "reflect":
        folded = index % (2 * length)
        return np.where(folded < length, folded, 2 * length - 1 - folded)
    if mode == "nearest":
        return np.clip(index, 0, length - 1)
    if mode == "constant":
        return np.where((index >= 0) & (index < length), index, -1)
    raise ValueError(f"no boundary mode {mode!r}")


def folded_band(kernel: np.ndarray, origin, start, rows: int, columns: int, length: int, mode: str) -> np.ndarray:
    """Dense smoothing matrices of a frame with its edge folded in (k, rows, columns).

    Row ``i`` of matrix ``j`` is frame pixel ``origin[j] + i``; column ``c`` is
    frame pixel ``start[j] + c``.  Each entry is the sum of the kernel weights
    whose taps read that pixel under the boundary ``mode`` (``boundary_index``):
    for weights on a grid (quantised kernels) a sum on that grid, exact in any
    order; a row of ``reflect`` or ``nearest`` keeps the kernel's sum, one of
    ``constant`` loses the taps past the edge.  Rows past the frame, and taps
    on pixels outside the columns (which hold zeros), are left out.

    Parameters
    ----------
    kernel : (k, 2 r + 1) ndarray of float64
        Centred kernels, as ``gaussian_weights`` gives them (possibly quantised).
    origin, start : int or (k,) ndarrays of int
    rows, columns, length : int
    mode : {"reflect", "nearest", "constant"}
    """
    stack, width = kernel.shape
    reach = width // 2
    origin = np.broadcast_to(np.asarray(origin, dtype=np.int64), (stack,))
    start = np.broadcast_to(np.asarray(start, dtype=np.int64), (stack,))
    frame = origin[:, None] + np.arange(rows)  # (k, rows)
    source = boundary_index(frame[:, :, None] + np.arange(-reach, reach + 1), length, mode)  # (k, rows, width)
    column = source - start[:, None, None]
    valid = (frame[:, :, None] < length) & (source >= 0) & (column >= 0) & (column < columns) & (kernel[:, None, :] != 0)
    flat = (np.arange(stack * rows).reshape(stack, rows, 1) * columns + column)[valid]
    weights = np.broadcast_to(kernel[:, None, :], valid.shape)[valid]
    return np.bincount(flat, weights=weights, minlength=stack * rows * columns).reshape(stack, rows, columns)


def prefilter_matrix(kernel: np.ndarray, width: int) -> np.ndarray:
    """The prefilter on ``width`` consecutive input pixels as matrices ``P`` (k, width, width), ``P[a, b] = kernel[b - a]``.

    Pixels outside the input are zero (mode constant), so the band is cut at the edges.
    """
    return kernel_band(kernel, width, width)


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
    scale: float, length: int, n_in: int, recipe: Recipe, support: tuple[int, int], keep_all: bool, transpose: bool
) -> AxisPlan:
    """``plan_axis`` for one scale, kept across calls: the writer calls the engine chunk by chunk."""
    return plan_axis(np.array([scale]), length, n_in, recipe, support, keep_all, transpose)


# --------------------------------------------------------------------------- #
# A group of images through the stages
# --------------------------------------------------------------------------- #


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
    inked = (images != 0).any(axis=0)  # (h, w): reducing the stack first is cheapest
    rows = np.flatnonzero(inked.any(axis=1))
    if rows.size == 0:
        return (0, 0), (0, 0)
    cols = np.flatnonzero(inked.any(axis=0))
    return (int(rows[0]), int(rows[-1]) + 1), (int(cols[0]), int(cols[-1]) + 1)


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


def canvas_bound(recipe: Recipe) -> float:
    """The largest magnitude, in grey levels, of a canvas pixel (after the clip, if any)."""
    if recipe.clip:
        return max(abs(recipe.clip_min), abs(recipe.clip_max))
    return _RESAMPLED_BOUND * _KEYS_ABS_SUM


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


def background_value(recipe: Recipe) -> float:
    """The output value of a zero frame pixel, computed as the threshold computes any pixel."""
    value = threshold_table(recipe).scalar(0.0)
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


# --------------------------------------------------------------------------- #
# Grouping, threads, entry point
# --------------------------------------------------------------------------- #


def _canvas_extent(scale: float, length: int, n_in: int, recipe: Recipe) -> int:
    """Rough count of kept canvas pixels on one axis at one scale (sizes the groups)."""
    radius = int(recipe.truncate * recipe.sigma(scale) + 0.5) if recipe.on_canvas else 0  # a boundary mode: the frame
    return max(1, min(int(n_in * scale) + 4, length + 2 * radius))


def _images_per_pass(ky: int, kx: int, most: int) -> int:
    """Images computed together so that their canvas is about ``_GROUP_BYTES``, at most ``most``."""
    return int(min(most, max(2, _GROUP_BYTES // (8 * max(1, ky) * max(1, kx)))))


@dataclass(frozen=True)
class _Job:
    """The call's inputs and constants, shared by the workers.

    ``filled``: ``out`` holds the background everywhere already (an array the
    engine allocated itself), so frames need only their regions written.
    """

    images: np.ndarray
    scales: np.ndarray
    out: np.ndarray
    recipe: Recipe
    keep_all: bool
    background: float
    table: threshold.SoftThreshold
    filled: bool = False

    def plans(self, scale: float, images: np.ndarray) -> tuple[AxisPlan, AxisPlan]:
        """Shared row and column plans for ``images`` at one ``scale`` (cached across calls, by ink extent)."""
        (h, w), (height, width) = self.images.shape[1:], self.out.shape[1:]
        support_y, support_x = ((0, h), (0, w)) if self.keep_all else input_support(images)
        return (
            shared_plan(scale, height, h, self.recipe, support_y, self.keep_all, False),
            shared_plan(scale, width, w, self.recipe, support_x, self.keep_all, True),
        )

    def aligned_plans(
        self, scales: np.ndarray, extents: np.ndarray, geometries: tuple[AxisGeometry, AxisGeometry], work: Workspace
    ) -> tuple[AxisPlan, AxisPlan]:
        """Aligned row and column plans (one matrix per image) for images of ``ink_extents`` ``extents``."""
        (h, w), (height, width) = self.images.shape[1:], self.out.shape[1:]
        if self.keep_all:
            extents = np.broadcast_to(np.array([0, h, 0, w]), extents.shape)
        y, x = (extents[:, 0], extents[:, 1]), (extents[:, 2], extents[:, 3])
        geometry_y, geometry_x = geometries
        return (
            plan_axis(scales, height, h, self.recipe, y, self.keep_all, False, work, geometry_y, aligned=True),
            plan_axis(scales, width, w, self.recipe, x, self.keep_all, True, work, geometry_x, aligned=True),
        )

    def geometries(self, scales: np.ndarray) -> tuple[AxisGeometry, AxisGeometry]:
        """The y and x axes' ``AxisGeometry`` of ``scales``; one serves both axes of a square frame."""
        (h, w), (height, width) = self.images.shape[1:], self.out.shape[1:]
        shift_y, shift_x = self.recipe.centre_shift
        geometry_y = AxisGeometry.of(scales, height, h, self.recipe, shift_y)
        same = (height, h, shift_y) == (width, w, shift_x)
        return geometry_y, geometry_y if same else AxisGeometry.of(scales, width, w, self.recipe, shift_x)

    def finish(self, index, region: np.ndarray, plan_y: AxisPlan, plan_x: AxisPlan, work: Workspace, stack: slice = slice(None)) -> None:
        """Stretch, threshold and store ``region`` (threshold grid units, transposed) for the frames ``index``."""
        windows = frame_windows(plan_y, plan_x, stack, len(region), self.out.shape[1:])
        table = self.table
        if self.recipe.stretch:
            stretch_in_place(region, windows, self.out.shape[1:], math.ldexp(self.recipe.clip_max, threshold.BITS))
            if not self.recipe.clip:  # a stretched negative value has no bound: widen the table to the data
                low, high = math.ldexp(float(region.min()), -threshold.BITS), math.ldexp(float(region.max()), -threshold.BITS)
                table = threshold.soft_threshold_table(self.recipe.gain, self.recipe.offset, min(low, 0.0), max(high, 0.0))
        values = table(region, work.get("values", region.shape), work)
        store(self.out, index, values, windows, None if self.filled else self.background)

    def gather(self, index, work: Workspace) -> np.ndarray:
        """The images ``index`` as float64 (m, h, w), in the worker's scratch memory."""
        selected = self.images[index]
        images = work.get("images", selected.shape)
        images[...] = selected
        return images

    def gather_aligned(self, index: np.ndarray, plan_y: AxisPlan, plan_x: AxisPlan, work: Workspace) -> np.ndarray:
        """Each image ``index[j]`` from its plans' ``input_start``, as float64 (m, rows, columns), zeros past the input."""
        images = work.get("images", (len(index), plan_y.input_width, plan_x.input_width))
        images.fill(0.0)
        starts = zip(index.tolist(), plan_y.input_start.tolist(), plan_x.input_start.tolist(), strict=True)
        for j, (i, y, x) in enumerate(starts):
            window = self.images[i, y : y + plan_y.input_width, x : x + plan_x.input_width]
            images[j, : window.shape[0], : window.shape[1]] = window
        return images

    def run_shared(self, index, work: Workspace) -> None:
        """Images at the one scale of the batch (a slice, or indices of similar ink extent)."""
        images = self.gather(index, work)
        plan_y, plan_x = self.plans(float(self.scales[index][0]), images)
        if plan_y.empty or plan_x.empty:
            self.out[index] = self.background
            return
        self.finish(index, smoothed_region(images, plan_y, plan_x, self.recipe, work), plan_y, plan_x, work)

    def run_sorted(self, window: np.ndarray, work: Workspace) -> None:
        """Images with their own scales, of nearby values (a window of the scale-sorted batch).

        Their geometry is computed once.  Groups of ``_PLAN_GROUP`` images of
        like ink size share aligned plans (each image's matrices start where its
        own ink does, so the group's canvas spans its largest digit, not the
        union of their positions) and go through them a few at a time.  Blank
        images are the background.
        """
        extents = ink_extents(self.images[window])
        if not self.keep_all:
            blank = extents[:, 1] == 0
            self.out[window[blank]] = self.background
            window, extents = window[~blank], extents[~blank]
        # By ink width, then height: like sizes together, whatever their positions.
        order = np.lexsort((extents[:, 1] - extents[:, 0], extents[:, 3] - extents[:, 2]))
        window, extents = window[order], extents[order]
        geometry_y, geometry_x = self.geometries(self.scales[window])
        for g in range(0, len(window), _PLAN_GROUP):
            members = slice(g, min(len(window), g + _PLAN_GROUP))
            index = window[members]
            subset_y = geometry_y.subset(members)
            subset_x = subset_y if geometry_x is geometry_y else geometry_x.subset(members)
            plan_y, plan_x = self.aligned_plans(self.scales[index], extents[members], (subset_y, subset_x), work)
            if plan_y.empty or plan_x.empty:
                self.out[index] = self.background
                continue
            images = self.gather_aligned(index, plan_y, plan_x, work)
            step = _images_per_pass(plan_y.size, plan_x.size, _GROUP_MAX_PER_SAMPLE)
            for a in range(0, len(index), step):
                part = slice(a, min(len(index), a + step))
                region = smoothed_region(images[part], plan_y, plan_x, self.recipe, work, part)
                self.finish(index[part], region, plan_y, plan_x, work, part)


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


def _tasks(images: np.ndarray, scales: np.ndarray, out_shape, recipe: Recipe) -> list[tuple[bool, slice | np.ndarray]]:
    """Split the batch into groups: ``(shared, index)``, a slice or ascending indices.

    One scale: consecutive images, or at larger scales groups of like ink
    extent, sized for the cache.  Per-sample scales: windows of
    ``_SCALE_WINDOW`` scale-sorted neighbours (``_Job.run_sorted`` splits
    each into plan groups).
    """
    n = len(scales)
    if n == 0:
        return []
    if np.all(scales == scales[0]):
        scale = float(scales[0])
        ky = _canvas_extent(scale, out_shape[0], images.shape[1], recipe)
        kx = _canvas_extent(scale, out_shape[1], images.shape[2], recipe)
        step = _images_per_pass(ky, kx, _GROUP_MAX)
        if ky * kx < _SORT_MIN_CANVAS:
            return [(True, slice(a, min(n, a + step))) for a in range(0, n, step)]
        shared, order = True, ink_order(images)
    else:
        step, shared, order = _SCALE_WINDOW, False, np.argsort(scales, kind="stable")
    return [(shared, np.sort(order[a : a + step])) for a in range(0, n, step)]


def transform_images(
    images: np.ndarray,
    scales,
    out_shape: tuple[int, int],
    recipe: Recipe = Recipe(),
    threads: int = 1,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """The recipe over a batch, as ``recipe.transform_images`` computes it, batched.

    Parameters
    ----------
    images : (n, h, w) ndarray
        Integer grey levels in [0, 255] (MNIST: uint8, 28 x 28), any real dtype; read as float64.
    scales : float or (n,) array_like
        Magnification per image (s > 0); one value for all, or one per image.
    out_shape : (H, W)
        Output frame in pixels.
    recipe : Recipe
        ``order`` must be one of ``SUPPORTED_ORDERS``.
    threads : int
        Worker threads (cores) to use; BLAS is held to one thread per worker.
    out : (n, H, W) ndarray of float64, optional
        Where to write the result.

    Returns
    -------
    (n, H, W) ndarray of float64
        Values in (-1, 1), within ``ENGINE_TOLERANCE`` of the reference and
        the same on every machine.
        Memory beyond ``out`` does not grow with n beyond one byte per input
        pixel: scratch and matrices take up to about 15 MB per thread at
        112 x 112 (measured with per-sample scales in [0.5, 8]).
    """
    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"images must be (n, h, w), got shape {images.shape}")
    if recipe.order not in SUPPORTED_ORDERS:
        raise NotImplementedError(
            f"interpolation order {recipe.order} is not reproduced by the engine; use one of {SUPPORTED_ORDERS}"
        )
    if recipe.sigma_per_scale < 0 or recipe.truncate < 0:
        raise ValueError("sigma_per_scale and truncate must be >= 0")
    if int(threads) < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    n = images.shape[0]
    height, width = (int(v) for v in out_shape)
    scales = np.broadcast_to(np.asarray(scales, dtype=np.float64), (n,))
    if not np.all(np.isfinite(scales) & (scales > 0)):
        raise ValueError("scales must be finite and > 0")
    if out is not None and (out.shape != (n, height, width) or out.dtype != np.float64):
        raise ValueError(f"out must be float64 of shape {(n, height, width)}, got {out.dtype} {out.shape}")

    if images.size and images.dtype != np.uint8:
        low, high = images.min(), images.max()
        if low < 0 or high > RAW_MAX or not np.array_equal(images, np.rint(images)):
            raise ValueError(f"images must hold integer grey levels in [0, {RAW_MAX}] (the engine computes on exact grids)")
    if canvas_bound(recipe) * 2.0 ** (UNIT_BITS + HI_BITS) * _KEYS_ABS_SUM >= 2.0**53:
        raise ValueError(
            f"recipe: the clip range [{recipe.clip_min:g}, {recipe.clip_max:g}] is too wide for the engine's exact grids "
            f"(magnitudes up to {2.0 ** (53 - UNIT_BITS - HI_BITS) / _KEYS_ABS_SUM:g})"
        )

    # np.clip's image of zero: when it is not zero the whole canvas matters.
    zero_after_clip = min(max(0.0, recipe.clip_min), recipe.clip_max) if recipe.clip else 0.0
    table = threshold_table(recipe)
    background = table.scalar(0.0)
    # An array of its own starts as the background: one sequential pass, which also
    # takes the fresh memory's page faults faster than the scattered frame writes would.
    filled = out is None
    if filled:
        out = np.full((n, height, width), background)
    job = _Job(images, scales, out, recipe, zero_after_clip != 0.0, background, table, filled)
    tasks = _tasks(images, scales, (height, width), recipe)

    def worker(share: list) -> None:
        work = Workspace()
        for shared, index in share:
            if shared:
                job.run_shared(index, work)
            else:
                job.run_sorted(index, work)

    threads = min(int(threads), max(1, len(tasks)))
    with blas_threads_limited(1):
        if threads == 1:
            worker(tasks)
        else:
            # Interleaved shares balance the per-sample groups, whose cost grows with the scale.
            with ThreadPoolExecutor(max_workers=threads) as pool:
                for future in [pool.submit(worker, tasks[t::threads]) for t in range(threads)]:
                    future.result()
    if recipe.round_to_float32:
        out[...] = out.astype(np.float32)
    return out
