"""The command line: every kind of bad input is one line on stderr and exit status 2; defaults; --version, --help."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from conftest import REPO
from mnist_large_scale import NUMERICS_VERSION, __version__
from mnist_large_scale.bases import base_for_name, bases_by_prefix
from mnist_large_scale.cli import COMMANDS, main
from mnist_large_scale.cli import build as build_command
from mnist_large_scale.names import InvalidName

SMALL = "mnist_large_scale_te8_outsize32-32_scte1p000.h5"
ENV = {**os.environ, "PYTHONPATH": str(REPO / "workflow")}


def fails(capsys, argv, *needles):
    """Run ``main(argv)``; assert exit status 2 and one stderr line holding every needle; return that line."""
    status = main(argv)
    err = capsys.readouterr().err
    assert status == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def damaged(capsys, argv, *needles):
    """Run ``main(argv)`` on a file that is not a readable file of the layout: exit status 1, one line, no traceback."""
    status = main(argv)
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert status == 1, output
    assert "Traceback" not in output and len(output.strip().splitlines()) == 1, output
    assert "DAMAGED" in output or "is damaged" in output, output
    for needle in needles:
        assert needle in output, output


def write_config(tmp_path, change) -> Path:
    """The repository's config with ``change(config)`` applied, written to tmp_path/config.yaml."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    change(config)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def wrong_layout(tmp_path):
    path = tmp_path / "mnist_large_scale_te8_outsize32-32_scte1p000.h5"
    with h5py.File(path, "w") as h5:
        h5["x_test"] = np.zeros((2, 32, 32, 1))
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory, mnist_dir):
    """A small file built by the command, from a fresh folder (its defaults are relative to it)."""
    folder = tmp_path_factory.mktemp("built")
    out = folder / SMALL
    assert main(["build", SMALL, "--raw-dir", str(mnist_dir), "--out", str(out), "--quiet"]) == 0
    return out


# --------------------------------------------------------------------------- #
# Bad input: one line, status 2
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    "name, needle",
    [
        ("mnist_large_scale_te100_outsize64-64_scte2p00.h5", "2p00"),
        ("scte2p00", "fits no pattern"),
        ("emnist_large_scale_te100_outsize64-64_scte2p000.h5", "known prefixes: mnist_large_scale"),
        ("mnist_large_scale_te20000_outsize64-64_scte2p000.h5", "has only 10000"),
    ],
)
def test_build_names_a_bad_file_name(capsys, name, needle):
    fails(capsys, ["build", name], needle)


def test_build_names_a_raw_folder_that_does_not_exist(capsys):
    fails(capsys, ["build", SMALL, "--raw-dir", "/nonexistent"], "--raw-dir /nonexistent: no such folder")


def test_build_names_the_raw_files_missing_from_a_folder(capsys, tmp_path):
    fails(capsys, ["build", SMALL, "--raw-dir", str(tmp_path)], "t10k-images-idx3-ubyte", "missing", "snakemake --cores 1 resources/mnist/")


