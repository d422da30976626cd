"""Engine speed with the frame's edge folded into the smoothing, against the canvas.

    python benchmarks/smooth_boundary_speed.py [--images 1000] [--repeats 7] [--json benchmarks/smooth_boundary.json]

For scales 1 and 8 (MNIST test images) and per-sample scales in [1, 4] (MNIST
training images, log-uniform): microseconds per image of the engine, one
thread, 112 x 112, default recipe with ``smooth_boundary`` ``canvas`` and
``reflect``.  The two modes take turns within each repeat, so that a busy
machine's drift reaches both alike; each is the fastest of ``--repeats`` runs
of the calling thread's CPU time.  The output array is allocated once and
reused, and the plans are warm (as in a build, whose writer calls the engine
block by block); one cold call per mode is timed too (plans built, as at the
start of a build job).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "workflow"), str(REPO)]

from benchmarks.provenance import machine  # noqa: E402
from mnist_large_scale import engine  # noqa: E402
from mnist_large_scale.engine.plan import shared_plan  # noqa: E402
from mnist_large_scale.idx import read_idx  # noqa: E402
from mnist_large_scale.recipe import Recipe  # noqa: E402

OUT_SHAPE = (112, 112)
MODES = ("canvas", "reflect")


def cpu_seconds(call) -> float:
    start = time.thread_time()
    call()
    return time.thread_time() - start


def measure(images: np.ndarray, scales: np.ndarray, repeats: int) -> dict:
    """Per mode: cold and warm microseconds per image (one thread, CPU time)."""
    out = np.empty((len(images), *OUT_SHAPE))
    recipes = {mode: Recipe(smooth_boundary=mode) for mode in MODES}
    result = {}
    for mode, rcp in recipes.items():
        shared_plan.cache_clear()
        cold = cpu_seconds(lambda rcp=rcp: engine.transform_images(images, scales, OUT_SHAPE, rcp, out=out))
        result[mode] = {"cold_us_per_image": round(cold / len(images) * 1e6, 1)}
    warm = {mode: [] for mode in MODES}
    for _ in range(repeats):
        for mode, rcp in recipes.items():  # turns
            warm[mode].append(cpu_seconds(lambda rcp=rcp: engine.transform_images(images, scales, OUT_SHAPE, rcp, out=out)))
    for mode in MODES:
        result[mode]["warm_us_per_image"] = round(min(warm[mode]) / len(images) * 1e6, 1)
    result["reflect_over_canvas_warm"] = round(result["reflect"]["warm_us_per_image"] / result["canvas"]["warm_us_per_image"], 3)
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--raw-dir", type=Path, default=REPO / "resources" / "mnist")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", type=Path, default=None, help="write the record here")
    args = parser.parse_args(argv)
    test = read_idx(args.raw_dir / "t10k-images-idx3-ubyte")[: args.images]
    train = read_idx(args.raw_dir / "train-images-idx3-ubyte")[: args.images]
    per_sample = np.exp(np.random.default_rng(1).uniform(0.0, np.log(4.0), len(train)))
    cases = {"s=1": (test, np.full(len(test), 1.0)), "s=8": (test, np.full(len(test), 8.0)), "per sample [1, 4]": (train, per_sample)}
    results = {}
    with engine.blas_threads_limited(1):
        for label, (images, scales) in cases.items():
            results[label] = measure(images, scales, args.repeats)
            print(label, json.dumps(results[label]), flush=True)
    record = {
        "what": "engine microseconds per image, one thread, 112 x 112, smooth_boundary canvas against reflect",
        "command": "python benchmarks/smooth_boundary_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "images": args.images,
        "repeats": args.repeats,
        "clock": "thread CPU time (time.thread_time), fastest of the repeats; cold: one call with the plan cache cleared",
        "results": results,
    }
    if args.json:
        args.json.write_text(json.dumps(record, indent=1) + "\n")
        print(f"written: {args.json}")


if __name__ == "__main__":
    main()
