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


def peak_rss_mb(tmp_path, mnist_dir, name: str, chunk: int, threads: int = 2) -> float:
    """Peak memory of building one file in a fresh process, as a build job does it."""
    out = tmp_path / name
    command = [sys.executable, "-m", "mnist_large_scale", "build", name, "--raw-dir", str(mnist_dir), "--out", str(out)]
    command += ["--config", str(REPO / "config.yaml"), "--threads", str(threads), "--chunk-images", str(chunk)]
    done = subprocess.run(command, capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(REPO / "workflow")})
    out.unlink()
    return json.loads(done.stdout.strip().splitlines()[-1])["peak_rss_mb"]


@pytest.mark.parametrize("size", [112, 160])
def test_build_memory_is_under_the_declared_mem_mb_and_does_not_grow_with_n(tmp_path, mnist_dir, size):
    chunk = 500
    small = peak_rss_mb(tmp_path, mnist_dir, f"mnist_large_scale_tr1000_vl500_te500_outsize{size}-{size}_sctr1p000-4p000_scte8p000.h5", chunk)
    large = peak_rss_mb(tmp_path, mnist_dir, f"mnist_large_scale_tr4000_vl1000_te1000_outsize{size}-{size}_sctr1p000-4p000_scte8p000.h5", chunk)
    declared = job_memory_mb((size, size), chunk, scale=8.0, images=4000)
    assert max(small, large) < declared, (small, large, declared)
    # three times the images: the peak may grow by the labels and scales, not by the images
    assert large - small < 40, (small, large)


@pytest.mark.parametrize(("size", "scale"), [(112, 0.5), (112, 12.0), (224, 4.0), (448, 0.5), (448, 12.0)])
def test_the_declared_memory_follows_scale_and_size_within_one_and_a_half_times_the_peak(tmp_path, mnist_dir, size, scale):
    """A build job of one thread, four blocks of 100 images (the writer's two buffers take turns)."""
    tag = f"{scale:.3f}".replace(".", "p")
    peak = peak_rss_mb(tmp_path, mnist_dir, f"mnist_large_scale_te400_outsize{size}-{size}_scte{tag}.h5", 100, threads=1)
    declared = job_memory_mb((size, size), 100, scale=scale, images=400)
    assert peak < declared <= 1.5 * peak, (peak, declared)


def test_a_scale_beyond_the_engines_bound_is_refused_before_any_work(tmp_path, mnist_base, mnist_paths):
    from mnist_large_scale.build import build_file
    from mnist_large_scale.engine import transform_images
    from mnist_large_scale.job_resources import LARGEST_SCALE
    from mnist_large_scale.names import parse_name
    from mnist_large_scale.recipe import Recipe

    name = "mnist_large_scale_tr10_vl10_te10_outsize32-32_sctr1p000-16p000_scte1p000.h5"
    with pytest.raises(ValueError, match=f"scale 16 is above {LARGEST_SCALE:g}"):
        build_file(parse_name(name), mnist_base, mnist_paths, tmp_path / name, Recipe(), transform_images, seed=1)
    assert list(tmp_path.iterdir()) == []
