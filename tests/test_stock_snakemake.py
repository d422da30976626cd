"""The workflow with Snakemake alone: what reading it imports, and a stock Snakemake reading a fresh clone."""

import ast
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import REPO
from test_envs import conda_pip_pins, lock_closure, lock_entries, run_time_requirements

#: What Snakemake itself brings that the workflow may use while it is read.
SNAKEMAKE_BRINGS = ("yaml", "jsonschema")

# Imports every statement `from mnist_large_scale... import ...` of the given file with a finder that
# refuses every top-level module outside the standard library, the package and SNAKEMAKE_BRINGS.
_BLOCKED_IMPORTS = """
import importlib.abc, re, sys
allowed = set(sys.stdlib_module_names) | {"mnist_large_scale", *sys.argv[2].split(",")}
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] not in allowed:
            raise ImportError(f"reading the workflow imported {name}")
sys.meta_path.insert(0, Refuse())
source = open(sys.argv[1]).read()
for statement in re.findall(r"^from mnist_large_scale[.\\w]* import (?:\\([^)]*\\)|.*)$", source, re.M):
    exec(statement)
print(sorted(name for name in sys.modules if name.startswith("mnist_large_scale")))
"""


def _import_as_the_workflow_does(smk, brings=SNAKEMAKE_BRINGS):
    return subprocess.run(
        [sys.executable, "-I", "-c", _BLOCKED_IMPORTS, str(smk), ",".join(brings)],
        cwd=REPO / "workflow",
        capture_output=True,
        text=True,
    )


def test_reading_the_workflow_imports_only_the_standard_library_and_what_snakemake_brings():
    """common.smk's imports of the package (and theirs) need no numpy, h5py, scipy, pooch or the like."""
    run = _import_as_the_workflow_does(REPO / "workflow/rules/common.smk")
    assert run.returncode == 0, run.stderr
    imported = set(ast.literal_eval(run.stdout))
    assert {"mnist_large_scale.names", "mnist_large_scale.sources", "mnist_large_scale.recipe_constants"} <= imported
    for heavy in ("engine", "writer", "build", "references", "recipe", "exactmath"):
        assert f"mnist_large_scale.{heavy}" not in imported, f"reading the workflow imports {heavy}"


def test_the_import_check_fails_for_a_module_that_needs_numpy(tmp_path):
    """The check itself: an import of a module that needs numpy is refused."""
    smk = tmp_path / "heavy.smk"
    smk.write_text("from mnist_large_scale.exactmath import exp\n")
    run = _import_as_the_workflow_does(smk)
    assert run.returncode != 0 and "reading the workflow imported numpy" in run.stderr


def test_the_config_check_read_before_the_config_imports_only_the_standard_library_and_yaml(tmp_path):
    """config.smk runs before `configfile:` (to name a broken config.yaml's line): the one other importer."""
    statements = re.findall(r"^\s*(from mnist_large_scale[.\w]* import \([^)]*\))", (REPO / "workflow/rules/config.smk").read_text(), re.M)
    assert statements
    smk = tmp_path / "config_imports.smk"
    smk.write_text("\n".join(textwrap.dedent(statement) for statement in statements) + "\n")
    run = _import_as_the_workflow_does(smk)
    assert run.returncode == 0, run.stderr
    assert set(ast.literal_eval(run.stdout)) == {"mnist_large_scale", "mnist_large_scale.config_check"}


def test_every_rule_file_imports_the_package_only_in_common_smk():
    """The other rule files and the Snakefile use what common.smk (and, before the config, config.smk) imported."""
    for path in [REPO / "Snakefile", *sorted((REPO / "workflow/rules").glob("*.smk"))]:
        if path.name not in ("common.smk", "config.smk"):
            assert not re.search(r"^\s*(from|import) ", path.read_text(), re.M) or path.name == "Snakefile", path
    snakefile_imports = re.findall(r"^(?:from|import) (\S+)", (REPO / "Snakefile").read_text(), re.M)
    assert all(name.startswith("snakemake") for name in snakefile_imports), snakefile_imports


# --- a venv with the locked Snakemake alone, and a fresh clone --------------------------------------------------------


