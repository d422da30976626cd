"""One split of a file against its rebuild: the differences, the correlations, the digits' extent, block by block."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import h5py
import numpy as np

from ..recipe_fit import is_float32

__all__ = ["SplitComparison", "compare_split"]


@dataclass
class SplitComparison:
    """One split: labels, differences to the rebuild, and the images kept for the fit and the figure."""

    split: str
    count: int
    scale: str
    labels: str
    label_status: str
    dtype: str = ""
    compared: int = 0
    max_abs_difference: float | None = None
    identical_images: float | None = None
    correlation_mean: float | None = None
    correlation_min: float | None = None
    mean_image_difference: float | None = None
    float32_values: bool | None = None
    support_ratio: float | None = None
    notes: list[str] = field(default_factory=list)
    sample: dict = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict:
        return {key: value for key, value in dataclasses.asdict(self).items() if key != "sample"}


def _correlations(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each pair of images (1 where both are constant and equal)."""
    a = a.reshape(len(a), -1) - a.reshape(len(a), -1).mean(axis=1, keepdims=True)
    b = b.reshape(len(b), -1) - b.reshape(len(b), -1).mean(axis=1, keepdims=True)
    norm = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    dot = (a * b).sum(axis=1)
    return np.where(norm > 0, dot / np.where(norm > 0, norm, 1.0), np.where(np.all(a == b, axis=1), 1.0, 0.0))


#: Output values farther than this from an image's corner value count as the digit's support.
_SUPPORT_EPSILON = 1e-6


def _support_sizes(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each image's support in pixels, and whether its four corners show the background.

    The support is where a value differs from the corner value: the resampled
    digit widened by the truncated smoothing kernel.  Both scale with ``s``,
    and neither depends on the threshold's gain and offset or on the stretch,
    so the square root of the ratio of two files' supports estimates the ratio
    of their scales.
    """
    corners = images[:, [0, 0, -1, -1], [0, -1, 0, -1]]
    background = corners[:, :1]
    usable = np.all(corners == background, axis=1)
    support = np.abs(images - background[:, :, None]) > _SUPPORT_EPSILON
    return support.reshape(len(images), -1).sum(axis=1), usable


def compare_split(
    published: np.ndarray | h5py.Dataset,
    rebuilt: Callable[[slice], np.ndarray],
    block: int = 500,
    max_images: int | None = None,
    keep: int = 0,
) -> dict:
    """Differences between a split's published images and the rebuilt ones, block by block.

    Parameters
    ----------
    published : (n, H, W, 1) or (n, H, W) array or dataset
    rebuilt : callable
        ``rebuilt(slice) -> (m, H, W)`` float64 images of those indices.
    block : int
        Images held at once.
    max_images : int, optional
        Compare only the first this many.
    keep : int
        The first this many published and rebuilt images are returned too.

    Returns
    -------
    dict
        ``compared``, ``max_abs_difference``, ``identical_images`` (fraction),
        ``correlation_mean`` and ``_min``, ``mean_image_difference``,
        ``float32_values`` (every published value is a float32),
        ``support_ratio`` (the published digits' linear extent over the
        rebuilt ones', about the ratio of their scales; None when no image
        shows its background) and, under ``sample``, the kept images.
    """
    n = len(published) if max_images is None else min(len(published), max_images)
    worst, identical, corr_sum, corr_min, float32 = 0.0, 0, 0.0, 1.0, True
    support_published = support_rebuilt = 0
    sum_published = sum_rebuilt = None
    kept_published, kept_rebuilt = [], []
    for a in range(0, n, block):
        window = slice(a, min(n, a + block))
        ours = np.asarray(rebuilt(window), dtype=np.float64)
        theirs = np.asarray(published[window], dtype=np.float64).reshape(ours.shape)
        difference = np.abs(theirs - ours)
        worst = max(worst, float(difference.max()))
        identical += int(np.count_nonzero((difference == 0).reshape(len(ours), -1).all(axis=1)))
        corr = _correlations(theirs, ours)
        corr_sum, corr_min = corr_sum + float(corr.sum()), min(corr_min, float(corr.min()))
        float32 = float32 and is_float32(theirs)
        (size_theirs, usable_theirs), (size_ours, usable_ours) = _support_sizes(theirs), _support_sizes(ours)
        usable = usable_theirs & usable_ours
        support_published += int(size_theirs[usable].sum())
        support_rebuilt += int(size_ours[usable].sum())
        sum_published = theirs.sum(axis=0) if sum_published is None else sum_published + theirs.sum(axis=0)
        sum_rebuilt = ours.sum(axis=0) if sum_rebuilt is None else sum_rebuilt + ours.sum(axis=0)
        if a < keep:
            kept_published.append(theirs[: keep - a])
            kept_rebuilt.append(ours[: keep - a])
    if n == 0:
        return {"compared": 0, "sample": {}}
    return {
        "compared": n,
        "max_abs_difference": worst,
        "identical_images": identical / n,
        "correlation_mean": corr_sum / n,
        "correlation_min": corr_min,
        "mean_image_difference": float(np.abs(sum_published - sum_rebuilt).max() / n),
        "float32_values": float32,
        "support_ratio": math.sqrt(support_published / support_rebuilt) if support_published and support_rebuilt else None,
        "sample": {
            "published": np.concatenate(kept_published) if kept_published else np.empty((0, *sum_published.shape)),
            "rebuilt": np.concatenate(kept_rebuilt) if kept_rebuilt else np.empty((0, *sum_published.shape)),
            "mean_difference": (sum_published - sum_rebuilt) / n,
        },
    }
