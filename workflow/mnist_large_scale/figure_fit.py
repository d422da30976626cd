"""Fit the recipe to a published figure: a matplotlib montage of a file's images (docs/evidence.md).

A figure of published images (``imshow`` panels in a grid, each image
autoscaled to its own minimum and maximum, a colormap) keeps the shape of
every digit, though not its values: the colormap inverts to a number in
[0, 1] per pixel, and the digit's profile across a stroke (how wide, how flat
its top) tells the smoothing, the soft threshold and whether the image was
stretched before it.

How
---
1. The panels are the grid's runs of rows and columns whose pixels are colours
   of the colormap; each panel's colours invert to values in [0, 1] (nearest
   entry of the colormap's 256-colour table).
2. The display is modelled as a per-image min-max normalisation followed by a
   separable linear resampling to the panel: a triangle kernel of a fitted
   width and sub-pixel offset, then the two matrices themselves refined by
   least squares (``learn_matrices``).  The model is calibrated on a montage
   that this module draws itself, through the same matplotlib calls as the
   published figure (``draw_montage``), from the rebuilt images of the same
   digits under the configured recipe, at the dpi that gives panels of the
   published size: what the display does to an image is then fitted on images
   whose values are known, and cancels from the comparison.
3. For each form of the stretch (``STRETCH_FORMS``) the recipe's constants
   (``sigma_per_scale``, ``gain``, ``offset``, the centre shift) are fitted by
   Nelder-Mead to the published panels; the interpolation order and the clip
   are tried at the best fit.  For a file with a scale range, each digit's
   scale is fitted too (a search over log2 s per digit, alternated once with the
   constants).
4. Uncertainty: for each constant, the per-digit residual along a line through
   the best fit (the other constants held there) is bootstrapped over the
   digits; each digit also votes for the stretch form whose best fit explains
   it better.

The pre-threshold images come from the recipe's float model
(``recipe_fit.pre_threshold``), equal to the reference recipe to float rounding.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass

import numpy as np

from .figure_display import (
    Display,
    calibrate_display,
    colormap_table,
    decode_panels,
    draw_montage,
    find_panels,
    learn_matrices,
    montage_dpi,
    read_png,
)
from .recipe import Recipe
from .recipe_fit import pre_threshold

__all__ = ["STRETCH_FORMS", "Hypothesis", "model_values", "fit_figure", "FigureAnalysis", "analyse_figure"]

#: Stretch forms a figure can tell apart: none; the smoothed image's maximum to clip_max (the
#: recipe's ``stretch``); the smoothed image's minimum and maximum to 0 and clip_max.
STRETCH_FORMS = ("none", "max", "minmax")
#: The constants fitted continuously, in the order of the parameter vector.
CONSTANTS = ("sigma_per_scale", "gain", "offset", "shift_down", "shift_right")
#: Half-widths of the bootstrap lines through the best fit, per constant.
_SPANS = {"sigma_per_scale": 0.15, "gain": 0.01, "offset": 40.0, "shift_down": 1.0, "shift_right": 1.0}
#: A fitted constant differs from the configured one when it is further than this and than 2 standard errors.
TOLERANCES = {"sigma_per_scale": 0.03, "gain": 0.002, "offset": 6.0, "shift_down": 0.15, "shift_right": 0.15}


@dataclass(frozen=True)
class Hypothesis:
    """One way the published images may have been made: a stretch form and the recipe's constants."""

    form: str
    recipe: Recipe

    def vector(self) -> np.ndarray:
        """The continuous constants (``CONSTANTS``) as a vector."""
        r = self.recipe
        return np.array([r.sigma_per_scale, r.gain, r.offset, *r.centre_shift])

    def with_vector(self, theta) -> Hypothesis:
        """The same form and switches with other continuous constants."""
        sigma, gain, offset, down, right = (float(v) for v in theta)
        return Hypothesis(self.form, dataclasses.replace(self.recipe, sigma_per_scale=abs(sigma), gain=gain, offset=offset, centre_shift=(down, right)))


def _stretched(x: np.ndarray, form: str, clip_max: float) -> np.ndarray:
    """Apply a stretch form to smoothed frames (n, H, W)."""
    if form == "none":
        return x
    peak = x.max(axis=(1, 2), keepdims=True)
    low = x.min(axis=(1, 2), keepdims=True) if form == "minmax" else 0.0
    span = peak - low
    return np.where(span > 0, (x - low) * (clip_max / np.where(span > 0, span, 1.0)), x)


