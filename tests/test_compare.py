"""`compare`: published-like files with hidden recipe changes, and the verdicts on them.

A "published-like" file is built from raw MNIST with a changed recipe, copied
into a new file without any attribute (as the published files have none) and
given a published name, which says 10000 images where the file holds a few
dozen: the datasets, not the name, tell the counts.
"""

from __future__ import annotations

import dataclasses
import json
import os

import h5py
import numpy as np
import pytest
import yaml

from mnist_large_scale import recipe as reference
from mnist_large_scale.__main__ import main
from mnist_large_scale.build import build_file
from mnist_large_scale.compare import DIFFERS, IDENTICAL, WITHIN_ROUNDING, compare_file, locate_labels, recipe_snippet
from mnist_large_scale.engine import transform_images
from mnist_large_scale.names import parse_name
from mnist_large_scale.recipe import Recipe
from mnist_large_scale.recipe_fit import changes, is_float32, pre_threshold
from mnist_large_scale.writer import OutputOptions

COUNT = 48  # test images per file: enough for the fit, quick to build
FIT_IMAGES = 48


def published_name(tag: str) -> str:
    return f"mnist_large_scale_te10000_outsize112-112_scte{tag}.h5"


def strip_attributes(source, destination) -> None:
    """Copy every dataset, and nothing else, into a new file."""
    with h5py.File(source, "r") as src, h5py.File(destination, "w") as dst:
        for key in src:
            dst.create_dataset(key, data=src[key][()])


def make_published_like(tmp_path, config, mnist_base, mnist_paths, tag: str, transform=transform_images, count: int = COUNT, **changes) -> str:
    """A test-only file at scale ``tag`` made with the recipe changed by ``changes``, stripped and renamed."""
    spec = parse_name(f"mnist_large_scale_te{count}_outsize112-112_scte{tag}.h5")
    recipe = dataclasses.replace(Recipe.from_config(config["recipe"]), **changes)
    built = tmp_path / "built.h5"
    build_file(spec, mnist_base, mnist_paths, built, recipe, transform, seed=config["scale_seed"])
    target = tmp_path / published_name(tag)
    strip_attributes(built, target)
    built.unlink()
    return str(target)


def run_compare(path, config, mnist_dir, **options):
    return compare_file(path, config, raw_dir=mnist_dir, **{"fit_images": FIT_IMAGES, **options})


# --------------------------------------------------------------------------- #
# Verdicts without a change
# --------------------------------------------------------------------------- #


def test_an_unchanged_rebuild_is_identical_and_the_command_writes_its_report(tmp_path, config, mnist_base, mnist_paths, mnist_dir, capsys):
    path = make_published_like(tmp_path, config, mnist_base, mnist_paths, "2p000")
    report, figure = tmp_path / "report.json", tmp_path / "figure.png"
    code = main(["compare", path, "--raw-dir", str(mnist_dir), "--report", str(report), "--figure", str(figure), "--fit-images", "16"])
    out = capsys.readouterr().out
    assert code == 0
    assert "identical to the rebuild" in out.splitlines()[-1]
    data = json.loads(report.read_text())
    assert data["verdict"] == IDENTICAL
    assert [split["split"] for split in data["splits"]] == ["train", "val", "test"]
    assert all(split["identical_images"] == 1.0 and split["label_status"] == "match" for split in data["splits"])
    assert data["fit"]["changes"] == {}
    assert figure.stat().st_size > 10_000


def test_float_reference_values_are_equal_within_rounding(tmp_path, config, mnist_base, mnist_paths, mnist_dir):
    """The same recipe computed by the slow float reference differs by float rounding only."""
    path = make_published_like(tmp_path, config, mnist_base, mnist_paths, "1p414", transform=reference.transform_images, count=16)
    result = run_compare(path, config, mnist_dir)
    assert result.verdict == WITHIN_ROUNDING, result.line
    assert 0 < max(split.max_abs_difference for split in result.splits) <= 1e-8


def test_a_rebuilt_file_can_be_given(tmp_path, config, mnist_base, mnist_paths, mnist_dir):
    path = make_published_like(tmp_path, config, mnist_base, mnist_paths, "2p000", count=16)
    (tmp_path / "ours").mkdir()
    rebuilt = make_published_like(tmp_path / "ours", config, mnist_base, mnist_paths, "2p000", count=16, sigma_per_scale=0.8)
    result = run_compare(path, config, mnist_dir, rebuilt_path=rebuilt, fit_images=0)
    assert result.verdict == DIFFERS and result.fit is None
    assert all(split.max_abs_difference > 1e-3 for split in result.splits)


