"""How fast an evaluation reads a test file to a model: benchmarks/evaluate.json.

On a float64 test file (the published layout) and its float32 twin, 10,000
images at 112 x 112 and s = 2, warm in the page cache: the ordered reader
alone (positional reads at the byte offset, and h5py, with 1 and 2 reading
threads), then the whole evaluation loop (``evaluate.run.predict``) with a
trivial model, whose cost is nothing beside the reading, and with the
experiment's small CNN, whose cost is everything; and, for comparison, the
trivial model behind a PyTorch DataLoader over ``MNISTLargeScale`` (the
experiment's test loop before it went through the evaluation).  One run
of the trivial model's loop starts cold: the file's pages dropped from the
page cache (``posix_fadvise(DONTNEED)``, this file alone), which the disk
then decides.  Each measurement is run
``--turns`` times; the record keeps every run and the median.  The target:
the trivial model's loop at 20,000 images/s or more on the float64 file.

    python -m benchmarks.evaluate_speed                 # builds both files in benchmarks/work, deletes them after
    python -m benchmarks.evaluate_speed --float64 results/<file>.h5 --float32 other/<file>.h5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import h5py

from benchmarks.loader_speed import cached_fraction, drop_from_cache
from benchmarks.provenance import machine

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "benchmarks" / "work"
TEST_FILE = "mnist_large_scale_te10000_outsize112-112_scte2p000.h5"
TARGET_IMAGES_S = 20000
#: Images the small CNN is timed on (it runs at a few hundred images a second on two cores).
CNN_IMAGES = 1000


def build(path: Path, dtype: str) -> None:
    """Build the test file with the config's recipe, stored as ``dtype``."""
    import functools

    import yaml

    from mnist_large_scale.build import build_file
    from mnist_large_scale.engine import transform_images
    from mnist_large_scale.names import parse_name
    from mnist_large_scale.recipe import Recipe
    from mnist_large_scale.sources import BaseData
    from mnist_large_scale.writer import OutputOptions

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    base = BaseData.from_config("mnist", config["base_data"]["mnist"])
    raw = {item.name: str(REPO / "resources" / "mnist" / item.name) for item in base.files.values()}
    options = OutputOptions.from_config({**config["output"], "dtype": dtype})
    path.parent.mkdir(parents=True, exist_ok=True)
    build_file(parse_name(TEST_FILE), base, raw, path, Recipe.from_config(config["recipe"]), functools.partial(transform_images, threads=2), seed=config["scale_seed"], options=options)


def warm(path: Path) -> float:
    """Read the whole file once, so that it is in the page cache; returns the cached fraction after."""
    with open(path, "rb") as handle:
        while handle.read(64 << 20):
            pass
    return cached_fraction(path)


def _timed(function, turns: int) -> dict:
    """``function()`` returns the images it handled; images/s of each turn and their median."""
    rates = []
    for _ in range(turns):
        start = time.perf_counter()
        images = function()
        rates.append(images / (time.perf_counter() - start))
    return {"images": images, "images_per_s_runs": rates, "images_per_s": statistics.median(rates)}


def reader_only(path: Path, method: str, workers: int, turns: int) -> dict:
    from mnist_large_scale.evaluate.reader import ordered_blocks

    def run():
        return sum(len(block) for _, block in ordered_blocks(path, "test", 500, "float32", True, workers, method=method))

    return {"method": method, "workers": workers, **_timed(run, turns)}


def trivial_model():
    """Ten numbers of each image as its scores: the loop's cost without a model's."""
    import torch

    class FirstPixels(torch.nn.Module):
        def forward(self, batch):
            return batch.flatten(1)[:, :10]

    return FirstPixels()


def with_model(path: Path, model, workers: int, turns: int, limit: int | None = None) -> dict:
    from mnist_large_scale.evaluate.run import EvaluationSettings, predict

    settings = EvaluationSettings(batch_size=500, workers=workers, limit=limit)
    return {"workers": workers, **_timed(lambda: len(predict(model, path, settings=settings).labels), turns)}


def dataloader_baseline(path: Path, turns: int) -> dict:
    """The loop the experiment tested with before: a DataLoader over MNISTLargeScale, batches of 500, no worker process, the trivial model."""
    import torch
    from torch.utils.data import DataLoader

    from mnist_large_scale.loader import MNISTLargeScale

    model = trivial_model()

    def run():
        seen = 0
        with torch.inference_mode():
            for images, _ in DataLoader(MNISTLargeScale(path, "test"), batch_size=500, num_workers=0):
                model(images).argmax(1)
                seen += len(images)
        return seen

    return {"loop": "DataLoader(MNISTLargeScale, batch_size=500, num_workers=0)", **_timed(run, turns)}


def measure(path: Path, turns: int) -> dict:
    """Every measurement of one file."""
    import torch

    from mnist_large_scale.experiment import build_cnn

    torch.set_num_threads(2)
    with h5py.File(path, "r") as h5:
        dtype, shape = str(h5["x_test"].dtype), h5["x_test"].shape
    record = {"file": path.name, "stored_dtype": dtype, "shape": list(shape), "file_bytes": path.stat().st_size, "cached_fraction": warm(path)}
    record["reader"] = [reader_only(path, method, workers, turns) for method in ("offset", "h5py") for workers in (1, 2)]
    record["trivial_model"] = [with_model(path, trivial_model(), workers, turns) for workers in (1, 2)]
    drop_from_cache(path)
    record["trivial_model_cold"] = {"cached_fraction_before": cached_fraction(path), **with_model(path, trivial_model(), 2, 1)}
    warm(path)
    record["dataloader_trivial_model"] = dataloader_baseline(path, turns)
    torch.manual_seed(0)
    record["small_cnn"] = with_model(path, build_cnn().eval(), 2, 1, limit=CNN_IMAGES)
    record["small_cnn"]["model"] = "experiment.build_cnn((8, 16, 32, 64)), untrained, 2 PyTorch threads"
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--float64", type=Path, help=f"a float64 {TEST_FILE} (default: built in benchmarks/work)")
    parser.add_argument("--float32", type=Path, help="its float32 twin (default: built in benchmarks/work)")
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "evaluate.json")
    args = parser.parse_args(argv)
    built = []
    paths = {}
    for dtype in ("float64", "float32"):
        given = getattr(args, dtype)
        if given is None:
            given = WORK / dtype / TEST_FILE
            build(given, dtype)
            built.append(given)
        paths[dtype] = given
    try:
        files = {dtype: measure(path, args.turns) for dtype, path in paths.items()}
    finally:
        for path in built:
            path.unlink(missing_ok=True)
            for folder in (path.parent, WORK):  # the folders it made, when nothing else is in them
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()
    import numpy
    import torch

    best = max(row["images_per_s"] for row in files["float64"]["trivial_model"])
    result = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "python -m benchmarks.evaluate_speed " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": {**machine(), "load_average_at_end": os.getloadavg()},
        "versions": {"python": platform.python_version(), "numpy": numpy.__version__, "h5py": h5py.__version__, "torch": torch.__version__},
        "block_images": 500,
        "files": files,
        "targets": {f"float64 file to a trivial model >= {TARGET_IMAGES_S} images/s": best >= TARGET_IMAGES_S},
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["targets"]), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
