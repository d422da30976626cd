"""Banded matrix products on exact grids, checked, and why they give the same bytes everywhere.

A ``Band`` is a stack of banded matrices kept as row blocks without their zero
columns; its products with the data are exact or, where one product of the
unsplit weights may round, checked against a proven bound and repaired
element by element.  The argument that makes the engine's bytes the same on
every machine lives here.

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
  (``Band.with_error_bound``); every result farther than that bound from a
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
  is all that the grid bits (``weight_grid_bits``) and the rounding bound
  (``Band.with_error_bound``) assume;
* the soft threshold is ``threshold.SoftThreshold``, a table with a Taylor
  polynomial, built from ``exactmath.arctan``;
* each image's result depends only on that image and its scale, never on the
  images computed beside it (blocks, groups, ink extents only add exact zeros).

So the result differs from the float reference (``recipe.py``) only by the
grids' rounding: at most ``ENGINE_TOLERANCE`` after the threshold (a few
1e-10 are typical; the tests check the bound on real digits at every
published scale and per sample).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .grids import grid_bits, split_weights
from .workspace import Workspace


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
    ``error_bound`` bounds how far it can lie from the two-part result (see
    ``with_error_bound``); the rare results that bound leaves in doubt are computed
    again from the two parts.

    Attributes
    ----------
    blocks : tuple of (a, b, q0, q1, block)
        ``A[:, a:b, q0:q1]`` holds every nonzero of rows ``a:b``.  ``block`` is
        that slice, shape (k, b-a, q1-q0), or, for a band built for
        right-multiplication (``from_matrix`` with ``transposed``), its
        transpose (k, q1-q0, b-a).
    zero_rows : tuple of (a, b)
        Row ranges that are zero in every matrix.
    run : (a, count, q0, piece) or None
        ``count`` further blocks of equal height ``h`` and equal content
        ``piece`` (as a block above), at rows ``a + i h`` and columns
        ``q0 + i h ..``: the interior of a Toeplitz band, done in one call.
    error_bound : float
        The largest distance between the product, as any BLAS computes it,
        and the two-part result, in data units; 0 when the product is exact.
    """

    blocks: tuple[tuple[int, int, int, int, np.ndarray], ...]
    zero_rows: tuple[tuple[int, int], ...]
    run: tuple[int, int, int, np.ndarray] | None = None
    error_bound: float = 0.0

    @classmethod
    def from_matrix(
        cls,
        matrix: np.ndarray,
        starts: np.ndarray,
        stops: np.ndarray,
        block: int,
        transposed: bool,
        column_offset: int = 0,
    ) -> Band:
        """Cut ``matrix`` (k, P, Q) into row blocks of ``block`` rows, copying each.

        ``starts`` and ``stops`` (P,) bound the columns that may be nonzero in
        each row (of any of the k matrices); both must be nondecreasing, as in a
        band.  The matrix holds columns ``column_offset ..`` of ``A``.
        ``transposed``: store the blocks transposed, for ``right``.
        """
        blocks, zero_rows = [], []
        for a in range(0, matrix.shape[1], block):
            b = min(matrix.shape[1], a + block)
            q0, q1 = int(starts[a]), int(stops[b - 1])
            if q1 <= q0:
                zero_rows.append((a, b))
                continue
            piece = matrix[:, a:b, q0:q1]
            blocks.append((a, b, q0 + column_offset, q1 + column_offset, np.ascontiguousarray(piece.transpose(0, 2, 1) if transposed else piece)))
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
        return all(piece.shape[0] == 1 for piece in self._weights())

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

    def with_error_bound(self, terms: int, row_sum: float, data_bound: float) -> Band:
        """This band, with ``error_bound`` set for its products with data up to ``data_bound`` units.

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
        are powers of two, say) gets ``error_bound`` 0.
        """
        pieces = self._weights()
        if not pieces:  # every row is zero: nothing to round
            return self
        largest = row_sum * data_bound
        if self.shared:
            if largest < math.ldexp(1.0, 53 - max(grid_bits(piece) for piece in pieces)):
                return replace(self, error_bound=0.0)
        inner = min(terms, max(piece.shape[2] for piece in pieces))
        unit = math.ldexp(1.0, -53)
        gamma = inner * unit / (1.0 - inner * unit)
        # A hair above the bound, so that its own evaluation cannot make it smaller.
        return replace(self, error_bound=(gamma + unit) * largest * (1.0 + 2.0**-20))

    def left_rounded(
        self, x: np.ndarray, out: np.ndarray, images: slice = slice(None), work: Workspace | None = None
    ) -> np.ndarray:
        """``out = rint(A @ x)``, equal to the rounded two-part (exact) result.

        Where the product may round (``error_bound`` > 0) every element farther
        than ``error_bound`` from a half-integer rounds as the two-part result
        does, and the rare others (about one in ``1 / (2 error_bound)``) are
        computed again exactly, as the two parts would.
        """
        if not self.error_bound:
            return np.rint(self.left(x, out, images), out=out)
        product = self.left(x, work.get("unrounded", out.shape), images)
        np.rint(product, out=out)
        if not out.size:
            return out
        # Few elements are that close, often none.  The largest distance over the
        # images (reducing the leading axis is the fast one) finds their
        # positions, then the images there that need it.
        distance = np.abs(np.subtract(product, out, out=product), out=product)
        limit = 0.5 - self.error_bound
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
        """``out = x @ A^T``: x (m, N, Q) -> out (m, N, P), for a band built ``transposed``.

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
