"""evaluate and compare-model: the statistics against hand-computed values, the reader against h5py,
and a small model trained here (so that its accuracy varies with scale) run end to end."""

import math
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from mnist_large_scale.__main__ import main
from mnist_large_scale.evaluate.measures import accuracy_at, generalisation_summary, mean_within_factor, widest_plateau
from mnist_large_scale.evaluate.model import InputConvention
from mnist_large_scale.evaluate.reader import ordered_blocks
from mnist_large_scale.evaluate.report import compare_with_published, read_published_counts
from mnist_large_scale.evaluate.stats import (
    EXACT_MCNEMAR_BELOW,
    mcnemar_test,
    paired_difference_interval,
    smallest_paired_p,
    two_proportion_test,
    wilson_interval,
)
from mnist_large_scale.loader import load
from mnist_large_scale.names import PUBLISHED_TEST_SCALES, parse_name, scale_tag

NEEDS_TORCH = "needs PyTorch, the optional extra: make torch (installs envs/requirements-torch.lock into .venv)"
HELPERS = Path(__file__).with_name("evaluate_helpers.py")
TRAIN = "mnist_large_scale_tr400_vl10_te10_outsize40-40_sctr1p000_scte1p000.h5"
TEST_SCALES = (0.5, 0.707, 1.0, 1.414, 2.0)
#: Passes of the test's training over its 400 images.
EPOCHS = 15
TESTS = [f"mnist_large_scale_te300_outsize40-40_scte{scale_tag(scale)}.h5" for scale in TEST_SCALES]


# --- the statistics, against values computed by hand ----------------------------------------------


def test_wilson_interval_of_hand_computed_proportions():
    # 8 of 10, z = 1.959964: centre 0.8 + z^2/20 = 0.992073, half-width z sqrt(0.016 + z^2/400) = 0.313616,
    # denominator 1 + z^2/10 = 1.384146: (0.678457 / 1.384146, 1.305689 / 1.384146)
    assert wilson_interval(8, 10) == pytest.approx((0.490162, 0.943318), abs=1e-6)
    # 0 of 10: the low end is 0, the high end (z^2/20 + z^2/20) / (1 + z^2/10) = z^2/10 / 1.384146
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.277533), abs=1e-6)
    assert wilson_interval(10, 10) == pytest.approx((1 - 0.277533, 1.0), abs=1e-6)
    with pytest.raises(ValueError, match="0 <= correct <= total"):
        wilson_interval(11, 10)


def test_mcnemar_is_exact_below_25_discordant_pairs_and_chi_square_above():
    # b = 1, c = 6: P(X <= 1) for Binomial(7, 1/2) is (1 + 7) / 128, two-sided 16 / 128
    exact = mcnemar_test(1, 6)
    assert exact.method == "exact binomial" and exact.statistic == 1 and exact.p_value == pytest.approx(0.125, abs=1e-12)
    # b = 30, c = 10: (|30 - 10| - 1)^2 / 40 = 9.025; p = erfc(sqrt(9.025 / 2)) = 0.0026631
    large = mcnemar_test(30, 10)
    assert large.method == "chi-square with continuity correction"
    assert large.statistic == pytest.approx(9.025) and large.p_value == pytest.approx(0.0026631, abs=1e-7)
    assert mcnemar_test(12, 12).method == "exact binomial" and mcnemar_test(12, 13).method.startswith("chi-square")
    assert EXACT_MCNEMAR_BELOW == 25
    assert mcnemar_test(0, 0).p_value == 1.0 and mcnemar_test(5, 5).p_value == 1.0


def test_paired_difference_has_newcombes_interval():
    # both 40, first only 5, second only 15, neither 40: p1 = 0.45, p2 = 0.55, D = 0.10;
    # Wilson (45/100) = (0.356145, 0.547554), (55/100) = (0.452446, 0.643855);
    # phi = (40 * 40 - 5 * 15) / sqrt(45 * 55 * 55 * 45) = 1525 / 2475 = 0.616162;
    # low = 0.1 - sqrt(0.097554^2 - 2 phi 0.097554^2 + 0.097554^2) = 0.1 - 0.097554 sqrt(2 - 2 phi) = 0.014526
    # high = 0.1 + 0.093855 sqrt(2 - 2 phi) = 0.182233
    difference, low, high = paired_difference_interval(40, 5, 15, 40)
    assert difference == pytest.approx(0.1) and low == pytest.approx(0.014526, abs=1e-6) and high == pytest.approx(0.182233, abs=1e-6)
    # no discordant pair: no difference, and an interval that holds 0
    difference, low, high = paired_difference_interval(90, 0, 0, 10)
    assert difference == 0 and low < 0 < high


