"""Validation measures scale: it passes real files and catches planted faults."""

import json
import math

import h5py
import numpy as np
import pytest

from mnist_large_scale import build, engine
from mnist_large_scale.build import build_file
from mnist_large_scale.names import ScaleSpec, parse_name
from mnist_large_scale.recipe import Recipe, soft_threshold, transform_image, transform_images
from mnist_large_scale.validate import (
    ValidationFailed,
    ValidationSettings,
    attribute_differences,
    digit_moments,
    ink_reach,
    label_histogram,
    log_uniform_ks,
    measure_scales,
    mnist_centre_of_mass_offsets,
    raise_on_failure,
    reference_bound,
    summary_html,
    summary_rows,
    summary_tsv,
    uncropped_scale_limit,
    validate_file,
)
from mnist_large_scale.writer import OutputOptions, data_crc32

BACKGROUND = float(soft_threshold(0.0, 0.02, 128))
SETTINGS = ValidationSettings(sample_images=120)
SEED = 20200605
TEST_ONLY = "mnist_large_scale_te150_outsize112-112_scte{}.h5"
RANGE = "mnist_large_scale_tr300_vl40_te40_outsize112-112_sctr1p000-4p000_scte1p000-4p000.h5"


def make(tmp_path, mnist_base, mnist_paths, name, transform=engine.transform_images, recipe=Recipe(), options=OutputOptions()):
    """A file built as the build rule builds it: by default with the exact engine."""
    path = tmp_path / name
    build_file(parse_name(name), mnist_base, mnist_paths, path, recipe, transform, seed=SEED, options=options)
    return path


def failed(report):
    return {check["check"] for check in report["checks"] if not check["ok"]}


# --- the measures themselves -------------------------------------------------------------------


