"""`make experiment` end to end on a tiny build: train at s = 2, test at the 17 published test scales."""

import struct

import pytest

from conftest import make_workdir, run_snakemake
from mnist_large_scale.experiment import (
    TABLE_COLUMNS,
    ExperimentSettings,
    plot_accuracy,
    read_accuracy_table,
    write_accuracy_table,
)
from mnist_large_scale.names import PUBLISHED_TEST_SCALES, scale_tag

NEEDS_TORCH = "needs PyTorch, the optional extra: make torch (installs envs/requirements-torch.lock into .venv)"
TINY_TRAIN = "mnist_large_scale_tr300_vl20_te20_outsize112-112_sctr2p000_scte2p000.h5"
TINY_TESTS = [f"mnist_large_scale_te60_outsize112-112_scte{scale_tag(scale)}.h5" for scale in PUBLISHED_TEST_SCALES]


def png_size(path):
    with open(path, "rb") as handle:
        header = handle.read(24)
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])


@pytest.mark.slow
def test_make_experiment_on_a_tiny_build(tmp_path, mnist_dir):
    pytest.importorskip("torch", reason=NEEDS_TORCH)
    overrides = {
        "targets": [TINY_TRAIN, *TINY_TESTS],
        "experiment": {"train_file": TINY_TRAIN, "epochs": 1, "train_images": None, "test_images": None, "batch_size": 32, "loader_workers": 0},
    }
    work = make_workdir(tmp_path, mnist_dir, overrides)
    done = run_snakemake(work, "--cores", "2", "experiment", timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = read_accuracy_table(work / "results/experiment/accuracy_vs_scale.tsv")
    assert len(rows) == 17
    assert [row["test_scale"] for row in rows] == sorted(PUBLISHED_TEST_SCALES)
    assert all(row["images"] == 60 and 0 <= row["accuracy"] <= 1 and row["correct"] == round(row["accuracy"] * 60) for row in rows)
    assert sorted(row["file"] for row in rows) == sorted(TINY_TESTS)
    assert png_size(work / "results/experiment/accuracy_vs_scale.png") == (700, 400)
    log = (work / "logs/experiment.log").read_text()
    assert "epoch 1:" in log and log.count("accuracy") >= 18
    assert not (work / "results/validation").exists()  # the experiment needs the files, not `all`


@pytest.mark.slow
def test_the_experiment_refuses_a_train_file_without_a_single_training_scale(tmp_path, mnist_dir):
    name = "mnist_large_scale_tr300_vl20_te20_outsize112-112_sctr1p000-4p000_scte1p000-4p000.h5"
    work = make_workdir(tmp_path, mnist_dir, {"experiment": {"train_file": name}})
    done = run_snakemake(work, "--cores", "1", "-n", "experiment")
    assert done.returncode != 0 and "must be a training file with a single training scale" in done.stdout + done.stderr


def test_the_accuracy_table_round_trips_and_plots(tmp_path):
    rows = [
        {"test_scale": scale, "scale_tag": scale_tag(scale), "accuracy": 1 / (1 + abs(scale - 2)), "correct": 1, "images": 2, "file": f"f{scale}.h5"}
        for scale in PUBLISHED_TEST_SCALES[::-1]
    ]
    write_accuracy_table(rows, tmp_path / "table.tsv")
    header = (tmp_path / "table.tsv").read_text().splitlines()[0]
    assert tuple(header.split("\t")) == TABLE_COLUMNS
    back = read_accuracy_table(tmp_path / "table.tsv")
    assert [row["test_scale"] for row in back] == pytest.approx(sorted(PUBLISHED_TEST_SCALES), rel=1e-6)
    plot_accuracy(back, 2.0, tmp_path / "figure.png")
    assert png_size(tmp_path / "figure.png") == (700, 400)


def test_experiment_settings_come_from_the_config(config):
    settings = ExperimentSettings.from_config(config["experiment"])
    assert settings.channels == tuple(config["experiment"]["channels"]) and settings.epochs == config["experiment"]["epochs"]
    with pytest.raises(TypeError):
        ExperimentSettings.from_config({**config["experiment"], "epoch": 3})
