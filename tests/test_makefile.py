"""The Makefile on a fresh machine: which Python it takes, and what it says when something is missing."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO

MAKE = shutil.which("make")
pytestmark = pytest.mark.skipif(MAKE is None, reason="needs make")


def fake_python(folder: Path, name: str, version: str | None) -> None:
    """A command ``name`` that answers ``version`` to any question, or, for None, fails like a pyenv shim
    of a version that is not selected."""
    script = folder / name
    if version is None:
        script.write_text(f'#!/bin/sh\necho "pyenv: {name}: command not found" >&2\nexit 127\n')
    else:
        script.write_text(f"#!/bin/sh\necho {version}\n")
    script.chmod(0o755)


def copy_of_the_repository(tmp_path: Path) -> Path:
    """What `make .venv/.installed` reads: the Makefile, envs/ and pyproject.toml."""
    work = tmp_path / "repo"
    work.mkdir()
    shutil.copy2(REPO / "Makefile", work / "Makefile")
    shutil.copy2(REPO / "pyproject.toml", work / "pyproject.toml")
    shutil.copytree(REPO / "envs", work / "envs")
    return work


def run(args, cwd, path_first: Path, **env) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key != "PYTHON"}
    environment.update(PATH=f"{path_first}{os.pathsep}{os.environ['PATH']}", **env)
    return subprocess.run(args, cwd=cwd, env=environment, capture_output=True, text=True, timeout=60)


def test_make_stops_at_once_naming_the_python_3_10_it_found(tmp_path):
    fakes = tmp_path / "bin"
    fakes.mkdir()
    for name in ("python3.13", "python3.12", "python3.11"):
        fake_python(fakes, name, None)
    fake_python(fakes, "python3", "3.10")
    work = copy_of_the_repository(tmp_path)
    done = run([MAKE, ".venv/.installed"], work, fakes)
    assert done.returncode != 0
    assert "needs Python >= 3.11" in done.stderr
    assert "python3 is Python 3.10" in done.stderr
    assert "make PYTHON=" in done.stderr  # how to name another one
    assert not (work / ".venv").exists(), "nothing is installed before the check"


def test_make_stops_when_the_named_python_is_too_old_even_if_a_newer_one_is_on_path(tmp_path):
    fakes = tmp_path / "bin"
    fakes.mkdir()
    fake_python(fakes, "python3.12", "3.12")
    fake_python(fakes, "old-python", "3.9")
    work = copy_of_the_repository(tmp_path)
    done = run([MAKE, ".venv/.installed", f"PYTHON={fakes / 'old-python'}"], work, fakes)
    assert done.returncode != 0
    assert "is Python 3.9" in done.stderr and "needs Python >= 3.11" in done.stderr
    assert not (work / ".venv").exists()


def test_the_first_new_enough_python_is_taken_and_shims_that_do_not_run_are_skipped(tmp_path):
    fakes = tmp_path / "bin"
    fakes.mkdir()
    fake_python(fakes, "python3.13", None)
    fake_python(fakes, "python3.12", "3.12")
    fake_python(fakes, "python3.11", "3.11")
    fake_python(fakes, "python3", "3.10")
    done = run(["sh", str(REPO / "envs/find-python.sh")], tmp_path, fakes)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(fakes / "python3.12")


def test_a_python_3_9_answer_is_not_read_as_new_enough_nor_is_3_1(tmp_path):
    fakes = tmp_path / "bin"
    fakes.mkdir()
    for name in ("python3.13", "python3.12", "python3.11"):
        fake_python(fakes, name, None)
    for version in ("3.9", "3.1"):
        fake_python(fakes, "python3", version)
        done = run(["sh", str(REPO / "envs/find-python.sh")], tmp_path, fakes)
        assert done.returncode == 1 and f"is Python {version};" in done.stderr, done.stderr


def test_make_dag_says_that_it_needs_graphviz_dot_when_it_is_missing(tmp_path):
    work = copy_of_the_repository(tmp_path)
    # No dot (nor anything else) on PATH; make runs its recipes with /bin/sh.
    done = subprocess.run([MAKE, "dag"], cwd=work, env={"PATH": str(tmp_path / "nothing")}, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "make dag needs graphviz's dot" in done.stderr
    assert not (work / ".venv").exists(), "it stops before setting anything up"
