"""Fit the recipe's constants to images of a published file.

Given MNIST images, their scales and the images a published file holds for
them, find the recipe (``recipe.Recipe``) that best explains the published
values: the smoothing ``sigma_per_scale``, the soft threshold's ``gain`` and
``offset``, ``stretch``, ``clip``, the interpolation ``order``, the
anti-aliasing prefilter below scale 1, a ``centre_shift`` and a float32 round
trip of the values.

How
---
* A float32 round trip is read off the values directly: every value of the
  published images is a float32 (and the recipe's values are not).
* Everything before the soft threshold is linear but for the clip, and the
  threshold ``y = (2/pi) arctan(gain (x - offset))`` inverts to
  ``tan(pi y / 2) = gain x - gain offset``: for any candidate pre-threshold
  image ``x`` (stretched or not), ``gain`` and ``offset`` follow by linear
  least squares.
* The discrete switches (order, clip, anti-aliasing; stretch is tried inside
  every evaluation, as it is a per-image scale of ``x``) are enumerated; for
  each, ``sigma_per_scale`` is searched on a small subsample, with the centre
  shift that the images' centroids give; the best candidates are then refined
  by Nelder-Mead over sigma and the shift together, on a larger subsample.
* The pre-threshold images come from a float model of the recipe: the
  engine's taps, weights and kernels before they are put on their grids
  (``engine.geometry.AxisGeometry``, ``engine.skimage_weights``), as dense
  separable matrices in float64.  It equals the reference recipe to float
  rounding, and is fast enough to evaluate hundreds of times.

The residual is the root mean square difference of the output values.  A
candidate that is not the configured one must lower it by a clear margin
(``_CLEARLY_BETTER``) to be preferred, so that a switch that changes nothing
(the clip, on images that never overshoot) stays as configured.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass

import numpy as np

from .engine.geometry import AxisGeometry
from .engine.skimage_weights import folded_band, gaussian_weights, kernel_band, prefilter_matrix, resampling_matrix
from .recipe import Recipe

__all__ = ["Fit", "fit_recipe", "is_float32", "pre_threshold", "changes", "THRESHOLDS", "ROUNDING"]

#: A fitted value counts as a change from the configured recipe beyond these.
THRESHOLDS = {"sigma_per_scale": 0.005, "gain": 0.005, "offset": 0.5, "centre_shift": 0.02}
#: A candidate other than the configured one must have a residual below this fraction of the best so far.
_CLEARLY_BETTER = 0.8
#: Largest difference of values that agree to float rounding (float64 arithmetic in another order;
#: the production engine differs from the float reference by at most 1e-8).
ROUNDING = 1e-7
#: Images of the subsample on which the discrete candidates are screened, and refined.
_SCREEN_IMAGES = 24
_REFINE_IMAGES = 64
#: Candidates (best first) refined, unless their screened residual is this many times the best one's.
_REFINE = 2
_FAR_BEHIND = 10.0


@dataclass(frozen=True)
class Fit:
    """The best-fitting recipe and how well it explains the published images.

    Attributes
    ----------
    recipe : Recipe
        The fitted recipe.
    residual_before, residual_after : float
        RMS difference of the output values under the configured recipe and
        under the fitted one.
    max_after : float
        Largest absolute difference under the fitted recipe.
    images : int
        Images the fit used.
    identifiable : dict
        For each constant the images cannot decide (the prefilter at scales
        >= 1, per-sample scales unknown, ...), why.
    """

    recipe: Recipe
    residual_before: float
    residual_after: float
    max_after: float
    images: int
    identifiable: dict


def is_float32(values: np.ndarray) -> bool:
    """True when every value is exactly a float32 (as after a float32 round trip)."""
    values = np.asarray(values, dtype=np.float64)
    return bool(np.array_equal(values, values.astype(np.float32).astype(np.float64)))


def _resample_matrices(scales: np.ndarray, length: int, n_in: int, shift: float, recipe: Recipe) -> np.ndarray:
    """Resampling of one axis onto the engine's canvas pixels (``AxisGeometry.p``), in float: (k, K, n_in).

    The engine's taps and weights before they are put on their grids, and its
    prefilter kernels; the canvas is the frame and a margin of the widest
    kernel's reach (``canvas``), or the frame alone (a boundary mode).
    """
    geometry = AxisGeometry.of(scales, length, n_in, recipe, shift)
    matrix = resampling_matrix(geometry.first, geometry.weights, n_in)
    if recipe.antialias:
        matrix = matrix @ prefilter_matrix(geometry.prefilter, n_in)
    return matrix


def pre_threshold(images: np.ndarray, scales: np.ndarray, out_shape: tuple[int, int], recipe: Recipe) -> np.ndarray:
    """The recipe's frames before the stretch and the soft threshold, in float64.

    Parameters
    ----------
    images : (n, h, w) ndarray
        MNIST grey levels.
    scales : (n,) ndarray
        Scale of each image; one shared set of matrices when all are equal.
    out_shape : (H, W)
    recipe : Recipe

    Returns
    -------
    (n, H, W) ndarray of float64
        Equal to the reference recipe's smoothed frame to float rounding.
    """
    images = np.asarray(images, dtype=np.float64)
    scales = np.asarray(scales, dtype=np.float64)
    stack = scales[:1] if np.all(scales == scales[0]) else scales
    sigma = recipe.sigma_per_scale * stack
    _, kernel = gaussian_weights(sigma, recipe.truncate)
    # The canvas reaches the widest kernel's reach past the frame; on the frame itself
    # (a boundary mode) it is the frame.
    reach = kernel.shape[1] // 2 if recipe.on_canvas else 0
    height, width = out_shape
    (_, h, w), (dy, dx) = images.shape, recipe.centre_shift
    r_y = _resample_matrices(stack, height, h, dy, recipe)
    r_x = _resample_matrices(stack, width, w, dx, recipe)
    if recipe.on_canvas:  # smoothing from canvas pixels -reach .. to the frame: (k, H, H + 2 reach), (k, W, W + 2 reach)
        g_y = kernel_band(kernel, height, height + 2 * reach, reach)
        g_x = kernel_band(kernel, width, width + 2 * reach, reach)
    else:  # the frame's edge folded in: (k, H, H), (k, W, W)
        g_y = folded_band(kernel, 0, 0, height, height, height, recipe.smooth_boundary)
        g_x = folded_band(kernel, 0, 0, width, width, width, recipe.smooth_boundary)
    if len(stack) > 1:  # one matrix per image
        canvas = r_y @ images @ r_x.transpose(0, 2, 1)
        if recipe.clip:
            np.clip(canvas, recipe.clip_min, recipe.clip_max, out=canvas)
        return g_y @ canvas @ g_x.transpose(0, 2, 1)
    # Shared matrices: each stage as one large product over all images, rows (y) outermost.
    n = len(images)
    rows = r_y[0] @ images.transpose(1, 0, 2).reshape(h, n * w)  # (Ky, n w)
    canvas = (rows.reshape(-1, w) @ r_x[0].T).reshape(-1, n, r_x.shape[1])  # (Ky, n, Kx)
    if recipe.clip:
        np.clip(canvas, recipe.clip_min, recipe.clip_max, out=canvas)
    smoothed = g_y[0] @ canvas.reshape(canvas.shape[0], -1)  # (H, n Kx)
    frame = smoothed.reshape(-1, canvas.shape[2]) @ g_x[0].T  # (H n, W)
    return frame.reshape(height, n, width).transpose(1, 0, 2)


def _stretched(x: np.ndarray, clip_max: float) -> np.ndarray:
    peak = x.max(axis=(1, 2), keepdims=True)
    return np.where(peak > 0, x * (clip_max / np.where(peak > 0, peak, 1.0)), x)


def _threshold_fit(x: np.ndarray, target_z: np.ndarray) -> tuple[float, float, float]:
    """Least-squares ``gain``, ``offset`` of ``tan(pi y / 2) = gain (x - offset)``, with the RMS residual there."""
    xm, zm = x.mean(), target_z.mean()
    dx, dz = x - xm, target_z - zm
    variance = float(np.mean(dx * dx))
    if variance == 0:
        return math.nan, math.nan, math.inf
    covariance = float(np.mean(dx * dz))
    gain = covariance / variance
    if gain <= 0:
        return math.nan, math.nan, math.inf
    residual = math.sqrt(float(np.mean((dz - gain * dx) ** 2)))
    return gain, float(xm - zm / gain), residual


@dataclass
class _Problem:
    images: np.ndarray
    scales: np.ndarray
    out_shape: tuple[int, int]
    published: np.ndarray
    z: np.ndarray

    @classmethod
    def of(cls, images, scales, out_shape, published) -> _Problem:
        published = np.asarray(published, dtype=np.float64)
        return cls(np.asarray(images, dtype=np.float64), np.asarray(scales, dtype=np.float64), out_shape, published, np.tan((math.pi / 2) * published))

    def subset(self, n: int) -> _Problem:
        if n >= len(self.images):
            return self
        pick = np.linspace(0, len(self.images) - 1, n).round().astype(int)
        return _Problem(self.images[pick], self.scales[pick], self.out_shape, self.published[pick], self.z[pick])

    def evaluate(self, recipe: Recipe) -> tuple[float, Recipe]:
        """The residual of ``recipe`` with its gain and offset (and stretch) fitted; the recipe so fitted.

        The residual is taken in ``tan(pi y / 2)``, where the threshold is linear (no arctan per evaluation).
        """
        x = pre_threshold(self.images, self.scales, self.out_shape, recipe)
        best = (math.inf, recipe)
        for stretch in (recipe.stretch, not recipe.stretch):
            gain, offset, residual = self._fit_threshold(_stretched(x, recipe.clip_max) if stretch else x)
            if residual < best[0] * (1.0 if stretch == recipe.stretch else _CLEARLY_BETTER):
                best = (residual, dataclasses.replace(recipe, stretch=stretch, gain=gain, offset=offset))
        return best

    def _fit_threshold(self, x: np.ndarray) -> tuple[float, float, float]:
        return _threshold_fit(x, self.z)

    def residual(self, recipe: Recipe) -> tuple[float, float]:
        """RMS and largest absolute difference of ``recipe`` as it is (nothing fitted)."""
        x = pre_threshold(self.images, self.scales, self.out_shape, recipe)
        if recipe.stretch:
            x = _stretched(x, recipe.clip_max)
        y = (2 / math.pi) * np.arctan(recipe.gain * (x - recipe.offset))
        if recipe.round_to_float32:
            y = y.astype(np.float32).astype(np.float64)
        difference = y - self.published
        return float(np.sqrt(np.mean(difference**2))), float(np.abs(difference).max())


def _centroid(images: np.ndarray) -> np.ndarray:
    """Mean intensity centroid (row, column) of images above their minimum."""
    weights = images - images.min(axis=(1, 2), keepdims=True)
    total = weights.sum(axis=(1, 2))
    keep = total > 0
    rows = np.arange(images.shape[1])
    cols = np.arange(images.shape[2])
    cy = (weights.sum(axis=2) @ rows)[keep] / total[keep]
    cx = (weights.sum(axis=1) @ cols)[keep] / total[keep]
    return np.array([cy.mean(), cx.mean()]) if keep.any() else np.zeros(2)


def _screen(problem: _Problem, start: Recipe) -> tuple[float, Recipe]:
    """A quick bounded search over sigma_per_scale alone (gain and offset fitted inside), to rank candidates."""
    from scipy.optimize import minimize_scalar

    def objective(sigma: float) -> float:
        return problem.evaluate(dataclasses.replace(start, sigma_per_scale=float(sigma)))[0]

    sigma0 = max(start.sigma_per_scale, 0.05)
    result = minimize_scalar(objective, bounds=(0.3 * sigma0, 2.5 * sigma0), method="bounded", options={"xatol": 1e-3})
    return problem.evaluate(dataclasses.replace(start, sigma_per_scale=float(result.x)))


def _search(problem: _Problem, start: Recipe, max_evaluations: int) -> tuple[float, Recipe]:
    """Nelder-Mead over sigma_per_scale and the centre shift, gain and offset (and stretch) fitted inside."""
    from scipy.optimize import minimize

    cache: dict[tuple, tuple[float, Recipe]] = {}

    def objective(theta: np.ndarray) -> float:
        key = tuple(np.round(theta, 12))
        if key not in cache:
            candidate = dataclasses.replace(start, sigma_per_scale=float(abs(theta[0])), centre_shift=(float(theta[1]), float(theta[2])))
            cache[key] = problem.evaluate(candidate)
        return cache[key][0]

    theta0 = np.array([start.sigma_per_scale, *start.centre_shift])
    simplex = np.array([theta0, theta0 + [0.05 * max(start.sigma_per_scale, 0.1), 0, 0], theta0 + [0, 0.1, 0], theta0 + [0, 0, 0.1]])
    result = minimize(
        objective,
        theta0,
        method="Nelder-Mead",
        options={"initial_simplex": simplex, "xatol": 2e-4, "fatol": math.inf, "maxfev": max_evaluations},
    )
    objective(result.x)
    return cache[tuple(np.round(result.x, 12))]


def fit_recipe(
    images: np.ndarray,
    scales: np.ndarray,
    out_shape: tuple[int, int],
    published: np.ndarray,
    configured: Recipe,
    max_evaluations: int = 100,
) -> Fit:
    """The recipe that best explains ``published``, starting from ``configured``.

    Parameters
    ----------
    images : (n, 28, 28) ndarray
        The MNIST images the published images were made from.
    scales : (n,) ndarray
        Their scales.
    out_shape : (H, W)
    published : (n, H, W) ndarray
        The published values.
    configured : Recipe
        The recipe to compare with; also the fit's starting point.
    max_evaluations : int
        Bound on the Nelder-Mead evaluations of each candidate.

    Returns
    -------
    Fit
    """
    scales = np.asarray(scales, dtype=np.float64)
    published = np.asarray(published, dtype=np.float64)
    float32 = is_float32(published)
    base = dataclasses.replace(configured, round_to_float32=False)
    problem = _Problem.of(images, scales, out_shape, published)
    before = problem.residual(configured)
    as_configured = dataclasses.replace(configured, round_to_float32=float32)
    if problem.residual(as_configured)[1] <= ROUNDING:
        # The configured recipe explains every value to float rounding: nothing to fit.
        after, max_after = problem.residual(as_configured)
        return Fit(as_configured, before[0], after, max_after, len(published), {})
    identifiable = {}
    prefilter_matters = bool(np.any(scales < 1))
    if not prefilter_matters:
        identifiable["antialias"] = "the prefilter acts only below scale 1; every image here is at scale >= 1"

    # Starting shift: how far the published centroids sit from the configured recipe's.
    model = (2 / math.pi) * np.arctan(configured.gain * (pre_threshold(problem.images, scales, out_shape, base) - configured.offset))
    start_shift = tuple(float(v) for v in np.add(base.centre_shift, _centroid(published) - _centroid(model)))

    switches = [("order", (base.order, 1 if base.order == 3 else 3)), ("clip", (base.clip, not base.clip))]
    if prefilter_matters:
        switches.append(("antialias", (base.antialias, not base.antialias)))
    names = [name for name, _ in switches]
    # Candidates by the number of switches they change: the configured recipe first.
    combos = sorted(itertools.product(*(values for _, values in switches)), key=lambda combo: sum(c != v[0] for c, (_, v) in zip(combo, switches, strict=True)))
    screen = problem.subset(_SCREEN_IMAGES)
    screened = []
    for combo in combos:
        start = dataclasses.replace(base, centre_shift=start_shift, **dict(zip(names, combo, strict=True)))
        residual, fitted = _screen(screen, start)
        screened.append((residual, len(screened), fitted))
    ranked = sorted(screened, key=lambda item: (item[0], item[1]))
    # Refined: the best and the next best unless it is far behind.
    best_first = [item for item in ranked[:_REFINE] if item[0] <= _FAR_BEHIND * ranked[0][0]]

    best_residual, best = math.inf, base
    for _, rank, fitted in sorted(best_first, key=lambda item: item[1]):  # the simpler candidate first
        residual, refined = _search(problem.subset(_REFINE_IMAGES), fitted, max_evaluations)
        if residual < best_residual * (_CLEARLY_BETTER if rank else 1.0):
            best_residual, best = residual, refined
    best = _rounded(_snap(best, base, float32))
    after, max_after = problem.residual(best)
    return Fit(best, before[0], after, max_after, len(published), identifiable)


def _snap(fitted: Recipe, configured: Recipe, float32: bool) -> Recipe:
    """Constants within the thresholds of the configured ones are taken as the configured ones."""
    values = {"round_to_float32": float32}
    if abs(fitted.sigma_per_scale / configured.sigma_per_scale - 1) <= THRESHOLDS["sigma_per_scale"] if configured.sigma_per_scale else fitted.sigma_per_scale == 0:
        values["sigma_per_scale"] = configured.sigma_per_scale
    if abs(fitted.gain / configured.gain - 1) <= THRESHOLDS["gain"]:
        values["gain"] = configured.gain
    if abs(fitted.offset - configured.offset) <= THRESHOLDS["offset"]:
        values["offset"] = configured.offset
    values["centre_shift"] = tuple(
        c if abs(f - c) <= THRESHOLDS["centre_shift"] else f for f, c in zip(fitted.centre_shift, configured.centre_shift, strict=True)
    )
    return dataclasses.replace(fitted, **values)


def _rounded(recipe: Recipe) -> Recipe:
    """Fitted constants at the precision a fit on a few hundred images supports (short enough to quote).

    Every constant comes back a Python float: ``round`` keeps a numpy float a
    numpy float, which YAML's safe dumper (the config snippet) refuses.
    """
    return dataclasses.replace(
        recipe,
        sigma_per_scale=float(f"{recipe.sigma_per_scale:.4g}"),
        gain=float(f"{recipe.gain:.4g}"),
        offset=float(round(float(recipe.offset), 2)),
        centre_shift=tuple(float(round(float(v), 3)) for v in recipe.centre_shift),
    )


def changes(fitted: Recipe, configured: Recipe) -> dict:
    """The constants in which ``fitted`` differs from ``configured``: ``{name: [configured, fitted]}``."""
    a, b = configured.as_dict(), fitted.as_dict()
    return {key: [a[key], b[key]] for key in a if a[key] != b[key]}
