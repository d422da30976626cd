"""The checksums of workflow/mnist_large_scale/digest.py: of a file's bytes and of its values alone."""

import hashlib

import h5py
import numpy as np
import pytest

from mnist_large_scale import digest
from mnist_large_scale.digest import dataset_sha256s, file_sha256, values_sha256


def _values():
    rng = np.random.default_rng(3)
    return {
        "x_test": rng.normal(size=(9, 6, 5, 1)),
        "y_test": rng.integers(0, 10, 9).astype(np.uint8),
        "x_train": rng.normal(size=(6, 5, 1)),
        "y_train": np.uint8(4),
    }


def _write(path, values, **options):
    with h5py.File(path, "w", libver=options.pop("libver", "earliest")) as h5:
        for name, array in values.items():
            array = np.asarray(array)
            kwargs = dict(options) if array.ndim >= 2 else {}
            if "byteorder" in kwargs:
                array = array.astype(array.dtype.newbyteorder(kwargs.pop("byteorder")))
            h5.create_dataset(name, data=array, **kwargs)
        h5.attrs["software"] = str(options)
    return path


def test_file_sha256_is_the_sha256_of_the_bytes(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc" * 3_000_000)  # more than one read block
    assert file_sha256(path) == hashlib.sha256(b"abc" * 3_000_000).hexdigest()


def test_same_values_in_other_layouts_give_one_values_digest_and_other_file_digests(tmp_path):
    values = _values()
    files = [
        _write(tmp_path / "plain.h5", values),
        _write(tmp_path / "chunked.h5", values, chunks=True, compression="gzip", shuffle=True),
        _write(tmp_path / "big_endian.h5", values, byteorder=">"),
        _write(tmp_path / "latest.h5", values, libver="latest", compression="lzf"),
    ]
    with h5py.File(files[2]) as h5:
        assert h5["x_test"].dtype.str == ">f8"  # really stored the other way round
    assert len({values_sha256(f) for f in files}) == 1
    assert len({file_sha256(f) for f in files}) == len(files)


def test_values_digest_matches_its_documented_definition(tmp_path):
    values = _values()
    path = _write(tmp_path / "a.h5", values)
    expected = {}
    for name in sorted(values):
        array = np.asarray(values[name])
        one = hashlib.sha256(f"{name}\0{array.dtype.str}\0{','.join(map(str, array.shape))}\0".encode())
        one.update(np.ascontiguousarray(array).tobytes())
        expected[name] = one.hexdigest()
    assert dataset_sha256s(path) == expected
    lines = "".join(f"{name}\t{expected[name]}\n" for name in sorted(expected))
    assert values_sha256(path) == hashlib.sha256(lines.encode()).hexdigest()


def test_a_changed_dataset_is_named_by_its_digest(tmp_path):
    values = _values()
    before = dataset_sha256s(_write(tmp_path / "a.h5", values))
    values["x_test"] = values["x_test"] + 1.0
    after = dataset_sha256s(_write(tmp_path / "b.h5", values))
    assert [name for name in before if before[name] != after[name]] == ["x_test"]


@pytest.mark.parametrize("change", ["flip_one_bit", "negative_zero", "swap_images", "rename", "reshape", "retype"])
def test_any_change_of_values_names_shapes_or_dtypes_changes_the_values_digest(tmp_path, change):
    values = _values()
    reference = values_sha256(_write(tmp_path / "a.h5", values))
    x = values["x_test"].copy()
    if change == "flip_one_bit":
        x.view(np.uint64)[4, 2, 3, 0] ^= np.uint64(1)  # one ulp in one value
        values["x_test"] = x
    elif change == "negative_zero":
        x[0, 0, 0, 0] = 0.0
        reference = values_sha256(_write(tmp_path / "zero.h5", {**values, "x_test": x}))
        x[0, 0, 0, 0] = -0.0
        values["x_test"] = x
    elif change == "swap_images":
        values["x_test"] = x[[1, 0, *range(2, len(x))]]
    elif change == "rename":
        values["x_val"] = values.pop("x_train")
    elif change == "reshape":
        values["x_test"] = x.reshape(9, 5, 6, 1)
    elif change == "retype":
        values["y_test"] = values["y_test"].astype(np.int8)
    assert values_sha256(_write(tmp_path / "b.h5", values)) != reference


def test_values_digest_reads_large_datasets_in_blocks_with_the_same_result(tmp_path, monkeypatch):
    values = _values()
    path = _write(tmp_path / "a.h5", values)
    whole = values_sha256(path)
    monkeypatch.setattr(digest, "_BLOCK_BYTES", 1)  # one image at a time
    assert values_sha256(path) == whole


def test_datasets_in_groups_count_by_their_path(tmp_path):
    path = tmp_path / "g.h5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset("group/x", data=np.arange(4.0))
    other = tmp_path / "h.h5"
    with h5py.File(other, "w") as h5:
        h5.create_dataset("x", data=np.arange(4.0))
    assert values_sha256(path) != values_sha256(other)