def test_moments_of_a_gaussian_blob():
    rows, cols = np.indices((64, 64))
    sigma, centre = 3.0, (30.25, 35.5)
    blob = np.exp(-((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2) / (2 * sigma**2))
    centroids, radii = digit_moments(blob[np.newaxis] - 1.0, background=-1.0)
    assert centroids[0] == pytest.approx(centre, abs=1e-9)
    assert radii[0] == pytest.approx(math.sqrt(2) * sigma, rel=1e-6)  # two axes, sigma^2 each


def test_moments_ignore_the_background_and_flag_empty_or_nan_images():
    image = np.full((3, 20, 20), BACKGROUND)
    image[0, 5, 7] = 0.5
    image[2, 5, 7] = np.nan
    centroids, radii = digit_moments(image, BACKGROUND)
    assert centroids[0] == pytest.approx([5.0, 7.0], abs=1e-12) and radii[0] == pytest.approx(0.0, abs=1e-6)
    assert np.isnan(radii[1]) and np.isnan(radii[2])


def test_uncropped_scale_limit():
    assert uncropped_scale_limit((112, 112)) == 4.0
    assert uncropped_scale_limit((64, 112)) == pytest.approx(64 / 28)


def test_ink_reach_counts_the_pixel_and_the_interpolation():
    image = np.zeros((2, 28, 28), np.uint8)
    image[0, 27, 10] = 1
    image[0, 5, 12] = 200
    assert ink_reach(image).tolist() == [[14.5, 4.5], [0.0, 0.0]]


def test_a_digit_mnist_cropped_itself_is_not_checked_digit_by_digit_at_scale_four(mnist_test_images):
    # test digit 6599 has ink on the last row of its 28 x 28 image; at s = 4 that row
    # is the frame's last row, and the digit loses a strip of stroke
    digits = mnist_test_images[[6599, 0]]
    measured = measure_scales(transform_images(digits, np.full(2, 4.0), (112, 112)), np.full(2, 4.0), digits, Recipe())
    assert measured["ink_fits"].tolist() == [False, True]
    assert measured["ratio"][0] / 4 < 0.985 and abs(measured["ratio"][1] / 4 - 1) < 0.01
    at_3 = measure_scales(transform_images(digits, np.full(2, 3.364), (112, 112)), np.full(2, 3.364), digits, Recipe())
    assert at_3["ink_fits"].tolist() == [True, True] and abs(at_3["ratio"][0] / 3.364 - 1) < 0.01


def test_label_histogram():
    assert label_histogram(np.array([0, 3, 3, 9], np.uint8)) == [1, 0, 0, 2, 0, 0, 0, 0, 0, 1]
    assert label_histogram(np.array([0.5, 1.0])) is None


@pytest.mark.parametrize("scale", [0.5, 2**-0.25, 2**0.25, 2.0, 2**1.75, 4.0])
def test_measured_size_ratio_is_the_scale_on_real_digits(mnist_test_images, scale):
    digits = mnist_test_images[:200]
    images = transform_images(digits, np.full(200, scale), (112, 112))
    measured = measure_scales(images, np.full(200, scale), digits, Recipe())
    relative = measured["ratio"] / scale
    # measured on the first 300 test digits: median within 0.5 % at every scale 0.5 .. 4
    assert abs(np.median(relative) - 1) < 0.006
    if scale >= 1:  # digit by digit within 1 % from scale 1 on (2 % is the check)
        assert np.abs(relative - 1).max() < 0.01
    assert measured["centroid_error"].max() < 0.6


def test_mean_centroid_is_past_the_centre_by_s_times_mnists_offset(mnist_test_images):
    # docs/recipe.md: near 56.5 at s = 2 and about 57.5 at s = 4 (MNIST's centre of mass is near pixel 14)
    digits = mnist_test_images[:200]
    offsets = mnist_centre_of_mass_offsets(digits).mean(axis=0)
    assert offsets == pytest.approx([0.5, 0.5], abs=0.05)
    for scale in (2.0, 4.0):
        measured = measure_scales(transform_images(digits, np.full(200, scale), (112, 112)), np.full(200, scale), digits, Recipe())
        assert measured["centroid"].mean(axis=0) == pytest.approx(55.5 + scale * offsets, abs=0.15)


def test_ks_accepts_log_uniform_and_rejects_uniform_scales():
    spec = ScaleSpec("1p000", "4p000")
    _, p_good = log_uniform_ks(build.draw_scales(spec, 300, 20200605, "train"), 1.0, 4.0)
    statistic, p_bad = log_uniform_ks(np.random.default_rng(1).uniform(1, 4, 300), 1.0, 4.0)
    assert p_good > 0.05
    assert statistic > 0.15 and p_bad < 1e-6


# --- whole files --------------------------------------------------------------------------------


@pytest.mark.parametrize("tag", ["0p500", "2p000", "4p000", "8p000"])
def test_a_correct_file_passes_and_reports_its_scale(tmp_path, mnist_base, mnist_paths, tag):
    path = make(tmp_path, mnist_base, mnist_paths, TEST_ONLY.format(tag))
    report = validate_file(path, mnist_base, mnist_paths, Recipe(), SEED, settings=SETTINGS)
    assert report["ok"], failed(report)
    json.dumps(report, allow_nan=False)  # strict JSON
    names = {check["check"] for check in report["checks"]}
    measured = report["summary"]["test"]["scale"]
    assert measured["sampled"] == 120 and len(measured["per_digit"]["ratio"]) == 120
    if tag == "8p000":  # cropped: measured, reported, not checked
        assert not any("size ratio" in name or "centroid" in name for name in names)
        assert measured["ratio_over_scale"]["median"] < 0.9
    else:
        assert {"test: median size ratio / scale within 1 +- 0.02", "test: median centroid error within 1 px"} <= names
        # below scale 1 single digits alias: checked as medians only
        assert any(name.startswith("test: every digit's size ratio") for name in names) == (tag != "0p500")
        assert any(name.startswith("test: every digit's centroid") for name in names) == (tag != "0p500")
        assert abs(measured["ratio_over_scale"]["median"] - 1) < 0.006


def test_a_correct_range_file_passes_with_its_ks_test(tmp_path, mnist_base, mnist_paths):
    report = validate_file(make(tmp_path, mnist_base, mnist_paths, RANGE), mnist_base, mnist_paths, Recipe(), SEED, settings=SETTINGS)
    assert report["ok"], failed(report)
    assert report["summary"]["train"]["scale_distribution"]["count"] == 300
    assert "train: scales log-uniform on [1, 4) (KS p >= 0.001)" in {check["check"] for check in report["checks"]}


def test_fault_file_built_at_the_wrong_scale(tmp_path, mnist_base, mnist_paths):
    # named 2p000, built at 2.1 (5 % too large)
    wrong = make(tmp_path, mnist_base, mnist_paths, TEST_ONLY.format("2p000"), lambda images, scales, shape, recipe, out=None: transform_images(images, scales * 1.05, shape, recipe, out=out))
    report = validate_file(wrong, mnist_base, mnist_paths, Recipe(), SEED, settings=SETTINGS)
    assert "test: median size ratio / scale within 1 +- 0.02" in failed(report)
    assert any(name.startswith("test: every digit's size ratio") for name in failed(report))
    assert report["summary"]["test"]["scale"]["ratio_over_scale"]["median"] == pytest.approx(1.05, abs=0.01)


def test_fault_digits_shifted_off_centre(tmp_path, mnist_base, mnist_paths):
    def shifted(images, scales, shape, recipe, out=None):
        return np.roll(transform_images(images, scales, shape, recipe), 2, axis=2)  # 2 px to the right

    report = validate_file(make(tmp_path, mnist_base, mnist_paths, TEST_ONLY.format("2p000"), shifted), mnist_base, mnist_paths, Recipe(), SEED, settings=SETTINGS)
    assert failed(report) == {
        *(f"{split}: every digit's centroid within 1 px of the frame centre + s x its scale-1 offset" for split in ("train", "val", "test")),
        *(f"{split}: median centroid error within 1 px" for split in ("train", "val", "test")),
        # the images differ from the recipe's, so the recomputed samples see it too
        *(f"{split}: {n} recomputed samples equal the engine's bit for bit" for split, n in (("train", 1), ("val", 1), ("test", 32))),
        *(f"{split}: {n} recomputed samples within the recipe's bound of scikit-image's" for split, n in (("train", 1), ("val", 1), ("test", 32))),
    }


def test_fault_shuffled_labels(tmp_path, mnist_base, mnist_paths):
    path = make(tmp_path, mnist_base, mnist_paths, TEST_ONLY.format("2p000"))
    with h5py.File(path, "r+") as h5:
        h5["y_test"][...] = np.random.default_rng(0).permutation(h5["y_test"][()])
    report = validate_file(path, mnist_base, mnist_paths, Recipe(), SEED, settings=SETTINGS)
    # same histogram, wrong order: only the order check sees it, and the digest of
    # the values stored when the file was written
    assert failed(report) == {"test: labels equal the base data's, in order", "y_test: values equal the crc32 stored when written"}


def test_fault_labels_of_another_split(tmp_path, mnist_base, mnist_paths):
    path = make(tmp_path, mnist_base, mnist_paths, TEST_ONLY.format("2p000"))
    with h5py.File(path, "r+") as h5:
        h5["y_test"][...] = np.roll(h5["y_test"][()], 1)  # off by one image
        h5["y_test"][0] = (h5["y_test"][0] + 1) % 10
    report = validate_file(path, mnist_base, mnist_paths, Recipe(), SEED, settings=SETTINGS)
    assert {"test: labels equal the base data's, in order", "test: label histogram equals the base data's"} <= failed(report)


@pytest.mark.parametrize("index", [3, 140])  # inside and outside the measured sample
def test_fault_a_nan(tmp_path, mnist_base, mnist_paths, index):
    path = make(tmp_path, mnist_base, mnist_paths, TEST_ONLY.format("2p000"))
    with h5py.File(path, "r+") as h5:
        h5["x_test"][index, 60, 60, 0] = np.nan
    report = validate_file(path, mnist_base, mnist_paths, Recipe(), SEED, settings=SETTINGS)
    assert "test: finite" in failed(report)
    assert report["summary"]["test"]["nonfinite"] == 1
    json.dumps(report, allow_nan=False)


def test_fault_range_file_with_uniform_scales(tmp_path, mnist_base, mnist_paths, monkeypatch):
    def uniform(spec, n, seed, split):
        return np.random.default_rng(seed).uniform(spec.low, spec.high, n)

    monkeypatch.setattr(build, "draw_scales", uniform)
    report = validate_file(make(tmp_path, mnist_base, mnist_paths, RANGE), mnist_base, mnist_paths, Recipe(), SEED, settings=SETTINGS)
    # images match their stored scales, so only the distribution test fails (val and
    # test hold 40 draws: too few to separate uniform from log-uniform reliably)
    assert "train: scales log-uniform on [1, 4) (KS p >= 0.001)" in failed(report)
    assert not any("size" in name or "centroid" in name for name in failed(report))


def test_fault_range_file_whose_stored_scales_do_not_match_its_images(tmp_path, mnist_base, mnist_paths):
    path = make(tmp_path, mnist_base, mnist_paths, RANGE)
    with h5py.File(path, "r+") as h5:
        h5["s_train"][...] = np.random.default_rng(0).permutation(h5["s_train"][()])
    report = validate_file(path, mnist_base, mnist_paths, Recipe(), SEED, settings=SETTINGS)
    assert any(name.startswith("train: every digit's size ratio") for name in failed(report))
    assert any(name.startswith("train: every digit's centroid") for name in failed(report))


def test_a_single_image_at_the_wrong_scale_is_caught_digit_by_digit(tmp_path, mnist_base, mnist_paths, mnist_test_images):
    path = make(tmp_path, mnist_base, mnist_paths, TEST_ONLY.format("2p000"))
    with h5py.File(path, "r+") as h5:
        h5["x_test"][17, :, :, 0] = transform_image(mnist_test_images[17], 2.1, (112, 112))
    report = validate_file(path, mnist_base, mnist_paths, Recipe(), SEED, settings=SETTINGS)
    worst = next(check for check in report["checks"] if check["check"].startswith("test: every digit's size ratio"))
    assert not worst["ok"] and worst["worst_index"] == 17 and worst["outside"] == 1
    assert "test: median size ratio / scale within 1 +- 0.02" not in failed(report)


# --- what the file says about itself -------------------------------------------------------------


def differences(report):
    check = next(check for check in report["checks"] if check["check"] == "attributes agree with the config, the name and the package")
    assert check["ok"] == (not check["differences"])
    return check["differences"]


def test_a_file_built_with_another_sigma_fails_naming_the_difference_and_is_measured_with_the_configs(tmp_path, mnist_base, mnist_paths):
    name = TEST_ONLY.format("2p000")
    path = tmp_path / name
    build_file(parse_name(name), mnist_base, mnist_paths, path, Recipe(sigma_per_scale=0.8), transform_images, seed=SEED)
    report = validate_file(path, mnist_base, mnist_paths, Recipe(), SEED, settings=SETTINGS)
    assert differences(report) == ["recipe.sigma_per_scale is 0.8 in the file, 0.875 in the config"]
    # the samples are recomputed with the config's recipe, not the file's, so they differ too
    assert {f"{split}: {n} recomputed samples within the recipe's bound of scikit-image's" for split, n in (("train", 1), ("val", 1), ("test", 32))} <= failed(report)
    with pytest.raises(ValidationFailed, match="recipe.sigma_per_scale is 0.8 in the file, 0.875 in the config"):
        raise_on_failure(report)
    assert differences(validate_file(path, mnist_base, mnist_paths, Recipe(sigma_per_scale=0.8), SEED, settings=SETTINGS)) == []


def test_seed_numerics_counts_and_pins_that_differ_are_named(tmp_path, mnist_base, mnist_paths):
    import dataclasses

    from mnist_large_scale import NUMERICS_VERSION
    from mnist_large_scale.sources import RawFile

    path = make(tmp_path, mnist_base, mnist_paths, RANGE)
    assert differences(validate_file(path, mnist_base, mnist_paths, Recipe(), SEED, settings=SETTINGS)) == []
    assert differences(validate_file(path, mnist_base, mnist_paths, Recipe(), 7, settings=SETTINGS)) == [f"scale_seed is {SEED} in the file, 7 in the config"]
    later = validate_file(path, mnist_base, mnist_paths, Recipe(), SEED, settings=SETTINGS, numerics_version=NUMERICS_VERSION + 1)
    assert differences(later) == [f"numerics_version is {NUMERICS_VERSION} in the file, {NUMERICS_VERSION + 1} in this package"]
    # the same bytes under a name that asks for fewer test images
    renamed = tmp_path / "renamed" / RANGE.replace("_te40_", "_te30_")
    renamed.parent.mkdir()
    path.rename(renamed)
    assert "splits.test.count is 40 in the file, 30 in the name" in differences(validate_file(renamed, mnist_base, mnist_paths, Recipe(), SEED, settings=SETTINGS))
    # a config that pins other raw bytes: the file was not built from them
    labels = mnist_base.files["test_labels"]
    other = dataclasses.replace(mnist_base, files={**mnist_base.files, "test_labels": RawFile(labels.name, labels.size, "0" * 64)})
    found = attribute_differences({"source_sha256": json.dumps({labels.name: labels.sha256})}, parse_name(RANGE), other, Recipe(), SEED, NUMERICS_VERSION)
    assert f"source_sha256.{labels.name} is {labels.sha256!r} in the file, {'0' * 64!r} in the config" in found


# --- the summary table --------------------------------------------------------------------------


def test_summary_table_has_a_row_per_file_and_split_and_marks_failures(tmp_path, mnist_base, mnist_paths):
    good = validate_file(make(tmp_path, mnist_base, mnist_paths, TEST_ONLY.format("2p000")), mnist_base, mnist_paths, Recipe(), SEED, settings=SETTINGS)
    bad = dict(good, file="bad.h5", ok=False, checks=good["checks"] + [{"check": "test: finite", "ok": False, "nonfinite": 1}])
    rows = summary_rows([good, bad])
    assert [(row["file"], row["split"]) for row in rows][:3] == [(good["file"], split) for split in ("train", "val", "test")]
    assert rows[2]["images"] == 150 and rows[2]["scale"] == "2p000" and rows[2]["within_tolerance"] == "120/120"
    assert abs(rows[2]["ratio_median"] - 1) < 0.006
    tsv = summary_tsv(rows).splitlines()
    assert len(tsv) == 7 and tsv[0].startswith("file\tsplit\timages\tscale")
    html = summary_html([good, bad], rows)
    assert html.count("<tr class=\"fail\">") == 2 and "CHECKS FAIL" in html and "all checks pass" in html
    # texts are escaped by construction: a name or a check with markup characters stays text
    odd = dict(bad, file="<b>odd</b>.h5", checks=[{"check": "test: a < b & c", "ok": False}])
    html = summary_html([odd], summary_rows([odd]))
    assert "&lt;b&gt;odd&lt;/b&gt;.h5" in html and "test: a &lt; b &amp; c" in html and "<b>" not in html


@pytest.mark.parametrize("name, threads, direct_io", [(RANGE, 2, True), (TEST_ONLY.format("2p000"), 1, True), (RANGE, 1, False)])
def test_validate_and_checksum_equals_validate_file_and_the_file_digest(tmp_path, mnist_base, mnist_paths, name, threads, direct_io):
    from mnist_large_scale.sources import sha256_of
    from mnist_large_scale.validate import validate_and_checksum

    path = make(tmp_path, mnist_base, mnist_paths, name)
    report, sha256 = validate_and_checksum(path, mnist_base, mnist_paths, Recipe(), SEED, OutputOptions(direct_io=direct_io), SETTINGS, threads=threads)
    assert sha256 == sha256_of(path)
    assert report == validate_file(path, mnist_base, mnist_paths, Recipe(), SEED, settings=SETTINGS) and report["ok"]


def test_validate_and_checksum_finds_a_flipped_byte_in_the_images(tmp_path, mnist_base, mnist_paths):
    from mnist_large_scale.sources import sha256_of
    from mnist_large_scale.validate import validate_and_checksum

    path = make(tmp_path, mnist_base, mnist_paths, RANGE)
    with h5py.File(path, "r") as h5:
        x = h5["x_train"]
        at = x.id.get_offset() + (x.size // 2) * 8  # the lowest byte of a middle value: far below any tolerance
    with open(path, "r+b") as handle:
        handle.seek(at)
        byte = handle.read(1)
        handle.seek(at)
        handle.write(bytes([byte[0] ^ 1]))
    report, sha256 = validate_and_checksum(path, mnist_base, mnist_paths, Recipe(), SEED, settings=SETTINGS)
    assert sha256 == sha256_of(path)
    assert failed(report) == {"x_train: values equal the crc32 stored when written"}


# --- recomputed samples: the engine bit for bit, scikit-image within the recipe's bound ---------------


@pytest.mark.parametrize(
    "tag, changes, dtype",
    [
        ("0p500", {"stretch": True}, "float64"),
        ("2p000", {"stretch": True}, "float64"),
        ("5p657", {"stretch": True}, "float64"),
        ("0p707", {"antialias": True}, "float64"),
        ("2p000", {"centre_shift": [0.5, -0.5]}, "float64"),
        ("2p000", {"order": 1}, "float64"),
        ("2p000", {"clip": False}, "float64"),
        ("1p189", {"round_to_float32": True}, "float64"),
        ("2p000", {}, "float32"),
        ("range", {"stretch": True, "antialias": True}, "float64"),
    ],
)
def test_engine_files_of_every_recipe_switch_pass_the_default_validation(tmp_path, mnist_base, mnist_paths, tag, changes, dtype):
    recipe = Recipe(**changes)
    options = OutputOptions(dtype=dtype)
    name = RANGE if tag == "range" else TEST_ONLY.format(tag)
    path = make(tmp_path, mnist_base, mnist_paths, name, recipe=recipe, options=options)
    report = validate_file(path, mnist_base, mnist_paths, recipe, SEED, options=options)
    assert report["ok"], failed(report)
    checks = {check["check"]: check for check in report["checks"]}
    n_test = 32
    assert checks[f"test: {n_test} recomputed samples equal the engine's bit for bit"]["ok"]
    assert checks[f"test: {n_test} recomputed samples within the recipe's bound of scikit-image's"]["max_abs_diff"] > 0 or dtype == "float32"


def test_one_ulp_in_one_pixel_of_a_sampled_image_fails_naming_the_split_and_the_image(tmp_path, mnist_base, mnist_paths):
    path = make(tmp_path, mnist_base, mnist_paths, TEST_ONLY.format("2p000"))
    image = int(np.unique(np.linspace(0, 149, 32).round().astype(int))[5])  # one of the 32 recomputed samples
    with h5py.File(path, "r+") as h5:
        x = h5["x_test"]
        values = x[()]
        values[image, 56, 56, 0] = np.nextafter(values[image, 56, 56, 0], 1.0)
        x[...] = values
        x.attrs["crc32"] = np.uint32(data_crc32(values))  # as if it had been written so: only the recomputation can tell
    report = validate_file(path, mnist_base, mnist_paths, Recipe(), SEED, settings=SETTINGS)
    assert failed(report) == {"test: 32 recomputed samples equal the engine's bit for bit"}
    check = next(check for check in report["checks"] if not check["ok"])
    assert check["differing_images"] == [image] and check["max_abs_diff"] == pytest.approx(2.0**-53, rel=1)
    with pytest.raises(ValidationFailed, match=rf"test: 32 recomputed samples equal the engine's bit for bit: .*\"differing_images\": \[{image}\]"):
        raise_on_failure(report)


def test_a_file_built_by_scikit_image_passes_with_the_recipe_bound_and_is_not_held_to_the_engines_bits(tmp_path, mnist_base, mnist_paths):
    recipe = Recipe(transform="scikit-image", stretch=True)
    path = make(tmp_path, mnist_base, mnist_paths, TEST_ONLY.format("2p000"), transform=build.transform_for(recipe, threads=2), recipe=recipe)
    with h5py.File(path, "r") as h5:
        assert json.loads(h5.attrs["recipe"])["transform"] == "scikit-image"
    report = validate_file(path, mnist_base, mnist_paths, recipe, SEED)
    assert report["ok"], failed(report)
    names = {check["check"] for check in report["checks"]}
    assert "test: 32 recomputed samples within twice the recipe's bound of the engine's" in names
    assert not any("bit for bit" in name for name in names)
    # the config's exact transform names the difference
    report = validate_file(path, mnist_base, mnist_paths, Recipe(stretch=True), SEED)
    assert "recipe.transform is 'scikit-image' in the file, 'exact' in the config" in differences(report)


def test_the_reference_bound_follows_the_recipe():
    assert reference_bound(Recipe()) == engine.ENGINE_TOLERANCE
    assert reference_bound(Recipe(gain=0.05)) == pytest.approx(2.5 * engine.ENGINE_TOLERANCE)
    # the stretch multiplies each image by clip_max / peak; its peak carries the error too
    np.testing.assert_allclose(reference_bound(Recipe(stretch=True), np.array([255.0, 51.0])), [2, 10] * np.array(engine.ENGINE_TOLERANCE))
    # a key the bound does not know leaves it alone
    assert reference_bound(Recipe(centre_shift=(0.5, 0.5), antialias=True, order=1)) == engine.ENGINE_TOLERANCE