def snakemake_requirement():
    """The Snakemake line of envs/requirements.txt (``snakemake[reports]==9.27.1``): the locked Snakemake."""
    lines = (REPO / "envs/requirements.txt").read_text().splitlines()
    return next(line.split("#")[0].strip() for line in lines if re.match(r"snakemake\W", line))


def write_hashed_requirements(versions, path):
    """``name==version`` with the lock's hashes, for ``pip install --require-hashes --no-deps``."""
    hashes = {(name, version): digests for name, version, _, digests in lock_entries()}
    path.write_text(
        "".join(
            f"{name}=={version} " + " ".join(f"--hash=sha256:{digest}" for digest in hashes[name, version]) + "\n"
            for name, version in sorted(versions.items())
        )
    )
    return path


def locked_venv(roots, kind):
    """A venv, made once for each lock, with exactly the lock's closure of ``roots`` (in .pytest_cache/)."""
    return pinned_venv(lock_closure(roots), kind)


def pinned_venv(versions, kind):
    """A venv with exactly ``versions`` (``{name: version}``, installed with the lock's hashes, nothing resolved),
    made once for each set of versions and kept in .pytest_cache/ for later sessions."""
    key = hashlib.sha256(json.dumps([sys.version, sorted(versions.items())]).encode()).hexdigest()[:16]
    venv = REPO / ".pytest_cache" / f"venv-{kind}-{key}"
    if not (venv / ".installed").is_file():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        requirements = write_hashed_requirements(versions, venv / "requirements.txt")
        install = [venv / "bin/python", "-m", "pip", "install", "--quiet", "--no-deps", "--require-hashes", "-r", requirements]
        done = subprocess.run(install, capture_output=True, text=True)
        assert done.returncode == 0, f"{kind}: pip install failed\n{done.stderr[-3000:]}"
        (venv / ".installed").write_text("")
    return venv