# --------------------------------------------------------------------------- #
# Hidden changes: each is named and its constant recovered
# --------------------------------------------------------------------------- #

HIDDEN = [
    ("2p000", {"sigma_per_scale": 0.8}),
    ("2p000", {"sigma_per_scale": 1.0}),
    ("2p000", {"stretch": False}),  # the default stretches: the hidden change leaves it out
    ("2p000", {"clip": False}),
    ("2p000", {"order": 1}),
    ("0p595", {"antialias": True}),
    ("2p000", {"round_to_float32": True}),
    ("2p000", {"centre_shift": (0.5, 0.5)}),
    ("4p000", {"sigma_per_scale": 1.0, "stretch": False}),
    ("0p707", {"centre_shift": (0.5, 0.0), "order": 1}),
]


@pytest.mark.slow
@pytest.mark.parametrize("tag, hidden", HIDDEN, ids=[f"{tag}-{'-'.join(hidden)}" for tag, hidden in HIDDEN])
def test_a_hidden_change_is_named_and_recovered(tmp_path, config, mnist_base, mnist_paths, mnist_dir, tag, hidden):
    path = make_published_like(tmp_path, config, mnist_base, mnist_paths, tag, **hidden)
    result = run_compare(path, config, mnist_dir)
    configured = Recipe.from_config(config["recipe"])
    found = changes(result.fit.recipe, configured)
    assert result.verdict == DIFFERS
    assert set(found) == set(hidden), result.line
    for key, value in hidden.items():
        fitted = getattr(result.fit.recipe, key)
        if key == "centre_shift":
            assert np.abs(np.subtract(fitted, value)).max() <= 0.05
        elif isinstance(value, float):
            assert fitted == pytest.approx(value, rel=0.02)
        else:
            assert fitted == value
    # The untouched constants of the threshold come back too.
    assert result.fit.recipe.gain == pytest.approx(configured.gain, rel=0.02)
    assert result.fit.recipe.offset == pytest.approx(configured.offset, rel=0.02)
    if "round_to_float32" not in hidden:  # a round trip's residual is float32 rounding before and after
        assert result.fit.residual_after < result.fit.residual_before / 100
    # The verdict line names every change; the snippet builds the fitted recipe.
    assert all(key in result.line for key in hidden)
    assert Recipe.from_config(yaml.safe_load(recipe_snippet(result.fit.recipe))["recipe"]) == result.fit.recipe


# Every constant the fit can change, each alone, through the command: a verdict, a JSON report
# and a figure each time (a fitted offset once came back a numpy float, which the report's
# config snippet could not hold, and the command died with neither).
EVERY_CONSTANT = [
    {"offset": 100.0},
    {"gain": 0.03},
    {"sigma_per_scale": 1.0},
    {"centre_shift": (0.5, 0.5)},
    {"order": 1},
    {"clip": False},
    {"stretch": False},
]


@pytest.mark.slow
@pytest.mark.parametrize("hidden", EVERY_CONSTANT, ids=[next(iter(hidden)) for hidden in EVERY_CONSTANT])
def test_the_command_writes_verdict_report_and_figure_for_every_changed_constant(tmp_path, config, mnist_base, mnist_paths, mnist_dir, capsys, hidden):
    path = make_published_like(tmp_path, config, mnist_base, mnist_paths, "2p000", count=24, **hidden)
    report, figure = tmp_path / "report.json", tmp_path / "figure.png"
    code = main(["compare", path, "--raw-dir", str(mnist_dir), "--report", str(report), "--figure", str(figure), "--fit-images", "24"])
    out = capsys.readouterr().out
    assert code == 1
    key = next(iter(hidden))
    assert out.splitlines()[-1].startswith(f"{published_name('2p000')}: differs") and key in out.splitlines()[-1]
    data = json.loads(report.read_text())
    assert data["verdict"] == DIFFERS and key in data["fit"]["changes"]
    assert Recipe.from_config(yaml.safe_load(data["fit"]["config_snippet"])["recipe"]) == Recipe.from_config(data["fit"]["recipe"])
    assert figure.stat().st_size > 10_000
    assert "different scales" not in data["line"]


