"""The statistics of an evaluation: pure functions of counts, no arrays, no torch.

Accuracy is a binomial proportion (``k`` correct of ``n`` images), so its
interval is Wilson's score interval.  Two evaluations of one model on two
versions of the same images are paired: each image is correct in both, in
one, or in neither, and only the images correct in exactly one (the
discordant pairs ``b`` and ``c``) tell the two versions apart.  McNemar's
test asks whether ``b`` and ``c`` differ by more than chance; the difference
of the paired accuracies gets Newcombe's score interval for paired data.
When only counts are known for one side (a published table of correct
counts), the pairing is lost and ``two_proportion_test`` compares the counts
as if they came from independent samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats as _scipy_stats

__all__ = [
    "Z_95",
    "EXACT_MCNEMAR_BELOW",
    "wilson_interval",
    "McNemar",
    "mcnemar_test",
    "paired_difference_interval",
    "TwoProportions",
    "two_proportion_test",
    "smallest_paired_p",
]

#: The normal quantile of a two-sided 95 % interval (1.959963984540054).
Z_95 = float(_scipy_stats.norm.ppf(0.975))
#: McNemar's test is the exact binomial test when fewer than this many pairs are discordant,
#: the chi-square test with continuity correction otherwise (where the chi-square
#: approximation of the binomial is good: b + c >= 25, as in Fagerland et al.'s advice).
EXACT_MCNEMAR_BELOW = 25


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), not {confidence}")
    return Z_95 if confidence == 0.95 else float(_scipy_stats.norm.ppf(0.5 + confidence / 2))


def wilson_interval(correct: int, total: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson's score interval of a proportion ``correct / total``.

    ``(p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)`` with
    ``p = correct / total``; unlike the normal (Wald) interval it stays inside
    [0, 1] and does not collapse to a point at 0 or ``total`` correct.

    Parameters
    ----------
    correct, total : int
        ``0 <= correct <= total``, ``total >= 1``.
    confidence : float

    Returns
    -------
    (low, high) : tuple of float
        Proportions in [0, 1].
    """
    if total < 1 or not 0 <= correct <= total:
        raise ValueError(f"a proportion needs 0 <= correct <= total and total >= 1, not {correct} of {total}")
    z = _z(confidence)
    p = correct / total
    centre = p + z * z / (2 * total)
    spread = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    denominator = 1 + z * z / total
    return max(0.0, (centre - spread) / denominator), min(1.0, (centre + spread) / denominator)


@dataclass(frozen=True)
class McNemar:
    """McNemar's test of ``b`` against ``c`` discordant pairs.

    Attributes
    ----------
    b, c : int
        Pairs correct only in the first, only in the second evaluation.
    method : str
        'exact binomial' (two-sided, ``b + c < EXACT_MCNEMAR_BELOW``), 'chi-square
        with continuity correction', or 'none' when no pair is discordant.
    statistic : float
        ``(|b - c| - 1)^2 / (b + c)`` for the chi-square test; ``min(b, c)`` for the exact test; 0 with no discordant pair.
    p_value : float
    """

    b: int
    c: int
    method: str
    statistic: float
    p_value: float


def mcnemar_test(b: int, c: int) -> McNemar:
    """McNemar's test: do the discordant pairs split unevenly?

    Under the null hypothesis (both versions give the same accuracy) each of
    the ``b + c`` discordant pairs is as likely to fall either way, so ``b`` is
    Binomial(b + c, 1/2).  Fewer than ``EXACT_MCNEMAR_BELOW`` discordant pairs:
    the exact two-sided binomial p-value ``min(1, 2 P(X <= min(b, c)))``;
    otherwise the chi-square statistic with continuity correction
    ``(|b - c| - 1)^2 / (b + c)`` on one degree of freedom.

    Parameters
    ----------
    b, c : int
        Counts of the two kinds of discordant pairs, >= 0.

    Returns
    -------
    McNemar
    """
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, not b={b}, c={c}")
    m = b + c
    if m == 0:
        return McNemar(b, c, "none", 0.0, 1.0)
    if m < EXACT_MCNEMAR_BELOW:
        p = min(1.0, 2 * float(_scipy_stats.binom.cdf(min(b, c), m, 0.5)))
        return McNemar(b, c, "exact binomial", float(min(b, c)), p)
    statistic = (abs(b - c) - 1) ** 2 / m
    return McNemar(b, c, "chi-square with continuity correction", statistic, float(_scipy_stats.chi2.sf(statistic, 1)))


