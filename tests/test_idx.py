import struct

import numpy as np
import pytest

from mnist_large_scale.idx import IdxError, parse_idx, read_idx


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    header = struct.pack(">HBB", 0, type_code, array.ndim) + b"".join(struct.pack(">I", n) for n in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def test_reads_images_and_labels():
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    labels = np.array([7, 3], dtype=np.uint8)
    assert np.array_equal(parse_idx(idx_bytes(images), ndim=3, shape=(None, 28, 28)), images)
    assert np.array_equal(parse_idx(idx_bytes(labels), ndim=1), labels)


def test_reads_big_endian_types_into_native_order():
    values = np.array([1, -2, 300000], dtype=np.int32)
    out = parse_idx(idx_bytes(values, 0x0C))
    assert out.dtype == np.dtype("int32") and out.dtype.isnative
    assert np.array_equal(out, values)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "too short"),
        (b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", "bad IDX magic"),
        (b"\x00\x00\x07\x01\x00\x00\x00\x01\x05", "bad IDX magic"),
        (b"PK\x03\x04" + bytes(100), "bad IDX magic"),
        (b"\x00\x00\x08\x03\x00\x00", "truncated IDX header"),
        (idx_bytes(np.zeros((3, 28, 28), np.uint8))[:-1], "truncated"),
        (idx_bytes(np.zeros((3, 28, 28), np.uint8)) + b"\x00", "trailing bytes"),
    ],
)
def test_bad_bytes_are_refused_with_a_message_that_names_the_file(data, message):
    with pytest.raises(IdxError, match=message) as caught:
        parse_idx(data, name="some-file")
    assert "some-file" in str(caught.value)


def test_wrong_dimensions_are_refused():
    labels = idx_bytes(np.zeros(5, np.uint8))
    with pytest.raises(IdxError, match="1 dimensions, expected 3"):
        parse_idx(labels, ndim=3)
    with pytest.raises(IdxError, match=r"dimensions \(2, 28, 27\), expected \(None, 28, 28\)"):
        parse_idx(idx_bytes(np.zeros((2, 28, 27), np.uint8)), shape=(None, 28, 28))
    # a shape of another length is refused too, not compared on its common prefix only
    with pytest.raises(IdxError, match=r"dimensions \(2, 28, 28\), expected \(None, 28\)"):
        parse_idx(idx_bytes(np.zeros((2, 28, 28), np.uint8)), shape=(None, 28))


def test_real_mnist_has_the_expected_shapes(mnist_dir):
    assert read_idx(mnist_dir / "train-images-idx3-ubyte", ndim=3).shape == (60000, 28, 28)
    labels = read_idx(mnist_dir / "train-labels-idx1-ubyte", ndim=1)
    assert labels.shape == (60000,)
    first = "5 0 4 1 9 2 1 3 1 4 3 5 3 6 1 7 2 8 6 9 4 0 9 1 1 2 4 3 2 7 3 8 6 9 0 5 6 0 7 6 1 8 7 9 3 9 8 5 9 3 3 0 7 4 9 8 0 9 4 1 4 4 6 0"
    assert labels[:64].tolist() == [int(v) for v in first.split()]
    assert read_idx(mnist_dir / "t10k-images-idx3-ubyte", ndim=3).shape == (10000, 28, 28)
