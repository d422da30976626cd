"""The per-image reference recipe of MNIST Large Scale (docs/recipe.md), in scikit-image.

This is the definition: slow, one image at a time, written to be read.  The
production engine (the ``engine`` package) must reproduce it to floating-point rounding.

For an image ``I`` (28 x 28, values 0..255) and a scale ``s``:

0. optionally (``antialias``, off by default), below scale 1, an anti-aliasing
   Gaussian prefilter of the input with ``sigma = (1/s - 1) / 2`` input pixels,
   as scikit-image's ``rescale(..., anti_aliasing=True)`` applies it;
1. resample, centred, bicubic, zero outside the image: output pixel ``i`` reads
   the input at ``u = (i - (H-1)/2 - d) / s + (28-1)/2`` on each axis, where
   ``d`` is the axis's ``centre_shift`` (0 by default);
2. clip to ``[clip_min, clip_max]`` (switchable);
3. Gaussian smoothing with ``sigma = sigma_per_scale * s`` output pixels: by
   default (``smooth_boundary`` ``canvas``) on a canvas wide enough that the
   frame sees the digit as on an infinite zero plane; with ``reflect``,
   ``constant`` or ``nearest``, on the H x W frame itself, the frame's edge
   treated as scipy.ndimage's boundary mode of that name (the resampling then
   forms the frame only);
4. optionally stretch so that the image maximum is ``clip_max``;
5. soft threshold ``(2/pi) * arctan(gain * (x - offset))``;
6. optionally (``round_to_float32``, off by default) round the values to float32.

The switches that are off by default exist so that a recipe fitted to a
published file (``compare.py``) can be built.

``transform_images`` is also the build's second transform
(``recipe.transform: scikit-image``): the images of one scale go through
``warp`` together as the channels of one image, and through scipy's filter as
one stack, in parallel over threads, with exactly the values of
``transform_image`` one image at a time.  Its last bits depend on the
machine's libraries; the default transform, the exact engine's, does not.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .recipe_constants import RECORDED_WHEN_SET, SMOOTH_BOUNDARIES, TRANSFORMS, Recipe, recorded

# scikit-image and scipy.ndimage are imported where the reference uses them: the production
# engine needs only Recipe, and a build job starts 0.3 s sooner without them.  So is
# engine.skimage_weights, which holds the libraries' rules (the kernel radius, the
# anti-aliasing sigma) once for both: the engine package imports this module.

__all__ = [
    "TRANSFORMS",
    "Recipe",
    "SMOOTH_BOUNDARIES",
    "RECORDED_WHEN_SET",
    "recorded",
    "canvas_margin",
    "prefilter",
    "antialiased",
    "resample",
    "smooth",
    "smoothing_canvas",
    "soft_threshold",
    "transform_batch",
    "transform_image",
    "transform_images",
    "warp_matrix",
]


#: Images of one scale that go through warp and the filter together.
_BATCH = 32


def canvas_margin(sigma: float, truncate: float) -> int:
    """Pixels of margin around the frame so that smoothing sees an infinite plane.

    scipy's Gaussian kernel has radius ``int(truncate * sigma + 0.5)``
    (``engine.skimage_weights.gaussian_radius``); one more pixel keeps the
    frame clear of the canvas edge.
    """
    from .engine.skimage_weights import gaussian_radius

    return int(gaussian_radius(sigma, truncate)) + 1


def image_axes(sigma: float, ndim: int) -> tuple[float, ...]:
    """gaussian_filter's sigmas for ``sigma`` on the last two axes of an image (2-D) or a stack of images (3-D).

    scipy leaves an axis of sigma 0 alone, so a stack's images are filtered
    each as it would be alone.
    """
    return (0.0,) * (ndim - 2) + (sigma, sigma)


def prefilter(image: np.ndarray, sigma: float, truncate: float) -> np.ndarray:
    """Gaussian prefilter of the input image (zero outside it), as scikit-image's anti-aliasing does it; (h, w) or a stack (k, h, w)."""
    from scipy import ndimage

    image = np.asarray(image, dtype=np.float64)
    if sigma == 0:
        return image
    return ndimage.gaussian_filter(image, image_axes(sigma, image.ndim), mode="constant", cval=0.0, truncate=truncate)


