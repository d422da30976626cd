"""Figures: pixel sizes, what they draw from, and the scale ladder's sources."""

import h5py
import numpy as np
import pytest
from matplotlib.image import imread

from mnist_large_scale.build import build_file
from mnist_large_scale.figures import (
    LADDER_SCALES,
    file_montage,
    file_scale_histogram,
    first_of_each_class,
    ladder_columns,
    montage_figure,
    save_figure,
    scale_ladder_figure,
    size_vs_scale_figure,
    tile_grid,
    to_rgb,
)
from mnist_large_scale.idx import read_idx
from mnist_large_scale.names import parse_name, scale_tag
from mnist_large_scale.recipe import Recipe, transform_images


def png_shape(path):
    """(height, width) of a PNG in pixels."""
    return imread(path).shape[:2]


def test_to_rgb_maps_the_range_to_black_and_white_and_nan_to_red():
    rgb = to_rgb(np.array([[-1.0, 0.0, 1.0, np.nan]]), -1.0, 1.0)
    assert rgb[0, :3, 0].tolist() == [0.0, 0.5, 1.0] and rgb[0, 1].tolist() == [0.5, 0.5, 0.5]
    assert rgb[0, 3].tolist() == [1.0, 0.0, 0.0]


def test_tile_grid_places_tiles_row_by_row():
    tiles = np.zeros((5, 4, 3, 3))
    tiles[4] = 1.0
    grid = tile_grid(tiles, ncols=2, pad=1)
    assert grid.shape == (3 * 5 + 1, 2 * 4 + 1, 3)
    assert np.all(grid[11:15, 1:4] == 1.0) and np.all(grid[1:5, 1:4] == 0.0)


def test_montage_has_one_screen_pixel_per_image_pixel(tmp_path):
    images = np.random.default_rng(0).uniform(-0.76, 0.76, (10, 112, 112))
    path = tmp_path / "m.png"
    save_figure(montage_figure(images, range(10), "title", "subtitle", ncols=8), path)
    assert png_shape(path) == (44 + 2 * 114 + 2, 8 * 114 + 2)  # header + 2 rows; 8 columns
    drawn = imread(path)[44 + 2 : 44 + 2 + 112, 2 : 2 + 112, 0]  # the first tile, grey as drawn
    expected = (images[0] - images.min()) / (images.max() - images.min())
    assert np.abs(drawn[30:, 40:] - expected[30:, 40:]).max() < 1 / 255 + 1e-6  # away from the label


def test_small_montages_keep_a_title_wide_frame(tmp_path):
    path = tmp_path / "m.png"
    save_figure(montage_figure(np.zeros((3, 28, 28)), [1, 2, 3], "t"), path)
    assert png_shape(path) == (44 + 28 + 4, 640)


def test_first_of_each_class_on_mnist_test(mnist_dir):
    labels = read_idx(mnist_dir / "t10k-labels-idx1-ubyte")
    assert first_of_each_class(labels).tolist() == [3, 2, 1, 18, 4, 8, 11, 0, 61, 7]
    with pytest.raises(ValueError, match=r"no sample of class \[8\]"):
        first_of_each_class(labels[:20])


def test_ladder_columns_come_from_files_where_given_and_from_the_recipe_elsewhere(tmp_path, mnist_base, mnist_paths, mnist_test_images):
    name = "mnist_large_scale_te70_outsize112-112_scte2p000.h5"
    build_file(parse_name(name), mnist_base, mnist_paths, tmp_path / name, Recipe(), transform_images, seed=1)
    indices = np.array([3, 2, 1, 18, 4, 8, 11, 0, 61, 7])
    with h5py.File(tmp_path / name, "r+") as h5:
        h5["x_test"][61] = 0.5  # so that the column can only have come from this file
    columns = ladder_columns(indices, mnist_test_images[indices], Recipe(), {"2p000": tmp_path / name}, scales=(1.0, 2.0))
    assert [c["source"] for c in columns] == ["recipe", "file"]
    assert np.all(columns[1]["images"][8] == 0.5)
    assert np.array_equal(columns[0]["images"], transform_images(mnist_test_images[indices], np.ones(10), (112, 112)))


