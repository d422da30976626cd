"""Figures of images: the first images of a split, the scale ladder, a published file against its rebuild."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from ..inspect_file import read_images
from ..names import PUBLISHED_TEST_SCALES, scale_tag
from ..recipe import Recipe, transform_images
from .drawing import LABEL_BOX, PAD, class_label, finite_range, image_axes, pixel_figure, tile_grid, to_rgb

LADDER_SCALES = PUBLISHED_TEST_SCALES

_MONTAGE_HEADER = 44  # pixels above a montage: two lines of title
_MONTAGE_MIN_WIDTH = 640  # wide enough for the longest file name as a title
_LADDER_HEADER = 64  # title line, then a scale and a source per column
_LADDER_LEFT = 28  # the class of each row


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
    vmin, vmax = value_range or finite_range(images)
    grid = tile_grid(to_rgb(images, vmin, vmax), ncols)
    fig_w = max(grid.shape[1], _MONTAGE_MIN_WIDTH)
    figure = pixel_figure(fig_w, grid.shape[0] + _MONTAGE_HEADER)
    axes = image_axes(figure, (fig_w - grid.shape[1]) // 2, 0, grid.shape[1], grid.shape[0])
    axes.imshow(grid, interpolation="nearest", extent=(0, grid.shape[1], grid.shape[0], 0))
    for k in range(n):
        top, left = PAD + (k // ncols) * (height + PAD), PAD + (k % ncols) * (width + PAD)
        text = class_label(labels[k], classes) + (f"  s={scales[k]:.2f}" if scales is not None else "")
        axes.text(left + 2, top + 2, text, color="#ffd75e", fontsize=8, va="top", ha="left", bbox=LABEL_BOX)
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
    vmin, vmax = finite_range(stack)
    tiles = to_rgb(stack.transpose(1, 0, 2, 3).reshape(-1, height, width), vmin, vmax)
    grid = tile_grid(tiles, n_cols)
    row_labels = [class_label(label, classes) for label in labels]
    left = max(_LADDER_LEFT, 7 * max(map(len, row_labels), default=0) + 10)
    fig_w, fig_h = left + grid.shape[1], _LADDER_HEADER + grid.shape[0]
    figure = pixel_figure(fig_w, fig_h)
    axes = image_axes(figure, left, 0, grid.shape[1], grid.shape[0])
    axes.imshow(grid, interpolation="nearest", extent=(0, grid.shape[1], grid.shape[0], 0))
    figure.text(0.5, 1 - 4 / fig_h, title, ha="center", va="top", fontsize=10, fontweight="bold")
    for c, column in enumerate(columns):
        x = (left + PAD + c * (width + PAD) + width / 2) / fig_w
        colour = "black" if column["source"] == "file" else "#b03000"
        figure.text(x, 1 - 26 / fig_h, f"s = {column['scale']:.3f}", ha="center", va="top", fontsize=9)
        figure.text(x, 1 - 44 / fig_h, column["source"], ha="center", va="top", fontsize=8, color=colour, style="italic")
    for r in range(k):
        y = (grid.shape[0] - PAD - r * (height + PAD) - height / 2) / fig_h
        size = 11 if len(row_labels[r]) <= 2 else 9
        figure.text(left / 2 / fig_w, y, row_labels[r], ha="center", va="center", fontsize=size)
    return figure


def file_montage(path: str | os.PathLike, split: str = "test", count: int = 64, ncols: int = 8, classes: Sequence[str] = ()) -> Figure:
    """The montage of a file's first ``count`` images of one split, titled with the file's name,
    labels drawn with ``classes`` (their names) where given."""
    images, labels, scales = read_images(path, split, count)
    what = f"first {len(images)} {split} images" + (" with their labels and scales" if scales is not None else " with their labels")
    return montage_figure(images, labels, os.path.basename(path), what, ncols=ncols, scales=scales, classes=classes)


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
    figure = pixel_figure(max(640, 120 * columns), 60 + 150 * max(1, len(rows)))
    grid = figure.add_gridspec(max(1, len(rows)), columns, left=0.01, right=0.99, top=1 - 40 / figure.bbox.height, bottom=0.02, wspace=0.05, hspace=0.35)
    low, high = finite_range(np.concatenate([np.concatenate([p.ravel(), r.ravel()]) for _, p, r, _ in rows])) if rows else (-1.0, 1.0)
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
