"""The two transforms (``recipe.transform``: exact and scikit-image) on this machine.

1. One 1 GB test-only file (10,000 test images at 112 x 112) at s = 2 and at
   s = 8, built by ``snakemake --cores 2 --set-threads build_file=2`` in a
   copy of the workflow, with each transform; the wall time of each run, the
   load average before it, and the file deleted after it.
2. The time per image at every published test scale and at the [1, 4] file's
   per-sample scales, for each transform in this process (100 test images,
   2 threads, no I/O).  From these, an estimate of ``all``'s 21 files with
   the scikit-image transform, on top of the exact transform's measured
   ``all`` (``estimate_all``).  An estimate, labelled
   so: ``all`` itself is not built here (45 GB).
3. The difference between the two transforms on small files (200 test images,
   s = 0.707, 2 and 5.657, default and with stretch): the largest absolute
   difference of the stored values.

Adds one run to benchmarks/transforms.json (``runs``; on a shared machine
the runs differ, and each records the load it ran under).

    .venv/bin/python -m benchmarks.transforms [--estimate-only]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import h5py
import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))

from benchmarks.provenance import machine  # noqa: E402
from benchmarks.workdir import copy_workflow  # noqa: E402
from mnist_large_scale.build import build_file, draw_scales, transform_for  # noqa: E402
from mnist_large_scale.idx import read_idx  # noqa: E402
from mnist_large_scale.names import PUBLISHED_TEST_SCALES, ScaleSpec, parse_name, scale_tag  # noqa: E402
from mnist_large_scale.recipe import TRANSFORMS, Recipe  # noqa: E402
from mnist_large_scale.sources import BaseData  # noqa: E402

FILES = ["mnist_large_scale_te10000_outsize112-112_scte2p000.h5", "mnist_large_scale_te10000_outsize112-112_scte8p000.h5"]
SMALL = [f"mnist_large_scale_te200_outsize112-112_scte{tag}.h5" for tag in ("0p707", "2p000", "5p657")]
SAMPLE_IMAGES = 100
THREADS = 2


def snakemake_build(work: Path, name: str, transform: str) -> dict:
    """Build one file in ``work`` with one transform; its wall time and the load before it. The file is deleted after."""
    extra = work / f"transform_{transform}.yaml"
    extra.write_text(yaml.safe_dump({"recipe": {"transform": transform}}))
    command = [str(Path(sys.executable).with_name("snakemake")), f"results/{name}", "--cores", "2", "--set-threads", f"build_file={THREADS}", "--configfile", "config.yaml", extra.name]
    load = os.getloadavg()
    start = time.perf_counter()
    with open(work / f"snakemake_{transform}_{name}.log", "w") as log:
        subprocess.run(command, cwd=work, check=True, stdout=log, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    (work / "results" / name).unlink()
    return {"file": name, "transform": transform, "seconds": seconds, "load_average_1_5_15_before": list(load), "command": " ".join(command[1:])}


def per_image_seconds(images: np.ndarray, scales: np.ndarray, transform: str) -> float:
    """Seconds per image of one transform on ``images`` at ``scales`` (the best of two runs)."""
    recipe = Recipe(transform=transform)
    function = transform_for(recipe, THREADS)
    function(images[:4], scales[:4], (112, 112), recipe)  # warm-up: imports, caches
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        function(images, scales, (112, 112), recipe)
        best = min(best, time.perf_counter() - start)
    return best / len(images)


def sampled_rates(test_images: np.ndarray, train_images: np.ndarray) -> dict:
    """Per-image seconds at each published test scale and per sample in [1, 4], per transform."""
    rates = {}
    range_scales = draw_scales(ScaleSpec("1p000", "4p000"), SAMPLE_IMAGES, 20200605, "train")
    for transform in TRANSFORMS:
        rates[transform] = {scale_tag(s): per_image_seconds(test_images, np.full(SAMPLE_IMAGES, s), transform) for s in PUBLISHED_TEST_SCALES}
        rates[transform]["1p000-4p000"] = per_image_seconds(train_images, range_scales, transform)
    return rates


def estimate_all(targets: list[str], rates: dict, full_build: dict) -> dict:
    """``all``'s time until its 21 files are built, with the scikit-image transform: an estimate (see the module docstring).

    The exact transform's ``all`` is measured (``make bench-full``,
    benchmarks/full_build.json: ``files_built_s``).  The estimate keeps its
    fixed costs and I/O and replaces its compute by scikit-image's, both at
    the sampled per-image rates: ``T_exact + X_sk - X_ex``, ``X`` the 21
    files' images times the per-image seconds at their scales.  (On a shared
    machine the two 1 GB builds of a transform are too close in time to fit a
    slope to them reliably, so none is fitted.)
    """

    def compute_seconds(name: str, rate: dict) -> float:
        spec = parse_name(name)
        return sum(spec.split_count(split) * rate[spec.split_scale(split).tag] for split in ("train", "val", "test"))

    compute = {transform: sum(compute_seconds(name, rate) for name in targets) for transform, rate in rates.items()}
    exact_all = full_build["files_built_s"]
    return {
        "exact_measured_s": exact_all,
        "exact_measured_source": "benchmarks/full_build.json files_built_s (make bench-full, snakemake --cores 2 all, numerics version 4)",
        "scikit_image_estimate_s": exact_all + compute["scikit-image"] - compute["exact"],
        "compute_s_at_sampled_rates": compute,
        "derivation": (
            "ESTIMATE, not measured: T_exact + X_sk - X_ex, with T_exact the measured exact all and X the sum over the "
            f"{len(targets)} targets of images x per-image seconds at the file's scale(s) ({THREADS} threads, "
            "sampled_per_image_seconds of this run)"
        ),
    }


def small_file_differences(raw_dir: Path, base: BaseData) -> list[dict]:
    """Largest |difference| between the files each transform builds, on small files, default and with stretch."""
    paths = {raw.name: str(raw_dir / raw.name) for raw in base.files.values()}
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for name in SMALL:
            for changes in ({}, {"stretch": True}):
                values = {}
                for transform in TRANSFORMS:
                    recipe = dataclasses.replace(Recipe(**changes), transform=transform)
                    out = Path(scratch) / f"{transform}_{name}"
                    build_file(parse_name(name), base, paths, out, recipe, transform_for(recipe, THREADS), seed=20200605)
                    with h5py.File(out, "r") as h5:
                        values[transform] = h5["x_test"][()]
                    out.unlink()
                difference = np.abs(values["exact"] - values["scikit-image"])
                rows.append(
                    {
                        "file": name,
                        "recipe": changes or "default",
                        "max_abs_difference": float(difference.max()),
                        "images_that_differ": int(np.count_nonzero(difference.reshape(len(difference), -1).max(axis=1))),
                        "images": len(difference),
                    }
                )
    return rows


def conditions(record: dict) -> str:
    """How busy the machine was during the 1 GB builds (other work on it slows every number here alike)."""
    loads = [run["load_average_1_5_15_before"][0] for run in record["one_gb_files"]]
    return f"1-minute load average {min(loads):.1f} to {max(loads):.1f} before the 1 GB builds, on {record['machine']['cores']} cores"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "transforms.json")
    parser.add_argument("--estimate-only", action="store_true", help="recompute all_estimate from the measurements already in --output")
    args = parser.parse_args(argv)
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    full_build = json.loads((REPO / "benchmarks" / "full_build.json").read_text())
    runs = json.loads(args.output.read_text())["runs"] if args.output.exists() else []
    if args.estimate_only:
        for record in runs:
            record["all_estimate"] = estimate_all(config["targets"], record["sampled_per_image_seconds"], full_build)
            record["conditions"] = conditions(record)
        args.output.write_text(json.dumps({"runs": runs}, indent=2) + "\n")
        print(json.dumps([record["all_estimate"] for record in runs], indent=2))
        return
    base = BaseData.from_config("mnist", config["base_data"]["mnist"])
    raw_dir = REPO / "resources" / "mnist"
    test_images = read_idx(raw_dir / "t10k-images-idx3-ubyte", ndim=3)[:SAMPLE_IMAGES]
    train_images = read_idx(raw_dir / "train-images-idx3-ubyte", ndim=3)[:SAMPLE_IMAGES]
    record = {"machine": machine(), "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "command": "python -m benchmarks.transforms"}
    record["small_file_differences"] = small_file_differences(raw_dir, base)
    print(json.dumps(record["small_file_differences"], indent=1), flush=True)
    with tempfile.TemporaryDirectory(dir=REPO / "benchmarks") as scratch:
        work = copy_workflow(Path(scratch) / "work", raw_dir)
        record["one_gb_files"] = [snakemake_build(work, name, transform) for name in FILES for transform in TRANSFORMS]
    print(json.dumps(record["one_gb_files"], indent=1), flush=True)
    record["sampled_per_image_seconds"] = sampled_rates(test_images, train_images)
    record["all_estimate"] = estimate_all(config["targets"], record["sampled_per_image_seconds"], full_build)
    record["load_average_1_5_15_after"] = list(os.getloadavg())
    record["conditions"] = conditions(record)
    args.output.write_text(json.dumps({"runs": [*runs, record]}, indent=2) + "\n")
    print(json.dumps(record["all_estimate"], indent=2))


if __name__ == "__main__":
    main()