def test_two_proportion_test_of_counts_alone():
    # 950 and 930 of 1000: pooled 0.94, se sqrt(0.94 0.06 (2 / 1000)) = 0.0106207, z = -0.02 / se = -1.88311, p = 0.059686
    test = two_proportion_test(950, 1000, 930, 1000)
    assert test.difference == pytest.approx(-0.02) and test.z == pytest.approx(-1.88311, abs=1e-5)
    assert test.p_value == pytest.approx(0.059686, abs=1e-6)
    assert test.low == pytest.approx(-0.041158, abs=1e-6) and test.high == pytest.approx(0.000900, abs=1e-6)
    assert test.smallest_paired_p == pytest.approx(2 * 2.0**-20)
    assert smallest_paired_p(100, 97) == 0.25 and smallest_paired_p(5, 5) == 1.0


def test_summary_measures_of_scale_generalisation():
    # accuracy 0.99 at s = 2, falling by 0.03 a quarter octave on either side
    scales = list(PUBLISHED_TEST_SCALES)
    accuracies = [0.99 - 0.03 * abs(k - 8) for k in range(17)]  # k = 8 is s = 2
    assert accuracy_at(scales, accuracies, 2.0) == pytest.approx(0.99)
    assert accuracy_at(scales, accuracies, 3.0) is None
    # within a factor 2 of s = 2: s = 1 .. 4, k = 4 .. 12, mean 0.99 - 0.03 (2 (1 + 2 + 3 + 4)) / 9
    assert mean_within_factor(scales, accuracies, 2.0, 2) == pytest.approx(0.99 - 0.03 * 20 / 9)
    assert mean_within_factor(scales, accuracies, 2.0, 8) == pytest.approx(np.mean(accuracies))
    # within 5 points: k = 7, 8, 9 (0.96, 0.99, 0.96): 2^(-1/4) 2 .. 2^(1/4) 2, half an octave
    plateau = widest_plateau(scales, accuracies, 5)
    assert plateau["low"] == pytest.approx(2**0.75) and plateau["high"] == pytest.approx(2**1.25) and plateau["octaves"] == pytest.approx(0.5)
    assert widest_plateau(scales, accuracies, 1) == {"low": 2.0, "high": 2.0, "octaves": 0.0, "scales": 1, "threshold": pytest.approx(0.98)}
    summary = generalisation_summary(scales, accuracies, 2.0)
    assert summary["best"] == {"scale": 2.0, "accuracy": pytest.approx(0.99)} and set(summary["mean_within_factor"]) == {"2", "4", "8"}
    assert generalisation_summary(scales, accuracies, None)["accuracy_at_train_scale"] is None


def test_published_counts_are_read_and_compared(tmp_path):
    table = tmp_path / "published.tsv"
    table.write_text("# a model's correct counts\nscale\tcorrect\ttotal\n1\t950\t1000\n2p000\t700\t1000\n4.0\t1\t1\n")
    counts = read_published_counts(table)
    assert counts == {"1p000": (950, 1000), "2p000": (700, 1000), "4p000": (1, 1)}
    rows = [{"test_scale": 1.0, "scale_tag": "1p000", "accuracy": 0.951, "correct": 951, "images": 1000}, {"test_scale": 2.0, "scale_tag": "2p000", "accuracy": 0.9, "correct": 900, "images": 1000}]
    compared = compare_with_published(rows, counts)
    assert [row["differs"] for row in compared] == [False, True]
    assert compared[1]["difference"] == pytest.approx(0.2) and compared[1]["difference_low"] > 0
    table.write_text("scale\tcorrect\ttotal\n1\t950\n")
    with pytest.raises(ValueError, match="line 2"):
        read_published_counts(table)
    table.write_text("scale correct total\n")
    with pytest.raises(ValueError, match="header"):
        read_published_counts(table)


# --- files and a model ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory, mnist_base, mnist_paths):
    """The training file and the five test files at 40 x 40 (s = 0.5 .. 2), with the engine."""
    from mnist_large_scale.build import build_file
    from mnist_large_scale.engine import transform_images
    from mnist_large_scale.recipe import Recipe
    from mnist_large_scale.writer import OutputOptions

    folder = tmp_path_factory.mktemp("evaluate")
    for name in [TRAIN, *TESTS]:
        build_file(parse_name(name), mnist_base, mnist_paths, folder / name, Recipe(), transform_images, seed=7, options=OutputOptions(chunk_images=100))
    return folder