def test_build_without_raw_files_in_the_default_folder_says_so(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fails(capsys, ["build", SMALL], "raw folder resources/mnist", "give --raw-dir")


def test_build_names_an_output_folder_that_does_not_exist(capsys, mnist_dir):
    fails(capsys, ["build", SMALL, "--raw-dir", str(mnist_dir), "--out", "/nonexistent/x.h5"], "--out /nonexistent/x.h5", "does not exist")


@pytest.mark.parametrize("command", ["inspect", "verify", "compare"])
def test_a_missing_file_is_named(capsys, tmp_path, command):
    missing = tmp_path / SMALL
    fails(capsys, [command, str(missing)], str(missing), "no such file")


def test_a_file_that_is_not_hdf5_is_named(capsys, tmp_path):
    text = tmp_path / SMALL
    text.write_text("not HDF5\n")
    fails(capsys, ["compare", str(text)], str(text), "not an HDF5 file")
    # for the readers that check files, such a file is damaged: a verdict, exit status 1
    damaged(capsys, ["inspect", str(text)], "not an HDF5 file")
    damaged(capsys, ["verify", str(text)], "not an HDF5 file")


def test_a_file_of_another_layout_is_named(capsys, wrong_layout):
    fails(capsys, ["compare", str(wrong_layout)], str(wrong_layout), "no dataset x_train", "not an MNIST Large Scale file")
    damaged(capsys, ["verify", str(wrong_layout)], "not the MNIST Large Scale layout")


def test_inspect_summarises_the_splits_there_but_not_a_file_without_images(capsys, wrong_layout, tmp_path):
    damaged(capsys, ["inspect", str(wrong_layout)], "no x_test and y_test")  # the one split there must be whole
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as h5:
        h5["images"] = np.zeros((2, 32, 32))
    damaged(capsys, ["inspect", str(other)], "not the MNIST Large Scale layout")


def test_images_of_the_wrong_shape_are_named(capsys, tmp_path):
    path = tmp_path / SMALL
    with h5py.File(path, "w") as h5:
        for split in ("train", "val", "test"):
            h5[f"x_{split}"] = np.zeros((2, 32, 32))
            h5[f"y_{split}"] = np.zeros(2, dtype=np.uint8)
    damaged(capsys, ["inspect", str(path)], "x_train has shape (2, 32, 32), not (n, H, W, 1)")


def test_compare_names_report_places_it_cannot_write_before_the_work(capsys, built, tmp_path):
    fails(capsys, ["compare", str(built), "--report", str(tmp_path / "none" / "r.json")], "--report", "does not exist")
    fails(capsys, ["compare", str(built), "--figure", str(tmp_path)], "--figure", "is a folder")
    (tmp_path / "taken").write_text("")
    fails(capsys, ["compare", str(built), "--out-dir", str(tmp_path / "taken")], "--out-dir", "not a folder")


def test_compare_names_a_bad_rebuilt_file(capsys, built, tmp_path):
    fails(capsys, ["compare", str(built), str(tmp_path / "none.h5")], "rebuilt file", "no such file")


@pytest.mark.parametrize(
    "change, needles",
    [
        (lambda c: c["recipe"].update(gian=c["recipe"].pop("gain")), ["recipe", "'gian' was unexpected", "config.yaml"]),
        (lambda c: c["recipe"].pop("offset"), ["recipe", "'offset' is a required property"]),
        (lambda c: c["output"].update(dtype="float16"), ["output.dtype", "float16"]),
        (lambda c: c.update(scale_seed=-1), ["scale_seed", "-1"]),
        (lambda c: c["base_data"]["kmnist"].update(prefix="mnist_large_scale"), ["share the prefix 'mnist_large_scale'"]),
    ],
)
def test_a_bad_config_is_named_by_its_key(capsys, tmp_path, mnist_dir, change, needles):
    config = write_config(tmp_path, change)
    fails(capsys, ["build", SMALL, "--raw-dir", str(mnist_dir), "--config", str(config)], *needles)


def test_a_config_that_is_not_yaml_is_named_with_its_line(capsys, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("recipe: {order: 3\ntargets: [\n")
    fails(capsys, ["preview", "mnist", "--config", str(config)], str(config), "not valid YAML (line")


def test_a_missing_config_is_named(capsys, tmp_path):
    fails(capsys, ["preview", "mnist", "--config", str(tmp_path / "none.yaml")], "--config", "none.yaml: no such file")


def test_a_given_config_must_be_valid_for_inspect_too(capsys, built, tmp_path):
    config = write_config(tmp_path, lambda c: c.update(colour="blue"))
    fails(capsys, ["inspect", str(built), "--config", str(config)], "'colour' was unexpected")


def test_preview_names_an_unknown_base_and_the_known_ones(capsys):
    fails(capsys, ["preview", "emnist"], "no base data set 'emnist'", "known: mnist, fashion_mnist, kmnist")


@pytest.mark.parametrize(
    "argv, needles",
    [
        (["build", SMALL, "--frobnicate"], ["unrecognized arguments: --frobnicate", "see mnist-large-scale build --help"]),
        (["frobnicate"], ["invalid choice: 'frobnicate'"]),
        ([], ["the following arguments are required: COMMAND"]),
        (["build"], ["the following arguments are required: name"]),
        (["inspect", "x.h5", "--count", "0"], ["--count", "0 is less than 1"]),
        (["compare", "x.h5", "--fit-images", "many"], ["--fit-images", "'many' is not a whole number"]),
        (["preview", "mnist", "--scales", "0"], ["--scales", "greater than 0"]),
        (["verify", "a.h5", "b.h5", "--name", SMALL], ["--name applies to a single FILE"]),
    ],
)
def test_a_bad_command_line_is_one_line(capsys, argv, needles):
    fails(capsys, argv, *needles)


def test_debug_shows_the_traceback_and_keeps_the_status(capsys):
    assert main(["--debug", "build", "scte2p00"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "InvalidName" in err
    assert err.strip().splitlines()[-1].startswith("mnist-large-scale build: file name 'scte2p00.h5' fits no pattern")


def test_an_internal_error_is_status_3_and_names_debug(capsys, monkeypatch):
    def broken(args):
        raise TypeError("a bug")

    monkeypatch.setattr(build_command, "run", broken)
    assert main(["build", SMALL]) == 3
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error: TypeError: a bug" in err and "--debug" in err


def test_the_command_line_process_prints_no_traceback():
    done = subprocess.run([sys.executable, "-m", "mnist_large_scale", "build", "scte2p00", "--raw-dir", "/nonexistent"], capture_output=True, text=True, env=ENV)
    assert done.returncode == 2
    assert done.stderr.startswith("python -m mnist_large_scale build: file name 'scte2p00.h5' fits no pattern")
    assert "Traceback" not in done.stderr and not done.stdout


# --------------------------------------------------------------------------- #
# What works: --version, --help, defaults, progress and --quiet
# --------------------------------------------------------------------------- #


def test_version_names_the_package_and_the_numerics():
    done = subprocess.run([sys.executable, "-m", "mnist_large_scale", "--version"], capture_output=True, text=True, env=ENV)
    assert done.returncode == 0
    assert done.stdout.strip() == f"python -m mnist_large_scale {__version__} (numerics version {NUMERICS_VERSION})"


def test_the_console_script_runs_the_same_command_line():
    script = Path(sys.executable).with_name("mnist-large-scale")
    if not script.exists():
        pytest.skip("the console script is installed by `make` (pip install -e .)")
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == f"mnist-large-scale {__version__} (numerics version {NUMERICS_VERSION})"


def test_help_is_plain_text_for_every_command(capsys):
    from mnist_large_scale.cli import parser

    commands = list(parser().command_parsers)
    assert len(commands) >= len(COMMANDS)  # a module may add more than one command (evaluate, compare-model)
    for argv in ([], *([command] for command in commands)):
        assert main([*argv, "--help"]) == 0
        out = capsys.readouterr().out
        assert out.startswith("usage: mnist-large-scale") and "``" not in out, argv
    assert main(["--help"]) == 0
    assert "exit status:" in capsys.readouterr().out


def test_build_defaults_to_the_workflow_folders(tmp_path, mnist_dir, monkeypatch, capsys):
    """From a folder without config.yaml: the repository's config, resources/mnist/ and results/<name>."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "resources").mkdir()
    (tmp_path / "resources" / "mnist").symlink_to(mnist_dir)
    assert main(["build", SMALL]) == 0
    captured = capsys.readouterr()
    record = json.loads(captured.out.strip().splitlines()[-1])
    assert record["file"] == f"results/{SMALL}" and record["seconds"] > 0 and record["peak_rss_mb"] > 0
    assert captured.err == ""  # no terminal: no progress bar
    with h5py.File(tmp_path / "results" / SMALL, "r") as h5:
        assert h5["x_test"].shape == (8, 32, 32, 1)


def test_compare_writes_into_results_compare_not_the_current_folder(built, tmp_path, mnist_dir, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["compare", str(built), "--raw-dir", str(mnist_dir), "--fit-images", "0"]) == 0
    captured = capsys.readouterr()
    stem = SMALL.removesuffix(".h5")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["results"]
    assert sorted(path.name for path in (tmp_path / "results" / "compare").iterdir()) == [f"{stem}.compare.json", f"{stem}.compare.png"]
    assert "identical" in captured.out.strip().splitlines()[-1]
    assert f"report: results/compare/{stem}.compare.json" in captured.err


def test_compare_out_dir_and_quiet(built, tmp_path, mnist_dir, capsys):
    out_dir = tmp_path / "reports"
    assert main(["compare", str(built), "--raw-dir", str(mnist_dir), "--fit-images", "0", "--out-dir", str(out_dir), "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    assert (out_dir / SMALL.replace(".h5", ".compare.json")).is_file()


def test_shared_options_go_before_or_after_the_command(built, capsys):
    for argv in (["--quiet", "inspect", str(built)], ["inspect", str(built), "--quiet"], ["-q", "inspect", str(built), "--json"]):
        assert main(argv) == 0
        assert capsys.readouterr().err == ""


def test_inspect_uses_the_repository_config_from_anywhere(built, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["inspect", str(built), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["splits"]["test"]["images"] == 8 and "classes" not in summary  # MNIST's classes name themselves


# --------------------------------------------------------------------------- #
# The config's base data by prefix, in one place
# --------------------------------------------------------------------------- #


def test_a_name_selects_its_base_data_by_prefix(config):
    bases = bases_by_prefix(config["base_data"])
    spec, base = base_for_name("fashion_mnist_large_scale_te100_outsize64-64_scte2p000.h5", bases)
    assert base.key == "fashion_mnist" and spec.n_test == 100
    assert base_for_name(SMALL, bases)[1].key == "mnist"
    with pytest.raises(InvalidName, match="has only 10000"):
        base_for_name("kmnist_large_scale_te20000_outsize64-64_scte2p000.h5", bases, counts=True)
    base_for_name("kmnist_large_scale_te20000_outsize64-64_scte2p000.h5", bases)  # a comparison need not check counts


def test_two_base_data_sets_with_one_prefix_are_refused(config):
    base_data = {**config["base_data"], "copy": config["base_data"]["mnist"]}
    with pytest.raises(ValueError, match="base_data.mnist and base_data.copy share the prefix 'mnist_large_scale'"):
        bases_by_prefix(base_data)


def stderr_on_a_terminal(argv: list[str]) -> tuple[int, str]:
    """Run the command line in a process whose stderr is a pseudo-terminal; its status and what reached it."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a new pty is 0 columns wide
    process = subprocess.Popen([sys.executable, "-m", "mnist_large_scale", *argv], stdout=subprocess.DEVNULL, stderr=follower, env=ENV)
    os.close(follower)
    seen = b""
    while True:  # read while it runs, so that a full terminal buffer cannot stall it
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the process has closed the terminal and it is drained
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    return process.wait(timeout=300), seen.decode(errors="replace")


def test_build_draws_its_progress_on_a_terminal_unless_quiet(tmp_path, mnist_dir):
    argv = ["build", SMALL, "--raw-dir", str(mnist_dir), "--out", str(tmp_path / SMALL)]
    status, seen = stderr_on_a_terminal(argv)
    assert status == 0 and "building" in seen and "img" in seen
    status, seen = stderr_on_a_terminal([*argv, "--quiet"])
    assert status == 0 and seen == ""


def test_compare_figure_names_a_missing_montage_and_a_bad_name(capsys, tmp_path):
    fails(capsys, ["compare-figure", str(tmp_path / "none.png"), "--name", "mnist_large_scale_te10000_outsize112-112_scte2p000.h5"], "none.png", "no such file")
    montage = tmp_path / "montage.png"
    montage.write_bytes(b"")
    fails(capsys, ["compare-figure", str(montage), "--name", "mnist_large_scale_te10000_outsize112-112_scte2p00.h5"], "scte2p00")


def test_the_check_levels_of_the_options_are_the_integrity_checks():
    from mnist_large_scale import integrity
    from mnist_large_scale.cli.common import CHECK_LEVELS

    assert CHECK_LEVELS == integrity.CHECKS
