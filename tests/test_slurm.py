"""The workflow on a real SLURM cluster, through profiles/slurm and snakemake-executor-plugin-slurm.

`make test-slurm` (pytest --run-slurm) starts a private one-node SLURM with accounting
(tests/slurm_cluster.py: MariaDB, slurmdbd, slurmctld, slurmd, munge; stopped and removed at
the end, pass or fail) and runs Snakemake on it as a user would, `snakemake --profile
profiles/slurm`, with the partition and the account in SBATCH_PARTITION and SBATCH_ACCOUNT.
The node has 2 CPUs and 4000 MB; sacct is the plugin's status query, as on real clusters.

Every snakemake run is ended with SIGINT (which cancels its SLURM jobs) when it takes longer
than RUN_TIMEOUT; every other wait has its own timeout.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from conftest import REPO, SNAKEMAKE, make_workdir
from mnist_large_scale.build import job_memory_mb, job_runtime_min
from mnist_large_scale.names import parse_name
from slurm_cluster import ACCOUNT, NODE, PARTITION, SlurmCluster, end_process, missing_programs, wait_until

pytestmark = pytest.mark.slurm

#: Test-only files at three scales and a range file: 4 builds, 4 validations, the manifest.
FILES = [
    "mnist_large_scale_te200_outsize112-112_scte0p500.h5",
    "mnist_large_scale_te200_outsize112-112_scte2p000.h5",
    "mnist_large_scale_te200_outsize112-112_scte8p000.h5",
    "mnist_large_scale_tr200_vl100_te100_outsize112-112_sctr1p000-4p000_scte1p000-4p000.h5",
]
STEMS = [name.removesuffix(".h5") for name in FILES]
#: `all` of a config whose targets are FILES: the files, their validations, the manifest, the
#: summary, the reference check and the figures.
TARGETS = ["all"]
#: The rules that run beside Snakemake, not as SLURM jobs.
LOCAL_RULES = ["sha256sums", "validation_summary", "reference_check", "montage", "scale_ladder", "size_vs_scale", "scale_histogram"]
#: The file whose build SLURM kills: 1 GB, so that its .part exists for about a second.
KILLED = "mnist_large_scale_te10000_outsize112-112_scte8p000.h5"
KILLED_TARGET = f"results/validation/{KILLED.removesuffix('.h5')}.json"
#: Seconds one snakemake run may take before it is ended with SIGINT.
RUN_TIMEOUT = 600
#: --slurm-init-seconds-before-status-checks: the plugin's first status query (40 s by default).
STATUS_WAIT = 2
#: Seconds Snakemake is given to notice a job cancelled with scancel (status queries at about 2, 14 and 36 s).
NOTICE_WAIT = 45
#: output.chunk_images of config.yaml, which a job's mem_mb depends on.
CHUNK_IMAGES = yaml.safe_load((REPO / "config.yaml").read_text())["output"]["chunk_images"]
SACCT_FIELDS = "JobID,JobName,Comment,State,ExitCode,Partition,Account,ReqMem,ReqCPUS,AllocCPUS,Timelimit,NodeList,Submit,Start,End,ElapsedRaw"


@dataclass
class Run:
    returncode: int
    output: str
    seconds: float


def interrupt(process: subprocess.Popen) -> None:
    """End a snakemake run as Ctrl-C does (it cancels its SLURM jobs); KILL only if that fails."""
    end_process(process, signal.SIGINT, 60)


def snakemake(work: Path, *args: str, env: dict | None = None, name: str = "run", while_running=None) -> Run:
    """Run snakemake in ``work`` (output to ``work/snakemake-<name>.log``), ended with SIGINT after RUN_TIMEOUT.

    ``while_running(process)``, when given, is called once the process has started; it must
    return (its own waits bounded) while the run goes on.
    """
    log = work / f"snakemake-{name}.log"
    start = time.monotonic()
    with open(log, "w") as out:
        process = subprocess.Popen([SNAKEMAKE, *args], cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            if while_running is not None:
                while_running(process)
            process.wait(timeout=max(1.0, start + RUN_TIMEOUT - time.monotonic()))
        except subprocess.TimeoutExpired:
            interrupt(process)
            pytest.fail(f"snakemake {name} ran over {RUN_TIMEOUT} s and was ended with SIGINT:\n{log.read_text()[-4000:]}")
        except Exception as error:
            interrupt(process)
            raise AssertionError(f"{error}\n--- the output of snakemake {name}:\n{log.read_text()[-4000:]}") from error
        finally:
            interrupt(process)
    return Run(process.returncode, log.read_text(), time.monotonic() - start)


def slurm_args(*extra: str) -> list[str]:
    """The command line a user types, less its targets (and a shorter first status wait)."""
    return ["--profile", "profiles/slurm", "--workflow-profile", "none", "--slurm-init-seconds-before-status-checks", str(STATUS_WAIT), *extra]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def final_files(work: Path) -> dict[str, str]:
    """Every file under results/ by its final name (no hidden .part), with its sha256."""
    results = work / "results"
    return {str(path.relative_to(results)): sha256(path) for path in sorted(results.rglob("*")) if path.is_file() and not path.name.startswith(".")}


def timelimit(minutes: int) -> str:
    """A runtime in minutes as sacct prints Timelimit: [D-]HH:MM:SS."""
    days, rest = divmod(minutes, 24 * 60)
    text = f"{rest // 60:02d}:{rest % 60:02d}:00"
    return f"{days}-{text}" if days else text


def sacct(cluster: SlurmCluster, *args: str) -> list[dict[str, str]]:
    """Jobs as slurmdbd recorded them (allocations only, no steps)."""
    done = cluster.run("sacct", "-X", "-P", "-n", "--clusters", "all", "-S", "now-1days", "-o", SACCT_FIELDS, *args)
    names = SACCT_FIELDS.split(",")
    return [dict(zip(names, line.split("|"), strict=True)) for line in done.stdout.splitlines() if line.strip()]


def run_id(run: Run) -> str:
    """The plugin's run ID: every SLURM job of the run bears it as its job name."""
    found = re.findall(r"SLURM run ID: (\S+)", run.output)
    assert len(found) == 1, run.output[-3000:]
    return found[0]


