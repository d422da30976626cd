"""The soft threshold ``(2/pi) arctan(gain (x - offset))``, tabulated, the same on every machine.

``np.arctan`` differs in its last bits between SIMD levels and numpy versions,
and an arctan built from basic operations alone costs many passes per value.
So the threshold is a table: for each point ``x_k = k 2**-BITS`` of a grid on the
grey scale (1/64 of a grey level apart), the value and the first two
derivatives of the threshold there, computed once from ``exactmath.arctan`` and
rational expressions; a value ``x = x_k + d 2**-BITS`` (``|d| <= 1/2``) is then
the Taylor polynomial ``c0[k] + c1[k] d + c2[k] d**2``.  The third-order term it
leaves out is below 1e-12 (``(2/pi) (1/3) (gain 2**-BITS / 2)**3``); every step is
an exact or correctly rounded IEEE operation, so the result is the same
everywhere.  Three table lookups and a few passes per value cost about five
times ``np.arctan``; a longer polynomial would cost a lookup more per term.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from .exactmath import arctan

__all__ = ["BITS", "CHUNK", "SoftThreshold", "soft_threshold_table"]

#: The table's grid: 2**-BITS grey levels.  Callers hand in values already scaled
#: by 2**BITS (``t = x 2**BITS``), which saves a pass.
BITS = 6

#: Values thresholded per chunk: the chunk's five arrays (1.3 MB) stay in the
#: cache of one core (measured in the engine at s = 4, regions of 14 images:
#: 30 against 35 us an image for whole regions).
CHUNK = 1 << 15


class SoftThreshold:
    """The tabulated threshold over grid points ``k = first .. first + len - 1``.

    Attributes
    ----------
    first : int
        Grid index of the table's first row.
    coefficients : tuple of 3 (K,) ndarrays of float64
        ``c_j[k - first]``, the Taylor coefficients in ``d`` (grid units).
    """

    def __init__(self, gain: float, offset: float, first: int, last: int) -> None:
        self.first = int(first)
        k = np.arange(self.first, int(last) + 1, dtype=np.float64)
        x = gain * (np.ldexp(k, -BITS) - offset)
        q = 1.0 + x * x
        step = gain * math.ldexp(1.0, -BITS)  # dx per grid unit of d
        scale = 2 / math.pi
        derivatives = (arctan(x), 1.0 / q, -x / (q * q))  # arctan^(j)(x) / j!
        self.coefficients = tuple(np.ascontiguousarray(scale * step**j * f) for j, f in enumerate(derivatives))

    @property
    def last(self) -> int:
        return self.first + len(self.coefficients[0]) - 1

    def __call__(self, t: np.ndarray, out: np.ndarray, work=None) -> np.ndarray:
        """The threshold of ``x = t 2**-BITS``, into ``out`` (shape of ``t``, both C-contiguous); ``t`` is overwritten.

        ``work``, the caller's ``engine.workspace.Workspace``, lends the scratch arrays
        (fresh ones without it).  Every ``t`` must lie in ``[first - 1/2, last + 1/2]``.
        The values go through ``CHUNK`` at a time, so that the passes over one
        chunk find its arrays still in the core's cache.
        """
        if not (t.flags.c_contiguous and out.flags.c_contiguous) or t.shape != out.shape:
            raise ValueError("t and out must be C-contiguous arrays of one shape")
        scratch = work.get if work is not None else lambda name, shape, dtype=np.float64: np.empty(shape, dtype)
        values, results = t.reshape(-1), out.reshape(-1)
        for a in range(0, values.size, CHUNK):
            self._polynomial(values[a : a + CHUNK], results[a : a + CHUNK], scratch)
        return out

    def _polynomial(self, t: np.ndarray, out: np.ndarray, scratch) -> None:
        """``__call__`` on one chunk (1-d)."""
        shape = t.shape
        r = np.rint(t, out=scratch("threshold r", shape))
        np.subtract(t, r, out=t)  # d, exactly
        if self.first:
            r -= self.first
        index = scratch("threshold index", shape, np.intp)
        index[...] = r
        c = self.coefficients
        term = scratch("threshold term", shape)
        # Every index is in the table (see above); numpy's "wrap" mode is its fastest take.
        np.take(c[2], index, out=out, mode="wrap")
        for j in (1, 0):
            out *= t
            out += np.take(c[j], index, out=term, mode="wrap")

    def scalar(self, x: float) -> float:
        """The threshold of one grey level ``x`` (the background is ``scalar(0)``)."""
        return float(self(np.array([math.ldexp(float(x), BITS)]), np.empty(1))[0])


@functools.lru_cache(maxsize=16)
def soft_threshold_table(gain: float, offset: float, low: float, high: float) -> SoftThreshold:
    """The table for grey levels in ``[low, high]`` (kept across calls).

    A row depends only on its grid point, never on the table's extent; a table
    for non-negative values starts at 0, which saves the index a shift.
    """
    first = 0 if low >= 0 else math.floor(math.ldexp(low, BITS)) - 1
    return SoftThreshold(gain, offset, first, math.ceil(math.ldexp(high, BITS)) + 1)
