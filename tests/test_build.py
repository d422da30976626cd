"""The written layout (docs/recipe.md), provenance, atomic writes and reproducibility."""

import hashlib
import json
import os
import subprocess

import h5py
import numpy as np
import pytest

from mnist_large_scale.atomic import parse_temporary, temporary_path, write_text_atomically
from mnist_large_scale.build import build_file, draw_scales, split_scales
from mnist_large_scale.names import ScaleSpec, parse_name
from mnist_large_scale.recipe import Recipe, transform_image, transform_images
from mnist_large_scale.writer import OutputOptions, SplitData, atomic_path, write_file


def build(tmp_path, mnist_base, mnist_paths, name, **options):
    """Build ``name`` in tmp_path; ``options`` are those of OutputOptions."""
    path = tmp_path / name
    build_file(parse_name(name), mnist_base, mnist_paths, path, Recipe(), transform_images, seed=7, options=OutputOptions(**options))
    return path


def test_training_file_layout(tmp_path, mnist_base, mnist_paths, mnist_train_images, mnist_test_images):
    path = build(tmp_path, mnist_base, mnist_paths, "mnist_large_scale_tr30_vl20_te10_outsize40-48_sctr2p000_scte2p000.h5", chunk_images=7)
    with h5py.File(path, "r") as h5:
        assert sorted(h5) == ["x_test", "x_train", "x_val", "y_test", "y_train", "y_val"]
        for split, n in (("train", 30), ("val", 20), ("test", 10)):
            x = h5[f"x_{split}"]
            assert x.shape == (n, 40, 48, 1) and x.dtype == np.float64
            assert x.chunks is None and x.compression is None  # contiguous, as published
            assert h5[f"y_{split}"].shape == (n,) and h5[f"y_{split}"].dtype == np.uint8
        assert np.array_equal(h5["x_train"][3, :, :, 0], transform_image(mnist_train_images[3], 2.0, (40, 48)))
        assert np.array_equal(h5["x_val"][0, :, :, 0], transform_image(mnist_train_images[50000], 2.0, (40, 48)))
        assert np.array_equal(h5["x_test"][9, :, :, 0], transform_image(mnist_test_images[9], 2.0, (40, 48)))
        assert h5["y_train"][:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
        assert json.loads(h5.attrs["recipe"]) == Recipe().recorded()
        assert "LeCun" in h5.attrs["citation"] and "Jansson" in h5.attrs["citation"]
        # the data's licences: MNIST's (from the config), then the derived set's terms
        assert h5.attrs["license"].startswith(mnist_base.license + " | ") and mnist_base.license.count("CC BY-SA 3.0") == 1
        assert "Yann LeCun and Corinna Cortes" in h5.attrs["license"] and "Zenodo record 3820247" in h5.attrs["license"]
        assert json.loads(h5.attrs["source_sha256"])["train-images-idx3-ubyte"] == mnist_base.files["train_images"].sha256


def test_test_only_file_holds_one_train_and_one_val_sample_without_the_leading_axis(tmp_path, mnist_base, mnist_paths, mnist_train_images):
    path = build(tmp_path, mnist_base, mnist_paths, "mnist_large_scale_te5_outsize112-112_scte1p189.h5")
    with h5py.File(path, "r") as h5:
        assert h5["x_train"].shape == (112, 112, 1) and h5["x_val"].shape == (112, 112, 1)
        assert h5["y_train"].shape == () and h5["y_train"][()] == 5
        assert h5["y_val"][()] == mnist_base_label(mnist_paths, 50000)
        assert h5["x_test"].shape == (5, 112, 112, 1)
        assert np.array_equal(h5["x_train"][:, :, 0], transform_image(mnist_train_images[0], 2**0.25, (112, 112)))
        # what the published loader does
        x_train = np.array(h5["x_train"], dtype=np.float32)
        assert (x_train[np.newaxis] if x_train.ndim == 3 else x_train).shape == (1, 112, 112, 1)


def mnist_base_label(mnist_paths, index):
    from mnist_large_scale.idx import read_idx

    return read_idx(mnist_paths["train-labels-idx1-ubyte"])[index]


def test_range_file_stores_log_uniform_per_sample_scales(tmp_path, mnist_base, mnist_paths, mnist_train_images):
    path = build(tmp_path, mnist_base, mnist_paths, "mnist_large_scale_tr40_vl10_te10_outsize112-112_sctr1p000-4p000_scte1p000-4p000.h5")
    with h5py.File(path, "r") as h5:
        scales = h5["s_train"][()]
        assert scales.shape == (40,) and np.all((scales >= 1) & (scales < 4))
        assert np.array_equal(h5["x_train"][5, :, :, 0], transform_image(mnist_train_images[5], scales[5], (112, 112)))
        assert h5.attrs["scale_seed"] == 7
        assert not np.array_equal(h5["s_train"][:10], h5["s_val"][()])


def test_scale_draws_are_prefix_stable_and_log_uniform():
    spec = ScaleSpec("1p000", "4p000")
    many = draw_scales(spec, 20000, seed=1, split="train")
    assert np.array_equal(draw_scales(spec, 100, seed=1, split="train"), many[:100])
    u = np.log2(many) / 2
    assert np.histogram(u, bins=10, range=(0, 1))[0].min() > 1800
    assert not np.array_equal(draw_scales(spec, 100, seed=1, split="val"), many[:100])
    fixed = split_scales(parse_name("mnist_large_scale_te3_outsize8-8_scte2p000.h5"), "test", seed=1)
    assert fixed.tolist() == [2.0, 2.0, 2.0]


def test_same_inputs_give_byte_identical_files(tmp_path, mnist_base, mnist_paths):
    name = "mnist_large_scale_tr20_vl5_te5_outsize32-32_sctr1p000-4p000_scte2p000.h5"
    first = build(tmp_path, mnist_base, mnist_paths, name)
    (tmp_path / "again").mkdir()
    second = build(tmp_path / "again", mnist_base, mnist_paths, name)
    assert hashlib.sha256(first.read_bytes()).hexdigest() == hashlib.sha256(second.read_bytes()).hexdigest()


def test_float32_and_compression_are_options(tmp_path, mnist_base, mnist_paths):
    path = build(tmp_path, mnist_base, mnist_paths, "mnist_large_scale_te100_outsize28-28_scte1p000.h5", dtype="float32", compression="gzip")
    with h5py.File(path, "r") as h5:
        assert h5["x_test"].dtype == np.float32 and h5["x_test"].compression == "gzip"


def test_a_failed_write_leaves_nothing_under_the_final_name(tmp_path):
    def failing(images, scales, out):
        raise RuntimeError("engine failed")

    target = tmp_path / "out.h5"
    data = SplitData(np.zeros((3, 28, 28), np.uint8), np.zeros(3, np.uint8), np.ones(3))
    with pytest.raises(RuntimeError, match="engine failed"):
        write_file(target, {"train": data, "val": data, "test": data}, failing, (8, 8), {})
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_renames_only_on_success(tmp_path):
    target = tmp_path / "a.bin"
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"x")
        assert not target.exists()
    assert target.read_bytes() == b"x"


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_two_writers_of_one_name_write_and_rename_only_their_own_temporary_files(tmp_path):
    target = tmp_path / "a.bin"
    with atomic_path(target) as first, atomic_path(target) as second:
        assert first != second and first.parent == second.parent == tmp_path
        first.write_bytes(b"first")
        second.write_bytes(b"second")
    assert target.read_bytes() == b"first"  # the outer block ends last
    assert list(tmp_path.iterdir()) == [target]