def test_ordered_blocks_give_the_stored_images_in_order(files, tmp_path):
    path = files / TESTS[2]
    stored, _ = load(path, "test", dtype="float64")
    chunked = tmp_path / "chunked.h5"
    with h5py.File(path, "r") as source, h5py.File(chunked, "w") as target:
        target.create_dataset("x_test", data=source["x_test"][()], chunks=(1, 40, 40, 1), compression="gzip")
    for source, method in ((path, "offset"), (path, "h5py"), (chunked, "auto")):
        for channels_first in (True, False):
            blocks = list(ordered_blocks(source, "test", 64, "float32", channels_first, workers=2, limit=250, method=method))
            assert [start for start, _ in blocks] == [0, 64, 128, 192]
            got = np.concatenate([block.copy() for _, block in blocks])
            want = np.moveaxis(stored[:250], -1, 1) if channels_first else stored[:250]
            assert got.dtype == np.float32 and np.array_equal(got, want.astype(np.float32))
    assert np.array_equal(np.concatenate([block.copy() for _, block in ordered_blocks(path, "test", 100, "float64", workers=1)])[:, 0], stored[..., 0])
    with pytest.raises(ValueError, match="byte offset"):
        next(ordered_blocks(chunked, method="offset"))


@pytest.fixture(scope="module")
def model_files(files, tmp_path_factory):
    """The small CNN of evaluate_helpers trained here at s = 1, saved as TorchScript and as a state dict."""
    torch = pytest.importorskip("torch", reason=NEEDS_TORCH)
    import importlib.util

    spec = importlib.util.spec_from_file_location("evaluate_helpers_for_training", HELPERS)
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    torch.manual_seed(0)
    torch.set_num_threads(2)
    x, y = load(files / TRAIN, "train", channels_first=True)
    x, y = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
    model = helpers.small_cnn()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(EPOCHS):
        for start in range(0, len(x), 100):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x[start : start + 100]), y[start : start + 100]).backward()
            optimizer.step()
    model.eval()
    folder = tmp_path_factory.mktemp("model")
    torch.jit.save(torch.jit.script(model), folder / "model.pt")
    torch.save(model.state_dict(), folder / "weights.pt")
    return folder


def run(*argv):
    return main([str(arg) for arg in argv])


def test_torchscript_and_state_dict_give_the_same_table_with_accuracy_varying_with_scale(files, model_files, tmp_path):
    import matplotlib.image

    tests = [files / name for name in TESTS]
    assert run("evaluate", *tests, "--model", model_files / "model.pt", "--train-scale", 1, "--out", tmp_path / "script", "--batch-size", 128) == 0
    assert run("evaluate", *tests, "--model", f"{HELPERS}:small_cnn", "--state-dict", model_files / "weights.pt", "--train-scale", 1, "--out", tmp_path / "dict") == 0
    table = (tmp_path / "script.tsv").read_text()
    assert table == (tmp_path / "dict.tsv").read_text()
    import json

    report = json.loads((tmp_path / "script.json").read_text())
    rows = report["rows"]
    assert [row["test_scale"] for row in rows] == pytest.approx(TEST_SCALES, abs=1e-3)
    accuracy = {row["scale_tag"]: row["accuracy"] for row in rows}
    assert accuracy["1p000"] > 0.6 and accuracy["1p000"] - min(accuracy.values()) > 0.2  # trained at 1: worse away from it
    for row in rows:
        assert row["images"] == 300 and np.sum(row["confusion"]) == 300 and np.trace(row["confusion"]) == row["correct"]
        assert (row["ci_low"], row["ci_high"]) == pytest.approx(wilson_interval(row["correct"], 300))
    assert report["summary"]["accuracy_at_train_scale"] == accuracy["1p000"]
    assert report["summary"]["mean_within_factor"]["2"] == pytest.approx(np.mean(list(accuracy.values())))  # s = 0.5 .. 2
    picture = matplotlib.image.imread(tmp_path / "script.png")
    assert picture.shape == (400, 700, 4) and picture[..., :3].std() > 0.05  # drawn, not blank