def model_values(images: np.ndarray, scales: np.ndarray, out_shape: tuple[int, int], hypothesis: Hypothesis) -> np.ndarray:
    """The images a hypothesis makes: (n, H, W) values after the soft threshold."""
    recipe = dataclasses.replace(hypothesis.recipe, stretch=False)
    x = _stretched(pre_threshold(images, scales, out_shape, recipe), hypothesis.form, recipe.clip_max)
    return (2 / math.pi) * np.arctan(recipe.gain * (x - recipe.offset))


@dataclass
class _Problem:
    """Published panels with the digits and scales they show, and the calibrated display."""

    panels: np.ndarray
    images: np.ndarray
    scales: np.ndarray
    out_shape: tuple[int, int]
    display: Display

    def per_digit(self, hypothesis: Hypothesis, scales: np.ndarray | None = None) -> np.ndarray:
        """Mean squared difference of each digit's panel under a hypothesis: (n,)."""
        values = model_values(self.images, self.scales if scales is None else scales, self.out_shape, hypothesis)
        return np.mean((self.display.render(values, self.panels.shape[1:]) - self.panels) ** 2, axis=(1, 2))

    def rms(self, hypothesis: Hypothesis) -> float:
        return float(np.sqrt(np.mean(self.per_digit(hypothesis))))


def _refine(problem: _Problem, start: Hypothesis, max_evaluations: int) -> Hypothesis:
    """Nelder-Mead over the continuous constants from ``start``."""
    from scipy.optimize import minimize

    theta0 = start.vector()
    steps = np.array([0.05, 0.003, 10.0, 0.3, 0.3])
    simplex = np.vstack([theta0, theta0 + np.diag(steps)])
    result = minimize(
        lambda theta: problem.rms(start.with_vector(theta)),
        theta0,
        method="Nelder-Mead",
        options={"initial_simplex": simplex, "xatol": 1e-4, "fatol": 1e-8, "maxfev": max_evaluations},
    )
    return start.with_vector(result.x)


def _fit_scales(problem: _Problem, hypothesis: Hypothesis, low: float, high: float, points: int = 25) -> np.ndarray:
    """Each digit's scale in ``[low, high]`` that best explains its panel (grid over log2 s, then a parabola)."""
    grid = np.exp2(np.linspace(math.log2(low), math.log2(high), points))
    errors = np.stack([problem.per_digit(hypothesis, np.full(len(problem.images), s)) for s in grid], axis=1)  # (n, points)
    return np.exp2(_parabolic_minimum(np.log2(grid), errors))


def _parabolic_minimum(grid: np.ndarray, errors: np.ndarray) -> np.ndarray:
    """The minimum of each row of ``errors`` over an even ``grid``, refined by a parabola through three points."""
    best = np.clip(np.argmin(errors, axis=-1), 1, len(grid) - 2)
    rows = np.arange(errors.shape[0]) if errors.ndim == 2 else ()
    left, mid, right = (errors[rows, best + d] if errors.ndim == 2 else errors[best + d] for d in (-1, 0, 1))
    curvature = left - 2 * mid + right
    step = np.where(curvature > 0, 0.5 * (left - right) / np.where(curvature > 0, curvature, 1.0), 0.0)
    return grid[best] + np.clip(step, -1, 1) * (grid[1] - grid[0])


def _bootstrap_constant(problem: _Problem, best: Hypothesis, index: int, rng: np.random.Generator, draws: int, points: int = 13) -> dict:
    """A constant's bootstrap over digits along a line through the best fit (the other constants held)."""
    name = CONSTANTS[index]
    theta = best.vector()
    grid = theta[index] + np.linspace(-1.0, 1.0, points) * _SPANS[name] * (abs(theta[index]) if name == "sigma_per_scale" else 1.0)
    errors = []
    for value in grid:
        moved = theta.copy()
        moved[index] = value
        errors.append(problem.per_digit(best.with_vector(moved)))
    errors = np.stack(errors, axis=1)  # (digits, points)
    picks = rng.integers(0, len(errors), size=(draws, len(errors)))
    estimates = _parabolic_minimum(grid, errors[picks].sum(axis=1))
    return {
        "value": float(theta[index]),
        "std": float(np.std(estimates)),
        "ci95": [float(np.quantile(estimates, 0.025)), float(np.quantile(estimates, 0.975))],
        "edge_of_line": bool(np.mean((estimates <= grid[1]) | (estimates >= grid[-2])) > 0.05),
    }


