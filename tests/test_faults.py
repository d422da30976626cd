"""Faults and bad input (issue #4): nothing lost, nothing half-written, every error clear.

Each test injects one kind of fault into a real Snakemake run in a copy of the
workflow: SIGKILL of the whole build, damaged raw files, bad sources, a full
disk, bad names and config, damaged outputs, two builds at once.  The numbers
each test measured are printed (``pytest -s``) as ``FAULTS: {...}``.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from conftest import REPO, SNAKEMAKE, _merge, make_workdir, run_snakemake
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
# Small chunks: a build job writes its temporary .part file in many steps, so kills land mid-write.
KILL_CONFIG = {"targets": KILL_TARGETS, "output": {"chunk_images": 100}}
# Phase aimed at, the rule that runs it, a file whose appearance starts the clock (None: the
# job's start), the longest wait after that (s).  Build kills wait for the writer's .part file;
# the first one strikes at once, so that at least one kill certainly lands mid-write.
KILL_PLAN = [
    ("fetch", "fetch_raw", None, 1.2),
    ("build", "build_file", "results/.*.h5.*.part", 0.15),
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
def test_a_damaged_raw_file_in_the_cache_stops_the_run_before_any_job_deletes_nothing_and_is_fetched_again(tmp_path, mnist_dir, pinned, raw_name, mode, npm_registry):
    work = make_workdir(tmp_path, mnist_dir, {"targets": [SMALL]})
    first = run_snakemake(work, "--cores", "2", "all")
    assert first.returncode == 0, first.stderr[-3000:]
    sums = (work / "results" / "SHA256SUMS").read_bytes()
    raw = work / "resources" / "mnist" / raw_name
    # A flipped label byte keeps the IDX file well-formed: only the checksum can tell.
    damage(raw, raw.stat().st_size // 2, count=1) if mode == "flip" else damage(raw, raw.stat().st_size // 2, mode="truncate")
    damaged = sha256_file(raw)
    assert damaged != pinned[raw_name]
    built = {path: sha256_file(path) for path in final_files(work) if path.parts[-2] != "mnist"}
    cached = f"resources/mnist/{raw_name}"
    command = f"mv {cached} {cached}.mismatch && snakemake --cores 1 {cached}"

    # The next run names the damage and leaves the file alone; the damaged file is newer than the
    # outputs, so their jobs would run again, and Snakemake would delete their outputs first: the
    # run stops while it plans them, naming the file and the way to fetch it again that deletes
    # nothing.  Every file built from the good bytes stays, byte for byte.
    refused = run_snakemake(work, "--cores", "2", "all")
    output = refused.stdout + refused.stderr
    assert refused.returncode != 0, output[-3000:]
    assert f"raw file {cached} is damaged, or its pin" in output and command in output, output[-3000:]
    assert "--force" not in output
    assert sha256_file(raw) == damaged
    assert {path: sha256_file(path) for path in built} == built and temp_files(work) == []
    assert not (work / "logs" / "build" / SMALL.replace(".h5", ".log")).read_text().count("damaged"), "a job ran"
    # The command fetches it again (and only it), keeping the damaged copy; the rebuild gives the same bytes.
    os.rename(raw, f"{raw}.mismatch")
    fetched = run_snakemake(work, "--cores", "1", cached)
    assert fetched.returncode == 0, fetched.stdout[-3000:] + fetched.stderr[-3000:]
    assert sha256_file(raw) == pinned[raw_name] and sha256_file(f"{raw}.mismatch") == damaged
    assert "accepted from npm" in (work / "logs" / "fetch" / "mnist" / f"{raw_name}.log").read_text()
    rebuilt = run_snakemake(work, "--cores", "2", "all")
    assert rebuilt.returncode == 0, rebuilt.stdout[-3000:] + rebuilt.stderr[-3000:]
    assert (work / "results" / "SHA256SUMS").read_bytes() == sums
    assert reports_ok(work, [SMALL]) and temp_files(work) == []
    report(test="corrupt cache", raw=raw_name, mode=mode, detected=True, left_in_place=True, refused_before_jobs=True, outputs_kept=len(built), refetched=True)


def test_a_wrong_pin_deletes_nothing_and_the_fetch_says_the_pin_may_be_wrong(tmp_path, mnist_dir, pinned):
    """A well-formed but wrong pin: the good file is kept, no output is deleted, and the sources' agreement is named."""
    served = tmp_path / "served"
    for folder in ("one", "two"):
        (served / folder).mkdir(parents=True)
        (served / folder / f"{TEST_LABELS}.gz").write_bytes(gzip.compress((mnist_dir / TEST_LABELS).read_bytes()))
    with http_server(served) as url:
        wrong = {"base_data": {"mnist": {"mirrors": [f"{url}/one/", f"{url}/two/"], "npm_package": "", "files": {"test_labels": {"sha256": pinned[TRAIN_LABELS]}}}}}
        work = make_workdir(tmp_path, mnist_dir, {"targets": [SMALL]})
        assert run_snakemake(work, "--cores", "2", "all").returncode == 0
        built = {path: sha256_file(path) for path in final_files(work)}
        config = yaml.safe_load((work / "config.yaml").read_text())
        _merge(config, wrong)
        config["base_data"]["mnist"]["files"]["test_labels"].pop("gz_md5", None)
        (work / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        refused = run_snakemake(work, "--cores", "2", "all")
        output = refused.stdout + refused.stderr
        assert refused.returncode != 0 and "or its pin (base_data.mnist.files) is wrong" in output, output[-3000:]
        assert {path: sha256_file(path) for path in built} == built, "a file was deleted or changed"
        raw = work / "resources" / "mnist" / TEST_LABELS
        os.rename(raw, f"{raw}.mismatch")  # the advice
        fetched = run_snakemake(work, "--cores", "1", f"resources/mnist/{TEST_LABELS}")
    output = fetched.stdout + fetched.stderr
    assert fetched.returncode != 0
    assert "2 sources delivered the same bytes" in output and "the pin (base_data.mnist.files.test_labels) may be wrong" in output, output[-3000:]
    assert sha256_file(f"{raw}.mismatch") == pinned[TEST_LABELS] and not raw.exists() and temp_files(work) == []
    report(test="wrong pin", files_deleted=0, pin_named=True)


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
    # The folder is not the workflow's cache, where no rule writes: the advice names the cache's copy.
    assert f"replace it with the pinned file ({base.file_by_name(TEST_LABELS).size} bytes" in str(caught.value)
    assert f"snakemake --cores 1 resources/mnist/{TEST_LABELS}` fetches" in str(caught.value) and "--force" not in str(caught.value)
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
    """A kill leaves its temporary file; on a disk with room for one copy of the file, the rebuild still fits."""
    from mnist_large_scale.atomic import temporary_path
    from mnist_large_scale.build import build_file

    folder = disk(tmp_path / "disk", 24)
    name = "mnist_large_scale_te100_outsize112-112_scte2p000.h5"  # 10.1 MB
    target = folder / name
    killed = subprocess.Popen(["true"])
    killed.wait()
    stale = temporary_path(target, pid=killed.pid)
    stale.write_bytes(bytes(10 * 2**20))  # what the killed build had written
    filler = fill(folder, leave_mb=6)  # 6 MB free, 16 MB with the stale temporary file
    build_file(parse_name(name), mnist_base, mnist_paths, target, Recipe(), transform_images, seed=1)
    assert target.stat().st_size > 10 * 10**6 and not stale.exists()
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
    "name: .h5.h5": (_target("mnist_large_scale_te10_outsize32-32_scte1p000.h5.h5"), "'mnist_large_scale_te10_outsize32-32_scte1p000.h5.h5' fits no pattern"),
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
    # beyond the engine's bound, beyond the run's memory
    "scale: above the engine's bound": (_target("mnist_large_scale_te10_outsize32-32_scte16p000.h5"), "scale 16 is above 12"),
    "scale: range above the bound": (
        _target("mnist_large_scale_tr10_vl10_te10_outsize32-32_sctr1p000-300p000_scte1p000.h5"),
        "scale 300 is above 12",
    ),
    "size: more memory than the run has": (
        _target("mnist_large_scale_te100_outsize5000-5000_scte1p000.h5"),
        "needs about 47,894 MB (a build job's peak at its size, scale and output.chunk_images, benchmarks/job_memory.json), more than the 8,000 MB",
    ),
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
    "source: mirror scheme": (
        _config(base_data={"mnist": {"mirrors": ["ftp://example.org/mnist/"]}}),
        "base_data.mnist.mirrors.0: 'ftp://example.org/mnist/' does not match: it must be an https:// URL, or an http:// URL on this machine",
    ),
    "source: bad sha256 pin": (_config(base_data={"mnist": {"files": {"train_images": {"sha256": "abc"}}}}), "'abc' does not match"),
    "split: empty": (_config(base_data={"mnist": {"splits": {"val": {"start": 50000, "stop": 50000}}}}), "splits.val is empty"),
    "split: val inside train": (
        _config(base_data={"mnist": {"splits": {"val": {"start": 40000, "stop": 60000}}}}),
        "splits.train [0, 50000) and splits.val [40000, 60000) overlap in train-images-idx3-ubyte ([40000, 50000), 10000 images)",
    ),
    "split: val = test = train": (
        _config(
            base_data={
                "mnist": {
                    "splits": {
                        split: {"images": "train-images-idx3-ubyte", "labels": "train-labels-idx1-ubyte", "start": 0, "stop": 10000}
                        for split in ("train", "val", "test")
                    }
                }
            }
        ),
        "splits.test [0, 10000) and splits.train [0, 10000) overlap in train-images-idx3-ubyte",
    ),
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
    "config: not YAML": ({"text": "targets: [unclosed\n"}, "config.yaml, line 2, column 1: not valid YAML"),
    "config: not YAML, line 3": ({"text": "targets: []\nscale_seed: 1\nrecipe: {order: 3\n"}, "config.yaml, line 4, column 1: not valid YAML"),
    # --config: Snakemake gives nested values as strings; a string that is not a number stays one
    "command line: a word for a number": ({"cli": ["--config", "recipe={sigma_per_scale: abc}"]}, "config: recipe.sigma_per_scale: 'abc' is not of type 'number'"),
    "command line: unknown key": ({"cli": ["--config", "sigma=1"]}, "config: (top level): Additional properties are not allowed ('sigma' was unexpected)"),
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
    command = [*prefix, SNAKEMAKE, "--cores", "1", *case.get("args", ["all"]), *case.get("cli", [])]
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
    # One message, not the schema and the config (an unknown key once printed 710 lines).
    assert len(run["output"].splitlines()) <= 40, f"{len(run['output'].splitlines())} lines:\n{run['output'][-3000:]}"


def test_numbers_given_on_the_command_line_are_numbers(tmp_path, mnist_dir):
    """Snakemake gives --config's nested values as strings ('1.0'); the schema's numbers and booleans take them."""
    work = make_workdir(tmp_path, mnist_dir, {"targets": [SMALL]})
    run = run_snakemake(work, "-n", "--cores", "1", "all", "--config", "recipe={sigma_per_scale: 1.0, clip: false, order: 1}", "scale_seed=7")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert not (work / "results").exists()


def test_symlinked_results_and_resources_folders_end_a_failed_run_with_its_own_error(tmp_path):
    """results/ and resources/mnist/ on another disk (symlinks), a fetch that fails: the run ends with the
    fetch's error, not Snakemake's NotADirectoryError from removing the empty symlinked folder."""
    overrides = {"targets": [SMALL], "base_data": {"mnist": {"mirrors": ["http://127.0.0.1:9/"], "npm_package": ""}}}
    work = make_workdir(tmp_path, None, overrides)
    elsewhere = tmp_path / "bigger_disk"
    for folder in ("results", "resources/mnist"):
        (elsewhere / folder).mkdir(parents=True)
        (work / folder).parent.mkdir(parents=True, exist_ok=True)
        (work / folder).symlink_to(elsewhere / folder)
    run = run_snakemake(work, "--cores", "1", "all")
    output = run.stdout + run.stderr
    assert run.returncode != 0 and "no source delivered" in output
    assert "NotADirectoryError" not in output and "Traceback" not in output.split("Exiting because a job execution failed")[-1], output[-3000:]
    assert (work / "results").is_symlink() and (work / "resources" / "mnist").is_symlink()
    report(test="symlinked folders", failed_with_own_error=True)


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

#: Damaged copies of a built file, as a user may come to hold them, and what every reader must say.
DAMAGED_FILES = {
    "truncated": "HDF5 cannot open it",
    "text": "not an HDF5 file",
    "wrong layout": "not the MNIST Large Scale layout",
    "bit-flipped exponent": "CRC-32",
}


@pytest.fixture(scope="module")
def damaged_copies(tmp_path_factory, mnist_base, mnist_paths) -> dict[str, Path]:
    """Each kind of DAMAGED_FILES under a name that is not one of the 21, and the intact file."""
    from mnist_large_scale.build import build_file

    folder = tmp_path_factory.mktemp("damaged")
    intact = folder / "intact" / SMALL
    intact.parent.mkdir()
    build_file(parse_name(SMALL), mnist_base, mnist_paths, intact, Recipe(), transform_images, seed=1)
    copies = {}
    for kind in DAMAGED_FILES:
        path = folder / kind.replace(" ", "_") / SMALL
        path.parent.mkdir()
        shutil.copy(intact, path)
        copies[kind] = path
    damage(copies["truncated"], intact.stat().st_size // 2, mode="truncate")
    copies["text"].write_text("x_test,y_test\n0.1,7\n")
    with h5py.File(copies["wrong layout"], "w") as h5:
        h5["images"] = np.zeros((4, 28, 28))
    damage(copies["bit-flipped exponent"], _x_test_middle(intact) + 7, count=1)  # the top byte: sign and exponent
    return {"intact": intact, **copies}


def _command(capsys, *args: str) -> tuple[int, str]:
    from mnist_large_scale.__main__ import main

    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize("kind", list(DAMAGED_FILES))
def test_verify_inspect_and_the_loader_name_a_damaged_file_and_fail_without_a_traceback(damaged_copies, capsys, kind):
    from mnist_large_scale.integrity import DamagedFile
    from mnist_large_scale.loader import MNISTLargeScale, load

    path, message = str(damaged_copies[kind]), DAMAGED_FILES[kind]
    outcomes = {}
    for label, args in {
        "verify": ["verify", path],
        "verify --name": ["verify", path, "--name", "mnist_large_scale_te10000_outsize112-112_scte2p000.h5"],
        "inspect": ["inspect", path],
        "inspect --json": ["inspect", path, "--json"],
    }.items():
        code, output = _command(capsys, *args)
        outcomes[label] = code
        assert code == 1 and message in output and "Traceback" not in output, f"{label}: exit {code}:\n{output}"
        assert "DAMAGED" in output or "is damaged" in output, output
    for label, read in {"load": lambda: load(path, "test"), "MNISTLargeScale(check='crc')": lambda: MNISTLargeScale(path, "test", check="crc")}.items():
        with pytest.raises(DamagedFile, match=message) as caught:
            read()
        assert str(caught.value).startswith(f"{path} is damaged: ")
        outcomes[label] = "DamagedFile"
    report(test="damaged file readers", kind=kind, outcomes=outcomes)


def test_the_intact_file_passes_every_reader_at_every_check(damaged_copies, capsys):
    from mnist_large_scale.loader import MNISTLargeScale, load

    path = str(damaged_copies["intact"])
    for check in ("layout", "crc", "values"):
        assert _command(capsys, "inspect", path, "--check", check)[0] == 0
        assert _command(capsys, "verify", path, "--check", check)[0] == 0  # no reference: not one of the 21 names
        assert load(path, "test", check=check)[0].shape == (200, 32, 32, 1)
        assert len(MNISTLargeScale(path, "test", check=check)) == 200
    assert "integrity   intact (values check)" in _command(capsys, "inspect", path)[1]


def test_a_bit_flip_that_the_stored_crc_cannot_see_is_still_out_of_range(damaged_copies, tmp_path, capsys):
    """A published file has no CRC-32: the value range is what shows a flipped exponent there."""
    path = tmp_path / SMALL
    shutil.copy(damaged_copies["bit-flipped exponent"], path)
    with h5py.File(path, "r+") as h5:
        for key in h5:
            h5[key].attrs.pop("crc32", None)
    code, output = _command(capsys, "inspect", str(path))
    assert code == 1 and "x_test: 1 values outside [-1, 1]" in output and "no stored CRC-32" in output
    assert _command(capsys, "inspect", str(path), "--check", "crc")[0] == 0  # nothing to compare at that level



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

    h5_path.unlink()  # the remedy of docs/troubleshooting.md
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
    recipe = Recipe.from_config(yaml.safe_load((work / "config.yaml").read_text())["recipe"])  # the one it was built with
    result = validate_file(h5_path, base, raw_paths_of(work / "resources" / "mnist", base), recipe, seed=None)
    failed = [c["check"] for c in result["checks"] if not c["ok"]]
    assert failed and all("recomputed" in name for name in failed), failed


# --- 7. Two builds at once -----------------------------------------------------------------------


def _build_process(name: str, raw_dir: Path, out: Path) -> subprocess.Popen:
    """``python -m mnist_large_scale build`` of ``name`` into ``out``, five images a block (many writes)."""
    command = [sys.executable, "-m", "mnist_large_scale", "build", name, "--raw-dir", str(raw_dir), "--out", str(out), "--chunk-images", "5"]
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(condition, timeout: float = 120, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.002)


def test_two_writers_of_one_file_never_leave_a_half_written_or_missing_file(tmp_path, mnist_dir):
    """Two builds of one name, the second started while the first is mid-write (an orphaned job and its rerun).

    The first writer is stopped (SIGSTOP) as soon as its temporary file holds
    bytes, the second started and let write, then the first resumed: both
    write at once.  A watcher hashes every file that appears under the final
    name: each must be the complete file, and so must the last one.
    """
    name = "mnist_large_scale_te1000_outsize64-64_scte2p000.h5"
    out = tmp_path / name
    seen: dict[tuple[int, int], str] = {}
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            with contextlib.suppress(FileNotFoundError):
                with open(out, "rb") as handle:  # a rename swaps whole files: an open handle holds one
                    identity = os.fstat(handle.fileno())
                    key = (identity.st_dev, identity.st_ino)
                    if key not in seen:
                        seen[key] = hashlib.sha256(handle.read()).hexdigest()
            time.sleep(0.001)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    first = _build_process(name, mnist_dir, out)
    def temporaries() -> set[tuple[int, int]]:
        """The temporary files beside ``out`` that hold bytes, by (device, inode)."""
        found = set()
        for path in tmp_path.glob(f".{name}*.part"):
            with contextlib.suppress(FileNotFoundError):
                if (stat := path.stat()).st_size > 0:
                    found.add((stat.st_dev, stat.st_ino))
        return found

    _wait_for(lambda: temporaries() or first.poll() is not None, what="the first writer's temporary file")
    os.kill(first.pid, signal.SIGSTOP)
    assert first.poll() is None, "the first writer ended before it could be stopped mid-write"
    first_file = next(iter(temporaries()))
    second = _build_process(name, mnist_dir, out)
    _wait_for(lambda: temporaries() - {first_file} or second.poll() is not None, what="the second writer's temporary file")
    both_writing = bool(temporaries() - {first_file})
    os.kill(first.pid, signal.SIGCONT)
    results = [process.communicate(timeout=300) + (process.returncode,) for process in (first, second)]
    done.set()
    watcher.join()
    final = sha256_file(out) if out.exists() else None
    assert seen and set(seen.values()) == {final}, f"{len(seen)} files seen under the final name, {len(set(seen.values()))} different; last {final}"
    assert [code for *_, code in results] == [0, 0], results
    assert both_writing, "the two writers did not overlap"
    with h5py.File(out, "r") as h5:
        assert h5["x_test"].shape == (1000, 64, 64, 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name], "a temporary file outlived its writer"
    report(test="two writers of one file", files_seen_under_final_name=len(seen), all_complete=True)



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
