"""Pictures of MNIST Large Scale files, for the report and the inspect command.

Four figures, each a matplotlib ``Figure`` of a fixed pixel size (built without
pyplot, so no global state; saved without tight cropping, so the PNG has exactly
the size the layout computes):

* ``montage_figure``: the first images of a split, one image pixel per screen pixel;
* ``scale_ladder_figure``: one image of each class at all 17 published test scales;
* ``size_vs_scale_figure``: measured digit size against nominal scale, log-log;
* ``scale_histogram_figure``: the per-sample scales of a scale-range file;
* ``comparison_figure``: a published file against its rebuild (``compare.py``).

Images are drawn in grey from their value range; a NaN pixel is red, so a
broken value shows at a glance.  Labels are drawn with the base data set's
class names where the config gives them (``base_data.<key>.classes``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import h5py
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .inspect_file import read_images
from .names import PUBLISHED_TEST_SCALES, parse_name, scale_tag
from .recipe import Recipe, transform_images
from .validate import log_uniform_ks
from .writer import SPLITS, atomic_path

__all__ = [
    "DPI",
    "LADDER_SCALES",
    "to_rgb",
    "tile_grid",
    "montage_figure",
    "class_label",
    "first_of_each_class",
    "ladder_columns",
    "scale_ladder_figure",
    "size_series",
    "size_vs_scale_figure",
    "scale_histogram_figure",
    "file_montage",
    "file_scale_histogram",
    "comparison_figure",
    "save_figure",
]

#: Figures are laid out in pixels; inches are pixels / DPI.
DPI = 100
#: The scale ladder's columns: the 17 published test scales.
LADDER_SCALES = PUBLISHED_TEST_SCALES

_PAD = 2  # pixels between tiles
_GAP_RGB = (0.16, 0.24, 0.40)  # tile separators: dark blue, unlike any grey of the data
_NAN_RGB = (1.0, 0.0, 0.0)
_MONTAGE_HEADER = 44  # pixels above a montage: two lines of title
_MONTAGE_MIN_WIDTH = 640  # wide enough for the longest file name as a title
_LADDER_HEADER = 64  # title line, then a scale and a source per column
_LADDER_LEFT = 28  # the class of each row
_LABEL_BOX = {"facecolor": "black", "alpha": 0.6, "edgecolor": "none", "boxstyle": "square,pad=0.15"}  # labels stay legible on white strokes


def to_rgb(images: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """Grey levels as RGB: ``vmin`` black, ``vmax`` white, NaN red.

    Parameters
    ----------
    images : (..., H, W) ndarray of float
    vmin, vmax : float
        The values drawn black and white; values beyond are clipped.

    Returns
    -------
    (..., H, W, 3) ndarray of float64 in [0, 1]
    """
    images = np.asarray(images, dtype=np.float64)
    span = vmax - vmin if vmax > vmin else 1.0
    grey = np.clip((np.nan_to_num(images, nan=vmin) - vmin) / span, 0.0, 1.0)
    rgb = np.repeat(grey[..., np.newaxis], 3, axis=-1)
    rgb[np.isnan(images)] = _NAN_RGB
    return rgb


def tile_grid(tiles: np.ndarray, ncols: int, pad: int = _PAD) -> np.ndarray:
    """Tiles in rows of ``ncols``, separated and framed by ``pad`` pixels.

    Parameters
    ----------
    tiles : (n, H, W, 3) ndarray of float
        RGB tiles, filled row by row.
    ncols : int
        Tiles per row.
    pad : int
        Separator width in pixels.

    Returns
    -------
    (rows (H + pad) + pad, ncols (W + pad) + pad, 3) ndarray of float64
        With ``rows = ceil(n / ncols)``; empty places and separators are
        the separator colour.
    """
    n, height, width = tiles.shape[:3]
    rows = math.ceil(n / ncols)
    grid = np.empty((rows * (height + pad) + pad, ncols * (width + pad) + pad, 3))
    grid[...] = _GAP_RGB
    for k in range(n):
        top, left = pad + (k // ncols) * (height + pad), pad + (k % ncols) * (width + pad)
        grid[top : top + height, left : left + width] = tiles[k]
    return grid


def class_label(label: int, classes: Sequence[str] = ()) -> str:
    """A label as drawn: ``'3'``, or ``'3 Dress'`` where ``classes`` names it otherwise."""
    label = int(label)
    name = classes[label] if 0 <= label < len(classes) else str(label)
    return str(label) if name == str(label) else f"{label} {name}"


def _value_range(images: np.ndarray) -> tuple[float, float]:
    finite = np.asarray(images)[np.isfinite(images)]
    return (float(finite.min()), float(finite.max())) if finite.size else (-1.0, 1.0)


def _canvas(width_px: int, height_px: int) -> Figure:
    figure = Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def _image_axes(figure: Figure, left: int, bottom: int, width: int, height: int):
    """Axes covering a pixel rectangle of the figure (origin bottom left), no frame."""
    fig_w, fig_h = figure.get_size_inches() * DPI
    axes = figure.add_axes((left / fig_w, bottom / fig_h, width / fig_w, height / fig_h))
    axes.set_axis_off()
    return axes


def montage_figure(
    images: np.ndarray,
    labels: Sequence[int],
    title: str,
    subtitle: str = "",
    ncols: int = 8,
    scales: Sequence[float] | None = None,
    value_range: tuple[float, float] | None = None,
    classes: Sequence[str] = (),
) -> Figure:
    """The images side by side at one screen pixel per image pixel, each with its label.

    Parameters
    ----------
    images : (n, H, W) ndarray of float
    labels : (n,) sequence of int
        Drawn in each tile's top left corner.
    title, subtitle : str
        Two header lines (file name, then what is shown).
    ncols : int
        Tiles per row (fewer when n is smaller).
    scales : (n,) sequence of float, optional
        Per-image scales, drawn beside the labels (range files).
    value_range : (vmin, vmax), optional
        Drawn black and white; the images' finite range when None.
    classes : sequence of str
        The name of each label (``class_label``); the labels alone when empty.

    Returns
    -------
    Figure
        ``max(ncols (W + 2) + 2, 640)`` pixels wide, ``rows (H + 2) + 2 + 44``
        high, with ``rows = ceil(n / ncols)``.
    """
    images = np.asarray(images, dtype=np.float64)
    n, height, width = images.shape
    ncols = max(1, min(ncols, n))
    vmin, vmax = value_range or _value_range(images)
    grid = tile_grid(to_rgb(images, vmin, vmax), ncols)
    fig_w = max(grid.shape[1], _MONTAGE_MIN_WIDTH)
    figure = _canvas(fig_w, grid.shape[0] + _MONTAGE_HEADER)
    axes = _image_axes(figure, (fig_w - grid.shape[1]) // 2, 0, grid.shape[1], grid.shape[0])
    axes.imshow(grid, interpolation="nearest", extent=(0, grid.shape[1], grid.shape[0], 0))
    for k in range(n):
        top, left = _PAD + (k // ncols) * (height + _PAD), _PAD + (k % ncols) * (width + _PAD)
        text = class_label(labels[k], classes) + (f"  s={scales[k]:.2f}" if scales is not None else "")
        axes.text(left + 2, top + 2, text, color="#ffd75e", fontsize=8, va="top", ha="left", bbox=_LABEL_BOX)
    figure.text(0.5, 1 - 4 / figure.bbox.height, title, ha="center", va="top", fontsize=8.5, fontweight="bold")
    figure.text(0.5, 1 - 24 / figure.bbox.height, f"{subtitle}; grey {vmin:.4f} (black) to {vmax:.4f} (white)".lstrip("; "), ha="center", va="top", fontsize=8)
    return figure


def first_of_each_class(labels: np.ndarray, classes: int = 10) -> np.ndarray:
    """Index of the first sample of each class ``0 .. classes-1``: (classes,) int64.

    Raises
    ------
    ValueError
        When a class does not occur.
    """
    labels = np.asarray(labels)
    missing = [c for c in range(classes) if not np.any(labels == c)]
    if missing:
        raise ValueError(f"no sample of class {missing} among {len(labels)} labels")
    return np.array([int(np.argmax(labels == c)) for c in range(classes)])


def ladder_columns(
    indices: np.ndarray,
    sources: np.ndarray,
    recipe: Recipe,
    files: dict[str, str | os.PathLike],
    scales: Sequence[float] = LADDER_SCALES,
    out_shape: tuple[int, int] = (112, 112),
) -> list[dict]:
    """The scale ladder's columns: from built files where given, else from the recipe.

    Parameters
    ----------
    indices : (k,) ndarray of int
        Test-split indices of the digits shown.
    sources : (k, h, w) ndarray
        Those digits from the base data set, for the columns no file gives.
    recipe : Recipe
        The recipe of those columns.
    files : dict
        Built file by scale tag (``'2p000'``): its ``x_test`` gives the column
        when it holds every index and has ``out_shape``.
    scales : sequence of float
        The columns' scales.
    out_shape : (H, W)

    Returns
    -------
    list of dict
        ``{'scale', 'images' (k, H, W) float64, 'source': 'file' or 'recipe'}``.
    """
    columns = []
    for scale in scales:
        path = files.get(scale_tag(scale))
        images = None
        if path is not None:
            stored, _, _ = read_images(path, "test", int(np.max(indices)) + 1)
            if stored.shape[0] > np.max(indices) and stored.shape[1:] == out_shape:
                images = stored[indices]
        source = "file" if images is not None else "recipe"
        if images is None:
            images = transform_images(sources, np.full(len(sources), scale), out_shape, recipe)
        columns.append({"scale": scale, "images": images, "source": source})
    return columns


def scale_ladder_figure(columns: list[dict], labels: Sequence[int], title: str, classes: Sequence[str] = ()) -> Figure:
    """The same images at many scales: one row per image, one column per scale.

    Parameters
    ----------
    columns : list of dict
        From ``ladder_columns``; every column's images have one shape (k, H, W).
    labels : (k,) sequence of int
        The class of each row.
    title : str
    classes : sequence of str
        The name of each label, drawn left of its row (``class_label``).

    Returns
    -------
    Figure
        ``left + len(columns) (W + 2) + 2`` pixels wide, ``64 + k (H + 2) + 2``
        high, one screen pixel per image pixel; ``left`` is 28 pixels, or 7 per
        character of the longest row label plus 10 where that is wider.
    """
    stack = np.stack([column["images"] for column in columns])  # (columns, k, H, W)
    n_cols, k, height, width = stack.shape
    vmin, vmax = _value_range(stack)
    tiles = to_rgb(stack.transpose(1, 0, 2, 3).reshape(-1, height, width), vmin, vmax)
    grid = tile_grid(tiles, n_cols)
    row_labels = [class_label(label, classes) for label in labels]
    left = max(_LADDER_LEFT, 7 * max(map(len, row_labels), default=0) + 10)
    fig_w, fig_h = left + grid.shape[1], _LADDER_HEADER + grid.shape[0]
    figure = _canvas(fig_w, fig_h)
    axes = _image_axes(figure, left, 0, grid.shape[1], grid.shape[0])
    axes.imshow(grid, interpolation="nearest", extent=(0, grid.shape[1], grid.shape[0], 0))
    figure.text(0.5, 1 - 4 / fig_h, title, ha="center", va="top", fontsize=10, fontweight="bold")
    for c, column in enumerate(columns):
        x = (left + _PAD + c * (width + _PAD) + width / 2) / fig_w
        colour = "black" if column["source"] == "file" else "#b03000"
        figure.text(x, 1 - 26 / fig_h, f"s = {column['scale']:.3f}", ha="center", va="top", fontsize=9)
        figure.text(x, 1 - 44 / fig_h, column["source"], ha="center", va="top", fontsize=8, color=colour, style="italic")
    for r in range(k):
        y = (grid.shape[0] - _PAD - r * (height + _PAD) - height / 2) / fig_h
        size = 11 if len(row_labels[r]) <= 2 else 9
        figure.text(left / 2 / fig_w, y, row_labels[r], ha="center", va="center", fontsize=size)
    return figure


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
    figure = _canvas(1200, 520)
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
    figure = _canvas(1200, 500)
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


def file_montage(path: str | os.PathLike, split: str = "test", count: int = 64, ncols: int = 8, classes: Sequence[str] = ()) -> Figure:
    """The montage of a file's first ``count`` images of one split, titled with the file's name,
    labels drawn with ``classes`` (their names) where given."""
    images, labels, scales = read_images(path, split, count)
    what = f"first {len(images)} {split} images" + (" with their labels and scales" if scales is not None else " with their labels")
    return montage_figure(images, labels, os.path.basename(path), what, ncols=ncols, scales=scales, classes=classes)


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


def save_figure(figure: Figure, path: str | os.PathLike) -> None:
    """Write a PNG of exactly the figure's pixel size (no tight cropping), under a temporary name first."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=DPI, format="png", metadata={"Software": None})