def fresh_clone(folder):
    """What a clone of this tree holds: the files git tracks, and new ones it does not ignore, as they are now."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO, capture_output=True, check=True
    ).stdout.decode().split("\0")
    for name in filter(None, files):
        source = REPO / name
        if source.is_file():  # a file deleted but not yet staged is listed too
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, folder / name)
    return folder


@pytest.fixture(scope="session")
def stock_snakemake():
    """The ``snakemake`` of a venv with the locked Snakemake and its dependencies, and nothing else."""
    return locked_venv([snakemake_requirement()], "stock-snakemake") / "bin/snakemake"


@pytest.fixture(scope="session")
def stock_clone(tmp_path_factory):
    return fresh_clone(tmp_path_factory.mktemp("clone"))


@pytest.fixture(scope="session")
def stock_snakemake_with_rule_packages():
    """The locked Snakemake and the rules' packages (the closure of pyproject's dependencies), without the package."""
    venv = locked_venv([snakemake_requirement(), *run_time_requirements()], "stock-snakemake-rules")
    return venv / "bin/snakemake"


def stock(snakemake, *args, cwd, timeout=600):
    """Run a stock ``snakemake``; the finished process (check its returncode yourself)."""
    return subprocess.run([snakemake, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def with_raw_mnist(folder, mnist_dir):
    """``folder/resources/mnist/`` with the four raw files, as hard links where the file system allows."""
    (folder / "resources/mnist").mkdir(parents=True)
    for raw in Path(mnist_dir).iterdir():
        try:
            os.link(raw, folder / "resources/mnist" / raw.name)
        except OSError:
            shutil.copy2(raw, folder / "resources/mnist" / raw.name)
    return folder


def package_sha256(name, mnist_dir, tmp_path):
    """The sha256 of ``name`` built by the package's own command line (this environment, the default config)."""
    out = tmp_path / f"cli-{name}"
    subprocess.run(
        [sys.executable, "-m", "mnist_large_scale", "build", name, "--raw-dir", str(mnist_dir), "--out", str(out)],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    return hashlib.sha256(out.read_bytes()).hexdigest()


def smoke_targets():
    return yaml.safe_load((REPO / ".test/config.yaml").read_text())["targets"]


def test_the_stock_venv_holds_snakemake_and_not_the_rules_packages():
    """What "stock" means here: the lock's closure of the Snakemake line, none of numpy, h5py, scipy, the package."""
    closure = lock_closure([snakemake_requirement()])
    assert "snakemake" in closure and "pyyaml" in closure and "jsonschema" in closure
    for name in ("numpy", "h5py", "scipy", "scikit-image", "pooch", "matplotlib", "mnist-large-scale"):
        assert name not in closure, f"the locked Snakemake brings {name}"


def test_the_run_time_packages_of_the_jobs_are_the_package_dependencies():
    """job_packages names exactly what pyproject.toml declares, so its one line names all that is missing."""
    from mnist_large_scale.job_packages import RUN_TIME_PACKAGES

    declared = {canonicalize_name(Requirement(text).name) for text in run_time_requirements()}
    assert set(map(canonicalize_name, RUN_TIME_PACKAGES.values())) == declared


def test_every_script_checks_the_rules_packages_before_anything_else_of_the_package():
    """Each rule's script imports job_packages before any other module that is not in the standard library."""
    for script in sorted((REPO / "workflow/scripts").glob("*.py")):
        imports = re.findall(r"^(?:import|from) (\S+)", script.read_text(), re.M)
        outside = [name for name in imports if name.split(".")[0] not in sys.stdlib_module_names]
        assert outside and outside[0] == "mnist_large_scale.job_packages", f"{script.name}: {outside}"


def test_the_missing_packages_message_is_one_line_naming_them_and_both_ways():
    from mnist_large_scale.job_packages import missing_packages_message

    message = missing_packages_message(["numpy", "h5py"], "/usr/bin/python3")
    assert "\n" not in message and "numpy, h5py" in message and "/usr/bin/python3" in message
    assert "`make`" in message and "--sdm conda" in message


@pytest.mark.slow
def test_a_stock_snakemake_reads_a_fresh_clone(stock_snakemake, stock_clone):
    """-n all, --lint, --rulegraph and --dag with Snakemake alone: no numpy, no install of the package."""
    python = stock_snakemake.with_name("python")
    assert subprocess.run([python, "-c", "import numpy"], capture_output=True).returncode != 0
    assert subprocess.run([python, "-c", "import mnist_large_scale"], capture_output=True, cwd="/").returncode != 0
    dry = stock(stock_snakemake, "-n", "all", cwd=stock_clone)
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert re.search(r"^build_file\s+21$", dry.stdout, re.M), dry.stdout[-2000:]
    lint = stock(stock_snakemake, "--lint", cwd=stock_clone)
    assert lint.returncode == 0 and "Congratulations" in lint.stdout + lint.stderr, lint.stdout[-3000:]
    for graph in ("--rulegraph", "--dag"):
        drawn = stock(stock_snakemake, graph, cwd=stock_clone)
        assert drawn.returncode == 0 and "digraph" in drawn.stdout and "build_file" in drawn.stdout, drawn.stderr[-3000:]


@pytest.mark.slow
def test_without_the_rules_packages_the_first_job_fails_in_one_line(stock_snakemake, tmp_path, mnist_dir):
    """Where the host lacks numpy and the rest and no --sdm is asked for: one line, what is missing, both ways."""
    clone = with_raw_mnist(fresh_clone(tmp_path / "clone"), mnist_dir)
    target = f"results/{smoke_targets()[1]}"
    run = stock(stock_snakemake, "--cores", "1", target, cwd=clone)
    assert run.returncode != 0
    output = run.stdout + run.stderr
    lines = [line for line in output.splitlines() if "lacks" in line]
    assert lines, output[-3000:]
    assert "numpy, scipy, scikit-image, h5py, pooch, tqdm, matplotlib, threadpoolctl" in lines[0]
    assert "`make`" in lines[0] and "--sdm conda" in lines[0]
    assert "ModuleNotFoundError" not in output and "Traceback" not in output, output[-3000:]
    assert not (clone / target).exists()


@pytest.mark.slow
def test_the_smoke_test_runs_all_with_a_stock_snakemake_and_the_same_bytes(
    stock_snakemake_with_rule_packages, stock_snakemake, tmp_path, mnist_dir
):
    """.test/: `all` of three small files with the locked Snakemake and the rules' packages (the package from the
    clone's folder, not installed), each file the bytes the package's own command line builds; then --report,
    with Snakemake alone."""
    clone = fresh_clone(tmp_path / "clone")
    with_raw_mnist(clone / ".test", mnist_dir)
    python = stock_snakemake_with_rule_packages.with_name("python")
    assert subprocess.run([python, "-c", "import mnist_large_scale"], capture_output=True, cwd="/").returncode != 0
    options = ("--cores", "2", "--directory", ".test", "--configfile", ".test/config.yaml")
    run = stock(stock_snakemake_with_rule_packages, "all", *options, cwd=clone)
    assert run.returncode == 0, run.stderr[-4000:]
    for name in smoke_targets():
        built = hashlib.sha256((clone / ".test/results" / name).read_bytes()).hexdigest()
        assert built == package_sha256(name, mnist_dir, tmp_path), name
    assert (clone / ".test/results/validation/summary.html").is_file() and not (clone / "results").exists()
    report = stock(stock_snakemake, "--report", "report.html", *options, cwd=clone)
    assert report.returncode == 0, report.stderr[-3000:]
    assert (clone / ".test/report.html").stat().st_size > 100_000


def documented_module_snakefile(module_path):
    """The example Snakefile of docs/snakemake.md, its module's path set to ``module_path``."""
    page = (REPO / "docs/snakemake.md").read_text()
    example = next(block for block in re.findall(r"```python\n(.*?)```", page, re.S) if "module mls:" in block)
    assert '"../mnist-large-scale/Snakefile"' in example
    return example.replace('"../mnist-large-scale/Snakefile"', f'"{module_path}"')


@pytest.mark.slow
def test_another_workflow_builds_a_file_through_the_module(stock_snakemake_with_rule_packages, tmp_path, mnist_dir):
    """docs/snakemake.md's example: `module` with a path and a config of its own, `use rule * from mls as mls_*`;
    the file lands in the using workflow's folder, with the bytes of the package's own build, and nothing is
    written into the clone."""
    clone = fresh_clone(tmp_path / "clone")
    user = with_raw_mnist(tmp_path / "user", mnist_dir)
    name = smoke_targets()[1]
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["targets"] = smoke_targets()
    config["experiment"]["train_file"] = smoke_targets()[0]
    (user / "config").mkdir()
    (user / "config/config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    snakefile = documented_module_snakefile(clone / "Snakefile")
    assert f'"results/{name}"' in snakefile, "the documented example builds another file than this test checks"
    (user / "Snakefile").write_text(snakefile)
    run = stock(stock_snakemake_with_rule_packages, "--cores", "2", cwd=user)
    assert run.returncode == 0, run.stderr[-4000:]
    assert "mls_build_file" in run.stdout + run.stderr
    built = hashlib.sha256((user / "results" / name).read_bytes()).hexdigest()
    assert built == package_sha256(name, mnist_dir, tmp_path)
    assert not any((clone / folder).exists() for folder in ("results", "resources", "logs", ".snakemake"))


@pytest.mark.slow
def test_snakedeploy_deploys_the_local_clone_and_the_copy_reads(stock_snakemake, tmp_path):
    """`snakedeploy deploy-workflow` of a local clone, the module's path set to the clone (snakedeploy writes a
    path relative to the deployed file for a local source: its own), then a stock dry run of the deployed copy."""
    clone = fresh_clone(tmp_path / "clone")
    deployed = tmp_path / "deployed"
    snakedeploy = Path(sys.executable).with_name("snakedeploy")
    subprocess.run(
        [snakedeploy, "deploy-workflow", clone, deployed, "--tag", "v1.0.0", "--name", "mnist_large_scale"],
        check=True,
        capture_output=True,
    )
    assert (deployed / "config/config.yaml").read_text() == (REPO / "config.yaml").read_text()
    snakefile = deployed / "workflow/Snakefile"
    text = snakefile.read_text()
    assert re.search(r'^\s+"Snakefile"$', text, re.M), text
    snakefile.write_text(re.sub(r'^(\s+)"Snakefile"$', rf'\1"{clone / "Snakefile"}"', text, flags=re.M))
    dry = stock(stock_snakemake, "-n", "all", cwd=deployed)
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert re.search(r"^build_file\s+21$", dry.stdout, re.M), dry.stdout[-2000:]


def rule_blocks():
    """``{rule name: its text}`` of every named rule in workflow/rules/*.smk."""
    blocks = {}
    for path in sorted((REPO / "workflow/rules").glob("*.smk")):
        for match in re.finditer(r"^rule (\w+):\n((?:[ \t]+.*\n|\n)*)", path.read_text(), re.M):
            blocks[match[1]] = (path, match[2])
    return blocks


def test_every_rule_that_runs_code_names_its_conda_environment():
    """For --sdm conda: each rule with a script names an env file of envs/ that exists."""
    blocks = rule_blocks()
    assert {"build_file", "validate_file", "fetch_raw", "experiment"} <= blocks.keys()
    for rule, (path, text) in blocks.items():
        if "script:" in text or "shell:" in text or "run:" in text:
            env = re.search(r"conda:\n\s+\"([^\"]+)\"", text)
            assert env, f"rule {rule} ({path.name}) names no conda environment"
            assert (path.parent / env[1]).resolve().parent == REPO / "envs" and (path.parent / env[1]).is_file(), env[1]


@pytest.mark.slow
def test_a_plain_venv_of_the_conda_env_pins_runs_the_scripts_imports_with_the_package_from_the_workflow(tmp_path):
    """What --sdm conda gives a job, less conda: exactly envs/mnist_large_scale.yaml's pip pins (no snakemake, no
    install of the package), and the workflow's folder appended to sys.path as Snakemake's script preamble appends
    the main process's. Every module the rules' scripts import then comes in, the package from the workflow."""
    venv = pinned_venv(conda_pip_pins("mnist_large_scale.yaml"), "conda-env-pins")
    modules = sorted(
        {
            name
            for script in (REPO / "workflow/scripts").glob("*.py")
            if script.name != "experiment.py"  # envs/experiment.yaml, with PyTorch
            for name in re.findall(r"^(?:from|import) (mnist_large_scale\S*)", script.read_text(), re.M)
        }
    )
    code = (
        f"import sys; sys.path.append({str(REPO / 'workflow')!r}); "
        + "; ".join(f"import {name}" for name in modules)
        + "; import mnist_large_scale; print(mnist_large_scale.__file__)"
    )
    run = subprocess.run([venv / "bin/python", "-I", "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip() == str(REPO / "workflow/mnist_large_scale/__init__.py")
    assert len(modules) >= 8, modules


def test_the_dry_run_with_sdm_conda_where_conda_is_installed(stock_clone):
    """Snakemake asks conda itself (`conda info`) even for a dry run with --sdm conda, so this runs only where
    conda is on PATH: then the dry run names the two environment files."""
    if shutil.which("conda") is None:
        pytest.skip("conda is not on PATH: a dry run with --sdm conda stops at `conda info` (docs/snakemake.md)")
    stock_snakemake = locked_venv([snakemake_requirement()], "stock-snakemake") / "bin/snakemake"
    dry = stock(stock_snakemake, "all", "-n", "--sdm", "conda", cwd=stock_clone)
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "envs/mnist_large_scale.yaml" in dry.stdout + dry.stderr


def _common_smk_function(name, namespace):
    """Define the top-level function ``name`` of common.smk (plain Python) in ``namespace``."""
    source = (REPO / "workflow/rules/common.smk").read_text()
    match = re.search(rf"^def {name}\(.*?(?=^\S)", source, re.M | re.S)
    exec(match[0], namespace)
    return namespace[name]


def test_the_workflow_folder_is_that_of_common_smk_and_a_remote_source_is_refused_by_name():
    """workflow.current_basedir (workflow/rules) gives workflow/; a source without a path on disk (github(...))
    stops with a message that names it and the way that works, a local clone."""

    class Workflow:
        current_basedir = None

    workflow = Workflow()
    workflow_dir = _common_smk_function("_workflow_dir", {"workflow": workflow, "Path": Path})
    workflow.current_basedir = REPO / "workflow" / "rules"
    assert workflow_dir() == REPO / "workflow"

    class RemoteSource:
        def __str__(self):
            return "github(owner/repo, path=Snakefile, tag=v1.0.0)"

    workflow.current_basedir = RemoteSource()
    with pytest.raises(ValueError, match=r"github\(owner/repo.*local clone"):
        workflow_dir()
