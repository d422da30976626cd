"""The weights of scikit-image's warp and of scipy's Gaussian filter, derived from their definitions.

The rest of the engine puts these weights on exact grids and computes the
recipe as matrix products; this module holds only what the weights *are*, as
the two libraries define them, so that the engine can be read against them
and tested against them (``tests/test_operators.py``: warps and Gaussian
filters of unit impulses).

* Interpolation (``tap_positions``, ``tap_weights``, ``largest_tap``):
  scikit-image's Cython warp, ``skimage/transform/_warps_cy.pyx``
  (``_warp_fast``: the output pixel's coordinates through the 3 x 3 matrix,
  mode constant), which calls the interpolators of
  ``skimage/_shared/interpolation.pxd``: ``nearest_neighbour_interpolation``
  (order 0, its own ``round``), ``bilinear_interpolation`` (order 1) and
  ``bicubic_interpolation`` (order 3, Keys' cubic convolution with a = -0.5,
  written in Horner form over four neighbours), each reading pixels outside
  the image as ``cval``.  Separable: one axis at a time gives the same
  weights.
* Anti-aliasing (``antialias_sigma``): the prefilter's sigma of scikit-image's
  ``resize``, ``skimage/transform/_warps.py``.
* Gaussian (``gaussian_radius``, ``gaussian_weights``): scipy's
  ``gaussian_filter``, ``scipy/ndimage/_filters.py``: the radius
  ``int(truncate * sigma + 0.5)`` of ``gaussian_filter1d``, the sampled and
  normalised kernel of ``_gaussian_kernel1d`` (order 0), and axes whose sigma
  is at most 1e-15 left alone.
* Boundaries and matrices (``boundary_index``, ``folded_band``,
  ``kernel_band``, ``prefilter_matrix``, ``resampling_matrix``): the pixel that scipy.ndimage's
  boundary modes read past a line's end (``scipy/ndimage/src/ni_support.c``,
  ``NI_ExtendLine``), and a filter on a line as the dense matrix of its
  correlation, in mode ``constant`` or with the edge folded in, and the warp
  along a line as the dense matrix of its taps.

The exponentials come from ``exactmath.exp`` and the kernel's sum is taken on
a grid, so that the weights are the same on every machine; they equal scipy's
within a few units in the last place.
"""

from __future__ import annotations

import numpy as np

from ..exactmath import exp, to_grid

__all__ = [
    "SUPPORTED_ORDERS",
    "TAPS",
    "gaussian_radius",
    "antialias_sigma",
    "gaussian_weights",
    "tap_positions",
    "tap_weights",
    "largest_tap",
    "boundary_index",
    "folded_band",
    "kernel_band",
    "resampling_matrix",
    "prefilter_matrix",
]

#: Interpolation orders whose scikit-image warp (Cython ``_warp_fast``) is reproduced.
SUPPORTED_ORDERS = (0, 1, 3)

#: Input pixels read per output pixel and axis, by interpolation order.
TAPS = {0: 1, 1: 2, 3: 4}

#: scipy's gaussian_filter leaves an axis alone when its sigma is at most this.
SIGMA_SKIP = 1e-15


def gaussian_radius(sigma: np.ndarray, truncate: float) -> np.ndarray:
    """scipy's kernel radius ``int(truncate * sigma + 0.5)``, elementwise, as int64.

    The canvas margin of the recipe is this plus one, for any sigma
    (``recipe.canvas_margin``).
    """
    return np.trunc(truncate * np.asarray(sigma, dtype=np.float64) + 0.5).astype(np.int64)


def antialias_sigma(scale):
    """scikit-image's anti-aliasing sigma in input pixels, ``max(0, (1/s - 1) / 2)``, elementwise.

    ``skimage/transform/_warps.py``: ``resize`` (which ``rescale`` calls) with
    ``anti_aliasing=True`` and no ``anti_aliasing_sigma`` takes
    ``max(0, (factors - 1) / 2)``, the factors being input over output size,
    ``1/s``; zero at scales s >= 1.

    Parameters
    ----------
    scale : float or ndarray of float64
        Magnifications s > 0.

    Returns
    -------
    float64 or ndarray of float64
    """
    return np.maximum(0.0, (1.0 / np.asarray(scale, dtype=np.float64) - 1.0) / 2.0)


def gaussian_weights(sigma: np.ndarray, truncate: float) -> tuple[np.ndarray, np.ndarray]:
    """scipy's sampled Gaussian kernels for a stack of sigmas, zero-padded to one width.

    Parameters
    ----------
    sigma : (m,) ndarray of float64
        Standard deviations in pixels, >= 0.
    truncate : float
        Radius in sigmas.

    Returns
    -------
    radius : (m,) ndarray of int64
        Kernel half-widths; 0 where the filter is skipped (``sigma <= 1e-15``).
    weights : (m, 2 * radius.max() + 1) ndarray of float64
        Row ``j`` holds ``exp(-0.5 x^2 / sigma_j^2)`` for ``|x| <= radius_j``,
        normalised to sum 1 (``scipy.ndimage._gaussian_kernel1d``), centred; a
        skipped filter is the identity ``[1]``.
    """
    sigma = np.asarray(sigma, dtype=np.float64)
    smooth = sigma > SIGMA_SKIP
    radius = np.where(smooth, gaussian_radius(sigma, truncate), 0)
    reach = int(radius.max())
    x = np.arange(-reach, reach + 1)
    inside = np.abs(x) <= radius[:, None]
    # Same expression as scipy (-0.5 / sigma2 * x ** 2), with a deterministic exp; the
    # guard only avoids dividing by a zero sigma whose row is replaced by the identity below.
    sigma2 = np.where(smooth, sigma * sigma, 1.0)
    phi = np.where(inside, exp((-0.5 / sigma2)[:, None] * (x * x)), 0.0)
    # On a grid of 2**-45 the sum of at most 2**7 values below 1 is exact in any order.
    phi = to_grid(phi, 45)
    weights = phi / phi.sum(axis=1, keepdims=True)
    weights[~smooth] = (x == 0).astype(np.float64)
    return radius, weights