def comparison_figure(rows: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]], title: str) -> Figure:
    """Published, rebuilt and their difference for a few images per split, and the mean difference.

    Parameters
    ----------
    rows : sequence of (split, published, rebuilt, mean_difference)
        ``published`` and ``rebuilt`` (k, H, W) for the first k images of the
        split, ``mean_difference`` (H, W): published minus rebuilt, averaged
        over the split's compared images.
    title : str

    Returns
    -------
    Figure
        One row per split: for each of k images the published one, the rebuilt
        one and their difference, then the mean difference; each difference
        drawn from -m (black) to +m (white), m its own largest magnitude
        (stated above it).
    """
    k = max((len(published) for _, published, _, _ in rows), default=0)
    columns = 3 * k + 1
    figure = _canvas(max(640, 120 * columns), 60 + 150 * max(1, len(rows)))
    grid = figure.add_gridspec(max(1, len(rows)), columns, left=0.01, right=0.99, top=1 - 40 / figure.bbox.height, bottom=0.02, wspace=0.05, hspace=0.35)
    low, high = _value_range(np.concatenate([np.concatenate([p.ravel(), r.ravel()]) for _, p, r, _ in rows])) if rows else (-1.0, 1.0)
    for row, (split, published, rebuilt, mean_difference) in enumerate(rows):
        panels = []
        for i in range(len(published)):
            difference = published[i] - rebuilt[i]
            m = float(np.abs(difference).max()) or 1.0
            panels += [(f"{split} {i} published", published[i], low, high), (f"{split} {i} rebuilt", rebuilt[i], low, high)]
            panels.append((f"difference ±{m:.1e}", difference, -m, m))
        m = float(np.abs(mean_difference).max()) or 1.0
        panels.append((f"mean diff. ±{m:.1e}", mean_difference, -m, m))
        for column, (label, image, vmin, vmax) in enumerate(panels):
            axes = figure.add_subplot(grid[row, column])
            axes.imshow(to_rgb(image, vmin, vmax), interpolation="nearest")
            axes.set_axis_off()
            axes.set_title(label, fontsize=6)
    figure.suptitle(title, fontsize=9)
    return figure
