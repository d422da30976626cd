"""One model on two versions of one file, image by image: can the model tell them apart?

The two versions (for example a published file and its rebuild) must hold
the same images in the same order with the same labels.  Every image is then
a pair of predictions, and the comparison reports the accuracy on each
version, the difference (second minus first) with Newcombe's paired
interval, McNemar's test on the discordant pairs, the images whose
prediction changes, and a one-line verdict.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .run import Predictions
from .stats import McNemar, mcnemar_test, paired_difference_interval, wilson_interval

__all__ = ["ALPHA", "ModelComparison", "compare_predictions"]

#: The level below which McNemar's p-value counts as a difference.
ALPHA = 0.05
#: Changed images listed in full in a report (all of them are counted).
LISTED_CHANGES = 1000


@dataclass(frozen=True)
class ModelComparison:
    """The paired comparison of one model's predictions on two versions of a file.

    Attributes
    ----------
    first, second : str
        The files' names.
    images : int
    accuracy_first, accuracy_second : float
    interval_first, interval_second : tuple of float
        95 % Wilson intervals.
    table : dict
        ``both``, ``first_only``, ``second_only``, ``neither``: images correct in both, one or neither.
    difference, difference_low, difference_high : float
        Accuracy of the second minus the first, with Newcombe's 95 % paired interval.
    mcnemar : McNemar
    changed : int
        Images whose predicted class differs between the versions (correct or not).
    changed_images : list of dict
        The first ``LISTED_CHANGES`` of them: ``index``, ``label``, ``first``, ``second`` (predicted classes).
    verdict : str
        ``no difference`` or ``differs``.
    line : str
        The verdict in one line.
    """

    first: str
    second: str
    images: int
    accuracy_first: float
    accuracy_second: float
    interval_first: tuple[float, float]
    interval_second: tuple[float, float]
    table: dict
    difference: float
    difference_low: float
    difference_high: float
    mcnemar: McNemar
    changed: int
    changed_images: list
    verdict: str
    line: str

    def as_dict(self) -> dict:
        return asdict(self)


def _verdict(images: int, changed: int, test: McNemar, difference: float, low: float, high: float) -> tuple[str, str]:
    points = f"{100 * difference:+.2f} points [{100 * low:+.2f}, {100 * high:+.2f}]"
    if test.p_value >= ALPHA:
        seen = "every prediction is the same" if changed == 0 else f"{changed} of {images} images change their prediction, accuracy {points}"
        return "no difference", f"no difference a model can see at this sample size ({images} images): {seen}; McNemar p = {test.p_value:.3g} ({test.method})"
    return "differs", f"the accuracy differs: {points} on the second file; McNemar p = {test.p_value:.3g} ({test.method}); {changed} of {images} images change their prediction"


def compare_predictions(first: Predictions, second: Predictions) -> ModelComparison:
    """Pair the predictions of one model on two versions of a file.

    Raises
    ------
    ValueError
        When the files differ in their number of images or in a label (then
        they are not two versions of the same images).
    """
    if len(first.labels) != len(second.labels):
        raise ValueError(f"{first.path.name} has {len(first.labels)} test images, {second.path.name} {len(second.labels)}: not two versions of one file")
    mismatched = np.flatnonzero(first.labels != second.labels)
    if len(mismatched):
        raise ValueError(f"{first.path.name} and {second.path.name} differ in {len(mismatched)} labels (the first at image {mismatched[0]}): not two versions of one file")
    n = len(first.labels)
    if n == 0:
        raise ValueError(f"{first.path.name} has no test images")
    a, b = first.correct, second.correct
    table = {"both": int((a & b).sum()), "first_only": int((a & ~b).sum()), "second_only": int((~a & b).sum()), "neither": int((~a & ~b).sum())}
    difference, low, high = paired_difference_interval(table["both"], table["first_only"], table["second_only"], table["neither"])
    test = mcnemar_test(table["first_only"], table["second_only"])
    changed_at = np.flatnonzero(first.predicted != second.predicted)
    listed = [
        {"index": int(index), "label": int(first.labels[index]), "first": int(first.predicted[index]), "second": int(second.predicted[index])}
        for index in changed_at[:LISTED_CHANGES]
    ]
    verdict, line = _verdict(n, len(changed_at), test, difference, low, high)
    return ModelComparison(
        first=first.path.name,
        second=second.path.name,
        images=n,
        accuracy_first=float(a.mean()),
        accuracy_second=float(b.mean()),
        interval_first=wilson_interval(int(a.sum()), n),
        interval_second=wilson_interval(int(b.sum()), n),
        table=table,
        difference=difference,
        difference_low=low,
        difference_high=high,
        mcnemar=test,
        changed=len(changed_at),
        changed_images=listed,
        verdict=verdict,
        line=line,
    )
