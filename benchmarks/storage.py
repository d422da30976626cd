"""`make bench-storage`: the 21 published files stored other ways, their size, build time and loader speed.

For each storage variant (config ``output:``), in a scratch copy of the
workflow under benchmarks/work/storage: build the 21 files of ``targets`` with
``snakemake --cores 2`` (the files only: no validation, no figures), time it,
add up their sizes, measure the loader's shuffled epoch (DataLoader, 2
workers, batches of 256, cold and warm: ``loader_speed.measure``) on the
scale-2 training file, and delete the files before the next variant.  Writes
benchmarks/storage.json after each variant.

A variant writes up to 45 GB: ``--lock FILE`` takes an exclusive ``flock`` on
FILE for each variant (so that builds of several people on one machine take
turns), and a variant is skipped, with the reason, when the disk has less
free space than its files need.

    python -m benchmarks.storage [--variants published float32 gzip ...] [--lock /path/to/lockfile]
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from benchmarks.loader_speed import measure
from benchmarks.provenance import provenance
from benchmarks.workdir import copy_workflow

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "benchmarks" / "work" / "storage"
TRAIN_FILE = "mnist_large_scale_tr50000_vl10000_te10000_outsize112-112_sctr2p000_scte2p000.h5"

#: config ``output`` of each variant (chunk_images and direct_io as in config.yaml).
VARIANTS = {
    "published": {"dtype": "float64", "compression": None},
    "float32": {"dtype": "float32", "compression": None},
    "gzip": {"dtype": "float64", "compression": "gzip", "shuffle": False},
    "gzip+shuffle": {"dtype": "float64", "compression": "gzip", "shuffle": True},
    "lzf": {"dtype": "float64", "compression": "lzf", "shuffle": False},
    "lzf+shuffle": {"dtype": "float64", "compression": "lzf", "shuffle": True},
    "float32+gzip+shuffle": {"dtype": "float32", "compression": "gzip", "shuffle": True},
}
#: Free space a variant needs before it starts, in GB (its files and a margin).
NEEDS_GB = {"published": 47, "float32": 24, "float32+gzip+shuffle": 10}


@contextlib.contextmanager
def exclusive(lock: Path | None):
    """Hold an exclusive flock on ``lock`` (when given) for the block."""
    if lock is None:
        yield
        return
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def scratch_workflow(folder: Path) -> Path:
    """A fresh copy of the workflow in ``folder`` with resources/mnist hard-linked (or copied)."""
    if folder.exists():
        shutil.rmtree(folder)
    return copy_workflow(folder, REPO / "resources" / "mnist")


def run_variant(name: str, output: dict, folder: Path) -> dict:
    """Build the 21 files under one storage variant, measure, delete them."""
    config = yaml.safe_load((folder / "config.yaml").read_text())
    targets = config["targets"]
    overrides = folder / f"{name.replace('+', '_')}.yaml"
    overrides.write_text(yaml.safe_dump({"output": {**config["output"], **output}}))
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    start = time.perf_counter()
    subprocess.run([snakemake, "--cores", "2", "--configfile", str(overrides), "--quiet", "--", *(f"results/{target}" for target in targets)], cwd=folder, check=True)
    seconds = time.perf_counter() - start
    files = [folder / "results" / target for target in targets]
    try:
        sizes = {path.name: path.stat().st_size for path in files}
        loader = measure(folder / "results" / TRAIN_FILE)
    finally:
        shutil.rmtree(folder / "results", ignore_errors=True)
        shutil.rmtree(folder / ".snakemake", ignore_errors=True)
    return {
        "variant": name,
        "output": output,
        "files": len(files),
        "total_bytes": sum(sizes.values()),
        "build_s": seconds,
        "training_file_bytes": sizes[TRAIN_FILE],
        "test_file_bytes": sizes[targets[-1]],  # the last target: the test-only file at s = 8
        "file_bytes": sizes,
        "loader": loader,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--lock", type=Path, help="hold an exclusive flock on this file while a variant builds and is measured")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "storage.json")
    args = parser.parse_args(argv)
    results = json.loads(args.output.read_text()) if args.output.exists() else {}
    folder = scratch_workflow(WORK)
    try:
        for name in args.variants:
            with exclusive(args.lock):
                free_gb = shutil.disk_usage(folder).free / 1e9
                if free_gb < NEEDS_GB.get(name, 12):
                    print(f"{name}: skipped, {free_gb:.0f} GB free, it needs {NEEDS_GB.get(name, 12)} GB", flush=True)
                    continue
                row = run_variant(name, VARIANTS[name], folder)
                row["load_average_at_end"] = os.getloadavg()
                row.update(provenance("benchmarks.storage"))
            results[name] = row
            args.output.write_text(json.dumps(results, indent=2) + "\n")
            print(
                f"{name}: {row['total_bytes'] / 1e9:.2f} GB, built in {row['build_s']:.0f} s; shuffled epoch cold "
                f"{row['loader']['cold']['images_per_s']:.0f} img/s, warm {row['loader']['warm']['images_per_s']:.0f} img/s",
                flush=True,
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(markdown_table(results))


def markdown_table(results: dict) -> str:
    """The results as the table of docs/storage.md."""
    lines = [
        "| variant | dtype | compression | 21 files | training file, s = 2 | test-only file, s = 8 | build of the 21 (2 cores) | shuffled epoch, cold | shuffled epoch, warm |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in results.items():
        output = row["output"]
        compression = output["compression"] or "none (contiguous)"
        if output["compression"]:
            compression += ", shuffle" if output.get("shuffle") else ""
        lines.append(
            f"| {name} | {output['dtype']} | {compression} | {row['total_bytes'] / 1e9:.1f} GB | {row['training_file_bytes'] / 1e9:.2f} GB "
            f"| {row['test_file_bytes'] / 1e6:.0f} MB | {row['build_s']:.0f} s | {row['loader']['cold']['images_per_s']:.0f} img/s "
            f"| {row['loader']['warm']['images_per_s']:.0f} img/s |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