def _fit_form(problem: _Problem, start: Hypothesis, scale_range: tuple[float, float] | None, max_evaluations: int) -> tuple[Hypothesis, np.ndarray]:
    """Best continuous constants (and per-digit scales for a range) of one stretch form."""
    scales = problem.scales
    if scale_range is not None:
        scales = _fit_scales(problem, start, *scale_range)
        problem = dataclasses.replace(problem, scales=scales)
    best = _refine(problem, start, max_evaluations)
    if scale_range is not None:
        scales = _fit_scales(problem, best, *scale_range)
        best = _refine(dataclasses.replace(problem, scales=scales), best, max_evaluations // 2)
    return best, scales


def fit_figure(
    panels: np.ndarray,
    images: np.ndarray,
    scales: np.ndarray | None,
    out_shape: tuple[int, int],
    display: Display,
    configured: Recipe,
    scale_range: tuple[float, float] | None = None,
    max_evaluations: int = 150,
    bootstrap: int = 500,
    seed: int = 0,
    bias: dict | None = None,
) -> dict:
    """Fit every stretch form to the published panels; the residuals, constants and votes as a dict.

    Parameters
    ----------
    panels : (n, h, w) ndarray
        Decoded published panels in [0, 1].
    images : (n, 28, 28) ndarray
        The MNIST digits they show.
    scales : (n,) ndarray or None
        Their scales; None for a range file (then ``scale_range`` is needed and each digit's scale is fitted).
    out_shape : (H, W)
    display : Display
        The calibrated display model.
    configured : Recipe
        The configured recipe: the starting point and what the fit is compared with.
    scale_range : (low, high), optional
    max_evaluations : int
        Bound on the Nelder-Mead evaluations of each fit.
    bootstrap : int
        Bootstrap draws over the digits.
    seed : int
        Seed of the bootstrap.
    bias : dict, optional
        The display's bias per constant (what the same fit finds on a montage of the
        configured recipe, minus the configured value): subtracted from each fitted
        constant (``corrected``) before it is compared with the configured recipe.

    Returns
    -------
    dict
        ``hypotheses`` (per form: RMS as configured and fitted, fitted constants,
        the order and clip alternatives), ``best_form``, ``digits_preferring``,
        ``constants`` (of the best form, with bootstrap uncertainties), ``scales``
        (fitted per digit, for a range), ``differs`` (constants beyond their
        tolerance from the configured recipe) and ``consistent_with_configured``.
    """
    if scales is None and scale_range is None:
        raise ValueError("a figure of a scale-range file needs the range (scale_range) to fit each digit's scale")
    start_scales = np.full(len(images), math.sqrt(scale_range[0] * scale_range[1])) if scales is None else np.asarray(scales, dtype=np.float64)
    problem = _Problem(np.asarray(panels, dtype=np.float64), np.asarray(images, dtype=np.float64), start_scales, out_shape, display)
    configured_form = "max" if configured.stretch else "none"
    results, fits = _fit_forms(problem, configured, scales is None, scale_range, max_evaluations)
    best_form = min(results, key=lambda form: results[form]["rms_fitted"])
    per_digit = {form: fitted.per_digit(hyp) for form, (hyp, fitted) in fits.items()}
    votes = np.argmin(np.stack([per_digit[form] for form in STRETCH_FORMS]), axis=0)
    best, fitted = fits[best_form]
    constants, differs = _constants_against_configured(fitted, best, Hypothesis(configured_form, configured), bias, seed, bootstrap)
    out = {
        "hypotheses": results,
        "best_form": best_form,
        "configured_form": configured_form,
        "digits_preferring": {form: int(np.sum(votes == k)) for k, form in enumerate(STRETCH_FORMS)},
        "digits_preferring_stretch_max_over_none": int(np.sum(per_digit["max"] < per_digit["none"])),
        "constants": constants,
        "differs": differs,
        "consistent_with_configured": best_form == configured_form and not differs,
        "digits": len(images),
    }
    if scales is None:
        out["scales"] = fitted.scales.tolist()
    return out


def _fit_forms(
    problem: _Problem, configured: Recipe, scales_fitted: bool, scale_range: tuple[float, float] | None, max_evaluations: int
) -> tuple[dict, dict]:
    """Every stretch form fitted: its summary (RMS as configured and fitted, constants, the order and clip alternatives) and its fit."""
    results, fits = {}, {}
    for form in STRETCH_FORMS:
        start = Hypothesis(form, dataclasses.replace(configured, stretch=False))
        best, form_scales = _fit_form(problem, start, scale_range, max_evaluations)
        fitted = dataclasses.replace(problem, scales=form_scales)
        alternatives = {}
        for switch, value in (("order", 1 if configured.order == 3 else 3), ("clip", not configured.clip)):
            other = _refine(fitted, Hypothesis(form, dataclasses.replace(best.recipe, **{switch: value})), max_evaluations // 2)
            alternatives[f"{switch}={value}"] = fitted.rms(other)
        fits[form] = (best, fitted)
        results[form] = {
            "rms_configured_constants": dataclasses.replace(problem, scales=form_scales).rms(start) if scales_fitted else problem.rms(start),
            "rms_fitted": fitted.rms(best),
            "constants": dict(zip(CONSTANTS, best.vector().tolist(), strict=True)),
            "rms_alternatives": alternatives,
        }
    return results, fits


def _constants_against_configured(
    fitted: _Problem, best: Hypothesis, configured: Hypothesis, bias: dict | None, seed: int, bootstrap: int
) -> tuple[dict, dict]:
    """The best fit's constants with bootstrap uncertainties and the display's bias removed, and those beyond their tolerance."""
    rng = np.random.default_rng(seed)
    constants = {name: _bootstrap_constant(fitted, best, k, rng, bootstrap) for k, name in enumerate(CONSTANTS)}
    configured_vector = configured.vector()
    for name, entry in constants.items():
        entry["display_bias"] = float((bias or {}).get(name, 0.0))
        entry["corrected"] = entry["value"] - entry["display_bias"]
    differs = {
        name: {"fitted": entry["corrected"], "configured": float(configured_vector[k])}
        for k, (name, entry) in enumerate(constants.items())
        if abs(entry["corrected"] - configured_vector[k]) > max(TOLERANCES[name], 2 * entry["std"])
    }
    return constants, differs


def png_sha256(data: bytes) -> str:
    """The sha256 of PNG bytes, naming which figure was analysed."""
    return hashlib.sha256(data).hexdigest()


@dataclass
class FigureAnalysis:
    """A figure's analysis: the fit (``fit_figure``'s dict), the display and the panels for a figure."""

    result: dict
    panels: np.ndarray
    rendered: dict  # form name -> (n, h, w) panels of that form's best fit, and "configured"


def analyse_figure(
    png: bytes,
    rows: int,
    cols: int,
    colormap: str,
    images: np.ndarray,
    labels: np.ndarray,
    scales: np.ndarray | None,
    out_shape: tuple[int, int],
    configured: Recipe,
    scale_range: tuple[float, float] | None = None,
    calibration_scales: np.ndarray | None = None,
    self_check: bool = True,
    bootstrap: int = 500,
    max_evaluations: int = 150,
) -> FigureAnalysis:
    """Decode a montage, calibrate the display on a montage drawn here, fit the hypotheses.

    Parameters
    ----------
    png : bytes
        The published montage.
    rows, cols : int
        Its grid.
    colormap : str
        Its colormap (matplotlib's name).
    images, labels : ndarray
        The MNIST digits the panels show, row-major, and their labels (drawn as titles in the calibration montage).
    scales : (n,) ndarray or None
        The digits' scales; None for a scale-range file.
    out_shape : (H, W)
    configured : Recipe
    scale_range : (low, high), optional
        For a scale-range file.
    calibration_scales : (n,) ndarray, optional
        Scales of the calibration montage's images for a range file (default: the range's geometric middle).
    self_check : bool
        Also fit the calibration montage itself (made with the configured recipe): the
        constants found there, minus the configured ones, are the display's bias,
        subtracted from the published figure's constants (``corrected``); its best
        form must be the configured one.
    bootstrap, max_evaluations : int
        As for ``fit_figure``.

    Returns
    -------
    FigureAnalysis
    """
    table = colormap_table(colormap)
    published_rgb = read_png(png)
    published_boxes = find_panels(published_rgb, rows, cols, table)
    panels = decode_panels(published_rgb, published_boxes, table)
    if len(panels) != len(images):
        raise ValueError(f"the montage has {len(panels)} panels but {len(images)} digits were given")
    if calibration_scales is None:
        calibration_scales = scales if scales is not None else np.full(len(images), math.sqrt(scale_range[0] * scale_range[1]))
    configured_hypothesis = Hypothesis("max" if configured.stretch else "none", dataclasses.replace(configured, stretch=False))
    own_values = model_values(images, calibration_scales, out_shape, configured_hypothesis)
    dpi, layout_offset = montage_dpi(published_boxes, rows, cols, out_shape[0], colormap)
    own_rgb = read_png(draw_montage(own_values, labels, rows, cols, colormap, dpi))
    own_panels = decode_panels(own_rgb, find_panels(own_rgb, rows, cols, table), table)
    own_panels = own_panels[:, : panels.shape[1], : panels.shape[2]]
    panels = panels[:, : own_panels.shape[1], : own_panels.shape[2]]
    display, record = _calibrated_display(own_panels, own_values)
    bias, check = None, None
    if self_check:
        check = fit_figure(own_panels, images, calibration_scales if scale_range is None else None, out_shape, display, configured, scale_range, max_evaluations, bootstrap=50)
        found = check["hypotheses"][configured_hypothesis.form]["constants"]
        bias = {name: found[name] - configured_hypothesis.vector()[k] for k, name in enumerate(CONSTANTS)}
    result = fit_figure(panels, images, scales, out_shape, display, configured, scale_range, max_evaluations, bootstrap, bias=bias)
    result["figure"] = {"sha256": png_sha256(png), "rows": rows, "cols": cols, "colormap": colormap, "panel_px": list(panels.shape[1:])}
    result["display"] = {**record, "dpi": dpi, "layout_offset_px": layout_offset}
    if check is not None:
        result["self_check"] = {key: check[key] for key in ("best_form", "digits_preferring")}
        result["self_check"]["rms"] = {form: entry["rms_fitted"] for form, entry in check["hypotheses"].items()}
        result["self_check"]["display_bias"] = bias
    rendered = _rendered_fits(result, display, images, scales, calibration_scales, out_shape, configured, panels.shape[1:])
    rendered["configured"] = display.render(own_values, panels.shape[1:])
    return FigureAnalysis(result, panels, rendered)


def _calibrated_display(own_panels: np.ndarray, own_values: np.ndarray) -> tuple[Display, dict]:
    """The display fitted to a montage drawn here (its panels and the values drawn), and how well it renders it."""
    kernel_display, kernel_rms = calibrate_display(own_panels, own_values)
    display = dataclasses.replace(kernel_display, matrices=learn_matrices(own_panels, own_values, kernel_display))
    calibration_rms = float(np.sqrt(np.mean((display.render(own_values, own_panels.shape[1:]) - own_panels) ** 2)))
    record = {
        "kernel_width": display.width,
        "offset_y": display.offset_y,
        "offset_x": display.offset_x,
        "kernel_calibration_rms": kernel_rms,
        "learned_calibration_rms": calibration_rms,
    }
    return display, record


def _rendered_fits(
    result: dict, display: Display, images: np.ndarray, scales, calibration_scales: np.ndarray, out_shape, configured: Recipe, panel_shape
) -> dict:
    """Each form's best fit drawn as the published panels are (the fitted per-digit scales for the best form of a range file)."""
    rendered = {}
    for form, entry in result["hypotheses"].items():
        hypothesis = Hypothesis(form, dataclasses.replace(configured, stretch=False)).with_vector([entry["constants"][name] for name in CONSTANTS])
        form_scales = np.asarray(result["scales"]) if scales is None and form == result["best_form"] else (scales if scales is not None else calibration_scales)
        rendered[form] = display.render(model_values(images, form_scales, out_shape, hypothesis), panel_shape)
    return rendered
