"""The drawing blocks every figure shares: pixel layouts, grey levels as RGB, tile grids, labels, saving.

Figures are laid out in pixels and built without pyplot (no global state);
``save_figure`` writes a PNG of exactly the size the layout computes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..writer import atomic_path

#: Figures are laid out in pixels; inches are pixels / DPI.
DPI = 100

#: Pixels between tiles.
PAD = 2
_GAP_RGB = (0.16, 0.24, 0.40)  # tile separators: dark blue, unlike any grey of the data
_NAN_RGB = (1.0, 0.0, 0.0)
#: The box behind a label drawn on an image, so that it stays legible on white strokes.
LABEL_BOX = {"facecolor": "black", "alpha": 0.6, "edgecolor": "none", "boxstyle": "square,pad=0.15"}


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


def tile_grid(tiles: np.ndarray, ncols: int, pad: int = PAD) -> np.ndarray:
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


def finite_range(images: np.ndarray) -> tuple[float, float]:
    """The smallest and largest finite value, drawn black and white; (-1, 1) when none is finite."""
    finite = np.asarray(images)[np.isfinite(images)]
    return (float(finite.min()), float(finite.max())) if finite.size else (-1.0, 1.0)


def pixel_figure(width_px: int, height_px: int) -> Figure:
    """An empty figure of ``width_px`` x ``height_px`` pixels, on its own Agg canvas (no pyplot)."""
    figure = Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def image_axes(figure: Figure, left: int, bottom: int, width: int, height: int):
    """Axes covering a pixel rectangle of the figure (origin bottom left), no frame."""
    fig_w, fig_h = figure.get_size_inches() * DPI
    axes = figure.add_axes((left / fig_w, bottom / fig_h, width / fig_w, height / fig_h))
    axes.set_axis_off()
    return axes


def save_figure(figure: Figure, path: str | os.PathLike) -> None:
    """Write a PNG of exactly the figure's pixel size (no tight cropping), under a temporary name first."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=DPI, format="png", metadata={"Software": None})
