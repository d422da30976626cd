"""Elementary functions whose results do not depend on the machine.

numpy's ``exp``, ``arctan`` and ``power``, and the C library behind Python's
``**`` and ``math.exp``, may differ in their last bits between SIMD levels,
numpy versions and platforms.  Everything here is built from operations whose
result IEEE 754 fixes exactly: elementwise ``+ - * /``, ``sqrt``, ``rint``,
``floor``, comparisons and scaling by powers of two (``ldexp``), applied in a
fixed order, plus Python's ``decimal`` arithmetic, which is exactly specified.
So the same inputs give the same bits everywhere; the results are within a few
units in the last place of the true values.
"""

from __future__ import annotations

import math

import numpy as np

from .exactscalar import log_decimal, quarter_octave

__all__ = ["to_grid", "exp", "arctan", "log_decimal", "quarter_octave", "uniform_from_raw"]

# ln 2 split so that k * _LN2_HI is exact for |k| < 2**11 (its last 11 bits are zero).
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e00

# Taylor coefficients 1/n! of exp on |r| <= ln(2)/2, correctly rounded (int / int is).
_EXP_COEFFICIENTS = tuple(1 / math.factorial(n) for n in range(14))

_PI_2 = 1.57079632679489655800e00  # pi/2, correctly rounded
_PI_4 = 7.85398163397448278999e-01  # pi/4, correctly rounded
_TAN_PI_8 = 0.41421356237309503  # a threshold only: any nearby value gives equally good results


def to_grid(values: np.ndarray, bits, out: np.ndarray | None = None) -> np.ndarray:
    """Round to the nearest multiple of ``2**-bits`` (ties to even), exactly.

    Scaling by a power of two is exact (a product with ``2**bits``, correctly
    rounded like ``ldexp`` and several times faster) and ``rint`` is exact, so
    the result is the same on every machine.  ``bits`` may be an array that
    broadcasts against ``values``.
    """
    bits = np.asarray(bits)
    scaled = np.multiply(values, np.ldexp(1.0, bits), out=out)
    np.rint(scaled, out=scaled)
    return np.multiply(scaled, np.ldexp(1.0, -bits), out=scaled)


def exp(z: np.ndarray) -> np.ndarray:
    """``e**z`` elementwise, for float64 ``z`` in about [-700, 700].

    Cody and Waite's reduction ``z = k ln2 + r`` with ``|r| <= ln(2)/2``, the
    Taylor polynomial of degree 13 for ``e**r`` (truncation below 1e-17), and
    ``ldexp(e**r, k)``.  Within 2 ulp of the true value.
    """
    z = np.asarray(z, dtype=np.float64)
    k = np.rint(z * _INV_LN2)
    r = (z - k * _LN2_HI) - k * _LN2_LO
    p = np.full_like(r, _EXP_COEFFICIENTS[-1])
    for c in _EXP_COEFFICIENTS[-2::-1]:
        p = p * r + c
    return np.ldexp(p, k.astype(np.int32))


def arctan(x: np.ndarray) -> np.ndarray:
    """``arctan(x)`` elementwise for float64 ``x``.

    Reduced by symmetry to ``a = |x|``, then to ``[0, 1]`` by
    ``arctan(a) = pi/2 - arctan(1/a)``, then to ``|t| <= tan(pi/8)`` by
    ``arctan(a) = pi/4 + arctan((a-1)/(a+1))``, then halved once more by
    ``arctan(t) = 2 arctan(t / (1 + sqrt(1 + t^2)))`` to ``|t| <= 0.2``, where 14
    terms of the Taylor series leave a truncation below 1e-20.  Within a few ulp
    of the true value; meant for building tables, not for hot loops.
    """
    x = np.asarray(x, dtype=np.float64)
    a = np.abs(x)
    large = a > 1.0
    a = np.where(large, 1.0 / np.where(large, a, 1.0), a)
    middle = a > _TAN_PI_8
    t = np.where(middle, (a - 1.0) / (a + 1.0), a)
    h = t / (1.0 + np.sqrt(1.0 + t * t))
    z = h * h
    series = np.zeros_like(z)
    for n in range(13, -1, -1):
        series = series * z + (-1.0 if n % 2 else 1.0) / (2 * n + 1)
    atan_t = 2.0 * (h * series)
    atan_a = np.where(middle, _PI_4 + atan_t, atan_t)
    atan_a = np.where(large, _PI_2 - atan_a, atan_a)
    return np.where(x < 0, -atan_a, atan_a)


def uniform_from_raw(raw: np.ndarray) -> np.ndarray:
    """Uniform doubles on [0, 1) from raw 64-bit draws: the top 53 bits times ``2**-53``.

    The same mapping numpy's ``Generator.random`` uses for PCG64, written out so
    that the values depend only on the bit generator's stream.
    """
    return np.ldexp((np.asarray(raw, dtype=np.uint64) >> np.uint64(11)).astype(np.float64), -53)
