"""Figures of scales: measured digit size against nominal scale, and the per-sample scales of a file."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import h5py
import numpy as np
from matplotlib.figure import Figure

from ..names import parse_name
from ..validate import log_uniform_ks
from ..writer import SPLITS
from .drawing import pixel_figure


def size_series(reports: Sequence[dict]) -> list[dict]:
    """Per-digit scales and size ratios of every split of every validation report.

    Returns
    -------
    list of dict
        ``{'file', 'split', 'nominal', 'limit', 'scale' (n,), 'ratio' (n,)}``
        float64 arrays, NaN where the report has None.
    """
    series = []
    for report in reports:
        for split in ("train", "val", "test"):
            measured = report.get("summary", {}).get(split, {}).get("scale")
            if not measured:
                continue
            per_digit = measured["per_digit"]
            series.append(
                {
                    "file": report["file"],
                    "split": split,
                    "nominal": measured["nominal"],
                    "limit": measured["uncropped_scale_limit"],
                    "scale": np.array(per_digit["scale"], dtype=np.float64),
                    "ratio": np.array([np.nan if r is None else r for r in per_digit["ratio"]], dtype=np.float64),
                }
            )
    return series


def _power_of_two_ticks(axes, axis: str, low: float, high: float) -> None:
    """Ticks at the powers of two within [low, high], labelled as decimals (0.5, 1, 2 ...)."""
    ticks = [2.0**k for k in range(math.floor(math.log2(low)), math.ceil(math.log2(high)) + 1) if low <= 2.0**k <= high]
    labels = [f"{t:g}" for t in ticks]
    (axes.set_xticks if axis == "x" else axes.set_yticks)(ticks, labels)
    (axes.xaxis if axis == "x" else axes.yaxis).set_minor_formatter("")


def size_vs_scale_figure(series: list[dict], tolerance: float, title: str) -> Figure:
    """Measured size ratio against scale, log-log, and its relative error.

    Left: every measured digit (dots) and each single-scale split's median
    (circles) against ``ratio = s``.  Right: ``ratio / s - 1`` in percent with
    the tolerance band, scaled to the digits that fit the frame; beyond a dashed
    line (the scale at which the source image fills the frame) digits are
    cropped, and their errors may run off the panel (the text says how far).

    Parameters
    ----------
    series : list of dict
        From ``size_series``.
    tolerance : float
        The size tolerance, drawn as a band (0.02 for 2 %).
    title : str

    Returns
    -------
    Figure
        1200 x 520 pixels.
    """
    figure = pixel_figure(1200, 520)
    left, right = figure.subplots(1, 2, gridspec_kw={"wspace": 0.25, "left": 0.07, "right": 0.98, "top": 0.9, "bottom": 0.11})
    scales = np.concatenate([item["scale"] for item in series]) if series else np.array([1.0])
    lo, hi = scales.min() / 1.25, scales.max() * 1.25
    limits = sorted({item["limit"] for item in series}) or [4.0]
    for axes in (left, right):
        axes.set_xscale("log", base=2)
        axes.set_xlim(lo, hi)
        _power_of_two_ticks(axes, "x", lo, hi)
        axes.set_xlabel("nominal scale s")
        for limit in limits:
            axes.axvline(limit, color="grey", linestyle="--", linewidth=0.8)
        axes.grid(True, linewidth=0.3)
    left.plot([lo, hi], [lo, hi], color="black", linewidth=0.8, label="ratio = s")
    left.set_yscale("log", base=2)
    left.set_ylim(lo, hi)
    _power_of_two_ticks(left, "y", lo, hi)
    left.set_ylabel("size ratio: radius of gyration / that at s = 1")
    right.axhspan(-100 * tolerance, 100 * tolerance, color="#c8e6c9", label=f"tolerance ±{100 * tolerance:g} %")
    right.axhline(0, color="black", linewidth=0.8)
    right.set_ylabel("size ratio / s - 1  (%)")
    inside, outside = [], []
    for item in series:
        s, ratio = item["scale"], item["ratio"]
        error = 100 * (ratio / s - 1)
        in_frame = s <= item["limit"] * (1 + 1e-12)
        inside.append(error[in_frame & np.isfinite(error)])
        outside.append(error[~in_frame & np.isfinite(error)])
        colour = "#1f77b4" if len(np.unique(s)) > 1 else "#555555"
        left.plot(s, ratio, ".", markersize=2, alpha=0.35, color=colour)
        right.plot(s, error, ".", markersize=2, alpha=0.35, color=colour)
        if len(np.unique(s)) == 1 and len(s) > 1:
            median = np.nanmedian(ratio)
            left.plot(s[0], median, "o", markersize=6, markerfacecolor="none", color="#d62728")
            right.plot(s[0], 100 * (median / s[0] - 1), "o", markersize=6, markerfacecolor="none", color="#d62728")
    left.plot([], [], "o", markerfacecolor="none", color="#d62728", label="median of a single-scale split")
    left.plot([], [], ".", color="#555555", label="digit of a single-scale split")
    left.plot([], [], ".", color="#1f77b4", label="digit of a scale-range split")
    left.plot([], [], "--", color="grey", linewidth=0.8, label="source fills the frame: cropped beyond")
    left.legend(loc="upper left", fontsize=8)
    right.legend(loc="upper right", fontsize=8)
    inside = np.concatenate(inside) if inside else np.zeros(0)
    outside = np.concatenate(outside) if outside else np.zeros(0)
    bottom = min(-3 * 100 * tolerance, inside.min(initial=0) - 1)
    top = max(3 * 100 * tolerance, inside.max(initial=0) + 1)
    right.set_ylim(bottom, top)
    off = outside[(outside < bottom) | (outside > top)]
    if off.size:
        right.text(0.98, 0.88, f"{off.size} cropped digits off the panel\n(from {off.min():.0f} % to {off.max():.0f} %)", transform=right.transAxes, ha="right", va="top", fontsize=8, color="#555555")
    figure.suptitle(title, fontsize=11)
    return figure


def scale_histogram_figure(scales: dict[str, np.ndarray], low: float, high: float, ks: dict[str, tuple[float, float]], title: str, bins: int = 24) -> Figure:
    """Histogram and cumulative distribution of per-sample scales, against log-uniform.

    Left: one step histogram per split in bins of equal width in log2(s), with
    the flat log-uniform density.  Right: the empirical distribution function of
    ``u = log(s / low) / log(high / low)`` per split against the diagonal, the
    uniform one; the Kolmogorov-Smirnov statistic is its largest distance.

    Parameters
    ----------
    scales : dict
        ``(n,)`` float64 scales by split name.
    low, high : float
        The range the scales are drawn from.
    ks : dict
        ``(statistic, p_value)`` of the Kolmogorov-Smirnov test by split name.
    title : str
    bins : int
        Bins of equal width in log2(s).

    Returns
    -------
    Figure
        1200 x 500 pixels; the density is per unit of log2(s), so a
        log-uniform draw is flat at ``1 / log2(high / low)``.
    """
    figure = pixel_figure(1200, 500)
    hist, cdf = figure.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2], "wspace": 0.2, "left": 0.06, "right": 0.98, "top": 0.88, "bottom": 0.12})
    edges = np.linspace(math.log2(low), math.log2(high), bins + 1)
    flat = 1 / math.log2(high / low)
    for split, values in scales.items():
        values = np.atleast_1d(values)
        statistic, p_value = ks.get(split, (float("nan"), float("nan")))
        label = f"{split}: n = {values.size}, KS D = {statistic:.4f}, p = {p_value:.3g}"
        hist.hist(np.log2(values), bins=edges, density=True, histtype="step", linewidth=1.5, label=label)
        u = np.sort(np.log(values / low) / math.log(high / low))
        cdf.step(np.concatenate([[0.0], u, [1.0]]), np.concatenate([[0.0], np.arange(1, u.size + 1) / u.size, [1.0]]), where="post", linewidth=1.2, label=split)
    hist.plot([edges[0], edges[-1]], [flat, flat], color="black", linestyle="--", linewidth=1, label="log-uniform density")
    ticks = np.arange(math.ceil(math.log2(low) * 4), math.floor(math.log2(high) * 4) + 1) / 4
    hist.set_xticks(ticks, [f"{2**t:.3g}" for t in ticks])
    hist.set_xlabel("per-sample scale s (log2 axis)")
    hist.set_ylabel("density per unit log2(s)")
    hist.set_ylim(0, 2.6 * flat)
    hist.legend(loc="upper center", fontsize=8, ncol=2)
    cdf.plot([0, 1], [0, 1], color="black", linestyle="--", linewidth=1, label="uniform")
    cdf.set_xlim(0, 1)
    cdf.set_ylim(0, 1)
    cdf.set_xlabel(f"u = log(s / {low:g}) / log({high:g} / {low:g})")
    cdf.set_ylabel("fraction of samples with smaller u")
    cdf.legend(loc="upper left", fontsize=8)
    cdf.grid(True, linewidth=0.3)
    figure.suptitle(title, fontsize=10)
    return figure


def file_scale_histogram(path: str | os.PathLike) -> Figure:
    """The histogram of a range file's per-sample scales (``/s_<split>``), with each split's KS test.

    Raises
    ------
    ValueError
        When the file holds no per-sample scales or its name names no range.
    """
    spec = parse_name(os.path.basename(path))
    ranges = {split: spec.split_scale(split) for split in SPLITS if spec.split_scale(split).is_range}
    with h5py.File(path, "r") as h5:
        scales = {split: np.atleast_1d(h5[f"s_{split}"][()]) for split in ranges if f"s_{split}" in h5}
    if not scales:
        raise ValueError(f"{path}: no per-sample scales (s_train, s_val, s_test) in a file whose name names a scale range")
    low, high = min(ranges[split].low for split in scales), max(ranges[split].high for split in scales)
    ks = {split: log_uniform_ks(values, ranges[split].low, ranges[split].high) for split, values in scales.items()}
    return scale_histogram_figure(scales, low, high, ks, f"Per-sample scales of {os.path.basename(path)}")
