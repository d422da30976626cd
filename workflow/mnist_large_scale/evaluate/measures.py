"""Summary measures of scale generalisation, from per-scale accuracies alone.

A model trained at scale ``s0`` and tested at scales ``s`` is summarised by
its accuracy at ``s0``, its mean accuracy over the test scales within a
factor 2, 4 and 8 of ``s0`` (``|log2(s / s0)| <= 1, 2, 3``), and the widest
run of consecutive test scales over which the accuracy stays within 1 and 5
percentage points of its best, in octaves (``log2(high / low)``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["FACTORS", "TOLERANCES", "accuracy_at", "mean_within_factor", "widest_plateau", "generalisation_summary"]

#: The scale factors around the training scale whose mean accuracy is reported.
FACTORS = (2, 4, 8)
#: Percentage points below the best accuracy that a plateau may reach.
TOLERANCES = (1, 5)
#: Two scales are one when their log2 differs by less than this (tags have three decimals).
_SAME_SCALE_OCTAVES = 1e-3


def _sorted(scales: Sequence[float], accuracies: Sequence[float]) -> list[tuple[float, float]]:
    if len(scales) != len(accuracies):
        raise ValueError(f"{len(scales)} scales but {len(accuracies)} accuracies")
    if any(scale <= 0 for scale in scales):
        raise ValueError("scales must be > 0")
    return sorted(zip(scales, accuracies, strict=True))


def accuracy_at(scales: Sequence[float], accuracies: Sequence[float], scale: float) -> float | None:
    """The accuracy at the test scale equal to ``scale`` (within 0.001 octave), or None where none was tested."""
    for tested, accuracy in _sorted(scales, accuracies):
        if abs(math.log2(tested / scale)) < _SAME_SCALE_OCTAVES:
            return accuracy
    return None


def mean_within_factor(scales: Sequence[float], accuracies: Sequence[float], scale: float, factor: float) -> float | None:
    """Mean accuracy over the test scales ``s`` with ``1/factor <= s / scale <= factor``; None if there are none."""
    bound = math.log2(factor) + _SAME_SCALE_OCTAVES
    inside = [accuracy for tested, accuracy in _sorted(scales, accuracies) if abs(math.log2(tested / scale)) <= bound]
    return sum(inside) / len(inside) if inside else None


def widest_plateau(scales: Sequence[float], accuracies: Sequence[float], points: float) -> dict:
    """The widest run of consecutive test scales whose accuracies are all within ``points`` percentage points of the best.

    Width is measured in octaves, ``log2(high / low)`` (a single scale is 0
    octaves); of runs equally wide, the one holding the best accuracy, then
    the lowest.

    Returns
    -------
    dict
        ``low``, ``high`` (scales), ``octaves``, ``scales`` (how many test
        scales the run holds) and ``threshold`` (the accuracy it stays at or
        above, a proportion).
    """
    rows = _sorted(scales, accuracies)
    if not rows:
        raise ValueError("no accuracies to summarise")
    best = max(accuracy for _, accuracy in rows)
    threshold = best - points / 100
    runs, start = [], None
    for index, (_, accuracy) in enumerate(rows + [(math.inf, -math.inf)]):
        if accuracy >= threshold - 1e-12 and start is None:
            start = index
        elif accuracy < threshold - 1e-12 and start is not None:
            runs.append((start, index - 1))
            start = None

    def rank(run):
        low, high = rows[run[0]][0], rows[run[1]][0]
        holds_best = any(rows[i][1] == best for i in range(run[0], run[1] + 1))
        return (math.log2(high / low), holds_best, -low)

    first, last = max(runs, key=rank)
    low, high = rows[first][0], rows[last][0]
    return {"low": low, "high": high, "octaves": math.log2(high / low), "scales": last - first + 1, "threshold": threshold}


def generalisation_summary(scales: Sequence[float], accuracies: Sequence[float], train_scale: float | None) -> dict:
    """Every summary measure of one evaluation; those relative to the training scale are None without one.

    Returns
    -------
    dict
        ``train_scale``, ``accuracy_at_train_scale``, ``mean_within_factor``
        (``{"2": ..., "4": ..., "8": ...}``), ``best`` (``scale``, ``accuracy``)
        and ``plateaus`` (``{"1": widest_plateau(..., 1), "5": ...}``).
    """
    rows = _sorted(scales, accuracies)
    best_scale, best_accuracy = max(rows, key=lambda row: (row[1], -abs(math.log2(row[0] / train_scale)) if train_scale else 0))
    return {
        "train_scale": train_scale,
        "accuracy_at_train_scale": accuracy_at(scales, accuracies, train_scale) if train_scale else None,
        "mean_within_factor": {str(factor): (mean_within_factor(scales, accuracies, train_scale, factor) if train_scale else None) for factor in FACTORS},
        "best": {"scale": best_scale, "accuracy": best_accuracy},
        "plateaus": {str(points): widest_plateau(scales, accuracies, points) for points in TOLERANCES},
    }
