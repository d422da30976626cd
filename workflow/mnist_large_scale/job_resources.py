"""What a build or validation job asks a scheduler for: memory and wall time, from the file's name.

Standard library alone: the workflow computes these while Snakemake reads it
(the rules' ``resources:``), before any rule's packages are needed.
``build`` gives them under its own name too.
"""

from __future__ import annotations

import math

__all__ = [
    "LARGEST_SCALE",
    "scale_problem",
    "memory_problem",
    "job_memory_mb",
    "job_runtime_min",
    "JOB_PIXEL_RATE",
    "JOB_RUNTIME_MARGIN",
    "JOB_RUNTIME_BASE_MIN",
]

#: The largest scale built.  The engine's results are within ENGINE_TOLERANCE (1e-8) of the
#: reference recipe, and within validation's 1e-9, at the published scales (0.5-8); measured
#: on three test digits at 112 x 112: 5.3e-10 at s = 8, 5.9e-10 at 12, 9.9e-10 at 13.45,
#: 1.5e-9 at 16, and files at s = 16-300 failed validation (1.9e-9 to 6.7e-8).  Larger
#: scales are refused rather than built and then failed.
LARGEST_SCALE = 12.0


def scale_problem(name: str, largest: float) -> str | None:
    """Why a file whose largest scale is ``largest`` is not built; None when it is."""
    if largest <= LARGEST_SCALE:
        return None
    return (
        f"file name {name!r}: scale {largest:g} is above {LARGEST_SCALE:g}, the largest at which the engine is known to "
        f"give the reference recipe's values within validation's 1e-9 (1.5e-9 measured at 16, 6.7e-8 at 300)"
    )


def memory_problem(name: str, declared_mb: int, limit_mb: int | None) -> str | None:
    """Why a job of ``declared_mb`` cannot run under a run's ``mem_mb`` limit; None when it can (or there is none)."""
    if limit_mb is None or declared_mb <= limit_mb:
        return None
    return (
        f"results/{name} needs about {declared_mb:,} MB (a build job's peak at its size, scale and output.chunk_images, "
        f"benchmarks/job_memory.json), more than the {limit_mb:,} MB this run may use (--resources mem_mb, 8000 in "
        "profiles/default/config.yaml): give it more if the machine has it (--resources mem_mb=...), or lower "
        "output.chunk_images, the output size or the counts"
    )


#: The fixed part of a job's peak memory, in MB: the interpreter, its libraries and the raw
#: MNIST arrays (109-111 MB measured at s <= 1, whatever the size) ...
JOB_FIXED_MB = 110.0
#: ... and the engine's matrices, which grow with the scale and the output side: MB per unit of
#: scale and output pixel of the longer side (measured: +8, +18 and +33 MB at s = 12 for 112,
#: 224 and 448 pixels).
JOB_FIXED_MB_PER_SCALE_PIXEL = 0.0065
#: Per image of a block: its two float64 buffers, which take turns between computing and writing
#: (2.00-2.06 times the image's bytes measured at s <= 4) ...
JOB_BUFFERS_PER_IMAGE = 2
#: ... and the engine's working arrays, MB per unit of scale and output pixel of the longer side
#: (measured at s = 12: 0.063, 0.157 and 0.18 MB an image at 112, 224 and 448 pixels).
JOB_WORK_MB_PER_SCALE_PIXEL = 5e-5
#: Declared memory is the model times this: 1.20-1.31 times every peak measured at scales
#: 0.5-12 and sizes 32-448 (benchmarks/job_memory.json).
JOB_MEMORY_MARGIN = 1.25


def job_memory_mb(out_shape: tuple[int, int], chunk_images: int, scale: float = 1.0, images: int | None = None) -> int:
    """Memory a build or validation job may use, in MB, to declare as its ``mem_mb``.

    The peak is a fixed part that grows with the scale and the output side,
    plus, per image of a block (``min(chunk_images, images)`` images), two
    float64 buffers and the engine's working arrays, which grow with the scale
    and the side too: a model fitted to peaks measured across scales 0.5-12
    and sizes 32-448 with blocks of 20 and 100 images (benchmarks/job_memory.json,
    ``python -m benchmarks.job_memory``; linear in the block, so it extends to
    the 1000-image blocks of a job), times ``JOB_MEMORY_MARGIN``.

    Parameters
    ----------
    out_shape : tuple of int
        ``(H, W)`` in pixels.
    chunk_images : int
        ``output.chunk_images``.
    scale : float
        The file's largest scale (the top of a range).
    images : int, optional
        The file's largest split: a block holds no more (None: a full block).
    """
    block = chunk_images if images is None else max(1, min(chunk_images, images))
    side = max(out_shape)
    image_mb = out_shape[0] * out_shape[1] * 8 / 2**20
    per_image = JOB_BUFFERS_PER_IMAGE * image_mb + JOB_WORK_MB_PER_SCALE_PIXEL * scale * side
    peak = JOB_FIXED_MB + JOB_FIXED_MB_PER_SCALE_PIXEL * scale * side + block * per_image
    return int(math.ceil(JOB_MEMORY_MARGIN * peak))


#: Output pixels a second, per thread, that a job is assumed to reach at small scales: the
#: slowest rate measured on the 2-core development machine, 19 Mpx/s (validation of 500 images
#: at 448 x 448, 5.9 s); builds reached 25-40 Mpx/s at 112 x 112 to 448 x 448 (scale 8).
JOB_PIXEL_RATE = 20e6
#: The time per pixel grows with the scale (wider kernels and canvases): by this fraction per
#: unit of scale (measured at 112 x 112: 0.030 s/Mpx at s = 0.5, 0.076 at s = 12).
JOB_RUNTIME_PER_SCALE = 0.15
#: Seconds per image whatever its size (measured: 0.3-0.6 ms an image at 32 x 32).
JOB_SECONDS_PER_IMAGE = 1e-3
#: A job's time limit is this many times its time at ``JOB_PIXEL_RATE``: room for slower
#: nodes, a busy shared file system and a cold page cache.
JOB_RUNTIME_MARGIN = 10
#: Minutes every job gets on top: Snakemake's start-up inside the job (4-8 s measured under
#: SLURM) and its wait for the file system (latency-wait).
JOB_RUNTIME_BASE_MIN = 2


def job_runtime_min(out_shape: tuple[int, int], images: int, scale: float = 1.0) -> int:
    """Wall time a build or validation job may take, in whole minutes, to declare as its ``runtime``.

    Both jobs pass once over every output pixel (computing or reading and
    checking it), so their time grows with ``images * H * W``:
    ``JOB_RUNTIME_BASE_MIN`` plus ``JOB_RUNTIME_MARGIN`` times that many pixels
    at ``JOB_PIXEL_RATE``, rounded up: 3 minutes for the small files of the
    tests, 4 for a published test-only file, 10 for a published 70,000-image
    file at 112 x 112, 120 for one at 448 x 448.

    Parameters
    ----------
    out_shape : tuple of int
        ``(H, W)`` of the output images, in pixels.
    images : int
        Images in the file, all splits together (a test-only file's single
        train and val sample included).
    scale : float
        The file's largest scale: the time per pixel grows by
        ``JOB_RUNTIME_PER_SCALE`` per unit of it.
    """
    per_image = out_shape[0] * out_shape[1] * (1 + JOB_RUNTIME_PER_SCALE * scale) / JOB_PIXEL_RATE + JOB_SECONDS_PER_IMAGE
    seconds = JOB_RUNTIME_MARGIN * images * per_image
    return JOB_RUNTIME_BASE_MIN + int(math.ceil(seconds / 60))
