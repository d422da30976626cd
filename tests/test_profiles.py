"""What profiles/slurm asks of a cluster, as Snakemake plans it (dry runs; tests/test_slurm.py runs it on SLURM)."""

import re

import pytest

from conftest import make_workdir, run_snakemake
from mnist_large_scale.build import job_memory_mb, job_runtime_min
from mnist_large_scale.names import parse_name

SLURM = ("--profile", "profiles/slurm", "--workflow-profile", "none")
RANGE_FILE = "mnist_large_scale_tr200_vl100_te100_outsize224-224_sctr1p000-4p000_scte1p000-4p000.h5"


def planned_jobs(output: str) -> list[tuple[str, dict[str, str]]]:
    """``(rule, resources)`` of every job of a dry run (which calls every rule 'rule', local or not)."""
    jobs = []
    for block in re.split(r"\n(?=rule \w+:\n)", "\n" + output):
        head = re.match(r"rule (\w+):\n", block)
        if head:
            resources = re.search(r"^\s+resources: (.*)$", block, re.MULTILINE)
            pairs = dict(item.split("=", 1) for item in resources.group(1).split(", ")) if resources else {}
            jobs.append((head.group(1), pairs))
    return jobs


@pytest.mark.parametrize("environment", [{}, {"SBATCH_PARTITION": "gpu-long", "SBATCH_ACCOUNT": "proj_42"}])
def test_the_slurm_profile_asks_for_the_declared_resources_and_the_partition_and_account_of_the_environment(tmp_path, monkeypatch, environment):
    monkeypatch.delenv("SBATCH_PARTITION", raising=False)
    monkeypatch.delenv("SBATCH_ACCOUNT", raising=False)
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    work = make_workdir(tmp_path, None, {"targets": [RANGE_FILE]})
    dry = run_snakemake(work, *SLURM, "-n", "all")
    assert dry.returncode == 0, dry.stderr[-3000:]
    jobs = planned_jobs(dry.stdout)
    # 4 fetches, a build, a validation, 3 summaries (checksums, table, reference check), 4 figures, all
    assert len(jobs) == 14, [rule for rule, _ in jobs]
    spec = parse_name(RANGE_FILE)
    for rule, resources in jobs:
        if rule in ("build_file", "validate_file"):
            # the block is the largest split (200 images), at the top of the range, s = 4
            assert resources["mem_mb"] == str(job_memory_mb((224, 224), 1000, scale=4.0, images=200)) == "348"
            assert resources["runtime"] == str(job_runtime_min(spec.out_shape, 400, scale=4.0)) == "3"
            assert resources["cpus_per_task"] == "1"
        elif rule != "fetch_raw":  # the profile's defaults for a rule that declares nothing
            assert (resources["mem_mb"], resources["runtime"]) == ("1000", "10"), rule
        assert resources.get("slurm_partition") == environment.get("SBATCH_PARTITION"), rule
        assert resources.get("slurm_account") == environment.get("SBATCH_ACCOUNT"), rule


def test_runtimes_grow_with_the_pixels_and_the_scale_of_a_file():
    assert job_runtime_min((112, 112), 202, scale=2.0) == 3  # the tests' small files
    assert job_runtime_min((112, 112), 10_002, scale=0.5) == 5  # a published test-only file
    assert job_runtime_min((112, 112), 10_002, scale=8.0) == 6
    assert job_runtime_min((112, 112), 70_000, scale=4.0) == 26  # a published training file
    assert job_runtime_min((448, 448), 70_000, scale=4.0) == 201


def test_a_cluster_job_reading_the_workflow_does_not_hash_the_raw_files(tmp_path, mnist_dir):
    """The main process names a damaged raw file (and stops); a job (--mode remote, as the SLURM plugin runs it) skips the hashing."""
    work = make_workdir(tmp_path, mnist_dir)
    raw = work / "resources" / "mnist" / "t10k-labels-idx1-ubyte"
    data = bytearray(raw.read_bytes())
    data[100] ^= 0xFF
    raw.unlink()  # a hard link to the shared copy: write a new file instead
    raw.write_bytes(bytes(data))
    target = "results/mnist_large_scale_te20_outsize32-32_scte2p000.h5"
    main = run_snakemake(work, "-n", target)
    # the main process names it, and stops while planning the jobs that would read it
    assert main.returncode != 0 and "t10k-labels-idx1-ubyte is damaged" in main.stderr, main.stderr[-3000:]
    job = run_snakemake(work, "-n", "--mode", "remote", target)
    assert job.returncode == 0, job.stderr[-3000:]
    assert "damaged" not in job.stderr + job.stdout
