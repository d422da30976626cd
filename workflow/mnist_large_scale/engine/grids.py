"""The engine's power-of-two grids: the units of the data between stages and the rounding of weights.

A product of numbers on power-of-two grids is exact when every partial sum
stays below 2**53 of its grid (``band.py`` says why that gives the same bytes
everywhere).  This module holds the grids and what keeps data and weights on
them: the data's unit (``2**-UNIT_BITS`` grey levels), the coarse grid of a
split weight (``2**-HI_BITS``), the raw columns' weight grid
(``2**-RAW_BITS``), the grid that a set of weights may take on data of a given
magnitude, the rounding of weights that keeps each set summing to exactly 1,
and the bounds of the data at each stage.
"""

from __future__ import annotations

import math

import numpy as np

from ..exactmath import to_grid
from ..recipe import Recipe

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
KEYS_ABS_SUM = 1.25
RESAMPLED_BOUND = RAW_MAX * KEYS_ABS_SUM


def weight_grid_bits(taps, bound: float):
    """The number of bits ``g`` of the finest grid ``2**-g`` that weights may take, for a split that stays exact.

    Parameters
    ----------
    taps : int or ndarray of int
        Nonzero weights in a row (one count per image, for a stack of kernels).
    bound : float
        Largest magnitude of the data, in grey levels.

    Returns
    -------
    int64 or ndarray of int64
        ``g``, at most ``RAW_BITS``.

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


def padded_data_bound(grey: float) -> float:
    """The bound ``grey`` grey levels in data units (``2**-UNIT_BITS`` grey), padded so that it bounds the data computed.

    The padding covers the rounding of every stage's result to the grid (half
    a unit) and row sums of quantised weights a few ``2**-40`` above nominal.
    """
    return math.ldexp(grey, UNIT_BITS) * (1.0 + 2.0**-20) + 1.0


def canvas_bound(recipe: Recipe) -> float:
    """The largest magnitude, in grey levels, of a canvas pixel (after the clip, if any)."""
    if recipe.clip:
        return max(abs(recipe.clip_min), abs(recipe.clip_max))
    return RESAMPLED_BOUND * KEYS_ABS_SUM
