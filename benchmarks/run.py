"""`make bench`: what the engine, the disk and a whole build cost on this machine.

Measures, in one run, and prints as a table (also written to benchmarks/results.json):

(a) images/s of the per-image reference recipe (scikit-image), one core;
(b) images/s of the production engine, one thread and all threads, and its
    largest absolute difference to the reference on the benchmarked images;
    both on real MNIST at scales 0.5, 1, 2, 4, 8 and per-sample scales in [1, 4],
    after a short warm-up call of each, the three measurements of a scale taking
    turns (medians), the engine writing into one output array per scale,
    reused, as the build's writer reuses its buffers (``engine_speed.py`` says
    why);
(c) the time h5py needs to write the bytes of a 10,002-image and a 70,000-image
    file (112 x 112 float64, contiguous, fsync'd) with no computation at all,
    and the time the same bytes take written past the page cache (O_DIRECT),
    the way the build writes them where it can;
(d) wall time and peak resident memory of building those two files through the
    workflow's own code (a fresh process each), with one engine thread (what
    build_file declares) and with all, alternating with (c) and taking
    medians, since the disk's speed drifts;
and the ratios (b)/(a) and (d)/(c).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))

from benchmarks.provenance import provenance  # noqa: E402
from mnist_large_scale import engine, recipe  # noqa: E402
from mnist_large_scale.build import draw_scales  # noqa: E402
from mnist_large_scale.idx import read_idx  # noqa: E402
from mnist_large_scale.names import ScaleSpec  # noqa: E402

OUT_SHAPE = (112, 112)
SCALES = {"0.5": 0.5, "1": 1.0, "2": 2.0, "4": 4.0, "8": 8.0, "[1,4] per sample": None}
BUILDS = {
    "te10000 (10,002 images)": "mnist_large_scale_te10000_outsize112-112_scte2p000.h5",
    "tr50000_vl10000_te10000 (70,000 images)": "mnist_large_scale_tr50000_vl10000_te10000_outsize112-112_sctr2p000_scte2p000.h5",
}


def images_per_second(repeats: int, transform, *args, **kwargs) -> float:
    """Median images/s of ``transform(*args, **kwargs) -> images`` over ``repeats`` runs."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        n = len(transform(*args, **kwargs))
        rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates)


def bench_transform(images: np.ndarray, n_reference: int, n_engine: int, repeats: int) -> list[dict]:
    rows = []
    for label, scale in SCALES.items():
        if scale is None:
            scales = draw_scales(ScaleSpec("1p000", "4p000"), n_engine, seed=1, split="train")
        else:
            scales = np.full(n_engine, scale)
        batch = images[:n_engine]
        ref_batch, ref_scales = batch[:n_reference], scales[:n_reference]
        # The three measurements take turns, so that a drift in the machine's speed
        # (other processes, the host) reaches the reference and the engine alike.
        rates = {"reference": [], "one": [], "every": []}
        out = np.zeros((len(batch), *OUT_SHAPE))  # allocated and touched once, reused
        # First calls pay one-time costs (imports, caches): one short call of each first.
        recipe.transform_images(ref_batch[:8], ref_scales[:8], OUT_SHAPE)
        engine.transform_images(batch[:64], scales[:64], OUT_SHAPE)
        for _ in range(repeats):
            rates["reference"].append(images_per_second(1, recipe.transform_images, ref_batch, ref_scales, OUT_SHAPE))
            rates["one"].append(images_per_second(1, engine.transform_images, batch, scales, OUT_SHAPE, threads=1, out=out))
            rates["every"].append(
                images_per_second(1, engine.transform_images, batch, scales, OUT_SHAPE, threads=os.cpu_count(), out=out)
            )
        ref_rate, one, every = (statistics.median(rates[key]) for key in ("reference", "one", "every"))
        diff = float(np.abs(engine.transform_images(ref_batch, ref_scales, OUT_SHAPE) - recipe.transform_images(ref_batch, ref_scales, OUT_SHAPE)).max())
        rows.append(
            {"scale": label, "reference_img_s": ref_rate, "engine_1_thread_img_s": one, "engine_all_threads_img_s": every, "speedup_per_core": one / ref_rate, "max_abs_diff": diff}
        )
        print(f"  transform {label:>18}: reference {ref_rate:8.0f}/s  engine {one:8.0f}/s (1 thread) {every:8.0f}/s (all)  x{one / ref_rate:5.1f}  diff {diff:.1e}", flush=True)
    return rows


def raw_write_seconds(n_images: int, folder: Path, chunk: int = 1000) -> float:
    """Seconds to write n float64 112 x 112 images with h5py (contiguous) and fsync them."""
    import h5py

    block = np.random.default_rng(0).random((chunk, *OUT_SHAPE, 1))
    path = folder / "raw-write.h5"
    start = time.perf_counter()
    with h5py.File(path, "w") as h5:
        x = h5.create_dataset("x", shape=(n_images, *OUT_SHAPE, 1), dtype="f8")
        for first in range(0, n_images, chunk):
            last = min(first + chunk, n_images)
            x[first:last] = block[: last - first]
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())
    seconds = time.perf_counter() - start
    path.unlink()
    return seconds


