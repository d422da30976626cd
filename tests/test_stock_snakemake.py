"""The workflow with Snakemake alone: what reading it imports, and a stock Snakemake reading a fresh clone."""

import ast
import re
import subprocess
import sys

from conftest import REPO

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


def test_the_config_check_read_before_the_config_imports_only_the_standard_library_and_yaml():
    """config.smk runs before `configfile:` (to name a broken config.yaml's line): the one other importer."""
    run = _import_as_the_workflow_does(REPO / "workflow/rules/config.smk")
    assert run.returncode == 0, run.stderr
    assert set(ast.literal_eval(run.stdout)) == {"mnist_large_scale", "mnist_large_scale.config_check"}


def test_every_rule_file_imports_the_package_only_in_common_smk():
    """The other rule files and the Snakefile use what common.smk (and, before the config, config.smk) imported."""
    for path in [REPO / "Snakefile", *sorted((REPO / "workflow/rules").glob("*.smk"))]:
        if path.name not in ("common.smk", "config.smk"):
            assert not re.search(r"^\s*(from|import) ", path.read_text(), re.M) or path.name == "Snakefile", path
    snakefile_imports = re.findall(r"^(?:from|import) (\S+)", (REPO / "Snakefile").read_text(), re.M)
    assert all(name.startswith("snakemake") for name in snakefile_imports), snakefile_imports
