"""The loader (mnist_large_scale.load, MNISTLargeScale) against h5py's reads, on every layout the config writes."""

import multiprocessing
import pickle
import shutil

import h5py
import numpy as np
import pytest

import mnist_large_scale
from mnist_large_scale import MNISTLargeScale, load, split_sizes
from mnist_large_scale.build import build_file
from mnist_large_scale.names import parse_name
from mnist_large_scale.recipe import Recipe
from mnist_large_scale.writer import OutputOptions

NEEDS_TORCH = "needs PyTorch, the optional extra: make torch (installs envs/requirements-torch.lock into .venv)"
TRAINING = "mnist_large_scale_tr40_vl12_te9_outsize40-36_sctr2p000_scte1p414.h5"
RANGE = "mnist_large_scale_tr30_vl10_te10_outsize40-36_sctr1p000-4p000_scte1p000-4p000.h5"
TEST_ONLY = "mnist_large_scale_te25_outsize40-36_scte0p707.h5"
#: Every storage the config can write: contiguous (as published) and chunked, compressed, each dtype.
LAYOUTS = {
    "contiguous-float64": {},
    "contiguous-float32": {"dtype": "float32"},
    "gzip-float64": {"compression": "gzip", "shuffle": False},
    "gzip-shuffle-float64": {"compression": "gzip"},
    "lzf-float64": {"compression": "lzf", "shuffle": False},
    "gzip-shuffle-float32": {"dtype": "float32", "compression": "gzip"},
    "lzf-shuffle-float32": {"dtype": "float32", "compression": "lzf"},
}


@pytest.fixture(scope="module")
def built(tmp_path_factory, mnist_base, mnist_paths):
    """``built(name, layout)``: the path of a small file built once per module, with the engine."""
    from mnist_large_scale.engine import transform_images

    folder = tmp_path_factory.mktemp("loader")
    cache = {}

    def make(name, layout="contiguous-float64"):
        if (name, layout) not in cache:
            path = folder / layout / name
            path.parent.mkdir(exist_ok=True)
            options = OutputOptions(chunk_images=16, **LAYOUTS[layout])
            build_file(parse_name(name), mnist_base, mnist_paths, path, Recipe(), transform_images, seed=7, options=options)
            cache[name, layout] = path
        return cache[name, layout]

    return make


def published_like(source, target):
    """A copy of ``source`` as the published files are: the same datasets, contiguous, no attributes at all."""
    with h5py.File(source, "r") as old, h5py.File(target, "w") as new:
        for key in old:
            new.create_dataset(key, data=old[key][()])
    return target


def stored(path, split, key="x"):
    with h5py.File(path, "r") as h5:
        return h5[f"{key}_{split}"][()]


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_load_equals_h5py_on_every_layout(built, layout):
    path = built(TRAINING, layout)
    for split in ("train", "val", "test"):
        x, y = load(path, split, dtype="float64")
        assert x.dtype == np.float64 and np.array_equal(x, stored(path, split))
        assert y.dtype == np.uint8 and np.array_equal(y, stored(path, split, "y"))
        x32, _ = load(path, split)  # float32 by default
        assert x32.dtype == np.float32 and np.array_equal(x32, stored(path, split).astype(np.float32))
        first, _ = load(path, split, channels_first=True)
        assert first.shape == (len(y), 1, 40, 36) and np.array_equal(first[:, 0], x32[..., 0])


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_dataset_items_slices_and_index_lists_equal_h5py(built, layout):
    path = built(TRAINING, layout)
    reference = stored(path, "train")
    labels = stored(path, "train", "y")
    dataset = MNISTLargeScale(path, "train", dtype="float64")
    assert len(dataset) == 40 and dataset.image_shape == (1, 40, 36)
    assert dataset.contiguous == (LAYOUTS[layout].get("compression") is None)
    image, label = dataset[13]
    assert image.shape == (1, 40, 36) and np.array_equal(image[0], reference[13, ..., 0]) and label == labels[13] and isinstance(label, int)
    assert np.array_equal(dataset[-1][0][0], reference[-1, ..., 0])
    x, y = dataset[5:29:3]
    assert np.array_equal(x[:, 0], reference[5:29:3, ..., 0]) and np.array_equal(y, labels[5:29:3])
    order = [31, 2, 2, 17, 0, 39, 18, 19, 20, 3]  # unsorted, repeated, with runs
    x, y = dataset[order]
    assert np.array_equal(x[:, 0], reference[order, ..., 0]) and np.array_equal(y, labels[order])
    items = dataset.__getitems__(order)  # what DataLoader asks for
    assert [item[1] for item in items] == labels[order].tolist()
    assert all(np.array_equal(item[0][0], reference[index, ..., 0]) for item, index in zip(items, order, strict=True))
    as32 = MNISTLargeScale(path, "train")
    assert as32[7][0].dtype == np.float32 and np.array_equal(as32[7][0][0], reference[7, ..., 0].astype(np.float32))
    last = MNISTLargeScale(path, "train", channels_first=False)[7][0]
    assert last.shape == (40, 36, 1) and np.array_equal(last, reference[7].astype(np.float32))
    mask = np.zeros(40, dtype=bool)
    mask[[1, 7, 30]] = True
    assert np.array_equal(dataset[mask][0][:, 0], reference[[1, 7, 30], ..., 0])
    with pytest.raises(IndexError):
        dataset[40]


