"""A published montage read back: its panels found and decoded through the colormap, and the display modelled.

A figure of images drawn with matplotlib's ``imshow`` (docs/evidence.md)
shows each image min-max normalised, resampled to its panel and coloured.
``find_panels`` and ``decode_panels`` turn the colours back into values in
[0, 1]; ``Display`` models the normalisation and the resampling, calibrated
(``calibrate_display``, ``learn_matrices``) on a montage drawn here by the same
calls (``draw_montage``) at the published size (``montage_dpi``).
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Display",
    "colormap_table",
    "read_png",
    "find_panels",
    "decode_panels",
    "draw_montage",
    "montage_dpi",
    "display_matrix",
    "learn_matrices",
    "calibrate_display",
]

#: Largest colour distance (RGB, 0..255) of a pixel counted as a colormap colour.
_COLOUR_DISTANCE = 30.0


def colormap_table(name: str) -> np.ndarray:
    """The colormap's 256 colours as a (256, 3) float array in 0..255 (matplotlib's table)."""
    from matplotlib import colormaps

    if name not in colormaps:
        raise ValueError(f"unknown colormap {name!r} (matplotlib has e.g. viridis, gray, magma)")
    return colormaps[name](np.linspace(0.0, 1.0, 256))[:, :3] * 255.0


def read_png(source) -> np.ndarray:
    """An RGB image (H, W, 3) uint8 from a PNG path or PNG bytes."""
    from PIL import Image

    stream = io.BytesIO(source) if isinstance(source, bytes | bytearray) else source
    with Image.open(stream) as image:
        return np.asarray(image.convert("RGB"))


def _nearest_colour(rgb: np.ndarray, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest table colour and its distance, per pixel of an (..., 3) array."""
    from scipy.spatial import cKDTree

    distance, index = cKDTree(table).query(rgb.reshape(-1, 3).astype(np.float64))
    return index.reshape(rgb.shape[:-1]), distance.reshape(rgb.shape[:-1])


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Half-open runs ``[start, stop)`` of True in a 1-D boolean array."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))


def find_panels(rgb: np.ndarray, rows: int, cols: int, table: np.ndarray, min_fraction: float = 0.3) -> list[tuple[int, int, int, int]]:
    """The panels of a montage: ``(top, bottom, left, right)`` pixel boxes (half-open), row-major.

    A panel row (column) of the figure is a run of pixel rows (columns) of which
    at least ``min_fraction`` are colormap colours; titles, frames and the white
    background are not.  Raises ValueError when the runs do not make the grid.
    """
    _, distance = _nearest_colour(rgb, table)
    inside = distance <= _COLOUR_DISTANCE
    row_runs = [run for run in _runs(inside.mean(axis=1) >= min_fraction * cols / (cols + 1)) if run[1] - run[0] > 4]
    col_runs = [run for run in _runs(inside.mean(axis=0) >= min_fraction * rows / (rows + 1)) if run[1] - run[0] > 4]
    if len(row_runs) != rows or len(col_runs) != cols:
        raise ValueError(f"found {len(row_runs)} x {len(col_runs)} panels of colormap colours, not the {rows} x {cols} grid given")
    return [(top, bottom, left, right) for top, bottom in row_runs for left, right in col_runs]


def decode_panels(rgb: np.ndarray, boxes: list[tuple[int, int, int, int]], table: np.ndarray) -> np.ndarray:
    """The panels' values in [0, 1] (colormap inverted), cropped to the smallest panel: (n, h, w)."""
    height = min(bottom - top for top, bottom, _, _ in boxes)
    width = min(right - left for _, _, left, right in boxes)
    index, _ = _nearest_colour(rgb, table)
    return np.stack([index[top : top + height, left : left + width] for top, _, left, _ in boxes]) / 255.0


