"""A build job stays under the memory it declares, whatever the number of images."""

import json
import subprocess
import sys

import pytest

from conftest import REPO
from mnist_large_scale.build import job_memory_mb

CHILD = """
import json, resource, sys
sys.path.insert(0, {workflow!r})
import yaml
from mnist_large_scale.build import build_file
from mnist_large_scale.engine import transform_images
from mnist_large_scale.names import parse_name
from mnist_large_scale.recipe import Recipe
from mnist_large_scale.sources import BaseData
config = yaml.safe_load(open({config!r}))
base = BaseData.from_config("mnist", config["base_data"]["mnist"])
paths = {paths!r}
build_file(parse_name({name!r}), base, paths, {out!r}, Recipe.from_config(config["recipe"]),
           lambda i, s, shape, r: transform_images(i, s, shape, r, threads=2), seed=1, chunk_images={chunk})
print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
"""


def peak_rss_mb(tmp_path, mnist_paths, name: str, chunk: int) -> float:
    code = CHILD.format(workflow=str(REPO / "workflow"), config=str(REPO / "config.yaml"), paths=mnist_paths, name=name, out=str(tmp_path / name), chunk=chunk)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    (tmp_path / name).unlink()
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("size", [112, 160])
def test_build_memory_is_under_the_declared_mem_mb_and_does_not_grow_with_n(tmp_path, mnist_paths, size):
    chunk = 500
    small = peak_rss_mb(tmp_path, mnist_paths, f"mnist_large_scale_tr1000_vl500_te500_outsize{size}-{size}_sctr1p000-4p000_scte8p000.h5", chunk)
    large = peak_rss_mb(tmp_path, mnist_paths, f"mnist_large_scale_tr4000_vl1000_te1000_outsize{size}-{size}_sctr1p000-4p000_scte8p000.h5", chunk)
    declared = job_memory_mb((size, size), chunk)
    assert max(small, large) < declared, (small, large, declared)
    # three times the images: the peak may grow by the labels and scales, not by the images
    assert large - small < 40, (small, large)
