"""The environment: top-level pins, the lock derived from them, the conda env, and what is installed."""

import re
from importlib import metadata

import yaml
from packaging.markers import Marker, default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import REPO

LOCK_LINE = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+)(?:\s*;\s*(?P<marker>[^\\]+?))?\s*\\?$")


def pins(lines):
    """``{canonical name: version}`` of ``name[extras]==version`` lines, comments left out."""
    found = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if "==" in line:
            requirement = Requirement(line)
            found[canonicalize_name(requirement.name)] = str(requirement.specifier).removeprefix("==")
    return found


def top_level_pins():
    return pins((REPO / "envs/requirements.txt").read_text().splitlines())


def lock_entries(lock="envs/requirements.lock"):
    """The lock's entries as ``[(name, version, marker or None, hashes)]``."""
    entries = []
    for line in (REPO / lock).read_text().splitlines():
        if match := LOCK_LINE.match(line):
            marker = match["marker"].strip() if match["marker"] else None
            entries.append([canonicalize_name(match["name"]), match["version"], marker, []])
        elif line.strip().startswith("--hash=sha256:"):
            entries[-1][3].append(line.strip().removeprefix("--hash=sha256:").rstrip(" \\"))
        elif line.strip() and not line.lstrip().startswith("#"):
            raise AssertionError(f"{lock}: unexpected line {line!r}")
    return entries


def applicable_lock():
    """``{name: version}`` of the lock entries whose marker holds on this machine."""
    return {name: version for name, version, marker, _ in lock_entries() if marker is None or Marker(marker).evaluate()}


def lock_closure(roots):
    """``{name: version}`` of the lock entries that the requirements ``roots`` need, transitively, on this machine.

    Each locked package's own requirements (with their markers and the extras asked for) come from
    this environment's metadata, which holds exactly the lock (tests/test_envs.py checks that); a
    requirement that the lock does not hold fails.
    """
    locked = applicable_lock()
    seen, pending = set(), []
    for text in roots:
        requirement = Requirement(text)
        pending += [(canonicalize_name(requirement.name), extra) for extra in ("", *requirement.extras)]
    while pending:
        name, extra = pending.pop()
        if (name, extra) in seen:
            continue
        assert name in locked, f"{name} is needed, the lock does not hold it"
        seen.add((name, extra))
        for text in metadata.requires(name) or ():
            requirement = Requirement(text)
            marker_holds = requirement.marker is None or requirement.marker.evaluate({**default_environment(), "extra": extra})
            # a package's own requirements once (extra ""), and those of each extra asked for
            if marker_holds and (extra == "" or "extra" in str(requirement.marker)):
                dependency = canonicalize_name(requirement.name)
                pending += [(dependency, wanted) for wanted in ("", *requirement.extras)]
    return {name: locked[name] for name, _ in seen}


def test_every_lock_entry_is_an_exact_version_with_sha256_hashes():
    entries = lock_entries()
    assert len(entries) > len(top_level_pins()), "the lock holds no transitive packages"
    for name, version, _, hashes in entries:
        assert hashes, f"{name}=={version} has no hash"
        assert all(re.fullmatch(r"[0-9a-f]{64}", digest) for digest in hashes), name


def test_the_lock_pins_every_top_level_package_at_its_version():
    locked = applicable_lock()
    for name, version in top_level_pins().items():
        assert locked.get(name) == version, f"{name}: requirements.txt pins {version}, the lock {locked.get(name)}: run make lock"


def test_the_lock_is_closed_under_dependencies():
    """Each locked package's own requirements (for this machine, with the extras asked for) are locked too."""
    locked = applicable_lock()
    extras = {canonicalize_name(r.name): r.extras for r in map(Requirement, _requirement_lines())}
    missing = []
    for name in locked:
        for text in metadata.requires(name) or ():
            requirement = Requirement(text)
            if requirement.marker is not None:
                wanted = extras.get(name) or {""}
                if not any(requirement.marker.evaluate({**default_environment(), "extra": extra}) for extra in wanted):
                    continue
            dependency = canonicalize_name(requirement.name)
            if dependency not in locked:
                missing.append(f"{name} needs {requirement}")
            elif locked[dependency] not in requirement.specifier:
                missing.append(f"{name} needs {requirement}, the lock has {locked[dependency]}")
    assert not missing, "\n".join(missing)


def test_the_environment_holds_exactly_the_locked_versions():
    for name, version in applicable_lock().items():
        assert metadata.version(name) == version, f"{name} {metadata.version(name)} installed, {version} locked: run make"


