"""Reference checksums: the table in the package, comparisons with it, and the verify command."""

import json
import shutil
import subprocess
import sys
import zlib

import h5py
import numpy as np
import pytest

from mnist_large_scale import NUMERICS_VERSION
from mnist_large_scale.build import build_file, transform_for
from mnist_large_scale.engine import transform_images
from mnist_large_scale.names import parse_name
from mnist_large_scale.recipe import Recipe
from mnist_large_scale.references import (
    DIFFERS,
    MATCH,
    NO_REFERENCE,
    VALUES_MATCH,
    compare,
    load_references,
    reference_configuration,
    write_references,
)

NAMES = ["mnist_large_scale_te20_outsize32-32_scte2p000.h5", "mnist_large_scale_tr8_vl4_te4_outsize24-24_sctr1p000-4p000_scte1p000-4p000.h5"]


@pytest.fixture(scope="module")
def built(tmp_path_factory, mnist_base, mnist_paths, config):
    folder = tmp_path_factory.mktemp("references")
    paths = []
    for name in NAMES:
        path = folder / name
        build_file(parse_name(name), mnist_base, mnist_paths, path, Recipe.from_config(config["recipe"]), transform_images, seed=config["scale_seed"])
        paths.append(path)
    table_path = folder / "table.tsv"
    write_references(paths, reference_configuration(config), table_path)
    return paths, load_references(table_path)


def test_the_package_table_holds_the_21_published_files_under_the_shipped_configuration(config):
    table = load_references()
    assert sorted(table.rows) == sorted(config["targets"])
    assert table.applies_to(reference_configuration(config)), "config.yaml or the numerics changed: run `make references` after `make all`"
    assert table.configuration["numerics_version"] == NUMERICS_VERSION


def test_a_rebuild_matches(built, config):
    paths, table = built
    for path in paths:
        verdict = compare(path, table, reference_configuration(config))
        assert verdict.status == MATCH and verdict.sha256 == verdict.reference_sha256


def test_other_container_bytes_with_the_same_values_match_by_values(built, tmp_path):
    paths, table = built
    copy = tmp_path / paths[0].name
    with h5py.File(paths[0], "r") as source, h5py.File(copy, "w") as target:
        for name in source:
            target.create_dataset(name, data=source[name][()], chunks=True if source[name].ndim > 1 else None)
        target.attrs["written_by"] = "another library"
    assert compare(copy, table).status == VALUES_MATCH


def test_one_changed_value_differs(built, tmp_path):
    paths, table = built
    copy = tmp_path / paths[1].name
    shutil.copy(paths[1], copy)
    with h5py.File(copy, "r+") as h5:
        h5["x_val"][2, 5, 5, 0] = np.nextafter(h5["x_val"][2, 5, 5, 0], 1.0)
    verdict = compare(copy, table)
    assert verdict.status == DIFFERS and verdict.values_sha256 != verdict.reference_values_sha256
    assert verdict.reason.endswith("in x_val"), verdict.reason


def test_no_reference_for_other_names_or_another_configuration(built, config, tmp_path):
    paths, table = built
    other = tmp_path / "mnist_large_scale_te20_outsize32-32_scte3p000.h5"
    shutil.copy(paths[0], other)
    assert compare(other, table).status == NO_REFERENCE
    changed = reference_configuration({**config, "recipe": {**config["recipe"], "sigma_per_scale": 0.8}})
    verdict = compare(paths[0], table, changed)
    assert verdict.status == NO_REFERENCE and "recipe" in verdict.reason


def test_mirrors_and_io_settings_are_not_part_of_the_configuration(config):
    changed = json.loads(json.dumps(config))
    changed["base_data"]["mnist"]["mirrors"] = ["https://example.org/mnist/"]
    changed["output"]["direct_io"] = not config["output"]["direct_io"]
    changed["output"]["chunk_images"] = 7
    assert reference_configuration(changed) == reference_configuration(config)


def test_verify_command_prints_a_verdict_per_file_and_fails_on_a_difference(built, tmp_path, monkeypatch):
    paths, table = built
    table_path = tmp_path / "table.tsv"
    write_references(paths, table.configuration, table_path)
    changed = tmp_path / paths[0].name
    shutil.copy(paths[0], changed)
    damaged = tmp_path / "damaged" / paths[0].name
    damaged.parent.mkdir()
    with h5py.File(changed, "r+") as h5:
        h5["x_test"][0, 0, 0, 0] = 0.5
    shutil.copy(changed, damaged)  # the changed value, under the old CRC-32: damage
    with h5py.File(changed, "r+") as h5:  # with its own CRC-32: another build's values
        h5["x_test"].attrs["crc32"] = np.uint32(zlib.crc32(np.ascontiguousarray(h5["x_test"][()])))
    script = (
        "import sys, mnist_large_scale.references as r, mnist_large_scale.__main__ as m;"
        f"r.load_references = lambda path=None, _l=r.load_references: _l({str(table_path)!r});"
        "sys.exit(m.main(sys.argv[1:]))"
    )
    same = subprocess.run([sys.executable, "-c", script, "verify", str(paths[1])], capture_output=True, text=True)
    assert same.returncode == 0 and same.stdout.startswith("match")
    differs = subprocess.run([sys.executable, "-c", script, "verify", str(changed), str(paths[1])], capture_output=True, text=True)
    assert differs.returncode == 1
    assert differs.stdout.splitlines()[0].startswith("DIFFERS") and differs.stdout.splitlines()[1].startswith("match")
    broken = subprocess.run([sys.executable, "-c", script, "verify", str(damaged)], capture_output=True, text=True)
    assert broken.returncode == 1 and broken.stdout.startswith("DAMAGED") and "CRC-32" in broken.stdout


def test_a_file_of_the_scikit_image_transform_has_no_reference(built, mnist_base, mnist_paths, config, tmp_path):
    paths, table = built
    recipe = Recipe(transform="scikit-image")
    path = tmp_path / NAMES[0]
    build_file(parse_name(NAMES[0]), mnist_base, mnist_paths, path, recipe, transform_for(recipe), seed=config["scale_seed"])
    for configuration in (None, reference_configuration({**config, "recipe": {**config["recipe"], "transform": "scikit-image"}})):
        verdict = compare(path, table, configuration)
        assert verdict.status == NO_REFERENCE and "scikit-image transform" in verdict.reason, verdict


def test_transform_exact_is_the_configuration_without_the_key(config):
    without = {**config, "recipe": {key: value for key, value in config["recipe"].items() if key != "transform"}}
    assert config["recipe"]["transform"] == "exact"
    assert reference_configuration(config) == reference_configuration(without)
    assert "transform" not in reference_configuration(config)["recipe"]