def declared(rule: str, name: str) -> dict[str, str]:
    """What a build or validation job of ``name`` must have asked SLURM for, as sacct prints it."""
    spec = parse_name(name)
    images = sum(spec.split_count(split) for split in ("train", "val", "test"))
    largest = max(spec.split_scale(split).high for split in ("train", "val", "test"))
    block = max(spec.split_count(split) for split in ("train", "val", "test"))
    return {
        "Partition": PARTITION,
        "Account": ACCOUNT,
        "ReqMem": f"{job_memory_mb(spec.out_shape, CHUNK_IMAGES, scale=largest, images=block)}M",
        "ReqCPUS": "1",
        "AllocCPUS": "1",
        "Timelimit": timelimit(job_runtime_min(spec.out_shape, images, scale=largest)),
        "NodeList": NODE,
    }


# -- fixtures: the cluster, a local build to compare with, the run on the cluster --------------


@pytest.fixture(scope="module")
def cluster():
    missing = missing_programs()
    if missing:
        pytest.fail(f"SLURM is not installed here (missing: {', '.join(missing)}): run envs/install-slurm.sh or make test-slurm")
    # SIGTERM or SIGHUP (a CI time-out, a closed terminal) end the tests as Ctrl-C does, so that the
    # cluster is still stopped and removed; SIGKILL cannot be trapped.
    def interrupted(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {signum: signal.signal(signum, interrupted) for signum in (signal.SIGTERM, signal.SIGHUP)}
    try:
        with SlurmCluster() as running:
            yield running
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    assert not running.dir.exists() and not running.processes(), "the cluster was not removed"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A folder for this module's workflows, deleted at the end (the killed file's builds are 1 GB each)."""
    folder = tmp_path_factory.mktemp("slurm")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def local_build(workspace, mnist_dir):
    """The same targets built on this machine with the default profile, one job at a time."""
    (workspace / "local").mkdir()
    work = make_workdir(workspace / "local", mnist_dir, {"targets": FILES})
    run = snakemake(work, "--cores", "1", *TARGETS, name="local")
    assert run.returncode == 0, run.output[-4000:]
    killed = snakemake(work, "--cores", "2", KILLED_TARGET, name="local-killed")
    assert killed.returncode == 0, killed.output[-4000:]
    return work, run


@pytest.fixture(scope="module")
def slurm_env(cluster):
    return {**cluster.env, "SBATCH_PARTITION": PARTITION, "SBATCH_ACCOUNT": ACCOUNT}


@pytest.fixture(scope="module")
def slurm_build(workspace, mnist_dir, cluster, slurm_env):
    """`snakemake --profile profiles/slurm` of the targets, on the cluster."""
    (workspace / "slurm").mkdir()
    work = make_workdir(workspace / "slurm", mnist_dir, {"targets": FILES})
    run = snakemake(work, *slurm_args(), *TARGETS, env=slurm_env, name="slurm")
    assert run.returncode == 0, run.output[-4000:]
    return work, run


# -- the tests ------------------------------------------------------------------------------------


def test_every_build_and_validation_ran_as_a_slurm_job_with_the_resources_its_rule_declares(cluster, slurm_build, local_build, request):
    work, run = slurm_build
    jobs = [job for job in sacct(cluster) if job["JobName"] == run_id(run)]
    by_comment = {job["Comment"]: job for job in jobs}
    expected = {f"rule_{rule}_wildcards_{stem}": (rule, stem) for stem in STEMS for rule in ("build_file", "validate_file")}
    # exactly the builds and validations, each once: fetch_raw and sha256sums ran on this machine
    assert sorted(job["Comment"] for job in jobs) == sorted(expected), jobs
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+)", run.output)
    assert sorted(submitted) == sorted(job["JobID"] for job in jobs)
    for comment, (rule, stem) in expected.items():
        job = by_comment[comment]
        assert (job["State"], job["ExitCode"]) == ("COMPLETED", "0:0"), job
        assert {key: job[key] for key in declared(rule, stem)} == declared(rule, stem), comment
    for rule in LOCAL_RULES:
        assert f"localrule {rule}:" in run.output, rule
    assert "localrule build_file:" not in run.output and "localrule validate_file:" not in run.output
    # per-job overhead against the local run (docs/cluster.md)
    local = local_build[1]
    waits = [time_of(job["Start"]) - time_of(job["Submit"]) for job in jobs]
    record = {
        "slurm_jobs": len(jobs),
        "local_seconds_cores_1": round(local.seconds, 1),
        "local_jobs": local.output.count("Finished jobid"),
        "slurm_seconds": round(run.seconds, 1),
        "slurm_submit_to_start_mean": round(sum(waits) / len(waits), 2),
        "status_wait_seconds": STATUS_WAIT,
        "load_average_1min": os.getloadavg()[0],
    }
    for rule in ("build_file", "validate_file"):
        record[f"local_{rule}_seconds"] = local_job_seconds(local.output, (rule,))
        record[f"slurm_{rule}_elapsed"] = [int(job["ElapsedRaw"]) for job in jobs if job["Comment"].startswith(f"rule_{rule}_")]
    print(json.dumps(record, indent=2))
    request.config.cache.set("slurm/overhead", record)


def time_of(stamp: str) -> float:
    return time.mktime(time.strptime(stamp, "%Y-%m-%dT%H:%M:%S"))


def local_job_seconds(output: str, rules: tuple[str, ...]) -> list[int]:
    """Wall seconds of each job of ``rules`` in a local run's output (one job at a time; 1 s resolution)."""
    stamp = r"\[(\w{3} \w{3} +\d+ [\d:]+ \d{4})\]\n"
    starts = re.finditer(stamp + r"localrule (\w+):\n(?:.*\n)*?\s+jobid: (\d+)\n", output)
    started = {match[3]: match[1] for match in starts if match[2] in rules}
    finished = {match[2]: match[1] for match in re.finditer(stamp + r"Finished jobid: (\d+) ", output)}

    def seconds(text: str) -> float:
        return time.mktime(time.strptime(text, "%a %b %d %H:%M:%S %Y"))

    return [int(seconds(finished[jobid]) - seconds(start)) for jobid, start in started.items()]


