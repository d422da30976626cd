"""A byte tripwire: the small files of the cross-check have the sha256 recorded for this numerics version.

Any change that moves a byte of a default build (the engine, the threshold, the
writer, the attributes) without a new ``NUMERICS_VERSION`` fails here at once,
in ``make test-fast``.  A change that means to move bytes bumps the version and
records the new digests below (``make cross-check`` gives them for every
environment it can reach; benchmarks/cross_env.json).
"""

from __future__ import annotations

import pytest
import yaml

from benchmarks.cross_env import FILES, RECIPE_CHANGES
from conftest import REPO
from mnist_large_scale import NUMERICS_VERSION
from mnist_large_scale.build import build_file, transform_for
from mnist_large_scale.digest import file_sha256
from mnist_large_scale.names import parse_name
from mnist_large_scale.recipe import Recipe
from mnist_large_scale.writer import OutputOptions

#: sha256 of each file of benchmarks.cross_env.FILES, built with config.yaml (and the file's
#: benchmarks.cross_env.RECIPE_CHANGES), by numerics version.
SHA256 = {
    4: {
        "mnist_large_scale_te200_outsize112-112_scte0p707.h5": "c9dfc6e312fb5f9e5946fbd14e452bd98737b21c18ec95cc625a8f7e837214f1",
        "mnist_large_scale_te200_outsize112-112_scte5p657.h5": "2e1e1ff443eec850e0eff7991f093c033e202e1750a243d83a5b13e3c3d68cc8",
        "mnist_large_scale_tr200_vl50_te50_outsize112-112_sctr1p000-4p000_scte1p000-4p000.h5": (
            "1afe507f23e785ecfb9db3f3d3a1c38754d4b276fbbd9f5cbc22339f7f165efa"
        ),
        "mnist_large_scale_te200_outsize112-112_scte8p000.h5": "92b596a9e68ecce733170bf6ea6bd7067cbdf321e899304061f6253d040b8010",
    },
}


def test_the_digests_of_this_numerics_version_are_recorded_for_every_file():
    assert NUMERICS_VERSION in SHA256, f"numerics version {NUMERICS_VERSION} has no recorded digests: record them here (make cross-check)"
    assert set(SHA256[NUMERICS_VERSION]) == set(FILES)


@pytest.mark.parametrize("name", FILES)
def test_a_default_build_has_the_recorded_sha256(name, tmp_path, mnist_base, mnist_paths):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    recipe = Recipe.from_config({**config["recipe"], **RECIPE_CHANGES.get(name, {})})
    assert recipe.transform == "exact", "the tripwire holds for the exact transform, the default"
    path = tmp_path / name
    options = OutputOptions.from_config(config["output"])
    build_file(parse_name(name), mnist_base, mnist_paths, path, recipe, transform_for(recipe), seed=config["scale_seed"], options=options)
    assert file_sha256(path) == SHA256[NUMERICS_VERSION][name], f"{name}: other bytes without a new NUMERICS_VERSION"
