"""Measuring digits: size, centroid and ink of each image, and the statistics behind the checks.

A digit's size is the intensity-weighted radius of gyration of its pixels above
background, its position the weighted centroid; both are compared with the
same MNIST digit transformed at scale 1 by the recipe (``reference_moments``).
``check.validate_file`` turns these measures into pass or fail.
"""

from __future__ import annotations

import math

import numpy as np

from .. import engine
from ..recipe import Recipe, canvas_margin

__all__ = [
    "digit_moments",
    "reference_moments",
    "uncropped_scale_limit",
    "measure_scales",
    "ink_reach",
    "mnist_centre_of_mass_offsets",
    "label_histogram",
    "log_uniform_ks",
    "quantiles",
]


def digit_moments(images: np.ndarray, background: float) -> tuple[np.ndarray, np.ndarray]:
    """Centroid and radius of gyration of each image's pixels above background.

    Each pixel weighs its value minus the background (zero where it is not
    above it), so the measure sees the digit and ignores the flat surround.

    Parameters
    ----------
    images : (n, H, W) ndarray of float
        Images as stored (soft-thresholded values).
    background : float
        The value of an empty pixel (``engine.background_value``).

    Returns
    -------
    centroids : (n, 2) ndarray of float64
        Intensity-weighted centroid (row, col) in pixels, 0-based.
    radii : (n,) ndarray of float64
        Intensity-weighted radius of gyration in pixels; NaN for an image with
        no pixel above background or with a NaN.
    """
    weight = np.clip(np.asarray(images, dtype=np.float64) - background, 0.0, None)
    rows = np.arange(weight.shape[1], dtype=np.float64)
    cols = np.arange(weight.shape[2], dtype=np.float64)
    row_mass, col_mass = weight.sum(axis=2), weight.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        total = row_mass.sum(axis=1)
        centre_row = row_mass @ rows / total
        centre_col = col_mass @ cols / total
        spread = (row_mass * (rows - centre_row[:, None]) ** 2).sum(axis=1) + (col_mass * (cols - centre_col[:, None]) ** 2).sum(axis=1)
        radii = np.sqrt(spread / total)
    return np.stack([centre_row, centre_col], axis=1), radii


def reference_moments(images: np.ndarray, recipe: Recipe) -> tuple[np.ndarray, np.ndarray]:
    """Centroid offsets and radii of source images transformed at scale 1.

    The frame is the source image plus the smoothing kernel's reach on every
    side, so nothing is cropped, and its centre is the source image's centre.

    Parameters
    ----------
    images : (n, h, w) ndarray
        Source images (MNIST grey levels 0..255).
    recipe : Recipe
        The file's recipe.

    Returns
    -------
    offsets : (n, 2) ndarray of float64
        Centroid (row, col) minus the image centre ``((h-1)/2, (w-1)/2)``, in
        source pixels.
    radii : (n,) ndarray of float64
        Radius of gyration in source pixels.
    """
    h, w = images.shape[1:]
    # Ink lies at least a margin (the kernel's reach plus one) inside this frame, so every
    # recipe.smooth_boundary smooths it as on the canvas.
    margin = canvas_margin(recipe.sigma(1.0), recipe.truncate)
    frame = (h + 2 * margin, w + 2 * margin)
    background = engine.background_value(recipe)
    # The engine rather than the per-image reference: within 1.1e-9 of it on real digits (tests/test_engine.py
    # holds it to 1e-8) and 5.8 to 29 times faster per core (benchmarks/results.json).
    centroids, radii = digit_moments(engine.transform_images(images, np.ones(len(images)), frame, recipe), background)
    return centroids - np.array([(frame[0] - 1) / 2, (frame[1] - 1) / 2]), radii


def uncropped_scale_limit(out_shape: tuple[int, int], image_shape: tuple[int, int] = (28, 28)) -> float:
    """The largest scale at which the whole source image fits the frame (4 for 28 in 112)."""
    return min(out_shape[0] / image_shape[0], out_shape[1] / image_shape[1])


