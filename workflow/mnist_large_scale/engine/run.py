"""The public entry point ``transform_images``: the call's shared state, its groups and threads.

Images go through in groups small enough for the intermediates to stay in
the core's cache.  At one scale a group shares its matrices; at larger scales
the images are grouped by ink extent, so that narrow digits make narrow
canvases.  With per-sample scales (the scale-range file) the images are sorted
by scale, and groups of like ink size among a few scale-sorted neighbours get
a stack of per-image matrices, built vectorised (both axes of a square frame
share the kernels, tap positions and weights).  ``threads`` workers take
groups in turn; BLAS is held to one thread.
"""

from __future__ import annotations

import functools
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from threadpoolctl import ThreadpoolController

from .. import threshold
from ..recipe import Recipe
from .geometry import AxisGeometry
from .grids import HI_BITS, KEYS_ABS_SUM, RAW_MAX, UNIT_BITS, canvas_bound
from .plan import AxisPlan, plan_axis, shared_plan
from .skimage_weights import SUPPORTED_ORDERS, gaussian_radius
from .stages import (
    background_value,
    frame_windows,
    ink_extents,
    ink_order,
    input_support,
    smoothed_region,
    store,
    stretch_in_place,
    threshold_table,
)
from .workspace import Workspace

#: Largest difference to the float reference recipe after the soft threshold, on
#: MNIST's 0..255 grey levels (measured: see tests/test_engine.py).
ENGINE_TOLERANCE = 1e-8


# Images computed together: about this many bytes of canvas, so that the
# canvas and the smoothed rows stay in cache (1 MB L2 per core, 32 MB L3 on the
# development machine), and enough images to amortise the per-call costs; with
# per-image matrices (per-sample scales) fewer, as each brings its own.
_GROUP_BYTES = 3 << 19
_GROUP_MAX = 16
_GROUP_MAX_PER_SAMPLE = 8

# Per-sample scales: images sorted by scale are taken _SCALE_WINDOW at a time
# (their kernels, tap positions and weights computed once), ordered by ink size
# within, and share one set of aligned matrix stacks per _PLAN_GROUP: few
# enough for a tight canvas (the plan spans their largest digit), of close
# enough scales for narrow kernels, and enough to build the matrices cheaply
# per image (measured on the [1, 4] file's draw).
_SCALE_WINDOW = 128
_PLAN_GROUP = 64

# One scale: images are grouped by ink extent when the canvas is at least this
# big (pixels); below it the saved canvas work does not pay for the scattered
# (non-consecutive) output writes.
_SORT_MIN_CANVAS = 64 * 64


@functools.lru_cache(maxsize=1)
def _blas_controller() -> ThreadpoolController:
    """threadpoolctl's view of the loaded BLAS libraries; finding them costs about a
    millisecond, so it is done once per process (numpy's BLAS is loaded with numpy)."""
    return ThreadpoolController()


def blas_threads_limited(n_threads: int = 1):
    """Context manager: the process's BLAS libraries use at most ``n_threads`` threads inside.

    The engine runs its own worker threads, so BLAS must not add more:
    ``threads=1`` means one core.  The limit is process-wide.
    """
    return _blas_controller().limit(limits=n_threads, user_api="blas")


def _canvas_extent(scale: float, length: int, n_in: int, recipe: Recipe) -> int:
    """Rough count of kept canvas pixels on one axis at one scale (sizes the groups)."""
    radius = int(gaussian_radius(recipe.sigma(scale), recipe.truncate)) if recipe.on_canvas else 0  # a boundary mode: the frame
    return max(1, min(int(n_in * scale) + 4, length + 2 * radius))