def test_ladder_falls_back_to_the_recipe_when_a_file_lacks_a_digit(tmp_path, mnist_base, mnist_paths, mnist_test_images):
    name = "mnist_large_scale_te20_outsize112-112_scte2p000.h5"  # index 61 (the first 8) is not in it
    build_file(parse_name(name), mnist_base, mnist_paths, tmp_path / name, Recipe(), transform_images, seed=1)
    indices = np.array([3, 2, 1, 18, 4, 8, 11, 0, 61, 7])
    columns = ladder_columns(indices, mnist_test_images[indices], Recipe(), {"2p000": tmp_path / name}, scales=(2.0,))
    assert columns[0]["source"] == "recipe"


def test_scale_ladder_has_17_columns_at_one_pixel_per_pixel(tmp_path):
    assert [scale_tag(s) for s in LADDER_SCALES][::4] == ["0p500", "1p000", "2p000", "4p000", "8p000"]
    columns = [{"scale": s, "images": np.zeros((10, 112, 112)), "source": "recipe"} for s in LADDER_SCALES]
    path = tmp_path / "ladder.png"
    save_figure(scale_ladder_figure(columns, range(10), "title"), path)
    assert png_shape(path) == (64 + 10 * 114 + 2, 28 + 17 * 114 + 2)


def test_size_vs_scale_figure_size(tmp_path):
    series = [
        {"file": "a", "split": "test", "nominal": "2p000", "limit": 4.0, "scale": np.full(50, 2.0), "ratio": np.full(50, 2.01)},
        {"file": "b", "split": "train", "nominal": "1p000-4p000", "limit": 4.0, "scale": np.linspace(1, 4, 50), "ratio": np.linspace(1, 4, 50)},
        {"file": "c", "split": "test", "nominal": "8p000", "limit": 4.0, "scale": np.full(5, 8.0), "ratio": np.array([6.0, 6.5, np.nan, 7.0, 5.0])},
    ]
    path = tmp_path / "size.png"
    save_figure(size_vs_scale_figure(series, 0.02, "title"), path)
    assert png_shape(path) == (520, 1200)


def test_scale_histogram_of_a_range_file(tmp_path, mnist_base, mnist_paths):
    name = "mnist_large_scale_tr100_vl30_te30_outsize56-56_sctr1p000-4p000_scte2p000.h5"
    build_file(parse_name(name), mnist_base, mnist_paths, tmp_path / name, Recipe(), transform_images, seed=1)
    path = tmp_path / "hist.png"
    save_figure(file_scale_histogram(tmp_path / name), path)
    assert png_shape(path) == (500, 1200)
    single = "mnist_large_scale_te5_outsize28-28_scte1p000.h5"
    build_file(parse_name(single), mnist_base, mnist_paths, tmp_path / single, Recipe(), transform_images, seed=1)
    with pytest.raises(ValueError, match="no per-sample scales"):
        file_scale_histogram(tmp_path / single)


def test_file_montage_of_a_test_only_file(tmp_path, mnist_base, mnist_paths):
    name = "mnist_large_scale_te12_outsize64-64_scte1p000.h5"
    build_file(parse_name(name), mnist_base, mnist_paths, tmp_path / name, Recipe(), transform_images, seed=1)
    path = tmp_path / "m.png"
    save_figure(file_montage(tmp_path / name, "test", 64), path)
    assert png_shape(path) == (44 + 2 * 66 + 2, 640)
    save_figure(file_montage(tmp_path / name, "train", 64), path)  # one sample, no leading axis
    assert png_shape(path) == (44 + 66 + 2, 640)
