"""`python -m mnist_large_scale inspect`: rebuilt and published-style files, chunked reading."""

import json
import os
import subprocess
import sys

import h5py
import numpy as np
from matplotlib.image import imread

from conftest import REPO
from mnist_large_scale.__main__ import main
from mnist_large_scale.build import build_file
from mnist_large_scale.inspect_file import read_images, scan_values, summarize_file
from mnist_large_scale.names import parse_name
from mnist_large_scale.recipe import Recipe, transform_images


def published_style(path, n=7):
    """A test-only file as published: no attributes, x_train and x_val without the leading axis."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as h5:
        h5["x_test"] = rng.uniform(-0.76, 0.76, (n, 32, 32, 1))
        h5["y_test"] = np.arange(n, dtype=np.uint8) % 10
        for split in ("train", "val"):
            h5[f"x_{split}"] = rng.uniform(-0.76, 0.76, (32, 32, 1))
            h5[f"y_{split}"] = np.uint8(4)
    return path


def test_value_range_is_the_same_whatever_the_chunk(tmp_path):
    path = published_style(tmp_path / "mnist_large_scale_te7_outsize32-32_scte2p000.h5")
    with h5py.File(path, "r") as h5:
        whole = h5["x_test"][()]
        for chunk in (1, 3, 7, 100):
            seen = []
            values = scan_values(h5["x_test"], chunk_images=chunk, progress=seen.append)
            assert values["min"] == whole.min() and values["max"] == whole.max() and sum(seen) == 7
            assert values["mean"] == np.float64(whole.mean()).item() or abs(values["mean"] - whole.mean()) < 1e-12
        assert scan_values(h5["x_test"], chunk_images=2, max_images=3)["max"] == whole[:3].max()
        assert scan_values(h5["x_train"])["scanned"] == 1


def test_inspect_a_published_style_file(tmp_path, capsys):
    path = published_style(tmp_path / "mnist_large_scale_te7_outsize32-32_scte2p000.h5")
    assert main(["inspect", str(path), "--chunk-images", "2", "--montage", str(tmp_path / "m.png")]) == 0
    out = capsys.readouterr().out
    assert "test-only file; train 1, val 1, test 7; 32 x 32 px; scales train 2p000, val 2p000, test 2p000" in out
    assert "(7, 32, 32, 1)" in out and "one sample, no leading axis" in out and "float64" in out
    assert "attributes: none (a published file carries no provenance attributes)" in out
    assert imread(tmp_path / "m.png").shape[:2] == (44 + 34 + 2, 640)


def test_inspect_a_rebuilt_range_file_as_json(tmp_path, capsys, mnist_base, mnist_paths):
    name = "mnist_large_scale_tr30_vl10_te10_outsize40-40_sctr1p000-4p000_scte2p000.h5"
    build_file(parse_name(name), mnist_base, mnist_paths, tmp_path / name, Recipe(), transform_images, seed=3)
    assert main(["inspect", str(tmp_path / name), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["splits"]["train"]["x_shape"] == [30, 40, 40, 1]
    assert summary["splits"]["train"]["scales"]["count"] == 30 and "scales" not in summary["splits"]["test"]
    assert summary["attributes"]["recipe"] == Recipe().recorded()
    assert summary["splits"]["test"]["values"]["min"] == summary["splits"]["test"]["values"]["min"]  # a number
    assert sum(summary["splits"]["train"]["labels"]["histogram"].values()) == 30
    images, labels, scales = read_images(tmp_path / name, "train", 8)
    assert images.shape == (8, 40, 40) and labels[:4].tolist() == [5, 0, 4, 1] and scales.shape == (8,)


def test_inspect_a_file_whose_name_says_nothing(tmp_path):
    path = published_style(tmp_path / "renamed.h5")
    summary = summarize_file(path)
    assert "fits no pattern" in summary["name_error"] and summary["splits"]["test"]["images"] == 7


def test_python_dash_m_runs_the_command(tmp_path):
    path = published_style(tmp_path / "mnist_large_scale_te7_outsize32-32_scte2p000.h5")
    env = dict(os.environ, PYTHONPATH=str(REPO / "workflow"))
    done = subprocess.run([sys.executable, "-m", "mnist_large_scale", "inspect", str(path)], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("file        mnist_large_scale_te7_outsize32-32_scte2p000.h5")
    assert done.stderr == ""  # no progress bar when stderr is not a terminal