def _images_per_pass(ky: int, kx: int, most: int) -> int:
    """Images computed together so that their canvas is about ``_GROUP_BYTES``, at most ``most``."""
    return int(min(most, max(2, _GROUP_BYTES // (8 * max(1, ky) * max(1, kx)))))


@dataclass(frozen=True)
class _CallState:
    """The state one ``transform_images`` call shares with its worker threads: inputs, output, constants.

    Workers only read it and write their own groups' frames of ``out``.
    ``clip_moves_zero``: the clip maps 0 to a nonzero value, so every canvas
    pixel within reach of the frame is kept.  ``filled``: ``out`` holds the
    background everywhere already (an array the engine allocated itself), so
    frames need only their regions written.
    """

    images: np.ndarray
    scales: np.ndarray
    out: np.ndarray
    recipe: Recipe
    clip_moves_zero: bool
    background: float
    table: threshold.SoftThreshold
    filled: bool = False

    def plans(self, scale: float, images: np.ndarray) -> tuple[AxisPlan, AxisPlan]:
        """Shared row and column plans for ``images`` at one ``scale`` (cached across calls, by ink extent)."""
        (h, w), (height, width) = self.images.shape[1:], self.out.shape[1:]
        support_y, support_x = ((0, h), (0, w)) if self.clip_moves_zero else input_support(images)
        return (
            shared_plan(scale, height, h, self.recipe, support_y, self.clip_moves_zero, False),
            shared_plan(scale, width, w, self.recipe, support_x, self.clip_moves_zero, True),
        )

    def aligned_plans(
        self, scales: np.ndarray, extents: np.ndarray, geometries: tuple[AxisGeometry, AxisGeometry], work: Workspace
    ) -> tuple[AxisPlan, AxisPlan]:
        """Aligned row and column plans (one matrix per image) for images of ``ink_extents`` ``extents``."""
        (h, w), (height, width) = self.images.shape[1:], self.out.shape[1:]
        if self.clip_moves_zero:
            extents = np.broadcast_to(np.array([0, h, 0, w]), extents.shape)
        y, x = (extents[:, 0], extents[:, 1]), (extents[:, 2], extents[:, 3])
        geometry_y, geometry_x = geometries
        return (
            plan_axis(scales, height, h, self.recipe, y, self.clip_moves_zero, False, work, geometry_y, aligned=True),
            plan_axis(scales, width, w, self.recipe, x, self.clip_moves_zero, True, work, geometry_x, aligned=True),
        )

    def geometries(self, scales: np.ndarray) -> tuple[AxisGeometry, AxisGeometry]:
        """The y and x axes' ``AxisGeometry`` of ``scales``; one serves both axes of a square frame."""
        (h, w), (height, width) = self.images.shape[1:], self.out.shape[1:]
        shift_y, shift_x = self.recipe.centre_shift
        geometry_y = AxisGeometry.of(scales, height, h, self.recipe, shift_y)
        same = (height, h, shift_y) == (width, w, shift_x)
        return geometry_y, geometry_y if same else AxisGeometry.of(scales, width, w, self.recipe, shift_x)

    def finish(self, index, region: np.ndarray, plan_y: AxisPlan, plan_x: AxisPlan, work: Workspace, stack: slice = slice(None)) -> None:
        """Stretch, threshold and store ``region`` (threshold grid units, transposed) for the frames ``index``."""
        windows = frame_windows(plan_y, plan_x, stack, len(region), self.out.shape[1:])
        table = self.table
        if self.recipe.stretch:
            stretch_in_place(region, windows, self.out.shape[1:], math.ldexp(self.recipe.clip_max, threshold.BITS))
            if not self.recipe.clip:  # a stretched negative value has no bound: widen the table to the data
                low, high = math.ldexp(float(region.min()), -threshold.BITS), math.ldexp(float(region.max()), -threshold.BITS)
                table = threshold.soft_threshold_table(self.recipe.gain, self.recipe.offset, min(low, 0.0), max(high, 0.0))
        values = table(region, work.get("values", region.shape), work)
        store(self.out, index, values, windows, None if self.filled else self.background)

    def gather(self, index, work: Workspace) -> np.ndarray:
        """The images ``index`` as float64 (m, h, w), in the worker's scratch memory."""
        selected = self.images[index]
        images = work.get("images", selected.shape)
        images[...] = selected
        return images

    def gather_aligned(self, index: np.ndarray, plan_y: AxisPlan, plan_x: AxisPlan, work: Workspace) -> np.ndarray:
        """Each image ``index[j]`` from its plans' ``input_start``, as float64 (m, rows, columns), zeros past the input."""
        images = work.get("images", (len(index), plan_y.input_width, plan_x.input_width))
        images.fill(0.0)
        starts = zip(index.tolist(), plan_y.input_start.tolist(), plan_x.input_start.tolist(), strict=True)
        for j, (i, y, x) in enumerate(starts):
            window = self.images[i, y : y + plan_y.input_width, x : x + plan_x.input_width]
            images[j, : window.shape[0], : window.shape[1]] = window
        return images

    def run_shared(self, index, work: Workspace) -> None:
        """Images at the one scale of the batch (a slice, or indices of similar ink extent)."""
        images = self.gather(index, work)
        plan_y, plan_x = self.plans(float(self.scales[index][0]), images)
        if plan_y.empty or plan_x.empty:
            self.out[index] = self.background
            return
        self.finish(index, smoothed_region(images, plan_y, plan_x, self.recipe, work), plan_y, plan_x, work)

    def run_sorted(self, window: np.ndarray, work: Workspace) -> None:
        """Images with their own scales, of nearby values (a window of the scale-sorted batch).

        Their geometry is computed once.  Groups of ``_PLAN_GROUP`` images of
        like ink size share aligned plans (each image's matrices start where its
        own ink does, so the group's canvas spans its largest digit, not the
        union of their positions) and go through them a few at a time.  Blank
        images are the background.
        """
        extents = ink_extents(self.images[window])
        if not self.clip_moves_zero:
            blank = extents[:, 1] == 0
            self.out[window[blank]] = self.background
            window, extents = window[~blank], extents[~blank]
        # By ink width, then height: like sizes together, whatever their positions.
        order = np.lexsort((extents[:, 1] - extents[:, 0], extents[:, 3] - extents[:, 2]))
        window, extents = window[order], extents[order]
        geometry_y, geometry_x = self.geometries(self.scales[window])
        for g in range(0, len(window), _PLAN_GROUP):
            members = slice(g, min(len(window), g + _PLAN_GROUP))
            index = window[members]
            subset_y = geometry_y.subset(members)
            subset_x = subset_y if geometry_x is geometry_y else geometry_x.subset(members)
            plan_y, plan_x = self.aligned_plans(self.scales[index], extents[members], (subset_y, subset_x), work)
            if plan_y.empty or plan_x.empty:
                self.out[index] = self.background
                continue
            images = self.gather_aligned(index, plan_y, plan_x, work)
            step = _images_per_pass(plan_y.size, plan_x.size, _GROUP_MAX_PER_SAMPLE)
            for a in range(0, len(index), step):
                part = slice(a, min(len(index), a + step))
                region = smoothed_region(images[part], plan_y, plan_x, self.recipe, work, part)
                self.finish(index[part], region, plan_y, plan_x, work, part)


def _tasks(images: np.ndarray, scales: np.ndarray, out_shape, recipe: Recipe) -> list[tuple[bool, slice | np.ndarray]]:
    """Split the batch into groups: ``(shared, index)``, a slice or ascending indices.

    One scale: consecutive images, or at larger scales groups of like ink
    extent, sized for the cache.  Per-sample scales: windows of
    ``_SCALE_WINDOW`` scale-sorted neighbours (``_CallState.run_sorted`` splits
    each into plan groups).
    """
    n = len(scales)
    if n == 0:
        return []
    if np.all(scales == scales[0]):
        scale = float(scales[0])
        ky = _canvas_extent(scale, out_shape[0], images.shape[1], recipe)
        kx = _canvas_extent(scale, out_shape[1], images.shape[2], recipe)
        step = _images_per_pass(ky, kx, _GROUP_MAX)
        if ky * kx < _SORT_MIN_CANVAS:
            return [(True, slice(a, min(n, a + step))) for a in range(0, n, step)]
        shared, order = True, ink_order(images)
    else:
        step, shared, order = _SCALE_WINDOW, False, np.argsort(scales, kind="stable")
    return [(shared, np.sort(order[a : a + step])) for a in range(0, n, step)]


def transform_images(
    images: np.ndarray,
    scales,
    out_shape: tuple[int, int],
    recipe: Recipe = Recipe(),
    threads: int = 1,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """The recipe over a batch, as ``recipe.transform_images`` computes it, batched.

    Parameters
    ----------
    images : (n, h, w) ndarray
        Integer grey levels in [0, 255] (MNIST: uint8, 28 x 28), any real dtype; read as float64.
    scales : float or (n,) array_like
        Magnification per image (s > 0); one value for all, or one per image.
    out_shape : (H, W)
        Output frame in pixels.
    recipe : Recipe
        ``order`` must be one of ``SUPPORTED_ORDERS``.
    threads : int
        Worker threads (cores) to use; BLAS is held to one thread per worker.
    out : (n, H, W) ndarray of float64, optional
        Where to write the result.

    Returns
    -------
    (n, H, W) ndarray of float64
        Values in (-1, 1), within ``ENGINE_TOLERANCE`` of the reference and
        the same on every machine.
        Memory beyond ``out`` does not grow with n beyond one byte per input
        pixel: scratch and matrices take up to about 15 MB per thread at
        112 x 112 (measured with per-sample scales in [0.5, 8]).
    """
    images, scales, (height, width), threads = checked_arguments(images, scales, out_shape, recipe, threads, out)
    # np.clip's image of zero: when it is not zero the whole canvas matters.
    zero_after_clip = min(max(0.0, recipe.clip_min), recipe.clip_max) if recipe.clip else 0.0
    table = threshold_table(recipe)
    background = background_value(recipe, table)
    # An array of its own starts as the background: one sequential pass, which also
    # takes the fresh memory's page faults faster than the scattered frame writes would.
    filled = out is None
    if filled:
        out = np.full((len(images), height, width), background)
    state = _CallState(images, scales, out, recipe, zero_after_clip != 0.0, background, table, filled)
    _run_tasks(state, _tasks(images, scales, (height, width), recipe), threads)
    if recipe.round_to_float32:
        out[...] = out.astype(np.float32)
    return out


def checked_arguments(
    images, scales, out_shape: tuple[int, int], recipe: Recipe, threads: int, out: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, tuple[int, int], int]:
    """``transform_images``'s arguments, checked: the images and scales as arrays, the frame, the thread count.

    Raises
    ------
    ValueError
        Images not (n, h, w) or not integer grey levels in [0, ``RAW_MAX``]; scales
        not finite and positive; a negative sigma or truncate; threads below 1;
        ``out`` not float64 of the result's shape; a clip range too wide for
        the exact grids.
    NotImplementedError
        An interpolation order the engine does not reproduce.
    """
    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"images must be (n, h, w), got shape {images.shape}")
    if recipe.order not in SUPPORTED_ORDERS:
        raise NotImplementedError(
            f"interpolation order {recipe.order} is not reproduced by the engine; use one of {SUPPORTED_ORDERS}"
        )
    if recipe.sigma_per_scale < 0 or recipe.truncate < 0:
        raise ValueError("sigma_per_scale and truncate must be >= 0")
    if int(threads) < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    n = images.shape[0]
    height, width = (int(v) for v in out_shape)
    scales = np.broadcast_to(np.asarray(scales, dtype=np.float64), (n,))
    if not np.all(np.isfinite(scales) & (scales > 0)):
        raise ValueError("scales must be finite and > 0")
    if out is not None and (out.shape != (n, height, width) or out.dtype != np.float64):
        raise ValueError(f"out must be float64 of shape {(n, height, width)}, got {out.dtype} {out.shape}")
    if images.size and images.dtype != np.uint8:
        low, high = images.min(), images.max()
        if low < 0 or high > RAW_MAX or not np.array_equal(images, np.rint(images)):
            raise ValueError(f"images must hold integer grey levels in [0, {RAW_MAX}] (the engine computes on exact grids)")
    if canvas_bound(recipe) * 2.0 ** (UNIT_BITS + HI_BITS) * KEYS_ABS_SUM >= 2.0**53:
        raise ValueError(
            f"recipe: the clip range [{recipe.clip_min:g}, {recipe.clip_max:g}] is too wide for the engine's exact grids "
            f"(magnitudes up to {2.0 ** (53 - UNIT_BITS - HI_BITS) / KEYS_ABS_SUM:g})"
        )
    return images, scales, (height, width), int(threads)


def _run_tasks(state: _CallState, tasks: list[tuple[bool, slice | np.ndarray]], threads: int) -> None:
    """Every group of ``tasks`` through ``state``, on up to ``threads`` worker threads, BLAS held to one thread."""

    def worker(share: list) -> None:
        work = Workspace()
        for shared, index in share:
            if shared:
                state.run_shared(index, work)
            else:
                state.run_sorted(index, work)

    threads = min(threads, max(1, len(tasks)))
    with blas_threads_limited(1):
        if threads == 1:
            worker(tasks)
        else:
            # Interleaved shares balance the per-sample groups, whose cost grows with the scale.
            with ThreadPoolExecutor(max_workers=threads) as pool:
                for future in [pool.submit(worker, tasks[t::threads]) for t in range(threads)]:
                    future.result()
