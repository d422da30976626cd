"""What a build or validation job asks a scheduler for: memory and wall time, from the file's name.

Standard library alone: the workflow computes these while Snakemake reads it
(the rules' ``resources:``), before any rule's packages are needed.
``build`` gives them under its own name too.
"""

from __future__ import annotations

import math

__all__ = ["job_memory_mb", "job_runtime_min", "JOB_PIXEL_RATE", "JOB_RUNTIME_MARGIN", "JOB_RUNTIME_BASE_MIN"]


def job_memory_mb(out_shape: tuple[int, int], chunk_images: int) -> int:
    """Memory a build job may use, in MB, to declare as its ``mem_mb``; independent of n.

    About 300 MB for the interpreter, its libraries and the raw MNIST arrays,
    plus 2.5 float64 blocks of ``chunk_images`` output images: one being written,
    one being computed, and the engine's working arrays.  Measured peaks on a
    2-core machine: 340-420 MB at 112 x 112 and 960 MB at 224 x 224 with 1000
    images a block (tests/test_memory.py checks the bound).
    """
    block_mb = chunk_images * out_shape[0] * out_shape[1] * 8 / 2**20
    return int(math.ceil(300 + 2.5 * block_mb))


#: Output pixels a second, per thread, that a job is assumed to reach: the slowest rate
#: measured on the 2-core development machine, 19 Mpx/s (validation of 500 images at
#: 448 x 448, 5.9 s); builds reached 25-40 Mpx/s at 112 x 112 to 448 x 448 (scale 8).
JOB_PIXEL_RATE = 20e6
#: A job's time limit is this many times its time at ``JOB_PIXEL_RATE``: room for slower
#: nodes, a busy shared file system and a cold page cache.
JOB_RUNTIME_MARGIN = 10
#: Minutes every job gets on top: Snakemake's start-up inside the job (4-8 s measured under
#: SLURM) and its wait for the file system (latency-wait).
JOB_RUNTIME_BASE_MIN = 2


def job_runtime_min(out_shape: tuple[int, int], images: int) -> int:
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
    """
    seconds = JOB_RUNTIME_MARGIN * images * out_shape[0] * out_shape[1] / JOB_PIXEL_RATE
    return JOB_RUNTIME_BASE_MIN + int(math.ceil(seconds / 60))
