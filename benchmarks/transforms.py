"""The two transforms (``recipe.transform``: exact and scikit-image) on this machine.

1. One 1 GB test-only file (10,000 test images at 112 x 112) at s = 2 and at
   s = 8, built by ``snakemake --cores 2 --set-threads build_file=2`` in a
   copy of the workflow, with each transform; the wall time of each run, the
   load average before it, and the file deleted after it.
2. The time per image at every published test scale and at the [1, 4] file's
   per-sample scales, for each transform in this process (100 test images,
   2 threads, no I/O).  From these, an estimate of ``all``'s 21 files for each
   transform: every file's images times the per-image time at its scale,
   scaled by the ratio of the measured 1 GB builds to the same estimate for
   them (so that the files' I/O and start-up are counted as there).  An
   estimate, labelled so: ``all`` itself is not built here (45 GB).
3. The difference between the two transforms on small files (200 test images,
   s = 0.707, 2 and 5.657, default and with stretch): the largest absolute
   difference of the stored values.

Writes benchmarks/transforms.json.

    .venv/bin/python -m benchmarks.transforms
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
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


def machine() -> dict:
    """What the numbers were measured on."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), platform.processor())
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


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


def estimate_all(targets: list[str], rates: dict, measured: list[dict]) -> dict:
    """``all``'s build time per transform, from the per-image rates and the measured 1 GB files (see the module docstring)."""
    def images_seconds(name: str, rate: dict) -> float:
        spec = parse_name(name)
        return sum(spec.split_count(split) * rate[spec.split_scale(split).tag] for split in ("train", "val", "test"))

    estimates = {}
    for transform, rate in rates.items():
        runs = [run for run in measured if run["transform"] == transform]
        factor = float(np.mean([run["seconds"] / images_seconds(run["file"], rate) for run in runs]))
        one_job = factor * sum(images_seconds(name, rate) for name in targets)
        estimates[transform] = {
            "seconds": one_job,
            "derivation": (
                f"ESTIMATE, not measured: sum over the {len(targets)} targets of images x per-image seconds at the file's "
                f"scale(s) ({THREADS} threads, sampled_per_image_seconds), times {factor:.3f}, the mean ratio of the measured "
                "1 GB builds to the same sum for them; the files built one after another, each job on 2 threads"
            ),
        }
    return estimates


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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "transforms.json")
    args = parser.parse_args(argv)
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    base = BaseData.from_config("mnist", config["base_data"]["mnist"])
    raw_dir = REPO / "resources" / "mnist"
    test_images = read_idx(raw_dir / "t10k-images-idx3-ubyte", ndim=3)[:SAMPLE_IMAGES]
    train_images = read_idx(raw_dir / "train-images-idx3-ubyte", ndim=3)[:SAMPLE_IMAGES]
    record = {"machine": machine(), "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "command": ".venv/bin/python -m benchmarks.transforms"}
    record["small_file_differences"] = small_file_differences(raw_dir, base)
    print(json.dumps(record["small_file_differences"], indent=1), flush=True)
    with tempfile.TemporaryDirectory(dir=REPO / "benchmarks") as scratch:
        work = copy_workflow(Path(scratch) / "work", raw_dir)
        record["one_gb_files"] = [snakemake_build(work, name, transform) for name in FILES for transform in TRANSFORMS]
    print(json.dumps(record["one_gb_files"], indent=1), flush=True)
    record["sampled_per_image_seconds"] = sampled_rates(test_images, train_images)
    record["all_estimate"] = estimate_all(config["targets"], record["sampled_per_image_seconds"], record["one_gb_files"])
    record["load_average_1_5_15_after"] = list(os.getloadavg())
    args.output.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record["all_estimate"], indent=2))


if __name__ == "__main__":
    main()
