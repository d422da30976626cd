"""Where a file's labels come from: the base data's split in order, another range of a raw labels file, or another order."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..sources import BaseData

__all__ = ["LabelCheck", "locate_labels", "images_of"]

#: Labels compared before the whole sequence is searched for: enough to make a chance match unlikely.
_PROBE = 32


@dataclass(frozen=True)
class LabelCheck:
    """How a split's labels relate to the base data's labels.

    Attributes
    ----------
    status : {'match', 'offset', 'shuffled', 'unknown'}
        The expected range in order; another range (``source``, ``first_index``)
        in order; the expected labels in another order; none of these.
    source, first_index : str, int
        The raw labels file and first index that the labels equal (match, offset).
    """

    status: str
    source: str = ""
    first_index: int = -1

    def sentence(self, split: str, expected_source: str, expected_first: int) -> str:
        if self.status == "match":
            return f"{split} labels equal {expected_source}[{expected_first}:] in order"
        if self.status == "offset":
            return f"{split} labels are {self.source}[{self.first_index}:], not {expected_source}[{expected_first}:]"
        if self.status == "shuffled":
            return f"{split} labels are those of {expected_source}[{expected_first}:] in another order: images cannot be paired"
        return f"{split} labels match no range of the raw labels: images cannot be paired"


def locate_labels(labels: np.ndarray, expected: np.ndarray, raw: dict[str, np.ndarray], expected_source: str, expected_first: int) -> LabelCheck:
    """Where ``labels`` come from: the expected range, another range of a raw labels file, or neither.

    Parameters
    ----------
    labels : (n,) ndarray
        A split's labels as stored.
    expected : (n,) ndarray
        The base data's labels for that split, in order.
    raw : dict of str to (N,) ndarray
        Every raw labels file, by name.
    expected_source, expected_first : str, int
        Where ``expected`` starts.
    """
    labels = np.asarray(labels).astype(np.int64).ravel()
    if np.array_equal(labels, np.asarray(expected, dtype=np.int64)):
        return LabelCheck("match", expected_source, expected_first)
    probe = labels[: min(_PROBE, len(labels))]
    for source, values in raw.items():
        values = np.asarray(values, dtype=np.int64)
        if len(values) < len(labels) or not len(probe):
            continue
        windows = np.lib.stride_tricks.sliding_window_view(values, len(probe))
        for start in np.flatnonzero((windows == probe).all(axis=1)):
            if start + len(labels) <= len(values) and np.array_equal(values[start : start + len(labels)], labels):
                return LabelCheck("offset", source, int(start))
    if np.array_equal(np.sort(labels), np.sort(np.asarray(expected, dtype=np.int64))):
        return LabelCheck("shuffled")
    return LabelCheck("unknown")


def images_of(base: BaseData, raw_paths: dict[str, str], labels_name: str) -> str:
    """The raw images file that goes with a raw labels file."""
    source = next(source for source in base.splits.values() if source.labels == labels_name)
    return raw_paths[source.images]