def test_the_outputs_are_byte_identical_to_the_local_build(slurm_build, local_build):
    slurm, local = final_files(slurm_build[0]), final_files(local_build[0])
    local = {name: digest for name, digest in local.items() if KILLED.removesuffix(".h5") not in name}
    assert sorted(slurm) == sorted(local)
    assert len([name for name in slurm if name.endswith(".h5")]) == len(FILES)
    assert {"SHA256SUMS", "reference_check.tsv", "validation/summary.html", "figures/scale_ladder.png"} <= set(slurm)
    assert slurm == local
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=slurm_build[0] / "results", capture_output=True, text=True)
    assert check.returncode == 0 and check.stdout.count(": OK") == len(FILES), check.stdout


def stall_the_build_once_it_writes(cluster: SlurmCluster, work: Path, process: subprocess.Popen) -> str:
    """Wait for the build's half-written .part, then stop (SIGSTOP) every process of its job; its job ID.

    A stalled job (a hung file system, say) is what a time limit is for; stopping it
    also keeps the .part half-written until SLURM kills the job, whatever the timing.
    """
    def parts() -> list[Path]:
        return list((work / "results").glob(f".{KILLED}.*.part"))  # the writer's own temporary name

    def written() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"snakemake ended before the build wrote .{KILLED}.*.part")
        return bool(parts()) and parts()[0].stat().st_size > 0

    wait_until(written, 300, f".{KILLED}.*.part to appear", interval=0.005)
    processes = cluster.job_processes()
    for pid in processes:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGSTOP)
    assert len(set(processes.values())) == 1, processes
    assert parts() and parts()[0].stat().st_size > 0
    return next(iter(processes.values()))


