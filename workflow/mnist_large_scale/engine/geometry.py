"""What one axis's plan takes from the scales alone: kernels, canvas pixels, taps and their weights on their grids.

``AxisGeometry.of`` evaluates the warp's input coordinate of every canvas pixel
as scikit-image does, takes the taps and weights of ``skimage_weights.py`` and
puts them on the grids of ``grids.py``; the plans (``plan.py``) then cut it to
the images' ink.  Per-sample windows compute one geometry for many scales and
hand each group its ``subset``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..recipe import Recipe
from .grids import RAW_BITS, RESAMPLED_BOUND, UNIT_BITS, canvas_bound, quantize_weights, weight_grid_bits
from .skimage_weights import (
    TAPS,
    antialias_sigma,
    gaussian_radius,
    gaussian_weights,
    largest_tap,
    tap_positions,
    tap_weights,
)


@dataclass(frozen=True)
class AxisGeometry:
    """What an axis's plan takes from the scales alone, before the images' support cuts it.

    Both axes of a square frame with the same shift on each share it.

    Attributes
    ----------
    radius : (k,) ndarray of int
        Each scale's Gaussian radius (its canvas margin is one more).
    kernel : (k, 2 reach + 1) ndarray of float64
        Each scale's Gaussian, quantised (on the grid its own width allows).
    prefilter_radius : (k,) ndarray of int
        The anti-aliasing prefilter's radius at each scale (0 when off).
    prefilter : (k, 2 r + 1) ndarray of float64
        The anti-aliasing prefilter's kernels (identities when off).
    p : (K,) ndarray of int
        Canvas pixels within reach of the frame, in frame coordinates: the
        frame and a margin of the widest kernel's reach (``canvas``), or the
        frame alone (a boundary mode of ``recipe.smooth_boundary``).
    first, fraction : (k, K) ndarrays
        ``tap_positions`` of each canvas pixel.
    weights : (taps, k, K) ndarray of float64
        ``tap_weights`` of each canvas pixel.
    raw_weights, data_weights : (taps, k, K) ndarrays of float64
        ``weights`` on their grids (``quantize_weights``): for the columns'
        resampling, which reads the raw integers (in data units), and for the
        rows', which reads data units.
    """

    radius: np.ndarray
    kernel: np.ndarray
    prefilter_radius: np.ndarray
    prefilter: np.ndarray
    p: np.ndarray
    first: np.ndarray
    fraction: np.ndarray
    weights: np.ndarray
    raw_weights: np.ndarray
    data_weights: np.ndarray
    frame_only: bool = False

    @classmethod
    def of(cls, scales: np.ndarray, length: int, n_in: int, recipe: Recipe, centre_shift: float) -> AxisGeometry:
        """The geometry of an axis of ``length`` output and ``n_in`` input pixels."""
        scales = np.asarray(scales, dtype=np.float64)
        sigma = recipe.sigma_per_scale * scales
        radius = gaussian_radius(sigma, recipe.truncate)
        # recipe.canvas_margin; on the frame itself (a boundary mode) the canvas is the frame
        margin = radius + 1 if recipe.on_canvas else np.zeros_like(radius)
        _, kernel = gaussian_weights(sigma, recipe.truncate)
        # Each scale's kernel on the grid its own width allows (2 radius + 1 taps).
        kernel = quantize_weights(kernel, weight_grid_bits(2 * radius + 1, canvas_bound(recipe))[:, None], axis=1)
        reach = kernel.shape[1] // 2
        # The warp's matrix as scikit-image evaluates it: u = (1/s) c + t with c = p + margin.
        p = np.arange(-reach, length + reach) if recipe.on_canvas else np.arange(length)
        shift = (n_in - 1) / 2 - (margin + (length - 1) / 2 + centre_shift) / scales
        u = (1.0 / scales)[:, None] * (p[None, :] + margin[:, None]).astype(np.float64) + shift[:, None]
        first, fraction = tap_positions(u, recipe.order)
        weights = tap_weights(fraction, recipe.order)
        # Rounded to their grids so that each set of taps still sums to 1.
        largest = largest_tap(weights, recipe.order)
        raw_weights = quantize_weights(weights, RAW_BITS, 0, largest) * math.ldexp(1.0, UNIT_BITS)
        data_weights = quantize_weights(weights, int(weight_grid_bits(TAPS[recipe.order], RESAMPLED_BOUND)), 0, largest)
        return cls(radius, kernel, *antialias_kernels(scales, recipe), p, first, fraction, weights, raw_weights, data_weights, not recipe.on_canvas)

    def subset(self, images: slice) -> AxisGeometry:
        """The geometry of some of the scales, equal to ``of`` those scales alone.

        Their kernels and canvas pixels are trimmed to the reach of the widest
        kernel among them (beyond it the padding is zeros and pixels never kept);
        a frame-only geometry keeps its pixels, the frame's.
        """
        cut = self.kernel.shape[1] // 2 - int(self.radius[images].max())
        pixels = slice(None) if self.frame_only else slice(cut, len(self.p) - cut)
        prefilter_cut = self.prefilter.shape[1] // 2 - int(self.prefilter_radius[images].max())
        return AxisGeometry(
            self.radius[images],
            self.kernel[images, cut : self.kernel.shape[1] - cut],
            self.prefilter_radius[images],
            self.prefilter[images, prefilter_cut : self.prefilter.shape[1] - prefilter_cut],
            self.p[pixels],
            self.first[images, pixels],
            self.fraction[images, pixels],
            self.weights[:, images, pixels],
            self.raw_weights[:, images, pixels],
            self.data_weights[:, images, pixels],
            self.frame_only,
        )


def antialias_kernels(scales: np.ndarray, recipe: Recipe) -> tuple[np.ndarray, np.ndarray]:
    """The anti-aliasing prefilter's kernels (``gaussian_weights``), identities when it is off or s >= 1."""
    if not recipe.antialias:
        return np.zeros(len(scales), dtype=np.int64), np.ones((len(scales), 1))
    return gaussian_weights(antialias_sigma(scales), recipe.truncate)
