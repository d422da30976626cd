"""`make bench` (second part): a shuffled epoch through MNISTLargeScale and PyTorch's DataLoader.

On the 50,000 training images of a built training file: one shuffled epoch
with a ``DataLoader`` of 2 worker processes and batches of 256, cold (the
file's pages dropped from the page cache) and warm (the file in the cache),
against a sequential read of the same bytes (the ``x_train`` dataset's byte
range, 8 MB at a time), cold and warm.  Reports images/s, the peak resident
memory (``VmHWM``) of the main process and of each worker, and whether the
targets hold: every process under 1 GB, the cold epoch within 2x the cold
sequential read, the warm epoch at least 20,000 images/s.

The page cache is dropped for the file alone (``posix_fadvise(DONTNEED)``),
not for the machine, so that other work on it is left alone;
``cached_fraction`` (util-linux's ``fincore``) says how much of the image bytes were
still cached when each cold run started.  Writes benchmarks/loader.json.

    python -m benchmarks.loader_speed                      # builds the file in benchmarks/work, deletes it after
    python -m benchmarks.loader_speed --file results/<training file>.h5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import h5py

from benchmarks.provenance import provenance

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "benchmarks" / "work"
#: 50,000 training images at s = 2 (5.0 GB as float64); val and test ten images each.
TRAINING_FILE = "mnist_large_scale_tr50000_vl10_te10_outsize112-112_sctr2p000_scte2p000.h5"
TARGET_RSS_MB = 1024
TARGET_COLD_RATIO = 2.0
TARGET_WARM_IMAGES_S = 20000


def image_byte_range(path: Path, split: str = "train") -> tuple[int, int] | None:
    """``(offset, length)`` of a contiguous image dataset in the file, or None for a chunked one."""
    with h5py.File(path, "r") as h5:
        x = h5[f"x_{split}"]
        offset = x.id.get_offset()
        return None if offset is None or x.chunks is not None else (offset, x.id.get_storage_size())


def drop_from_cache(path: Path) -> None:
    """Drop the file's clean pages from the page cache (``posix_fadvise(DONTNEED)``)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def cached_fraction(path: Path) -> float:
    """Fraction of the file's bytes in the page cache, from util-linux's ``fincore`` (NaN without it)."""
    try:
        done = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)], capture_output=True, text=True, check=True)
        return int(done.stdout.split()[0]) / path.stat().st_size
    except (OSError, subprocess.CalledProcessError, ValueError, IndexError):
        return float("nan")


def sequential_read_seconds(path: Path, offset: int, length: int, block: int = 8 << 20) -> float:
    """Seconds to read ``length`` bytes from ``offset`` in order, ``block`` bytes a read."""
    buffer = bytearray(block)
    view = memoryview(buffer)
    fd = os.open(path, os.O_RDONLY)
    try:
        start = time.perf_counter()
        done = 0
        while done < length:
            got = os.preadv(fd, [view[: min(block, length - done)]], offset + done)
            if got == 0:
                raise OSError(f"{path} ends before {offset + length}")
            done += got
        return time.perf_counter() - start
    finally:
        os.close(fd)


