"""Snakemake end to end: the targets, small files of all three patterns, checks, bad names."""

import json
import shutil
import subprocess

import h5py
import numpy as np
import pytest
from matplotlib.image import imread

from conftest import REPO, make_workdir, run_snakemake
from mnist_large_scale.names import PUBLISHED_TEST_SCALES, scale_tag

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
        # the licences reach a file built by the workflow (the build rule's params carry MNIST's)
        assert "CC BY-SA 3.0" in h5.attrs["license"] and "Zenodo record 3820247" in h5.attrs["license"]
    check_figures_report_and_logs(work)
    # a second build from scratch gives the same bytes
    first = sums
    for name in SMALL:
        (work / "results" / name).unlink()
    again = run_snakemake(work, "--cores", "2", "all")
    assert again.returncode == 0, again.stderr[-3000:]
    assert (work / "results" / "SHA256SUMS").read_text().splitlines() == first


def check_figures_report_and_logs(work):
    """After `all` on SMALL: figures of the expected pixel sizes, the summary, the report, readable logs."""
    figures = work / "results" / "figures"
    stems = [name.removesuffix(".h5") for name in SMALL]
    expected = {
        f"{stems[0]}.montage.png": (44 + 8 * 66 + 2, 640),  # 64 x 64 tiles, 8 x 8, title-wide frame
        f"{stems[1]}.montage.png": (44 + 7 * 114 + 2, 8 * 114 + 2),  # te50: 50 tiles in 7 rows
        f"{stems[2]}.montage.png": (44 + 8 * 114 + 2, 8 * 114 + 2),
        f"{stems[1]}.scales.png": (500, 1200),  # the only range file
        "scale_ladder.png": (64 + 10 * 114 + 2, 28 + 17 * 114 + 2),
        "size_vs_scale.png": (520, 1200),
    }
    assert sorted(path.name for path in figures.iterdir()) == sorted(expected)
    for name, shape in expected.items():
        assert imread(figures / name).shape[:2] == shape, name
    ladder_log = (work / "logs" / "figures" / "scale_ladder.log").read_text()
    assert ladder_log.count(": recipe") == 17  # no target is a 112-px file at a published test scale
    summary = (work / "results" / "validation" / "summary.tsv").read_text().splitlines()
    assert len(summary) == 1 + 3 * len(SMALL)
    report = run_snakemake(work, "--report", "report.html")
    assert report.returncode == 0, report.stderr[-3000:]
    html = (work / "report.html").read_text()
    assert len(html) > 1_000_000  # the figures are embedded
    for needle in ("rulegraph_spec", "size_vs_scale.png", "scale_ladder.png", "summary.html", f"{stems[1]}.scales.png", "Montages", "Validation"):
        assert needle in html, needle
    for name in SMALL:
        log = (work / "logs" / "build" / name.replace(".h5", ".log")).read_text()
        assert "\r" not in log and " left, " in log and log.rstrip().endswith("img/s"), log


def test_the_scale_ladder_of_the_published_targets_reads_the_17_test_only_files(tmp_path):
    # in a fresh copy: the checkout's own results/ may hold built files
    dry = run_snakemake(make_workdir(tmp_path, None), "-n", "results/figures/scale_ladder.png")
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    stats = lines[lines.index("Job stats:") + 3 : lines.index("Job stats:") + 3 + 4]
    counts = dict(line.split() for line in stats if len(line.split()) == 2)
    assert counts["build_file"] == "17" and counts["scale_ladder"] == "1"
    built = {line.split()[-1] for line in lines if line.strip().startswith("output: results/") and line.strip().endswith(".h5")}
    assert built == {f"results/mnist_large_scale_te10000_outsize112-112_scte{scale_tag(s)}.h5" for s in PUBLISHED_TEST_SCALES}


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


def test_a_fetch_that_runs_again_still_builds_what_the_target_needs(tmp_path, mnist_dir):
    """When the fetch of a raw file runs again (here: its script changed, under the code trigger;
    in practice also a fetch killed after its file was complete), the same run must still build
    the target. With raw inputs marked ancient(), Snakemake 9 planned the fetch alone."""
    work = make_workdir(tmp_path, None, {"base_data": {"mnist": {"local_dir": str(mnist_dir)}}})
    raw = [f"resources/mnist/{path.name}" for path in mnist_dir.iterdir()]
    fetched = run_snakemake(work, "--cores", "1", *raw)
    assert fetched.returncode == 0, fetched.stderr[-3000:]
    with open(work / "workflow" / "scripts" / "fetch_raw.py", "a") as script:
        script.write("# edited\n")
    target = "results/validation/mnist_large_scale_te20_outsize32-32_scte2p000.json"
    triggers = ("--rerun-triggers", "code", "mtime", "params", "input", "software-env")
    dry = run_snakemake(work, "-n", *triggers, "--", target)
    assert dry.returncode == 0, dry.stderr[-3000:]
    lines = dry.stdout.splitlines()
    stats = lines[lines.index("Job stats:") + 3 :]
    counts = dict(line.split() for line in stats[: stats.index("")] if len(line.split()) == 2)
    assert counts.get("fetch_raw") == "4" and counts.get("build_file") == "1" and counts.get("validate_file") == "1", counts


@pytest.mark.slow
def test_the_compact_variant_builds_validates_and_loads(tmp_path, mnist_dir):
    """config.compact.yaml (docs/storage.md): float32, gzip after shuffle, one image a chunk; validated and read back."""
    from mnist_large_scale import MNISTLargeScale

    work = make_workdir(tmp_path, mnist_dir)
    shutil.copy(REPO / "config.compact.yaml", work / "config.compact.yaml")
    name = "mnist_large_scale_tr60_vl20_te20_outsize112-112_sctr2p000_scte2p000"
    done = run_snakemake(work, "--cores", "2", f"results/validation/{name}.json", "--configfile", "config.compact.yaml")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((work / "results/validation" / f"{name}.json").read_text())
    assert all(check["ok"] for check in report["checks"]), [check for check in report["checks"] if not check["ok"]]
    assert any("gzip, shuffled, one image a chunk" in check["check"] for check in report["checks"])
    with h5py.File(work / "results" / f"{name}.h5", "r") as h5:
        x = h5["x_train"]
        assert x.dtype == np.float32 and x.compression == "gzip" and x.shuffle and x.chunks == (1, 112, 112, 1)
        reference = x[()]
    dataset = MNISTLargeScale(work / "results" / f"{name}.h5", "train")
    assert not dataset.contiguous and np.array_equal(dataset[0:60][0][:, 0], reference[..., 0])