def antialiased(image: np.ndarray, scale: float, recipe: Recipe) -> np.ndarray:
    """``prefilter`` at scikit-image's anti-aliasing sigma for ``scale`` when ``recipe.antialias`` is on; else ``image``."""
    if not recipe.antialias:
        return image
    # imported here: the engine package, which holds scikit-image's rule, imports this module
    from .engine.skimage_weights import antialias_sigma

    return prefilter(image, float(antialias_sigma(scale)), recipe.truncate)


def resample(
    image: np.ndarray,
    scale: float,
    out_shape: tuple[int, int],
    margin: int = 0,
    order: int = 3,
    centre_shift: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """Resample an image about its centre onto a canvas of the output frame plus margin.

    Parameters
    ----------
    image : (h, w) or (k, h, w) ndarray
        Input image, any real dtype; read as float64 in its own value range.
        A stack goes through one warp as the channels of one image (warp
        interpolates each channel as an image of its own).
    scale : float
        Magnification s > 0.
    out_shape : (H, W)
        Output frame in pixels.
    margin : int
        Extra pixels on each side of the frame.
    order : int
        Interpolation order of scikit-image's warp.
    centre_shift : (dy, dx)
        Output pixels by which the image's centre moves (down, right).

    Returns
    -------
    (H + 2 margin, W + 2 margin) or (k, H + 2 margin, W + 2 margin) ndarray of float64
        Canvas pixel ``(i, j)`` reads the input at
        ``((i - margin - (H-1)/2 - dy)/s + (h-1)/2, (j - margin - (W-1)/2 - dx)/s + (w-1)/2)``;
        zero outside the input.
    """
    from skimage.transform import AffineTransform, warp

    height, width = out_shape
    image = np.asarray(image, dtype=np.float64)
    stack = image.ndim == 3
    canvas = warp(
        np.ascontiguousarray(image.transpose(1, 2, 0)) if stack else image,
        AffineTransform(matrix=warp_matrix(image.shape[-2:], scale, out_shape, margin, centre_shift)),
        output_shape=(height + 2 * margin, width + 2 * margin),
        order=order,
        mode="constant",
        cval=0.0,
        preserve_range=True,
        clip=False,
    )
    if stack:
        return np.ascontiguousarray(canvas.reshape(height + 2 * margin, width + 2 * margin, len(image)).transpose(2, 0, 1))
    return canvas


def warp_matrix(in_shape: tuple[int, int], scale: float, out_shape: tuple[int, int], margin: int, centre_shift: tuple[float, float]) -> np.ndarray:
    """The 3 x 3 matrix of ``resample``'s warp: output (col, row) to input (col, row)."""
    h, w = in_shape
    height, width = out_shape
    dy, dx = centre_shift
    return np.array(
        [
            [1 / scale, 0.0, (w - 1) / 2 - (margin + (width - 1) / 2 + dx) / scale],
            [0.0, 1 / scale, (h - 1) / 2 - (margin + (height - 1) / 2 + dy) / scale],
            [0.0, 0.0, 1.0],
        ]
    )


def smooth(canvas: np.ndarray, sigma: float, truncate: float, mode: str = "constant") -> np.ndarray:
    """Gaussian smoothing, sampled and truncated at ``truncate`` sigmas, of (H, W) or a stack (k, H, W); scipy.ndimage's boundary ``mode`` (zero outside for ``constant``)."""
    from scipy import ndimage

    if sigma == 0:
        return canvas
    return ndimage.gaussian_filter(canvas, image_axes(sigma, canvas.ndim), mode=mode, cval=0.0, truncate=truncate)


def smoothing_canvas(recipe: Recipe, sigma: float) -> tuple[int, str]:
    """The canvas margin and scipy.ndimage boundary mode of the smoothing under ``recipe.smooth_boundary``.

    ``canvas``: a margin of ``canvas_margin`` pixels around the frame, zero
    outside it (mode ``constant``), as if the frame did not end.  A boundary
    mode: the canvas is the frame itself (no margin), smoothed with that mode.
    """
    if recipe.on_canvas:
        return canvas_margin(sigma, recipe.truncate), "constant"
    return 0, recipe.smooth_boundary


def soft_threshold(x: np.ndarray, gain: float, offset: float) -> np.ndarray:
    """``(2/pi) * arctan(gain * (x - offset))``: grey levels into (-1, 1)."""
    return (2 / math.pi) * np.arctan(gain * (x - offset))


def transform_image(image: np.ndarray, scale: float, out_shape: tuple[int, int], recipe: Recipe = Recipe()) -> np.ndarray:
    """One MNIST image at one scale, by the reference recipe.

    Parameters
    ----------
    image : (28, 28) ndarray
        MNIST grey levels 0..255 (uint8 or float).
    scale : float
        Magnification s > 0.
    out_shape : (H, W)
        Output frame in pixels.
    recipe : Recipe

    Returns
    -------
    (H, W) ndarray of float64
        Values in (-1, 1); the background is ``soft_threshold(0)``.
    """
    height, width = out_shape
    sigma = recipe.sigma(scale)
    margin, mode = smoothing_canvas(recipe, sigma)
    image = antialiased(image, scale, recipe)
    canvas = resample(image, scale, out_shape, margin, recipe.order, recipe.centre_shift)
    if recipe.clip:
        canvas = np.clip(canvas, recipe.clip_min, recipe.clip_max)
    frame = smooth(canvas, sigma, recipe.truncate, mode)[margin : margin + height, margin : margin + width]
    if recipe.stretch:
        peak = frame.max()
        frame = frame * (recipe.clip_max / peak) if peak > 0 else frame
    values = soft_threshold(frame, recipe.gain, recipe.offset)
    if recipe.round_to_float32:
        values = values.astype(np.float32).astype(np.float64)
    return values


def transform_images(
    images: np.ndarray,
    scales: np.ndarray,
    out_shape: tuple[int, int],
    recipe: Recipe = Recipe(),
    out: np.ndarray | None = None,
    threads: int = 1,
) -> np.ndarray:
    """The reference recipe over a batch: ``(n, h, w)`` images and ``(n,)`` scales to ``(n, H, W)``.

    Each image's values are exactly those of ``transform_image`` alone: images
    of one scale go through in batches of up to 32 (``transform_batch``), the
    batches shared among ``threads`` worker threads.

    Parameters
    ----------
    images : (n, h, w) ndarray
    scales : float or (n,) array_like
    out_shape : (H, W)
    recipe : Recipe
    out : (n, H, W) ndarray of float64, optional
        Filled and returned.
    threads : int
        Worker threads.
    """
    images = np.asarray(images)
    if int(threads) < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    out = np.empty((len(images), *out_shape)) if out is None else out
    scales = np.broadcast_to(np.asarray(scales, dtype=np.float64), (len(images),))
    distinct, which = np.unique(scales, return_inverse=True)
    batches = []
    for k, scale in enumerate(distinct):
        index = np.flatnonzero(which == k)
        batches += [(float(scale), index[a : a + _BATCH]) for a in range(0, len(index), _BATCH)]

    def run(batch: tuple[float, np.ndarray]) -> None:
        scale, index = batch
        out[index] = transform_batch(images[index], scale, out_shape, recipe)

    if int(threads) == 1 or len(batches) == 1:
        for batch in batches:
            run(batch)
    else:
        with ThreadPoolExecutor(max_workers=int(threads)) as pool:
            for future in [pool.submit(run, batch) for batch in batches]:
                future.result()
    return out


def transform_batch(images: np.ndarray, scale: float, out_shape: tuple[int, int], recipe: Recipe = Recipe()) -> np.ndarray:
    """``transform_image`` of images ``(k, h, w)`` at one scale, with the same values: each step once for the stack.

    The steps are ``transform_image``'s own functions, given the stack
    (``prefilter``, ``resample`` and ``smooth`` take one); only the stretch
    is taken per image.
    """
    height, width = out_shape
    sigma = recipe.sigma(scale)
    margin, mode = smoothing_canvas(recipe, sigma)
    stack = np.asarray(images, dtype=np.float64)
    stack = antialiased(stack, scale, recipe)
    canvas = resample(stack, scale, out_shape, margin, recipe.order, recipe.centre_shift)
    if recipe.clip:
        canvas = np.clip(canvas, recipe.clip_min, recipe.clip_max)
    frame = smooth(canvas, sigma, recipe.truncate, mode)[:, margin : margin + height, margin : margin + width]
    if recipe.stretch:
        peak = frame.max(axis=(1, 2), keepdims=True)
        frame = np.where(peak > 0, frame * (recipe.clip_max / np.where(peak > 0, peak, 1.0)), frame)
    values = soft_threshold(frame, recipe.gain, recipe.offset)
    if recipe.round_to_float32:
        values = values.astype(np.float32).astype(np.float64)
    return values