def direct_write_seconds(n_images: int, folder: Path, chunk: int = 1000) -> float | None:
    """Seconds to write the same bytes past the page cache (O_DIRECT) and fsync them; None without direct I/O.

    What the disk itself takes, without the kernel's page cache: the build writes
    its images this way where it can (mnist_large_scale.direct_io).
    """
    from mnist_large_scale.direct_io import ALIGNMENT, aligned_empty

    block = aligned_empty((chunk, *OUT_SHAPE))
    block[...] = np.random.default_rng(0).random(block.shape)
    data = memoryview(block.reshape(-1).view(np.uint8))
    total = n_images * block[0].nbytes
    path = folder / "direct-write.bin"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_DIRECT", 0), 0o644)
    except OSError:
        return None
    start = time.perf_counter()
    try:
        done = 0
        while done < total:
            size = min(len(data), total - done)
            size -= size % ALIGNMENT  # direct I/O writes whole pages; the last partial page is left out
            if size == 0:
                break
            done += os.pwrite(fd, data[:size], done)
        os.fsync(fd)
    finally:
        os.close(fd)
    seconds = time.perf_counter() - start
    path.unlink()
    return seconds


def build_once(name: str, folder: Path, raw_dir: Path, threads: int) -> dict:
    """Wall time and peak resident memory of building one file in a fresh process."""
    out = folder / name
    command = [sys.executable, "-m", "mnist_large_scale", "build", name, "--raw-dir", str(raw_dir), "--out", str(out)]
    command += ["--config", str(REPO / "config.yaml"), "--threads", str(threads)]
    done = subprocess.run(command, capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(REPO / "workflow")})
    out.unlink()
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw-dir", type=Path, default=REPO / "resources" / "mnist", help="folder with the raw MNIST files")
    parser.add_argument("--work-dir", type=Path, default=REPO / "benchmarks" / "work", help="where test files are written (needs ~8 GB)")
    parser.add_argument("--reference-images", type=int, default=300)
    parser.add_argument("--engine-images", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each transform measurement (median)")
    parser.add_argument("--build-repeats", type=int, default=3, help="alternating raw writes and builds of each file (median)")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results.json")
    args = parser.parse_args(argv)
    if not (args.raw_dir / "train-images-idx3-ubyte").is_file():
        subprocess.run([str(Path(sys.executable).with_name("snakemake")), "--cores", "1", *(f"resources/mnist/{f}" for f in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"))], cwd=REPO, check=True)
    images = read_idx(args.raw_dir / "train-images-idx3-ubyte", ndim=3)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}", flush=True)
    transform_rows = bench_transform(images, args.reference_images, args.engine_images, args.repeats)
    build_rows = []
    with tempfile.TemporaryDirectory(dir=args.work_dir) as scratch:
        scratch = Path(scratch)
        for label, name in BUILDS.items():
            n = 10002 if name.startswith("mnist_large_scale_te") else 70000
            # The disk's speed drifts (page cache, the host): alternate raw writes
            # and builds, and compare medians.
            # build_file declares threads: 1 (two jobs share a 2-core machine); a single file may get more.
            writes, directs, builds, builds_all = [], [], [], []
            for _ in range(args.build_repeats):
                writes.append(raw_write_seconds(n, scratch))
                directs.append(direct_write_seconds(n, scratch))
                builds.append(build_once(name, scratch, args.raw_dir, threads=1))
                builds_all.append(build_once(name, scratch, args.raw_dir, threads=os.cpu_count()))
            write = statistics.median(writes)
            direct = statistics.median(directs) if None not in directs else None
            seconds = statistics.median(b["seconds"] for b in builds)
            seconds_all = statistics.median(b["seconds"] for b in builds_all)
            row = {
                "file": label,
                "images": n,
                "raw_write_s": write,
                "direct_write_s": direct,
                "build_s": seconds,
                "build_all_threads_s": seconds_all,
                "build_peak_rss_mb": max(b["peak_rss_mb"] for b in builds + builds_all),
                "build_over_write": seconds / write,
                "build_all_threads_over_write": seconds_all / write,
                "build_over_direct_write": seconds / direct if direct else None,
                "raw_write_runs_s": writes,
                "direct_write_runs_s": directs,
                "build_runs_s": [b["seconds"] for b in builds],
                "build_all_threads_runs_s": [b["seconds"] for b in builds_all],
            }
            build_rows.append(row)
            print(
                f"  {label}: raw h5py write {write:6.1f} s, direct write {direct or float('nan'):6.1f} s, build {seconds:6.1f} s "
                f"with 1 thread (x{row['build_over_write']:.2f} of the h5py write), {seconds_all:6.1f} s with {os.cpu_count()}, "
                f"peak RSS {row['build_peak_rss_mb']:.0f} MB",
                flush=True,
            )
    result = {
        **provenance("benchmarks.run"),
        "transform": transform_rows,
        "build": build_rows,
    }
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown_table(result))


def markdown_table(result: dict) -> str:
    lines = ["| scale | reference img/s | engine img/s, 1 thread | engine img/s, all threads | engine/reference per core | max abs diff |", "|---|---:|---:|---:|---:|---:|"]
    for row in result["transform"]:
        lines.append(f"| {row['scale']} | {row['reference_img_s']:.0f} | {row['engine_1_thread_img_s']:.0f} | {row['engine_all_threads_img_s']:.0f} | {row['speedup_per_core']:.1f}x | {row['max_abs_diff']:.1e} |")
    lines += [
        "",
        "| file | raw h5py write | raw direct write | build, 1 thread | build, all threads | build (1 thread) / h5py write | build (1 thread) / direct write | peak RSS |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["build"]:
        direct = f"{row['direct_write_s']:.2f} s" if row.get("direct_write_s") else "n/a"
        over_direct = f"{row['build_over_direct_write']:.2f}x" if row.get("build_over_direct_write") else "n/a"
        lines.append(
            f"| {row['file']} | {row['raw_write_s']:.2f} s | {direct} | {row['build_s']:.2f} s | {row['build_all_threads_s']:.2f} s "
            f"| {row['build_over_write']:.2f}x | {over_direct} | {row['build_peak_rss_mb']:.0f} MB |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