def kill_and_rebuild(cluster, work, env, how: str) -> None:
    """Run the killed file's validation, let SLURM kill its build (``how``), check, then rebuild it."""
    for leftover in (work / "results").rglob(f"*{KILLED.removesuffix('.h5')}*"):
        leftover.unlink()
    before = final_files(work)
    job = {}

    def kill(process):
        job["id"] = stall_the_build_once_it_writes(cluster, work, process)
        if how == "scancel":
            cluster.run("scancel", job["id"])
            # sacct says 'CANCELLED by 0', which plugin 2.8.0 takes for a running job: give it
            # a few status queries, then do what its user would, Ctrl-C (which cancels the rest)
            try:
                process.wait(timeout=NOTICE_WAIT)
            except subprocess.TimeoutExpired:
                job["interrupted"] = True
                interrupt(process)
        # "timeout": SLURM ends the job at its one-minute limit (it checks every 30 s)

    extra = ["--set-resources", "build_file:runtime=1"] if how == "timeout" else []
    killed = snakemake(work, *slurm_args(*extra), "--", KILLED_TARGET, env=env, name=f"killed-{how}", while_running=kill)
    assert killed.returncode != 0, killed.output[-4000:]
    state = {"scancel": "CANCELLED", "timeout": "TIMEOUT"}[how]
    (record,) = sacct(cluster, "-j", job["id"])
    assert record["State"].startswith(state) and record["Comment"] == f"rule_build_file_wildcards_{KILLED.removesuffix('.h5')}", record
    if how == "timeout":
        assert record["Timelimit"] == "00:01:00" and int(record["ElapsedRaw"]) >= 60, record
    if not job.get("interrupted"):
        assert f"SLURM status is: '{state}" in killed.output, killed.output[-4000:]
    print(json.dumps({"killed": how, "sacct_state": record["State"], "snakemake_noticed": not job.get("interrupted")}))
    # nothing new under a final name: no file, no report, no checksum
    assert final_files(work) == before
    rebuilt = snakemake(work, *slurm_args(), KILLED_TARGET, env=env, name=f"rebuilt-{how}")
    assert rebuilt.returncode == 0, rebuilt.output[-4000:]
    assert re.search(r"has been submitted with SLURM jobid \d+", rebuilt.output)
    assert not list((work / "results").glob(".*.part")), "a .part was left behind"
    assert json.loads((work / KILLED_TARGET).read_text())["ok"]


def test_a_build_cancelled_with_scancel_leaves_nothing_under_a_final_name_and_the_next_run_rebuilds_it(cluster, slurm_build, slurm_env, local_build):
    work = slurm_build[0]
    kill_and_rebuild(cluster, work, slurm_env, "scancel")
    assert sha256(work / "results" / KILLED) == sha256(local_build[0] / "results" / KILLED)


def test_a_build_over_its_time_limit_leaves_nothing_under_a_final_name_and_the_next_run_rebuilds_it(cluster, slurm_build, slurm_env, local_build):
    work = slurm_build[0]
    kill_and_rebuild(cluster, work, slurm_env, "timeout")
    assert sha256(work / "results" / KILLED) == sha256(local_build[0] / "results" / KILLED)
