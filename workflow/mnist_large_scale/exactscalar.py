"""Scalar functions whose results do not depend on the machine, in the standard library alone.

The file-name grammar (``names``) and the config checks that run while
Snakemake reads the workflow need these without numpy; ``exactmath`` holds
the array functions and gives these two under its own name too.  Both are
built from correctly rounded operations (``sqrt`` of an exact power of two,
``decimal`` arithmetic), so they give the same bits everywhere.
"""

from __future__ import annotations

import decimal
import math

__all__ = ["log_decimal", "quarter_octave"]


def log_decimal(value: float) -> float:
    """The natural logarithm of a positive float, correctly rounded (``decimal``, 40 digits)."""
    if not value > 0:
        raise ValueError(f"log of {value!r}: the value must be positive")
    with decimal.localcontext(decimal.Context(prec=40, rounding=decimal.ROUND_HALF_EVEN)):
        return float(decimal.Decimal(value).ln())


def quarter_octave(k: int) -> float:
    """``2**(k/4)`` as ``sqrt(sqrt(2**k))``: two correctly rounded square roots of an exact power."""
    return math.sqrt(math.sqrt(math.ldexp(1.0, int(k))))