def tap_positions(u: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """First input pixel that scikit-image's Cython warp reads at coordinate ``u``, and the fraction.

    Parameters
    ----------
    u : ndarray of float64
        Input coordinates (pixel centres at integers).
    order : {0, 1, 3}
        0: nearest (rounding half away from zero), 1: linear, 3: Keys cubic
        convolution with a = -0.5 (``skimage/_shared/interpolation.pxd``).

    Returns
    -------
    first : ndarray of int64, shape of ``u``
        Tap ``t`` reads input pixel ``first + t``; it never decreases as ``u`` grows.
    fraction : ndarray of float64, shape of ``u``
        ``u - floor(u)`` (unused by order 0).
    """
    if order not in SUPPORTED_ORDERS:
        raise NotImplementedError(
            f"interpolation order {order} is not reproduced by the engine; use one of {SUPPORTED_ORDERS}"
        )
    if order == 0:
        # Cython's round(): (r + 0.5) if r > 0 else (r - 0.5), truncated to an integer.
        nearest = np.trunc(np.where(u > 0.0, u + 0.5, u - 0.5))
        return nearest.astype(np.int64), np.zeros_like(u)
    floor = np.floor(u)
    first = floor.astype(np.int64) - (1 if order == 3 else 0)
    return first, u - floor


def tap_weights(fraction: np.ndarray, order: int) -> np.ndarray:
    """Weights of the taps at ``fraction`` (from ``tap_positions``), tap first: (taps,) + fraction.shape.

    Pixels outside the input read as zero (mode constant, cval 0), so a tap
    off the image simply contributes nothing.
    """
    x = fraction
    weights = np.empty((TAPS[order],) + x.shape)
    if order == 3:
        x2 = x * x
        x3 = x2 * x
        # The Cython's Horner form f1 + x/2 (f2 - f0 + x (2 f0 - 5 f1 + 4 f2 - f3
        # + x (3 (f1 - f2) + f3 - f0))), collected per neighbour f0..f3.
        weights[0] = 0.5 * (2.0 * x2 - x - x3)
        weights[1] = 1.0 - 2.5 * x2 + 1.5 * x3
        weights[2] = 0.5 * (x + 4.0 * x2 - 3.0 * x3)
        weights[3] = 0.5 * (x3 - x2)
    elif order == 1:
        weights[0] = 1.0 - x
        weights[1] = x
    else:
        weights[...] = 1.0
    return weights


def largest_tap(weights: np.ndarray, order: int) -> np.ndarray:
    """``abs(weights).argmax(axis=0)`` of ``tap_weights`` (the tap with the largest weight), from one comparison.

    Keys' cubic weights at a fraction in [0, 1) have their largest magnitude
    at tap 1 or 2, both nonnegative there (each of the others stays below
    0.075, while the larger of the two is at least 0.5625); the linear
    weights are both nonnegative.  Ties go to the first, as argmax does.
    """
    if order == 3:
        return 1 + (weights[2] > weights[1])
    if order == 1:
        return (weights[1] > weights[0]).astype(np.intp)
    return np.zeros(weights.shape[1:], dtype=np.intp)


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


def resampling_matrix(first: np.ndarray, weights: np.ndarray, n_in: int) -> np.ndarray:
    """The warp along one axis as dense matrices (k, K, n_in), from ``tap_positions`` and ``tap_weights``.

    Row ``c`` of matrix ``j`` holds weight ``weights[t, j, c]`` at column
    ``first[j, c] + t``; taps off the input (columns outside ``0 .. n_in-1``)
    read zero, as the warp's mode constant with cval 0 does.

    Parameters
    ----------
    first : (k, K) ndarray of int
    weights : (taps, k, K) ndarray of float64
    n_in : int
        Input pixels.
    """
    stack, pixels = first.shape
    matrix = np.zeros((stack, pixels, n_in))
    image, row = np.indices((stack, pixels))
    for t in range(weights.shape[0]):
        column = first + t
        inside = (column >= 0) & (column < n_in)
        matrix[image[inside], row[inside], column[inside]] = weights[t][inside]
    return matrix


def kernel_band(kernel: np.ndarray, rows: int, columns: int, first_centre: int = 0) -> np.ndarray:
    """Dense banded matrices (k, rows, columns): row ``a`` holds the centred kernel around column ``a + first_centre``.

    ``kernel`` is (k, 2 r + 1), as ``gaussian_weights`` gives it; the band is
    simply cut at the matrix's edges (zero outside: nothing wraps or reflects).
    """
    reach = kernel.shape[1] // 2
    offset = np.arange(columns)[None, :] - (np.arange(rows)[:, None] + first_centre) + reach
    inside = (offset >= 0) & (offset <= 2 * reach)
    return np.where(inside, kernel[:, np.clip(offset, 0, 2 * reach)], 0.0)


def prefilter_matrix(kernel: np.ndarray, width: int) -> np.ndarray:
    """The prefilter on ``width`` consecutive input pixels as matrices ``P`` (k, width, width), ``P[a, b] = kernel[b - a]``.

    Pixels outside the input are zero (mode constant), so the band is cut at the edges.
    """
    return kernel_band(kernel, width, width)
