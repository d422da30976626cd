"""A build job stays under the memory it declares, whatever the number of images."""

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO
from mnist_large_scale.build import job_memory_mb

# Builds files of 1000 to 4000 images in fresh processes: `make test` runs it, `make test-fast` does not.
pytestmark = pytest.mark.slow


def peak_rss_mb(tmp_path, mnist_dir, name: str, chunk: int) -> float:
    """Peak memory of building one file in a fresh process, as a build job does it."""
    out = tmp_path / name
    command = [sys.executable, "-m", "mnist_large_scale", "build", name, "--raw-dir", str(mnist_dir), "--out", str(out)]
    command += ["--config", str(REPO / "config.yaml"), "--threads", "2", "--chunk-images", str(chunk)]
    done = subprocess.run(command, capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(REPO / "workflow")})
    out.unlink()
    return json.loads(done.stdout.strip().splitlines()[-1])["peak_rss_mb"]


@pytest.mark.parametrize("size", [112, 160])
def test_build_memory_is_under_the_declared_mem_mb_and_does_not_grow_with_n(tmp_path, mnist_dir, size):
    chunk = 500
    small = peak_rss_mb(tmp_path, mnist_dir, f"mnist_large_scale_tr1000_vl500_te500_outsize{size}-{size}_sctr1p000-4p000_scte8p000.h5", chunk)
    large = peak_rss_mb(tmp_path, mnist_dir, f"mnist_large_scale_tr4000_vl1000_te1000_outsize{size}-{size}_sctr1p000-4p000_scte8p000.h5", chunk)
    declared = job_memory_mb((size, size), chunk)
    assert max(small, large) < declared, (small, large, declared)
    # three times the images: the peak may grow by the labels and scales, not by the images
    assert large - small < 40, (small, large)