def test_a_temporary_file_replaced_by_someone_else_is_not_renamed(tmp_path):
    target = tmp_path / "a.bin"
    with pytest.raises(RuntimeError, match="no longer the file this process wrote"):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"mine")
            other = tmp.with_name("other")
            other.write_bytes(b"theirs")
            os.replace(other, tmp)
    assert not target.exists()


def test_a_dead_writers_temporary_file_is_removed_by_the_next_writer_and_a_live_ones_kept(tmp_path):
    target = tmp_path / "a.txt"
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        stale, live = temporary_path(target, pid=_dead_pid()), temporary_path(target, pid=sleeper.pid)
        elsewhere = stale.with_name(stale.name.replace(f".{parse_temporary(stale)[1]}.", ".another-host.", 1))
        for path in (stale, live, elsewhere):
            path.write_text("half")
        assert parse_temporary(live)[::2] == ("a.txt", sleeper.pid)
        write_text_atomically(target, "whole")
        assert target.read_text() == "whole"
        assert not stale.exists() and live.read_text() == "half" and elsewhere.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.parametrize(
    "name, options, mostly_direct",
    [
        ("mnist_large_scale_tr20_vl5_te5_outsize112-112_sctr1p000-4p000_scte2p000.h5", {"chunk_images": 6}, True),
        # 33 x 57 float64 images fill whole pages only 512 at a time: all through h5py
        ("mnist_large_scale_tr21_vl7_te9_outsize33-57_sctr2p000_scte1p000.h5", {"chunk_images": 4}, False),
        ("mnist_large_scale_te1000_outsize40-48_scte1p500.h5", {}, True),  # 4 images a page run; blocks of 1000
        ("mnist_large_scale_tr30_vl3_te5_outsize32-32_sctr1p000_scte1p000.h5", {"dtype": "float32", "chunk_images": 7}, True),
    ],
)
def test_direct_and_buffered_writes_give_the_same_bytes(tmp_path, mnist_base, mnist_paths, monkeypatch, name, options, mostly_direct):
    from mnist_large_scale import direct_io

    written = []
    pwrite = direct_io.DirectWriter._pwrite
    monkeypatch.setattr(direct_io.DirectWriter, "_pwrite", lambda self, values, offset: written.append(values.nbytes) or pwrite(self, values, offset))
    (tmp_path / "direct").mkdir()
    (tmp_path / "buffered").mkdir()
    direct = build(tmp_path / "direct", mnist_base, mnist_paths, name, direct_io=True, **options)
    buffered = build(tmp_path / "buffered", mnist_base, mnist_paths, name, direct_io=False, **options)
    assert direct.read_bytes() == buffered.read_bytes()
    probe = direct_io._open_direct(tmp_path / "direct" / name, os.O_RDONLY)
    if probe is not None:  # this file system takes direct I/O
        os.close(probe)
    if probe is not None and mostly_direct:
        with h5py.File(direct, "r") as h5:
            images = sum(h5[f"x_{split}"].nbytes for split in ("train", "val", "test") if h5[f"x_{split}"].ndim == 4)
        assert sum(written) >= images // 2, (sum(written), images)
    elif not mostly_direct:
        assert written == []
    with h5py.File(direct, "r") as h5:
        for split in ("train", "val", "test"):
            assert h5[f"x_{split}"].id.get_offset() % direct_io.ALIGNMENT == 0


