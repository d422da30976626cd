"""Every workflow script logs through ``mnist_large_scale.logs``: what it did, or why it failed, is in its log."""

import subprocess
import sys
import textwrap

from conftest import REPO

SCRIPTS = sorted((REPO / "workflow" / "scripts").glob("*.py"))

# Runs a workflow script as Snakemake does (the script is the main module, `snakemake` a global),
# with a stand-in for Snakemake's object: input and output as named lists, log[0], params, rule.
RUNNER = textwrap.dedent(
    """
    import runpy, sys
    sys.path.insert(0, {workflow!r})

    class Named(list):
        def __init__(self, items=(), **named):
            super().__init__([*items, *named.values()])
            self.__dict__.update(named)

    class Snakemake:
        pass

    snakemake = Snakemake()
    snakemake.rule = {rule!r}
    snakemake.log = Named([{log!r}])
    snakemake.input = Named({inputs!r}, **{named_inputs!r})
    snakemake.output = Named(**{outputs!r})
    snakemake.params = Named(**{params!r})
    runpy.run_path({script!r}, init_globals={{"snakemake": snakemake}}, run_name="__main__")
    """
)


def run_script(name, log, inputs=(), named_inputs=None, outputs=None, params=None):
    code = RUNNER.format(
        workflow=str(REPO / "workflow"),
        rule=name,
        log=str(log),
        inputs=list(inputs),
        named_inputs=named_inputs or {},
        outputs=outputs or {},
        params=params or {},
        script=str(REPO / "workflow" / "scripts" / f"{name}.py"),
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_every_script_sets_up_its_log_through_the_package():
    assert len(SCRIPTS) >= 11
    for script in SCRIPTS:
        text = script.read_text()
        assert "logs.setup(snakemake)" in text, f"{script.name} does not call logs.setup(snakemake)"
        assert "basicConfig" not in text and "snakemake.log[0]" not in text, f"{script.name} writes its log by itself"


def test_a_failing_figure_script_leaves_its_traceback_in_its_log(tmp_path):
    not_hdf5 = tmp_path / "broken.h5"
    not_hdf5.write_bytes(b"not an HDF5 file\n")
    log = tmp_path / "logs" / "montage.log"
    log.parent.mkdir()
    run = run_script(
        "montage",
        log,
        named_inputs={"h5": str(not_hdf5)},
        outputs={"png": str(tmp_path / "montage.png")},
        params={"images": 4, "classes": []},
    )
    assert run.returncode != 0
    text = log.read_text()
    assert "ERROR rule montage failed" in text and "Traceback (most recent call last)" in text, text
    assert "montage.py" in text and "OSError" in text, text  # where it failed, and why
    assert "Traceback (most recent call last)" in run.stderr  # and stderr still shows it, as before
    assert not (tmp_path / "montage.png").exists()


def test_a_script_that_succeeds_logs_what_it_did(tmp_path):
    lines = []
    for index, name in enumerate(("a.h5", "b.h5")):
        line = tmp_path / f"{name}.sha256"
        line.write_text(f"{index:064x}  {name}\n")
        lines.append(str(line))
    log = tmp_path / "sha256sums.log"
    run = run_script("sha256sums", log, inputs=lines, outputs={"manifest": str(tmp_path / "SHA256SUMS")})
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "SHA256SUMS").read_text().count("\n") == 2
    assert log.read_text().rstrip().endswith("INFO 2 files in the manifest")
