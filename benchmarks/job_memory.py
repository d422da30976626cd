"""Peak memory and time of build jobs across scales and output sizes (benchmarks/job_memory.json).

``python -m benchmarks.job_memory``: for every scale and output size of the
grid, builds a test-only file of ``4 * SMALL`` and of ``4 * LARGE`` images in a
fresh process (``python -m mnist_large_scale build``, one engine thread), in
four blocks of ``SMALL`` and ``LARGE`` images, so that the writer's two block
buffers take turns as in a job of many blocks, and records its peak resident
memory (VmHWM) and wall time.  The two block sizes give, per scale and size,
the memory per image of a block (the slope) and the fixed part (the intercept):
a job's block holds ``min(output.chunk_images, images)`` images, so its peak is
extrapolated linearly to the block it will have; the time per output pixel
comes from the larger build.
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

from benchmarks.provenance import machine

REPO = Path(__file__).resolve().parents[1]
SCALES = (0.5, 1.0, 2.0, 4.0, 8.0, 12.0)
SIZES = (32, 112, 224, 448)
SMALL, LARGE = 20, 100


def scale_tag(scale: float) -> str:
    return f"{scale:.3f}".replace(".", "p")


def measure(size: int, scale: float, images: int, folder: Path) -> dict:
    """Peak RSS (MB) and seconds of one build in a fresh process."""
    name = f"mnist_large_scale_te{images}_outsize{size}-{size}_scte{scale_tag(scale)}.h5"
    out = folder / name
    command = [sys.executable, "-m", "mnist_large_scale", "build", name, "--raw-dir", str(REPO / "resources" / "mnist"), "--out", str(out)]
    command += ["--config", str(REPO / "config.yaml"), "--threads", "1", "--chunk-images", str(images // 4)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(REPO / "workflow")})
    wall = time.perf_counter() - started
    out.unlink()
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {"images": images, "peak_rss_mb": result["peak_rss_mb"], "build_seconds": result["seconds"], "process_seconds": wall}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "job_memory.json"))
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(dir=REPO) as folder:
        for size in SIZES:
            for scale in SCALES:
                small, large = (measure(size, scale, 4 * n, Path(folder)) for n in (SMALL, LARGE))
                per_image = (large["peak_rss_mb"] - small["peak_rss_mb"]) / (LARGE - SMALL)
                rows.append(
                    {
                        "size": size,
                        "scale": scale,
                        "runs": [small, large],
                        "mb_per_block_image": per_image,
                        "fixed_mb": small["peak_rss_mb"] - per_image * SMALL,
                        "seconds_per_mpx": large["build_seconds"] / (4 * LARGE * size * size / 1e6),
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    record = {
        "command": "python -m benchmarks.job_memory",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "method": __doc__.split("\n\n")[1].replace("\n", " "),
        "rows": rows,
    }
    Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
