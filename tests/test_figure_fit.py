"""The figure fit (figure_fit.py), the evidence's parsing and fetching (evidence.py) and the model (riesznet.py).

The montages are drawn here, with matplotlib, from images the recipe's float
model makes with hidden changes; no third-party figure is used.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math

import numpy as np
import pytest

from mnist_large_scale import evidence
from mnist_large_scale.figure_display import Display, colormap_table, decode_panels, draw_montage, find_panels, read_png
from mnist_large_scale.figure_fit import Hypothesis, analyse_figure, model_values
from mnist_large_scale.recipe import Recipe

ROWS, COLS, SIZE = 4, 4, 64


def _montage(images, labels, scales, hypothesis: Hypothesis) -> bytes:
    """A montage drawn at 50 dpi (panels of about 48 px); the analysis finds the dpi from its layout."""
    values = model_values(images, scales, (SIZE, SIZE), hypothesis)
    return draw_montage(values, labels, ROWS, COLS, "viridis", 50.0)



def _analyse(png, images, labels, scales, scale_range=None):
    return analyse_figure(png, ROWS, COLS, "viridis", images, labels, scales, (SIZE, SIZE), Recipe(), scale_range=scale_range, self_check=True, bootstrap=50, max_evaluations=80).result


@pytest.fixture(scope="module")
def digits(mnist_test_images):
    return mnist_test_images[: ROWS * COLS], [str(k) for k in range(ROWS * COLS)]


def test_panels_decode_to_the_drawn_values():
    ramp = np.tile(np.linspace(-0.7, 0.7, SIZE), (ROWS * COLS, SIZE, 1))
    table = colormap_table("viridis")
    rgb = read_png(draw_montage(ramp, ["1"] * (ROWS * COLS), ROWS, COLS, "viridis", 50.0))
    boxes = find_panels(rgb, ROWS, COLS, table)
    panels = decode_panels(rgb, boxes, table)
    assert len(boxes) == ROWS * COLS
    model = Display(1.0).render(ramp, panels.shape[1:])
    assert np.sqrt(np.mean((panels - model) ** 2)) < 0.03


def test_a_wrong_grid_is_refused():
    ramp = np.tile(np.linspace(0, 1, SIZE), (ROWS * COLS, SIZE, 1))
    rgb = read_png(draw_montage(ramp, ["1"] * (ROWS * COLS), ROWS, COLS, "viridis", 50.0))
    with pytest.raises(ValueError, match="not the 8 x 8 grid"):
        find_panels(rgb, 8, 8, colormap_table("viridis"))
    with pytest.raises(ValueError, match="unknown colormap"):
        colormap_table("no-such-map")


def test_notebook_facts_are_parsed(tmp_path):
    png = base64.b64encode(draw_montage(np.zeros((1, 8, 8)) + np.eye(8), ["3"], 1, 1, "viridis", 20.0)).decode()
    cells = [
        {"cell_type": "code", "source": ['scale = "2p000"\n', "filename = 'mnist_large_scale_te10000_outsize112-112_scte{:s}.h5'"], "outputs": [{"text": ["Intensity range: [-0.76, 0.76] \n"]}]},
        {"cell_type": "code", "source": ["images = x_test\n", "ax.imshow(images[0])"], "outputs": [{"data": {"image/png": png}}]},
        {"cell_type": "code", "source": ["print(start)"], "outputs": [{"text": ["[9447, 10000]\n"]}]},
    ]
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"cells": cells}))
    facts = evidence.notebook_facts(path)
    name = "mnist_large_scale_te10000_outsize112-112_scte2p000.h5"
    assert facts["ranges"] == [{"cell": 0, "file": name, "min": "-0.76", "max": "0.76"}]
    assert facts["counts"] == [{"cell": 2, "file": name, "correct": 9447, "total": 10000}]
    assert [(f["cell"], f["split"]) for f in facts["figures"]] == [(1, "test")]
    assert evidence.published_counts(facts) == {"2": 0.9447}


def test_offline_without_inputs_names_what_is_needed(tmp_path):
    with pytest.raises(RuntimeError) as error:
        evidence.fetch_inputs(tmp_path, offline=True)
    for name, url, digest in evidence.INPUTS.values():
        assert url in str(error.value) and digest in str(error.value) and name in str(error.value)
    (tmp_path / evidence.INPUTS["riesznet_weights"][0]).write_bytes(b"not the weights")
    with pytest.raises(RuntimeError, match="wrong sha256"):
        evidence.fetch_inputs(tmp_path, offline=True)


def test_riesz_centre_scores_equal_the_layered_model():
    torch = pytest.importorskip("torch")
    from mnist_large_scale.riesznet import build_model, centre_scores, riesz_kernels

    ry, rx = riesz_kernels(32, 32)
    assert ry[16, 16] == 0 and rx[16, 16] == 0
    assert np.allclose((np.abs(ry) ** 2 + np.abs(rx) ** 2)[np.arange(32) != 16], 1.0)
    torch.manual_seed(1)
    model = build_model()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    model.eval()
    images = torch.rand(3, 1, 32, 32, dtype=torch.float32)
    with torch.no_grad():
        layered = model(images)
        fast = torch.softmax(centre_scores(model, images), dim=1)
    assert float((layered - fast).abs().max()) < 1e-12


# The hidden changes: each montage is made with one, and the fit must find it.
@pytest.mark.slow
@pytest.mark.parametrize(
    ("form", "changes"),
    [("none", {}), ("max", {}), ("none", {"sigma_per_scale": 0.7}), ("none", {"sigma_per_scale": 1.0}), ("none", {"centre_shift": (0.5, 0.0)}), ("none", {"gain": 0.03})],
    ids=["unchanged", "stretch", "sigma0.7", "sigma1.0", "shift0.5", "gain0.03"],
)
def test_hidden_changes_are_found(digits, form, changes):
    images, labels = digits
    scales = np.full(len(images), 1.5)
    hidden = Hypothesis(form, dataclasses.replace(Recipe(), **changes))
    result = _analyse(_montage(images, labels, scales, hidden), images, labels, scales)
    assert result["best_form"] == ("max" if form == "max" else "none")
    assert result["self_check"]["best_form"] == "none"
    constants = {name: entry["corrected"] for name, entry in result["constants"].items()}
    truth = hidden.recipe
    assert abs(constants["sigma_per_scale"] / truth.sigma_per_scale - 1) < 0.10
    assert abs(constants["shift_down"] - truth.centre_shift[0]) < 0.25
    assert abs(constants["shift_right"] - truth.centre_shift[1]) < 0.25
    assert abs(constants["gain"] / truth.gain - 1) < 0.15
    assert result["consistent_with_configured"] == (form == "none" and not changes)


@pytest.mark.slow
def test_a_range_montage_gives_each_digits_scale_and_the_stretch(digits):
    images, labels = digits
    scales = np.exp2(np.random.default_rng(3).uniform(0, 1, len(images)))  # [1, 2]: digits inside a 64-px frame
    hidden = Hypothesis("max", Recipe())
    result = _analyse(_montage(images, labels, scales, hidden), images, labels, None, scale_range=(1.0, 2.0))
    assert result["best_form"] == "max"
    assert np.max(np.abs(np.log2(result["scales"]) - np.log2(scales))) < math.log2(1.1)
    assert abs(result["constants"]["sigma_per_scale"]["corrected"] / 0.875 - 1) < 0.10