def paired_difference_interval(both: int, first_only: int, second_only: int, neither: int, confidence: float = 0.95) -> tuple[float, float, float]:
    """The difference of two paired accuracies, second minus first, with Newcombe's score interval.

    Newcombe (1998, Statistics in Medicine 17:2635, method 10): the Wilson
    intervals ``(l1, u1)`` and ``(l2, u2)`` of the two accuracies ``p1 =
    (both + first_only) / n`` and ``p2 = (both + second_only) / n`` are combined
    with the correlation ``phi`` of the 2 x 2 table (0 where a margin is
    empty)::

        D = p2 - p1
        low  = D - sqrt((p2 - l2)^2 - 2 phi (p2 - l2)(u1 - p1) + (u1 - p1)^2)
        high = D + sqrt((u2 - p2)^2 - 2 phi (u2 - p2)(p1 - l1) + (p1 - l1)^2)

    Parameters
    ----------
    both, first_only, second_only, neither : int
        Images correct in both evaluations, in the first only, in the second only, in neither.
    confidence : float

    Returns
    -------
    (difference, low, high) : tuple of float
        Accuracy of the second minus that of the first, as proportions.
    """
    counts = (both, first_only, second_only, neither)
    if min(counts) < 0 or sum(counts) < 1:
        raise ValueError(f"a paired table needs counts >= 0 and at least one pair, not {counts}")
    n = sum(counts)
    p1, p2 = (both + first_only) / n, (both + second_only) / n
    l1, u1 = wilson_interval(both + first_only, n, confidence)
    l2, u2 = wilson_interval(both + second_only, n, confidence)
    margins = (both + first_only) * (second_only + neither) * (both + second_only) * (first_only + neither)
    phi = (both * neither - first_only * second_only) / math.sqrt(margins) if margins else 0.0
    below = (p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2
    above = (u2 - p2) ** 2 - 2 * phi * (u2 - p2) * (p1 - l1) + (p1 - l1) ** 2
    difference = p2 - p1
    return difference, max(-1.0, difference - math.sqrt(max(below, 0.0))), min(1.0, difference + math.sqrt(max(above, 0.0)))


@dataclass(frozen=True)
class TwoProportions:
    """Two accuracies from counts alone, compared as independent samples.

    Attributes
    ----------
    difference : float
        ``second / n2 - first / n1``.
    low, high : float
        Newcombe's hybrid score interval of the difference (his 1998 method 10
        for independent samples: the paired formula with ``phi = 0``).
    z : float
        The pooled two-proportion z statistic (0 when both accuracies are 0 or 1).
    p_value : float
        Two-sided, from the normal distribution.
    smallest_paired_p : float
        The smallest p-value McNemar's exact test could give for these counts
        on the same images, whatever the pairing (``smallest_paired_p``).
    """

    difference: float
    low: float
    high: float
    z: float
    p_value: float
    smallest_paired_p: float


def two_proportion_test(first: int, first_total: int, second: int, second_total: int, confidence: float = 0.95) -> TwoProportions:
    """Compare ``first / first_total`` with ``second / second_total`` when only the counts are known.

    The test assumes two independent samples.  Two evaluations on the same
    images are positively correlated (an image hard for one is hard for the
    other), which makes the true variance of their difference smaller than
    the independent one: the test is then conservative, so a significant
    result is a real difference while a non-significant one does not prove
    equality.  ``smallest_paired_p`` bounds the other side.

    Parameters
    ----------
    first, first_total, second, second_total : int
    confidence : float

    Returns
    -------
    TwoProportions
    """
    l1, u1 = wilson_interval(first, first_total, confidence)
    l2, u2 = wilson_interval(second, second_total, confidence)
    p1, p2 = first / first_total, second / second_total
    difference = p2 - p1
    low = difference - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
    high = difference + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
    pooled = (first + second) / (first_total + second_total)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / first_total + 1 / second_total))
    z = difference / spread if spread > 0 else 0.0
    p_value = float(2 * _scipy_stats.norm.sf(abs(z)))
    paired = smallest_paired_p(first, second) if first_total == second_total else math.nan
    return TwoProportions(difference, max(-1.0, low), min(1.0, high), z, p_value, paired)


def smallest_paired_p(first: int, second: int) -> float:
    """The smallest two-sided p-value McNemar's exact test can give for two correct counts on the same images.

    With counts alone the pairing is unknown, but at least ``d = |first -
    second|`` images are discordant, and the most significant table is the
    one with exactly ``d`` discordant pairs, all one way: ``p = min(1, 2 *
    2^-d)``.  When even that p-value is large (``d <= 5`` gives 0.0625) no
    pairing of the images could show a difference at the 5 % level.
    """
    d = abs(first - second)
    return min(1.0, 2.0 * 0.5**d)