def _peak_rss_mb(pid: int) -> float:
    """``VmHWM`` of a process in MB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def shuffled_epoch(path: str, workers: int, batch_size: int, seed: int) -> dict:
    """One shuffled epoch over the training split through a DataLoader; run in a fresh process (``--epoch``)."""
    import torch
    from torch.utils.data import DataLoader

    from mnist_large_scale import MNISTLargeScale

    torch.set_num_threads(1)
    dataset = MNISTLargeScale(path, "train")
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=True, num_workers=workers, persistent_workers=workers > 0, generator=torch.Generator().manual_seed(seed)
    )
    start = time.perf_counter()
    images, checksum = 0, 0.0
    for x, y in loader:
        assert x.dtype == torch.float32 and x.shape[1:] == (1, *dataset.image_shape[1:])
        images += len(y)
        checksum += float(x[:, 0, 56, 56].sum())  # touch the batch, as training would
    seconds = time.perf_counter() - start
    worker_rss = [_peak_rss_mb(pid) for pid in _children(os.getpid())]
    return {
        "images": images,
        "seconds": seconds,
        "images_per_s": images / seconds,
        "main_peak_rss_mb": _peak_rss_mb(os.getpid()),
        "worker_peak_rss_mb": worker_rss,
        "reader": "offset reads" if dataset.contiguous else "h5py",
    }


def run_epoch(path: Path, workers: int = 2, batch_size: int = 256, seed: int = 0) -> dict:
    """``shuffled_epoch`` in a fresh Python process, so that its peak memory is the epoch's alone."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.loader_speed", "--epoch", str(path), "--workers", str(workers), "--batch-size", str(batch_size), "--seed", str(seed)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(path: Path, workers: int = 2, batch_size: int = 256) -> dict:
    """Cold and warm shuffled epochs and sequential reads of one file's training images."""
    byte_range = image_byte_range(path)
    result = {"file": path.name, "file_bytes": path.stat().st_size}
    if byte_range is not None:
        offset, length = byte_range
        result["image_bytes"] = length
        runs = []
        for _ in range(3):  # the disk is shared: the median of three cold reads
            drop_from_cache(path)
            result["sequential_cold_cached_fraction"] = cached_fraction(path)
            runs.append(sequential_read_seconds(path, offset, length))
        result["sequential_cold_runs_s"] = runs
        result["sequential_cold_s"] = statistics.median(runs)
        result["sequential_warm_s"] = sequential_read_seconds(path, offset, length)
    drop_from_cache(path)
    result["epoch_cold_cached_fraction"] = cached_fraction(path)
    result["cold"] = run_epoch(path, workers, batch_size, seed=0)
    run_epoch(path, workers, batch_size, seed=1)  # the whole file into the page cache
    result["warm"] = run_epoch(path, workers, batch_size, seed=2)
    if byte_range is not None:
        result["cold_over_sequential"] = result["cold"]["seconds"] / result["sequential_cold_s"]
    processes = [result[run]["main_peak_rss_mb"] for run in ("cold", "warm")] + [rss for run in ("cold", "warm") for rss in result[run]["worker_peak_rss_mb"]]
    result["targets"] = {
        f"peak RSS of every process < {TARGET_RSS_MB} MB": max(processes) < TARGET_RSS_MB,
        f"cold epoch within {TARGET_COLD_RATIO}x the cold sequential read": result.get("cold_over_sequential", float("inf")) <= TARGET_COLD_RATIO,
        f"warm epoch >= {TARGET_WARM_IMAGES_S} images/s": result["warm"]["images_per_s"] >= TARGET_WARM_IMAGES_S,
    }
    return result


def build_training_file(folder: Path, raw_dir: Path) -> Path:
    """Build TRAINING_FILE with the default config into ``folder`` (5.0 GB)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / TRAINING_FILE
    subprocess.run(
        [sys.executable, "-m", "mnist_large_scale", "build", TRAINING_FILE, "--raw-dir", str(raw_dir), "--out", str(out), "--config", str(REPO / "config.yaml")],
        cwd=REPO,
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "workflow")},
    )
    return out


def summary(result: dict) -> str:
    """The result as lines for the terminal."""
    lines = [f"{result['file']}: {result['cold']['images']} images, reader: {result['cold']['reader']}"]
    if "sequential_cold_s" in result:
        gb = result["image_bytes"] / 1e9
        lines.append(
            f"  sequential read of the {gb:.2f} GB: cold {result['sequential_cold_s']:.1f} s ({gb / result['sequential_cold_s']:.2f} GB/s), "
            f"warm {result['sequential_warm_s']:.1f} s"
        )
    for run in ("cold", "warm"):
        epoch = result[run]
        lines.append(
            f"  {run} shuffled epoch: {epoch['seconds']:.1f} s, {epoch['images_per_s']:.0f} images/s; peak RSS main {epoch['main_peak_rss_mb']:.0f} MB, "
            f"workers {', '.join(f'{rss:.0f}' for rss in epoch['worker_peak_rss_mb'])} MB"
        )
    if "cold_over_sequential" in result:
        lines.append(f"  cold epoch / cold sequential read: {result['cold_over_sequential']:.2f}x")
    lines += [f"  {'met' if held else 'MISSED'}: {target}" for target, held in result["targets"].items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", type=Path, help="a built training file (default: build one in benchmarks/work and delete it after)")
    parser.add_argument("--raw-dir", type=Path, default=REPO / "resources" / "mnist", help="raw MNIST, to build the file")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "loader.json")
    parser.add_argument("--epoch", metavar="FILE", help=argparse.SUPPRESS)  # one epoch in this process (run_epoch)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.epoch:
        print(json.dumps(shuffled_epoch(args.epoch, args.workers, args.batch_size, args.seed)))
        return
    built = args.file is None
    path = build_training_file(WORK, args.raw_dir) if built else args.file
    try:
        result = measure(path, args.workers, args.batch_size)
    finally:
        if built:
            path.unlink(missing_ok=True)
    result.update(provenance("benchmarks.loader_speed"))
    result["load_average_at_end"] = os.getloadavg()
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(summary(result))


if __name__ == "__main__":
    main()