def test_a_file_system_that_refuses_direct_writes_gets_the_same_bytes_through_h5py(tmp_path, mnist_base, mnist_paths, monkeypatch):
    """pwrite failing with EINVAL (as on file systems without direct I/O): the writer falls back, same bytes."""
    import errno

    from mnist_large_scale import direct_io

    name = "mnist_large_scale_tr20_vl5_te5_outsize112-112_sctr1p000-4p000_scte2p000.h5"
    (tmp_path / "buffered").mkdir()
    buffered = build(tmp_path / "buffered", mnist_base, mnist_paths, name, direct_io=False, chunk_images=6)
    refused = []

    def pwrite(fd, data, offset):
        refused.append(offset)
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(direct_io.os, "pwrite", pwrite)
    refusing = build(tmp_path, mnist_base, mnist_paths, name, chunk_images=6)
    assert refusing.read_bytes() == buffered.read_bytes()
    if direct_io._open_direct(refusing, os.O_RDONLY) is not None:  # the writer did try, once
        assert len(refused) == 1


@pytest.mark.parametrize(
    ("name", "compression"),
    [
        ("mnist_large_scale_te300_outsize56-56_scte2p000.h5", None),
        ("mnist_large_scale_te300_outsize56-56_scte2p000.h5", "gzip"),
        ("mnist_large_scale_te300_outsize56-56_scte2p000.h5", "lzf"),
        # per-sample scales: blocks of other sizes group other scales together
        ("mnist_large_scale_tr200_vl50_te50_outsize56-56_sctr1p000-4p000_scte1p000-4p000.h5", None),
        ("mnist_large_scale_tr200_vl50_te50_outsize56-56_sctr1p000-4p000_scte1p000-4p000.h5", "gzip"),
    ],
)
def test_the_images_per_step_do_not_change_the_bytes(tmp_path, mnist_base, mnist_paths, name, compression):
    """output.chunk_images is a memory setting, not a layout: it stays out of the build's params.

    Compressed files keep HDF5 chunks of one image whatever the step; steps of 64,
    100 and 1000 images give the same bytes.
    """
    files = []
    for chunk_images in (64, 100, 1000):
        (tmp_path / str(chunk_images)).mkdir()
        path = build(tmp_path / str(chunk_images), mnist_base, mnist_paths, name, compression=compression, chunk_images=chunk_images)
        if compression:
            with h5py.File(path, "r") as h5:
                assert h5["x_test"].chunks == (1, 56, 56, 1) and h5["x_test"].shuffle
        files.append(path.read_bytes())
    assert files[0] == files[1] == files[2]


def test_a_fetch_removes_the_download_folders_of_dead_fetches_only(tmp_path):
    from mnist_large_scale.atomic import host_name
    from mnist_large_scale.fetch import _stale_fetch_folders

    name = "t10k-labels-idx1-ubyte"
    dead = tmp_path / f".fetch-{name}-{host_name()}.{_dead_pid()}-abc123"
    live = tmp_path / f".fetch-{name}-{host_name()}.{os.getpid()}-def456"
    elsewhere = tmp_path / f".fetch-{name}-another-host.{_dead_pid()}-ghi789"
    earlier = tmp_path / f".fetch-{name}-x1y2z3"  # the earlier form names no writer
    for folder in (dead, live, elsewhere, earlier):
        folder.mkdir()
    assert sorted(_stale_fetch_folders(tmp_path, name)) == sorted([dead, earlier])