def draw_montage(images: np.ndarray, labels, rows: int, cols: int, colormap: str = "viridis", dpi: float = 72.0, panel_inches: float = 2.0) -> bytes:
    """A montage as the published notebook draws it, as PNG bytes.

    ``plt.subplots(rows, cols, figsize=[panel_inches * cols, panel_inches * rows])``,
    one ``imshow`` per image (autoscaled, the given colormap), axes hidden, the
    label as title (fontsize 14), saved with ``bbox_inches="tight"`` as an inline
    notebook backend saves it.  The resampling to the panel acts on the data,
    before the colormap (``interpolation_stage="data"``, as matplotlib before
    3.5 did): every pixel of the published panels is a colormap colour, which a
    resampling of the colours would not give.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(rows, cols, figsize=[panel_inches * cols, panel_inches * rows], squeeze=False)
    try:
        for k, panel in enumerate(axes.flat):
            panel.imshow(images[k], cmap=colormap, interpolation_stage="data")
            panel.get_xaxis().set_visible(False)
            panel.get_yaxis().set_visible(False)
            panel.set_title(str(labels[k]), fontsize=14)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", bbox_inches="tight", dpi=dpi)
    finally:
        plt.close(figure)
    return buffer.getvalue()


def _pitch(boxes: list[tuple[int, int, int, int]], cols: int) -> float:
    """Pixels from one panel's left edge to the next one's, over the first row."""
    return (boxes[cols - 1][2] - boxes[0][2]) / max(cols - 1, 1)


def montage_dpi(boxes: list[tuple[int, int, int, int]], rows: int, cols: int, out_px: int, colormap: str, panel_inches: float = 2.0) -> tuple[float, int]:
    """The dpi at which ``draw_montage`` lays its panels out as ``boxes``; with the largest box offset left, in pixels.

    The dpi is scaled by the ratio of the panels' pitch, then the first of a few
    nearby values (whole and half dpi first) whose boxes lie closest is kept.
    """
    table = colormap_table(colormap)
    probe = np.tile(np.linspace(0.0, 1.0, out_px), (rows * cols, out_px, 1))
    target = np.array(boxes)

    def layout(dpi: float) -> np.ndarray:
        drawn = find_panels(read_png(draw_montage(probe, ["0"] * (rows * cols), rows, cols, colormap, dpi, panel_inches)), rows, cols, table)
        return np.array(drawn)

    dpi = 72.0
    for _ in range(2):
        dpi *= _pitch(boxes, cols) / _pitch([tuple(b) for b in layout(dpi)], cols)
    # Whole and half dpi values first: a figure saved at a round dpi is then drawn at exactly that dpi.
    candidates = sorted({round(dpi), round(2 * dpi) / 2}, key=lambda c: abs(c - dpi)) + [dpi * (1 + d) for d in (-0.004, 0.0, 0.004)]
    offsets = []
    for candidate in candidates:
        drawn = layout(candidate)
        offsets.append(int(np.abs(drawn - target).max()) if drawn.shape == target.shape else 10**6)
    best = int(np.argmin(offsets))
    return candidates[best], offsets[best]


def display_matrix(n_in: int, n_out: int, width: float, offset: float) -> np.ndarray:
    """Resampling of ``n_in`` image pixels to ``n_out`` panel pixels: (n_out, n_in), rows summing to 1.

    Panel pixel p reads the image around ``u = (p + 0.5 - offset) n_in / n_out - 0.5``
    with a triangle kernel of half-width ``width`` image pixels.
    """
    u = (np.arange(n_out) + 0.5 - offset) * n_in / n_out - 0.5
    distance = np.abs(np.arange(n_in)[None, :] - u[:, None])
    weights = np.clip(1.0 - distance / max(width, 0.05), 0.0, None)
    empty = weights.sum(axis=1) == 0
    weights[empty, np.clip(np.round(u[empty]).astype(int), 0, n_in - 1)] = 1.0
    return weights / weights.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class Display:
    """The display model: per-image min-max, then separable resampling to the panel.

    Attributes
    ----------
    width : float
        Half-width of the triangle kernel, in image pixels.
    offset_y, offset_x : float
        Sub-pixel offsets of the panel grid, in panel pixels.
    """

    width: float = 1.0
    offset_y: float = 0.0
    offset_x: float = 0.0
    matrices: tuple[np.ndarray, np.ndarray] | None = dataclasses.field(default=None, compare=False, repr=False)

    def axis_matrices(self, image_shape: tuple[int, int], panel_shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """The (h, H) and (w, W) resampling matrices: the learned ones when their shapes fit, else the kernel's."""
        if self.matrices is not None and self.matrices[0].shape == (panel_shape[0], image_shape[0]) and self.matrices[1].shape == (panel_shape[1], image_shape[1]):
            return self.matrices
        return (
            display_matrix(image_shape[0], panel_shape[0], self.width, self.offset_y),
            display_matrix(image_shape[1], panel_shape[1], self.width, self.offset_x),
        )

    def render(self, values: np.ndarray, panel_shape: tuple[int, int]) -> np.ndarray:
        """Panels (n, h, w) in [0, 1] that images (n, H, W) of any range would show."""
        low = values.min(axis=(1, 2), keepdims=True)
        span = values.max(axis=(1, 2), keepdims=True) - low
        normalised = (values - low) / np.where(span > 0, span, 1.0)
        a_y, a_x = self.axis_matrices(values.shape[1:], panel_shape)
        return a_y @ normalised @ a_x.T


