"""Engine speed against the reference recipe, per scale, on real MNIST.

    python benchmarks/engine_speed.py resources/mnist/train-images-idx3-ubyte [--clock cpu]

Prints, for scales 0.5, 1, 2, 4, 8 and per-sample scales in [1, 4] (112 x 112
output, default recipe): images/s of the reference (one core), of the engine
with one thread and with every core, the engine's speed-up per core, and the
largest absolute difference between the two on the reference's images.

Rates are the fastest of ``--repeats`` runs (the run least disturbed by other
processes).  The engine writes into one output array per scale, allocated and
touched before the timing and reused by every run, as the build's writer
reuses its two block buffers; a fresh array per call would add the kernel's
page faults for it (5 to 10 us an image on the development machine, and
varying from run to run), which a build does not pay.  With
``--clock cpu`` the one-core columns count the calling thread's CPU time
instead of wall time, which other processes on a busy machine barely affect
(the all-threads column stays wall time).  The functions are importable by the
benchmark harness.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))

from mnist_large_scale import engine, recipe  # noqa: E402
from mnist_large_scale.build import draw_scales  # noqa: E402
from mnist_large_scale.idx import read_idx  # noqa: E402
from mnist_large_scale.names import ScaleSpec  # noqa: E402

OUT_SHAPE = (112, 112)
SCALES = {"0.5": 0.5, "1": 1.0, "2": 2.0, "4": 4.0, "8": 8.0, "[1,4] per sample": None}
CLOCKS = {"wall": time.perf_counter, "cpu": time.thread_time}


def batch_scales(label: str, n: int) -> np.ndarray:
    """Scales of a benchmark batch: one value, or the [1, 4] file's per-sample draw."""
    if SCALES[label] is None:
        return draw_scales(ScaleSpec("1p000", "4p000"), n, seed=1, split="train")
    return np.full(n, SCALES[label])


def fastest_rate(function, n_images: int, repeats: int, clock: str = "wall") -> float:
    """Images/s of the fastest of ``repeats`` calls of ``function()``, timed by ``CLOCKS[clock]``."""
    now, best = CLOCKS[clock], float("inf")
    for _ in range(repeats):
        start = now()
        function()
        best = min(best, now() - start)
    return n_images / best


def measure_engine(
    images: np.ndarray,
    scales,
    out_shape: tuple[int, int],
    threads: int,
    repeats: int,
    clock: str = "wall",
    out: np.ndarray | None = None,
) -> float:
    """Images/s of ``engine.transform_images`` on a batch, fastest of ``repeats`` runs after a warm-up.

    Parameters
    ----------
    images : (n, h, w) ndarray
    scales : float or (n,) array_like
    out_shape : (H, W)
    threads : int
        Worker threads of the engine (BLAS held to one thread per worker).
    repeats : int
    clock : {'wall', 'cpu'}
        'cpu' counts the calling thread's CPU time: meaningful for threads=1 only.
    out : (n, H, W) ndarray of float64, optional
        The array the engine writes into, reused by every run (a fresh one per
        run when not given).

    Returns
    -------
    float
        Images per second.
    """
    scales = np.broadcast_to(np.asarray(scales, dtype=np.float64), (len(images),))
    engine.transform_images(images[:64], scales[:64], out_shape, threads=threads)

    def run():
        engine.transform_images(images, scales, out_shape, threads=threads, out=out)

    return fastest_rate(run, len(images), repeats, clock)


def measure_reference(
    images: np.ndarray, scales, out_shape: tuple[int, int], repeats: int, clock: str = "wall"
) -> float:
    """Images/s of the per-image reference ``recipe.transform_images`` (one core)."""
    return fastest_rate(lambda: recipe.transform_images(images, scales, out_shape), len(images), repeats, clock)


def max_abs_diff(images: np.ndarray, scales, out_shape: tuple[int, int]) -> float:
    """Largest absolute difference between engine and reference on a batch."""
    expected = recipe.transform_images(images, scales, out_shape)
    return float(np.abs(engine.transform_images(images, scales, out_shape) - expected).max())


def speed_table(
    images: np.ndarray, n_reference: int, n_engine: int, repeats: int, threads: int, clock: str = "wall"
) -> list[dict]:
    """One row per scale: reference and engine rates, speed-up per core, max abs diff.

    The three measurements of a row take turns, ``repeats`` rounds, so that
    other processes on the machine disturb them alike.
    """
    rows = []
    for label in SCALES:
        scales = batch_scales(label, n_engine)
        out = np.zeros((len(scales), *OUT_SHAPE))  # allocated and touched once, reused
        reference, one, every = 0.0, 0.0, 0.0
        for _ in range(repeats):
            reference = max(
                reference, measure_reference(images[:n_reference], scales[:n_reference], OUT_SHAPE, 1, clock)
            )
            one = max(one, measure_engine(images[:n_engine], scales, OUT_SHAPE, 1, 1, clock, out))
            every = max(every, measure_engine(images[:n_engine], scales, OUT_SHAPE, threads, 1, out=out))
        diff = max_abs_diff(images[:n_reference], scales[:n_reference], OUT_SHAPE)
        rows.append(
            {
                "scale": label,
                "reference": reference,
                "engine_1": one,
                "engine_all": every,
                "speedup": one / reference,
                "max_abs_diff": diff,
            }
        )
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", type=Path, help="train-images-idx3-ubyte (uncompressed IDX)")
    parser.add_argument("--reference-images", type=int, default=200)
    parser.add_argument("--engine-images", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="threads of the 'all' column")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall", help="clock of the one-core columns")
    args = parser.parse_args(argv)
    images = read_idx(args.images, ndim=3)[: max(args.reference_images, args.engine_images)]
    timed = "" if args.clock == "wall" else " (CPU time)"
    print(
        f"| scale | reference img/s{timed} | engine img/s, 1 thread{timed} "
        f"| engine img/s, {args.threads} threads | per core | max abs diff |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    table = speed_table(images, args.reference_images, args.engine_images, args.repeats, args.threads, args.clock)
    for row in table:
        print(
            f"| {row['scale']} | {row['reference']:.0f} | {row['engine_1']:.0f} | {row['engine_all']:.0f} "
            f"| {row['speedup']:.1f}x | {row['max_abs_diff']:.1e} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