def test_a_file_at_another_scale_than_its_name_says_is_named_so(tmp_path, config, mnist_base, mnist_paths, mnist_dir, capsys):
    """Built at 2^(5/4), compared as the name's 2p000 (a wrong --name): the command says the scales differ."""
    built = make_published_like(tmp_path, config, mnist_base, mnist_paths, "2p378", count=8)
    report, figure = tmp_path / "report.json", tmp_path / "figure.png"
    args = ["compare", built, "--name", published_name("2p000"), "--raw-dir", str(mnist_dir), "--report", str(report), "--figure", str(figure)]
    assert main([*args, "--fit-images", "8"]) == 1
    line = capsys.readouterr().out.splitlines()[-1]
    assert "looks to be at another scale (about 2.3" in line and "--name" in line
    assert "another scale" in " ".join(json.loads(report.read_text())["notes"]) and figure.is_file()


def test_a_rebuilt_file_of_another_scale_is_named_so(tmp_path, config, mnist_base, mnist_paths, mnist_dir):
    path = make_published_like(tmp_path, config, mnist_base, mnist_paths, "2p000", count=8)
    (tmp_path / "ours").mkdir()
    rebuilt = make_published_like(tmp_path / "ours", config, mnist_base, mnist_paths, "1p000", count=8)
    result = run_compare(path, config, mnist_dir, rebuilt_path=rebuilt, fit_images=0)
    assert result.verdict == DIFFERS
    assert "the rebuilt file's name says scale 1p000, the published file's 2p000" in result.line
    assert "two different scales are compared" in " ".join(result.notes)


# --------------------------------------------------------------------------- #
# Labels
# --------------------------------------------------------------------------- #


def test_offset_labels_are_located(tmp_path, config, mnist_base, mnist_paths, mnist_dir):
    """A test split made of MNIST training images 100.. is found there, and its images are paired with those."""
    test_split = dataclasses.replace(mnist_base.splits["test"], images="train-images-idx3-ubyte", labels="train-labels-idx1-ubyte", start=100, stop=10100)
    other = dataclasses.replace(mnist_base, splits={**mnist_base.splits, "test": test_split})
    path = make_published_like(tmp_path, config, other, mnist_paths, "2p000", count=16)
    result = run_compare(path, config, mnist_dir, fit_images=0)
    test = result.splits[-1]
    assert test.label_status == "offset"
    assert "train-labels-idx1-ubyte[100:]" in test.labels
    assert test.identical_images == 1.0  # paired with the images the labels point to
    assert result.verdict == DIFFERS and "train-labels-idx1-ubyte[100:]" in result.line


def test_shuffled_labels_are_reported(tmp_path, config, mnist_base, mnist_paths, mnist_dir):
    path = make_published_like(tmp_path, config, mnist_base, mnist_paths, "2p000", count=32)
    with h5py.File(path, "r+") as h5:
        order = np.random.default_rng(1).permutation(32)
        h5["x_test"][...] = h5["x_test"][()][order]
        h5["y_test"][...] = h5["y_test"][()][order]
    result = run_compare(path, config, mnist_dir)
    test = result.splits[-1]
    assert test.label_status == "shuffled" and test.compared == 0
    assert result.verdict == DIFFERS and "another order" in result.line


def test_locate_labels():
    raw = {"a": np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5]), "b": np.array([2, 7, 1, 8, 2, 8])}
    assert locate_labels(raw["a"][2:6], raw["a"][2:6], raw, "a", 2).status == "match"
    found = locate_labels(raw["b"][1:5], raw["a"][2:6], raw, "a", 2)
    assert (found.status, found.source, found.first_index) == ("offset", "b", 1)
    assert locate_labels(raw["a"][2:6][::-1], raw["a"][2:6], raw, "a", 2).status == "shuffled"
    assert locate_labels(np.array([0, 0, 0, 0]), raw["a"][2:6], raw, "a", 2).status == "unknown"