def conda_pip_pins(env_file):
    """``{name: version}`` of the pip section of a conda environment file in envs/."""
    env = yaml.safe_load((REPO / "envs" / env_file).read_text())
    return pins(next(item["pip"] for item in env["dependencies"] if isinstance(item, dict)))


def run_time_requirements():
    """The package's own dependencies (pyproject.toml): what the rules' scripts import."""
    import tomllib

    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]


def test_conda_env_pins_exactly_the_locks_closure_of_the_run_time_packages():
    """Every package a rule's job imports, transitive ones included, at the lock's version, and nothing else."""
    conda_pins = conda_pip_pins("mnist_large_scale.yaml")
    closure = lock_closure(run_time_requirements())
    assert conda_pins == closure, (
        f"envs/mnist_large_scale.yaml lacks {sorted(closure.keys() - conda_pins.keys())}, has beyond the lock's closure "
        f"{sorted(conda_pins.keys() - closure.keys())}, differs in {sorted(n for n in closure.keys() & conda_pins.keys() if closure[n] != conda_pins[n])}"
    )
    required = top_level_pins()
    for package in map(canonicalize_name, (Requirement(text).name for text in run_time_requirements())):
        assert conda_pins[package] == required[package], f"{package}: conda env {conda_pins[package]}, requirements.txt {required[package]}"
    env = yaml.safe_load((REPO / "envs/mnist_large_scale.yaml").read_text())
    python = next(item for item in env["dependencies"] if isinstance(item, str) and item.startswith("python="))
    resolved_for = re.search(r"--python-version (\S+)", (REPO / "Makefile").read_text())[1]
    assert python == f"python={resolved_for}", f"the conda env has {python}, make lock resolves for Python {resolved_for}"


def test_the_closure_follows_requirements_and_their_extras():
    """lock_closure itself: snakemake[reports] brings pygments, plain snakemake does not; numpy needs nothing."""
    assert "pygments" in lock_closure(["snakemake[reports]"]) and "pygments" not in lock_closure(["snakemake"])
    assert lock_closure(["numpy"]) == {"numpy": applicable_lock()["numpy"]}


def _requirement_lines():
    for line in (REPO / "envs/requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            yield line


def test_the_torch_lock_pins_the_extra_with_hashes_and_agrees_with_the_main_lock():
    """envs/requirements-torch.lock (the optional extra) holds torch at its pin, and every package it
    shares with the main lock at the main lock's version, so installing it beside .venv changes nothing else."""
    entries = lock_entries("envs/requirements-torch.lock")
    torch_pins = pins((REPO / "envs/requirements-torch.txt").read_text().splitlines())
    locked = {name: version for name, version, _, _ in entries}
    assert torch_pins and all(locked.get(name) == version for name, version in torch_pins.items()), f"{torch_pins} against {locked}: run make lock"
    for name, _, _, hashes in entries:
        assert hashes and all(re.fullmatch(r"[0-9a-f]{64}", digest) for digest in hashes), name
    main = applicable_lock()
    differ = {name: (version, main[name]) for name, version in locked.items() if name in main and main[name] != version}
    assert not differ, f"the torch lock and the main lock disagree (torch lock, main lock): {differ}"
    if "torch" in {canonicalize_name(dist.metadata["Name"]) for dist in metadata.distributions()}:
        for text in metadata.requires("torch") or ():
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({**default_environment(), "extra": ""}):
                assert canonicalize_name(requirement.name) in locked, f"torch needs {requirement}, not in the torch lock"


def test_pyproject_declares_the_torch_extra():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["optional-dependencies"]["torch"] == ["torch"]
    assert "torch" not in project["dependencies"]


def test_the_experiment_conda_env_pins_the_main_env_and_the_torch_lock():
    """envs/experiment.yaml: the main env's pins and the torch lock's (its +cpu label left out), nothing else."""
    main = conda_pip_pins("mnist_large_scale.yaml")
    env = yaml.safe_load((REPO / "envs/experiment.yaml").read_text())
    experiment = conda_pip_pins("experiment.yaml")
    assert "python=3.11" in env["dependencies"]
    torch_lock = {name: version.split("+")[0] for name, version, _, _ in lock_entries("envs/requirements-torch.lock")}
    assert all(main.get(name, version) == version for name, version in torch_lock.items()), "the torch lock and the main env disagree"
    assert experiment == {**main, **torch_lock}, f"envs/experiment.yaml: {experiment}, expected the main env and {torch_lock}"
