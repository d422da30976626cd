"""Snakemake end to end: the targets, small files of all three patterns, checks, bad names."""

import json
import subprocess

import h5py
import numpy as np
import pytest

from conftest import REPO, make_workdir, run_snakemake

PUBLISHED = {
    *(f"mnist_large_scale_tr50000_vl10000_te10000_outsize112-112_sctr{s}_scte{s}.h5" for s in ("1p000", "2p000", "4p000")),
    "mnist_large_scale_tr50000_vl10000_te10000_outsize112-112_sctr1p000-4p000_scte1p000-4p000.h5",
    *(
        f"mnist_large_scale_te10000_outsize112-112_scte{s}.h5"
        for s in "0p500 0p595 0p707 0p841 1p000 1p189 1p414 1p682 2p000 2p378 2p828 3p364 4p000 4p757 5p657 6p727 8p000".split()
    ),
}

SMALL = [
    "mnist_large_scale_tr300_vl100_te200_outsize64-64_sctr2p000_scte2p000.h5",
    "mnist_large_scale_tr200_vl50_te50_outsize112-112_sctr1p000-4p000_scte1p000-4p000.h5",
    "mnist_large_scale_te300_outsize112-112_scte3p000.h5",
]


def test_dry_run_of_all_names_exactly_the_21_published_files():
    dry = run_snakemake(REPO, "-n", "all", "--summary")
    assert dry.returncode == 0, dry.stderr
    built = {line.split("\t")[0].removeprefix("results/") for line in dry.stdout.splitlines() if line.startswith("results/") and line.split("\t")[0].endswith(".h5")}
    assert built == PUBLISHED


@pytest.mark.slow
def test_small_files_of_all_three_patterns_build_validate_and_reproduce(tmp_path, mnist_dir):
    work = make_workdir(tmp_path, mnist_dir, {"targets": SMALL})
    run = run_snakemake(work, "--cores", "2", "all")
    assert run.returncode == 0, run.stderr[-3000:]
    sums = (work / "results" / "SHA256SUMS").read_text().splitlines()
    assert sorted(line.split("  ")[1] for line in sums) == sorted(SMALL)
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=work / "results", capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    for name in SMALL:
        report = json.loads((work / "results" / "validation" / name.replace(".h5", ".json")).read_text())
        assert report["ok"] and len(report["checks"]) >= 15
    with h5py.File(work / "results" / SMALL[2], "r") as h5:
        x_test = np.array(h5["x_test"], dtype=np.float32)  # as the published loader reads it
        assert x_test.shape == (300, 112, 112, 1)
        assert x_test.min() == pytest.approx(-0.76292, abs=1e-5) and x_test.max() < 0.765
    # a second build from scratch gives the same bytes
    first = sums
    for name in SMALL:
        (work / "results" / name).unlink()
    again = run_snakemake(work, "--cores", "2", "all")
    assert again.returncode == 0, again.stderr[-3000:]
    assert (work / "results" / "SHA256SUMS").read_text().splitlines() == first


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("results/mnist_large_scale_te0_outsize112-112_scte1p000.h5", "test count (te) is 0"),
        ("results/mnist_large_scale_te10_outsize112-112_scte0p000.h5", "scale of zero"),
        ("results/mnist_large_scale_te10001_outsize112-112_scte1p000.h5", "10001 test images asked for"),
        ("results/mnist_large_scale_tr60000_vl10_te10_outsize112-112_sctr1p000_scte1p000.h5", "60000 train images asked for"),
        ("results/mnist_large_scale_te10_outsize112x112_scte1p000.h5", "fits no pattern"),
        ("results/kmnist_te10_outsize112-112_scte1p000.h5", "known prefixes"),
    ],
)
def test_bad_target_names_fail_before_any_work(tmp_path, target, message):
    work = make_workdir(tmp_path, None)
    run = run_snakemake(work, "--cores", "1", target)
    assert run.returncode != 0
    assert message in run.stderr + run.stdout
    assert not (work / "results").exists() and not (work / "resources").exists()