def measure_scales(images: np.ndarray, scales: np.ndarray, sources: np.ndarray, recipe: Recipe) -> dict[str, np.ndarray]:
    """Each stored digit's size and centroid against its source at scale 1.

    Parameters
    ----------
    images : (n, H, W) ndarray of float
        Stored images.
    scales : (n,) ndarray of float64
        The scale each image should have.
    sources : (n, h, w) ndarray
        The same digits from the base data set.
    recipe : Recipe
        The file's recipe (for the scale-1 reference and the background).

    Returns
    -------
    dict of (n,) or (n, 2) ndarrays of float64
        ``scale``; ``ratio``, measured radius over the scale-1 radius;
        ``centroid`` and ``expected_centroid`` (row, col) in output pixels, the
        latter the frame centre plus ``scale`` times the scale-1 offset;
        ``centroid_error``, their distance in output pixels; ``ink_fits``
        (bool), whether the digit's ink lies inside the frame (``ink_reach``).
    """
    height, width = images.shape[1:]
    background = engine.background_value(recipe)
    centroids, radii = digit_moments(images, background)
    ref_offsets, ref_radii = reference_moments(sources, recipe)
    scales = np.asarray(scales, dtype=np.float64)
    expected = np.array([(height - 1) / 2, (width - 1) / 2]) + scales[:, None] * ref_offsets
    reach = ink_reach(sources)
    return {
        "scale": scales,
        "ratio": radii / ref_radii,
        "centroid": centroids,
        "expected_centroid": expected,
        "centroid_error": np.hypot(*(centroids - expected).T),
        "ink_fits": np.all(scales[:, None] * reach <= np.array([height / 2, width / 2]), axis=1),
    }


def ink_reach(sources: np.ndarray) -> np.ndarray:
    """How far each source image's ink reaches from the image centre, per axis.

    Parameters
    ----------
    sources : (n, h, w) ndarray
        Source images; ink is any pixel above zero.

    Returns
    -------
    (n, 2) ndarray of float64
        For rows and columns, the largest ``|index - (size-1)/2|`` of an inked
        pixel plus one pixel (half its width, half the bicubic kernel's reach
        beyond it), in source pixels; 0 for an empty image.  At scale s the ink
        stays inside an H x W frame when ``s * reach <= (H/2, W/2)``.
    """
    sources = np.asarray(sources)
    n, h, w = sources.shape
    reach = np.zeros((n, 2))
    for axis, (size, other) in enumerate(((h, 2), (w, 1))):
        inked = sources.max(axis=other) > 0  # (n, size)
        distance = np.abs(np.arange(size) - (size - 1) / 2) + 1
        reach[:, axis] = np.where(inked, distance, 0.0).max(axis=1)
    return reach


def mnist_centre_of_mass_offsets(sources: np.ndarray) -> np.ndarray:
    """Grey-level centre of mass of each source image minus its centre: (n, 2) float64 (row, col)."""
    weight = np.asarray(sources, dtype=np.float64)
    h, w = weight.shape[1:]
    total = weight.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        rows = weight.sum(axis=2) @ np.arange(h) / total
        cols = weight.sum(axis=1) @ np.arange(w) / total
    return np.stack([rows - (h - 1) / 2, cols - (w - 1) / 2], axis=1)


def label_histogram(labels: np.ndarray) -> list[int] | None:
    """Count of each label 0..max (at least 0..9); None when the labels are not non-negative integers."""
    labels = np.asarray(labels)
    if labels.dtype.kind not in "ui" or (labels.size and labels.min() < 0):
        return None
    return np.bincount(labels.ravel().astype(np.int64), minlength=10).tolist()


def log_uniform_ks(scales: np.ndarray, low: float, high: float) -> tuple[float, float]:
    """Kolmogorov-Smirnov test of per-sample scales against log-uniform on [low, high).

    ``u = log(s / low) / log(high / low)`` (``log2(s) / 2`` on [1, 4]) must be
    uniform on [0, 1).

    Returns
    -------
    statistic, p_value : float
        scipy's two-sided one-sample test against U[0, 1].
    """
    from scipy.stats import kstest  # imported here: scipy.stats alone takes 0.4 s to load

    u = np.log(np.asarray(scales, dtype=np.float64) / low) / math.log(high / low)
    result = kstest(u, "uniform")
    return float(result.statistic), float(result.pvalue)


def quantiles(values: np.ndarray) -> dict:
    """Count, non-finite count, min, 5 %, median, 95 %, max and mean of an array's finite values."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return {"count": int(values.size), "nonfinite": int(values.size)}
    q = np.quantile(finite, [0.0, 0.05, 0.5, 0.95, 1.0])
    return {
        "count": int(values.size),
        "nonfinite": int(values.size - finite.size),
        "min": float(q[0]),
        "p05": float(q[1]),
        "median": float(q[2]),
        "p95": float(q[3]),
        "max": float(q[4]),
        "mean": float(finite.mean()),
    }
