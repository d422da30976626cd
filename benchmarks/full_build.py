"""`make bench-full`: the whole published set against the disk, on this machine.

1. Raw write: h5py writes the bytes of all 21 published files (the same shapes,
   float64, contiguous, fsync'd; each file deleted after it is written) with no
   computation; then the same bytes past the page cache (O_DIRECT), as the
   build writes its images where it can.
2. `snakemake --cores N all` in the repository: every file, its validation, the
   figures and SHA256SUMS; the time until the last HDF5 file is complete is read
   from the build logs' modification times.
Writes benchmarks/full_build.json. Needs 45 GB free and deletes nothing it did
not make; run it with an empty results/.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))

from benchmarks.provenance import provenance  # noqa: E402
from benchmarks.run import direct_write_seconds, raw_write_seconds  # noqa: E402
from mnist_large_scale.names import parse_name  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "full_build.json")
    args = parser.parse_args(argv)
    if (REPO / "results").exists() and any((REPO / "results").glob("*.h5")):
        sys.exit("results/ already holds files: move them away first")
    targets = yaml.safe_load((REPO / "config.yaml").read_text())["targets"]
    counts = [sum(parse_name(name).split_count(split) for split in ("train", "val", "test")) for name in targets]
    with tempfile.TemporaryDirectory(dir=REPO / "benchmarks") as scratch:
        start = time.perf_counter()
        for n in counts:
            raw_write_seconds(n, Path(scratch))
        raw = time.perf_counter() - start
        directs = [direct_write_seconds(n, Path(scratch)) for n in counts]
        direct = None if None in directs else sum(directs)
    print(f"raw write of {sum(counts)} images ({len(counts)} files): h5py {raw:.1f} s, direct {direct or float('nan'):.1f} s", flush=True)
    start = time.time()
    subprocess.run([str(Path(sys.executable).with_name("snakemake")), "--cores", str(args.cores), "all"], cwd=REPO, check=True)
    total = time.time() - start
    files = [REPO / "results" / name for name in targets]
    built = max(path.stat().st_mtime for path in files) - start
    size = sum(path.stat().st_size for path in files)
    result = {
        **provenance("benchmarks.full_build"),
        "cores": args.cores,
        "images": sum(counts),
        "bytes": size,
        "raw_write_s": raw,
        "direct_write_s": direct,
        "files_built_s": built,
        "all_s": total,
        "files_over_raw": built / raw,
        "all_over_raw": total / raw,
        "files_over_direct": built / direct if direct else None,
        "all_over_direct": total / direct if direct else None,
    }
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