def learn_matrices(panels: np.ndarray, values: np.ndarray, start: Display, iterations: int = 6, ridge: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Separable resampling matrices fitted to drawn panels of known images (alternating least squares).

    Each step solves ``panels_k = A_y N_k A_x^T`` for one matrix with the other held,
    with a ridge towards the kernel model ``start`` (so pixels that the images leave
    undetermined keep the kernel's weights).
    """
    low = values.min(axis=(1, 2), keepdims=True)
    span = values.max(axis=(1, 2), keepdims=True) - low
    normalised = (values - low) / np.where(span > 0, span, 1.0)
    a_y0, a_x0 = start.axis_matrices(values.shape[1:], panels.shape[1:])
    a_y, a_x = a_y0.copy(), a_x0.copy()

    def solve(targets: np.ndarray, inputs: np.ndarray, prior: np.ndarray) -> np.ndarray:
        # targets (n, p, q) = A (p, m) @ inputs (n, m, q): A = (sum T I^T + r A0)(sum I I^T + r)^-1
        weight = ridge * float(np.einsum("nmq,nmq->", inputs, inputs)) / inputs.shape[1]
        gram = np.einsum("nmq,nlq->ml", inputs, inputs) + weight * np.eye(inputs.shape[1])
        cross = np.einsum("npq,nmq->pm", targets, inputs) + weight * prior
        return np.linalg.solve(gram, cross.T).T

    for _ in range(iterations):
        a_y = solve(panels, normalised @ a_x.T, a_y0)
        a_x = solve(panels.transpose(0, 2, 1), normalised.transpose(0, 2, 1) @ a_y.T, a_x0)
    return a_y, a_x


def calibrate_display(panels: np.ndarray, values: np.ndarray) -> tuple[Display, float]:
    """The display model that best turns known images ``values`` into their drawn ``panels``; with its RMS."""
    from scipy.optimize import minimize

    def residual(theta: np.ndarray) -> float:
        display = Display(float(abs(theta[0])), float(theta[1]), float(theta[2]))
        return float(np.sqrt(np.mean((display.render(values, panels.shape[1:]) - panels) ** 2)))

    best = min((minimize(residual, [w, 0.0, 0.0], method="Nelder-Mead", options={"xatol": 1e-3, "fatol": 1e-7, "maxfev": 200}) for w in (0.6, 1.2)), key=lambda r: r.fun)
    return Display(float(abs(best.x[0])), float(best.x[1]), float(best.x[2])), float(best.fun)