def test_input_conventions_reach_the_model(files, model_files, tmp_path):
    torch = pytest.importorskip("torch", reason=NEEDS_TORCH)
    from mnist_large_scale.evaluate.run import EvaluationSettings, predict

    seen = {}

    class Recorder(torch.nn.Module):
        def forward(self, batch):
            seen["shape"], seen["dtype"], seen["min"] = tuple(batch.shape), batch.dtype, float(batch.min())
            return torch.zeros(len(batch), 10, dtype=batch.dtype)

    path = files / TESTS[0]
    with h5py.File(path) as h5:
        last_maximum = float(h5["x_test"][100:120].max())  # of the last batch of 20 below
        minimum = float(h5["x_test"][()].min())
    predict(Recorder(), path, InputConvention("last", "float64", f"{HELPERS}:negate"), EvaluationSettings(batch_size=50, limit=120))
    assert seen == {"shape": (20, 40, 40, 1), "dtype": torch.float64, "min": pytest.approx(-last_maximum)}
    predict(Recorder(), path, InputConvention("first", "float32", "affine:2,-1"), EvaluationSettings(batch_size=300))
    assert seen["shape"] == (300, 1, 40, 40) and seen["dtype"] == torch.float32 and seen["min"] == pytest.approx(2 * minimum - 1, rel=1e-6)


def test_published_counts_in_the_evaluation(files, model_files, tmp_path):
    import json

    tests = [files / name for name in TESTS[1:4]]
    assert run("evaluate", *tests, "--model", model_files / "model.pt", "--out", tmp_path / "own") == 0
    own = {row["scale_tag"]: row for row in json.loads((tmp_path / "own.json").read_text())["rows"]}
    published = tmp_path / "published.tsv"
    # the same counts at s = 1; far fewer at s = 1.414; a scale not evaluated
    lines = ["scale\tcorrect\ttotal", f"1\t{own['1p000']['correct']}\t300", f"1.414\t{own['1p414']['correct'] // 3}\t300", "8\t200\t300"]
    published.write_text("\n".join(lines) + "\n")
    assert run("evaluate", *tests, "--model", model_files / "model.pt", "--published-counts", published, "--out", tmp_path / "vs") == 0
    vs = json.loads((tmp_path / "vs.json").read_text())["published"]
    assert {row["scale_tag"]: row["differs"] for row in vs["rows"]} == {"1p000": False, "1p414": True}
    assert vs["scales_not_evaluated"] == ["8p000"]


def test_identical_files_give_no_difference(files, model_files, tmp_path, capsys):
    import json

    copy = tmp_path / "copy.h5"
    shutil.copy(files / TESTS[2], copy)
    assert run("compare-model", files / TESTS[2], copy, "--model", model_files / "model.pt", "--report", tmp_path / "same.json") == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1].startswith("no difference a model can see at this sample size (300 images): every prediction is the same")
    report = json.loads((tmp_path / "same.json").read_text())
    assert report["changed"] == 0 and report["mcnemar"]["p_value"] == 1.0 and report["difference"] == 0


def test_images_shifted_by_two_pixels_give_a_difference_with_the_changed_images(files, model_files, tmp_path, capsys):
    from mnist_large_scale.evaluate.model import load_model
    from mnist_large_scale.evaluate.run import predict

    shifted = tmp_path / "shifted.h5"
    shutil.copy(files / TESTS[2], shifted)
    with h5py.File(shifted, "r+") as h5:
        h5["x_test"][...] = np.roll(h5["x_test"][()], 2, axis=2)
    assert run("compare-model", files / TESTS[2], shifted, "--model", model_files / "model.pt", "--changed", tmp_path / "changed.tsv") == 1
    out = capsys.readouterr().out
    assert out.splitlines()[-1].startswith("the accuracy differs: -")
    model = load_model(str(model_files / "model.pt"))
    before, after = predict(model, files / TESTS[2]), predict(model, shifted)
    expected = np.flatnonzero(before.predicted != after.predicted)
    listed = np.loadtxt(tmp_path / "changed.tsv", skiprows=1, dtype=np.int64, ndmin=2)
    assert len(expected) > 10 and np.array_equal(listed[:, 0], expected)
    assert np.array_equal(listed[:, 2], before.predicted[expected]) and np.array_equal(listed[:, 3], after.predicted[expected])


