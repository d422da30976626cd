"""The recipe's switch for the frame's edge (``recipe.smooth_boundary``).

``canvas`` smooths a canvas with a margin (the frame as a window on an
unbounded plane); ``reflect``, ``constant`` and ``nearest`` smooth the frame
itself with scipy.ndimage's boundary mode.  Here: the reference recipe is
scipy on the frame, the float model of the fit and the folded matrices equal
scipy, and files record the switch only when it is not the default.
"""

from __future__ import annotations

import json
import math

import h5py
import numpy as np
import pytest
from scipy import ndimage

from mnist_large_scale import engine, recipe
from mnist_large_scale.engine import boundary_index, folded_band, gaussian_weights
from mnist_large_scale.recipe import RECORDED_WHEN_SET, SMOOTH_BOUNDARIES, Recipe, recorded
from mnist_large_scale.recipe_fit import pre_threshold

FRAME_MODES = [mode for mode in SMOOTH_BOUNDARIES if mode != "canvas"]
OUT = (112, 112)


@pytest.fixture(scope="module")
def digits(mnist_train_images) -> np.ndarray:
    return mnist_train_images[:8]


@pytest.mark.parametrize("mode", FRAME_MODES)
@pytest.mark.parametrize("scale", [1.0, 5.657, 8.0])
def test_the_reference_smooths_the_frame_with_scipys_mode(digits, mode, scale):
    rcp = Recipe(smooth_boundary=mode)
    frame = np.clip(recipe.resample(digits[3], scale, OUT), 0, 255)
    smoothed = ndimage.gaussian_filter(frame, rcp.sigma(scale), mode=mode, cval=0.0, truncate=rcp.truncate)
    expected = recipe.soft_threshold(smoothed, rcp.gain, rcp.offset)
    np.testing.assert_array_equal(recipe.transform_image(digits[3], scale, OUT, rcp), expected)


@pytest.mark.parametrize("mode", SMOOTH_BOUNDARIES)
@pytest.mark.parametrize("scales", [2.0, 8.0, "per sample"])
def test_the_fits_float_model_equals_the_reference(digits, mode, scales):
    rcp = Recipe(smooth_boundary=mode, centre_shift=(0.5, -1.0))
    scales = np.geomspace(1.0, 8.0, len(digits)) if scales == "per sample" else np.full(len(digits), scales)
    model = (2 / math.pi) * np.arctan(rcp.gain * (pre_threshold(digits, scales, OUT, rcp) - rcp.offset))
    assert np.abs(model - recipe.transform_images(digits, scales, OUT, rcp)).max() < 1e-12


@pytest.mark.parametrize("mode", FRAME_MODES)
@pytest.mark.parametrize("length", [1, 2, 7, 30])
@pytest.mark.parametrize("sigma", [0.7, 3.0, 12.0])
def test_the_folded_band_is_scipys_correlation_with_that_boundary(mode, length, sigma):
    """Kernels wider than the line reflect (or repeat) more than once; on the engine's grid, rows sum exactly."""
    radius, kernel = gaussian_weights(np.array([sigma]), 4.0)
    kernel = engine.quantize_weights(kernel, engine.split_bits(2 * radius + 1, 255.0)[:, None], axis=1)
    line = np.random.default_rng(length).uniform(-1, 1, (length, 3))
    band = folded_band(kernel, 0, 0, length, length, length, mode)[0]
    expected = ndimage.correlate1d(line, kernel[0], axis=0, mode=mode, cval=0.0)
    np.testing.assert_allclose(band @ line, expected, rtol=0, atol=1e-12)
    sums = band.sum(axis=1)
    if mode == "constant":
        assert np.all(sums <= 1.0) and (length > 2 * int(4 * sigma + 0.5) or sums.max() < 1.0)
    else:
        assert np.all(sums == 1.0)  # a sum of the kernel's weights, all of them


def test_boundary_index_reflects_about_the_edge_repeatedly():
    index = np.arange(-7, 10)
    assert boundary_index(index, 3, "reflect").tolist() == [0, 0, 1, 2, 2, 1, 0, 0, 1, 2, 2, 1, 0, 0, 1, 2, 2]
    assert boundary_index(index, 3, "nearest").tolist() == [0] * 8 + [1] + [2] * 8
    assert boundary_index(index, 3, "constant").tolist() == [-1] * 7 + [0, 1, 2] + [-1] * 7


def test_the_default_is_recorded_without_the_key_and_the_others_with_it():
    assert RECORDED_WHEN_SET == {"smooth_boundary": "canvas"}
    assert "smooth_boundary" not in Recipe().recorded()
    assert Recipe().recorded() == {key: value for key, value in Recipe().as_dict().items() if key != "smooth_boundary"}
    assert Recipe(smooth_boundary="reflect").recorded()["smooth_boundary"] == "reflect"
    assert recorded({"order": 3, "smooth_boundary": "canvas"}) == {"order": 3}
    assert Recipe.from_config(Recipe().recorded()) == Recipe()


def test_an_unknown_boundary_is_refused():
    with pytest.raises(ValueError, match="smooth_boundary must be one of canvas, reflect, constant, nearest, got 'wrap'"):
        Recipe(smooth_boundary="wrap")


@pytest.mark.parametrize("mode", SMOOTH_BOUNDARIES)
def test_a_file_records_the_boundary_only_when_set_and_validation_names_a_mismatch(tmp_path, mnist_base, mnist_paths, mode):
    from mnist_large_scale import NUMERICS_VERSION
    from mnist_large_scale.build import build_file
    from mnist_large_scale.names import parse_name
    from mnist_large_scale.validate import attribute_differences

    spec = parse_name("mnist_large_scale_te4_outsize48-48_scte1p500.h5")
    rcp = Recipe(smooth_boundary=mode)
    path = tmp_path / spec.name
    build_file(spec, mnist_base, mnist_paths, path, rcp, recipe.transform_images, seed=1)
    with h5py.File(path, "r") as h5:
        attrs = dict(h5.attrs)
    assert json.loads(attrs["recipe"]) == rcp.recorded()
    assert ("smooth_boundary" in json.loads(attrs["recipe"])) == (mode != "canvas")
    assert attribute_differences(attrs, spec, mnist_base, rcp, 1, NUMERICS_VERSION) == []
    other = Recipe(smooth_boundary="nearest" if mode != "nearest" else "canvas")
    assert attribute_differences(attrs, spec, mnist_base, other, 1, NUMERICS_VERSION) == [
        f"recipe.smooth_boundary is {mode!r} in the file, {other.smooth_boundary!r} in the config"
    ]