def test_splits_with_per_sample_scales_give_them(built):
    path = built(RANGE)
    x, y, s = load(path, "train")
    assert np.array_equal(s, stored(path, "train", "s")) and len(s) == len(y) == 30
    dataset = MNISTLargeScale(path, "val")
    image, label, scale = dataset[4]
    assert scale == stored(path, "val", "s")[4] and label == stored(path, "val", "y")[4]
    assert dataset.scale is None and np.array_equal(dataset.scales, stored(path, "val", "s"))
    assert len(dataset[2:5]) == 3


def test_split_and_scale_come_from_the_contents_not_the_name(built, tmp_path):
    # a training file at s = 2 (test split s = 1.414) under the name of a test-only file at s = 8
    path = shutil.copy(built(TRAINING), tmp_path / "mnist_large_scale_te10000_outsize112-112_scte8p000.h5")
    assert split_sizes(path) == {"train": 40, "val": 12, "test": 9}
    assert MNISTLargeScale(path, "train").scale == 2.0
    assert MNISTLargeScale(path, "test").scale == pytest.approx(2**0.5, abs=0)  # the exact power 2^(1/2)
    assert len(load(path, "train")[0]) == 40


def test_a_test_only_files_single_samples_are_not_a_split(built):
    path = built(TEST_ONLY)
    assert split_sizes(path) == {"train": 0, "val": 0, "test": 25}
    with pytest.raises(ValueError, match="single sample .* test-only file"):
        MNISTLargeScale(path, "train")
    with pytest.raises(ValueError, match="single sample"):
        load(path, "val")
    assert MNISTLargeScale(path, "test").scale == pytest.approx(2**-0.5, abs=0)
    with pytest.raises(ValueError, match="not one of"):
        load(path, "validation")


def test_a_published_like_file_without_attributes(built, tmp_path):
    source = built(TRAINING)
    path = published_like(source, tmp_path / TRAINING)
    with h5py.File(path, "r") as h5:
        assert not h5.attrs and h5["x_train"].chunks is None
    dataset = MNISTLargeScale(path, "train", dtype="float64")
    assert dataset.contiguous and dataset.scale is None
    assert np.array_equal(dataset[0:40][0][:, 0], stored(source, "train")[..., 0])
    assert np.array_equal(load(path, "test", dtype="float64")[0], stored(source, "test"))
    test_only = published_like(built(TEST_ONLY), tmp_path / TEST_ONLY)
    assert split_sizes(test_only) == {"train": 0, "val": 0, "test": 25}


def test_transform_is_applied_to_each_image(built):
    dataset = MNISTLargeScale(built(TRAINING), "train", transform=lambda image: image.sum())
    assert dataset[3][0] == pytest.approx(float(stored(built(TRAINING), "train")[3].astype(np.float32).sum()), rel=1e-6)
    assert len(dataset[0:4][0]) == 4


@pytest.mark.parametrize("layout", ["contiguous-float64", "gzip-shuffle-float64"])
def test_the_dataset_pickles_without_images_or_handles_and_reads_after_a_fork(built, layout):
    path = built(TRAINING, layout)
    dataset = MNISTLargeScale(path, "train")
    before = dataset[0:40][0]  # opens this process's handle and scratch buffer
    copy = pickle.loads(pickle.dumps(dataset))
    assert len(pickle.dumps(dataset)) < 10_000  # labels, not images
    assert np.array_equal(copy[0:40][0], before)
    arrays = {key: value.nbytes for key, value in vars(MNISTLargeScale(path, "train")).items() if isinstance(value, np.ndarray)}
    assert sum(arrays.values()) <= 40 * 9, arrays  # labels (and scales): no images held
    context = multiprocessing.get_context("fork")
    with context.Pool(2) as pool:
        parts = pool.map(_read_slice, [(dataset, 0, 20), (dataset, 20, 40)])
    assert np.array_equal(np.concatenate(parts), before)
    assert np.array_equal(dataset[0:40][0], before)  # the parent's handle still works after its children


def _read_slice(job):
    dataset, start, stop = job
    return dataset[start:stop][0]


def test_importing_the_package_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, mnist_large_scale; mnist_large_scale.MNISTLargeScale; mnist_large_scale.load; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
    assert mnist_large_scale.NUMERICS_VERSION >= 2


@pytest.mark.parametrize("layout", ["contiguous-float64", "gzip-shuffle-float32"])
def test_a_dataloader_with_two_workers_gives_every_image_once(built, layout):
    torch = pytest.importorskip("torch", reason=NEEDS_TORCH)
    from torch.utils.data import DataLoader

    path = built(RANGE, layout)
    dataset = MNISTLargeScale(path, "train")
    permutation = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(3)).tolist()
    loader = DataLoader(dataset, batch_size=7, sampler=permutation, num_workers=2, multiprocessing_context="fork")
    batches = list(loader)
    x = torch.cat([batch[0] for batch in batches]).numpy()
    y = torch.cat([batch[1] for batch in batches]).numpy()
    s = torch.cat([batch[2] for batch in batches]).numpy()
    assert batches[0][0].dtype == torch.float32 and batches[0][0].shape == (7, 1, 40, 36)
    assert np.array_equal(x[:, 0], stored(path, "train")[permutation, ..., 0].astype(np.float32))
    assert np.array_equal(y, stored(path, "train", "y")[permutation]) and np.array_equal(s, stored(path, "train", "s")[permutation])
    spawned = DataLoader(dataset, batch_size=16, shuffle=False, num_workers=2, multiprocessing_context="spawn")
    assert np.array_equal(torch.cat([batch[0] for batch in spawned]).numpy()[:, 0], stored(path, "train")[..., 0].astype(np.float32))