def test_bad_models_and_options_fail_with_a_message(files, model_files, tmp_path, capsys):
    path = files / TESTS[0]
    cases = [
        (["--model", tmp_path / "none.pt"], "no such file, and not of the form module:callable"),
        (["--model", f"{HELPERS}:missing"], "has no 'missing'"),
        (["--model", model_files / "weights.pt"], "is not a TorchScript file"),
        (["--model", model_files / "model.pt", "--state-dict", model_files / "weights.pt"], "applies to module:callable only"),
        (["--model", f"{HELPERS}:negate", "--device", "cpu"], "negate() missing"),
        (["--model", model_files / "model.pt", "--transform", "affine:2"], "expected affine:A,B"),
        (["--model", model_files / "model.pt", "--device", "tpu"], "not one of cpu, cuda, mps"),
    ]
    import torch

    if not torch.cuda.is_available():  # the only device tried is the CPU; one without CUDA must say so
        cases.append((["--model", model_files / "model.pt", "--device", "cuda"], "this PyTorch sees no CUDA device"))
    for options, message in cases:
        assert run("evaluate", path, *options, "--out", tmp_path / "bad") == 2, options
        assert message in capsys.readouterr().err, options
    assert not (tmp_path / "bad.tsv").exists()
    assert run("evaluate", tmp_path / "absent.h5", "--model", model_files / "model.pt") == 2
    assert "no such file" in capsys.readouterr().err


def test_the_experiment_reports_through_evaluate(files, model_files):
    from mnist_large_scale.evaluate.model import load_model
    from mnist_large_scale.experiment import ExperimentSettings, evaluate

    row = evaluate(load_model(str(model_files / "model.pt")), files / TESTS[2], ExperimentSettings(test_images=200))
    assert row["images"] == 200 and row["test_scale"] == 1.0 and row["file"] == TESTS[2]
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(wilson_interval(row["correct"], 200)) and np.sum(row["confusion"]) == 200
    assert math.isclose(row["accuracy"], row["correct"] / 200)


@pytest.mark.slow
def test_snakemake_evaluate_builds_the_test_files_and_reports_as_the_command_does(files, model_files, tmp_path, mnist_dir):
    from conftest import make_workdir, run_snakemake

    tests = [name.replace("te300", "te60") for name in TESTS]
    settings = {"model": str(model_files / "model.pt"), "train_scale": 1.0, "test_files": tests, "batch_size": 32}
    work = make_workdir(tmp_path, mnist_dir, {"targets": tests, "evaluate": settings})
    done = run_snakemake(work, "--cores", "2", "evaluate", timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert run("evaluate", *(work / "results" / name for name in tests), "--model", model_files / "model.pt", "--train-scale", 1, "--out", tmp_path / "cli") == 0
    assert (work / "results/evaluate/accuracy_vs_scale.tsv").read_text() == (tmp_path / "cli.tsv").read_text()
    assert (work / "results/evaluate/evaluation.json").read_text() == (tmp_path / "cli.json").read_text()
    assert "images/s" in (work / "logs/evaluate.log").read_text()
    assert not (work / "results/validation").exists()  # the evaluation needs the files, not `all`


@pytest.mark.slow
def test_snakemake_evaluate_tests_on_the_17_published_test_files_by_default(tmp_path, mnist_dir):
    from conftest import make_workdir, run_snakemake

    work = make_workdir(tmp_path, mnist_dir, {"evaluate": {"model": f"{HELPERS}:small_cnn"}})
    done = run_snakemake(work, "--cores", "1", "-n", "evaluate")
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(r"build_file\s+17\b", done.stdout + done.stderr), done.stdout


def test_the_scale_comes_from_the_attributes_or_else_from_the_published_name(files, tmp_path):
    from mnist_large_scale.evaluate.run import file_scale

    assert file_scale(files / TESTS[1]) == pytest.approx(2**-0.5)
    published = tmp_path / "published" / TESTS[3]
    published.parent.mkdir()
    with h5py.File(files / TESTS[3], "r") as source, h5py.File(published, "w") as target:  # as published: no attributes
        for key in source:
            target.create_dataset(key, data=source[key][()])
    assert file_scale(published) == pytest.approx(2**0.5)
    renamed = tmp_path / "renamed.h5"
    shutil.copy(published, renamed)
    with pytest.raises(ValueError, match="no scale_test attribute, and its name gives no test scale"):
        file_scale(renamed)


def test_a_file_without_a_single_test_scale_fails_before_the_model_runs(files, tmp_path, capsys):
    renamed = tmp_path / "renamed.h5"
    with h5py.File(files / TESTS[0], "r") as source, h5py.File(renamed, "w") as target:
        for key in source:
            target.create_dataset(key, data=source[key][()])
    code = run("evaluate", files / TESTS[1], renamed, "--model", f"{HELPERS}:small_cnn", "--out", tmp_path / "out" / "evaluation")
    assert code == 2 and "its name gives no test scale" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