# --------------------------------------------------------------------------- #
# The fit's pieces
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    "scales, changes_",
    [(2.0, {}), (0.6, {"antialias": True, "centre_shift": (0.5, -0.25)}), (5.657, {"order": 1, "clip": False}), ("mixed", {"antialias": True})],
)
def test_the_fit_model_equals_the_reference_recipe(mnist_test_images, scales, changes_):
    images = mnist_test_images[:6]
    scales = np.array([0.5, 0.8, 1.0, 2.5, 4.0, 8.0]) if scales == "mixed" else np.full(6, scales)
    recipe = Recipe(**changes_)
    model = (2 / np.pi) * np.arctan(recipe.gain * (pre_threshold(images, scales, (112, 112), recipe) - recipe.offset))
    assert np.abs(model - reference.transform_images(images, scales, (112, 112), recipe)).max() <= 1e-12


def test_is_float32():
    values = np.linspace(-0.76, 0.76, 101)
    assert not is_float32(values)
    assert is_float32(values.astype(np.float32))


def test_the_snippet_is_the_recipe_section_of_a_config():
    recipe = Recipe(sigma_per_scale=0.8, centre_shift=(0.5, -0.25), antialias=True)
    assert Recipe.from_config(yaml.safe_load(recipe_snippet(recipe))["recipe"]) == recipe


def test_a_range_file_without_its_scales_is_compared_with_the_seeded_draws(tmp_path, config, mnist_base, mnist_paths, mnist_dir):
    spec = parse_name("mnist_large_scale_tr16_vl8_te8_outsize112-112_sctr1p000-4p000_scte1p000-4p000.h5")
    built = tmp_path / "built.h5"
    build_file(spec, mnist_base, mnist_paths, built, Recipe.from_config(config["recipe"]), transform_images, seed=config["scale_seed"])
    path = tmp_path / "mnist_large_scale_tr50000_vl10000_te10000_outsize112-112_sctr1p000-4p000_scte1p000-4p000.h5"
    strip_attributes(built, path)
    with h5py.File(path, "r+") as h5:
        for split in ("train", "val", "test"):
            del h5[f"s_{split}"]
    result = run_compare(path, config, mnist_dir, fit_images=8)
    assert result.verdict == IDENTICAL, result.line
    assert all("scale_seed" in " ".join(split.notes) for split in result.splits)


def test_a_renamed_file_takes_its_scale_from_the_options(tmp_path, config, mnist_base, mnist_paths, mnist_dir):
    renamed = tmp_path / "my_copy.h5"
    os.rename(make_published_like(tmp_path, config, mnist_base, mnist_paths, "2p828", count=8), renamed)
    assert run_compare(renamed, config, mnist_dir, name=published_name("2p828")).verdict == IDENTICAL
    assert run_compare(renamed, config, mnist_dir, name=published_name("1p000"), scale_test="2p828", fit_images=0).verdict == IDENTICAL


def test_a_file_stored_as_float32_is_named_so(tmp_path, config, mnist_base, mnist_paths, mnist_dir):
    spec = parse_name("mnist_large_scale_te16_outsize112-112_scte2p000.h5")
    built = tmp_path / "built.h5"
    options = OutputOptions(dtype="float32", compression="gzip")
    build_file(spec, mnist_base, mnist_paths, built, Recipe.from_config(config["recipe"]), transform_images, seed=1, options=options)
    result = run_compare(built, config, mnist_dir, name=published_name("2p000"), fit_images=16)
    assert result.verdict == DIFFERS
    assert changes(result.fit.recipe, Recipe.from_config(config["recipe"])) == {"round_to_float32": [False, True]}
    assert all(split.dtype == "float32" and "output.dtype: float32" in " ".join(split.notes) for split in result.splits)
    assert max(split.max_abs_difference for split in result.splits) < 1e-7


@pytest.mark.parametrize(
    "args, message",
    [
        (["not_a_published_name.h5"], "not_a_published_name"),
        ([published_name("2p000"), "--fit-images", "-1"], "--fit-images"),
        ([published_name("2p000")], "no such file"),
    ],
)
def test_bad_input_fails_with_a_message(tmp_path, mnist_dir, capsys, args, message):
    (tmp_path / "not_a_published_name.h5").write_bytes(b"")
    code = main(["compare", *(str(tmp_path / a) if a.endswith(".h5") else a for a in args), "--raw-dir", str(mnist_dir)])
    assert code == 2
    assert message in capsys.readouterr().err
