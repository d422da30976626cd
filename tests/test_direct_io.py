"""Reading a file once, front to back: the digest and the regions handed out."""

import hashlib

import numpy as np
import pytest

from mnist_large_scale.direct_io import ALIGNMENT, aligned_empty, read_in_order


@pytest.mark.parametrize("direct, threads", [(True, 2), (False, 2), (True, 1)])
@pytest.mark.parametrize(
    "size, regions, block_bytes",
    [
        # page-aligned regions of whole pages, as the writer lays them out
        (10 * ALIGNMENT + 123, {"a": (ALIGNMENT, 6, 1024), "b": (4 * ALIGNMENT, 3, 8192)}, 3 * ALIGNMENT),
        # nothing aligned: odd offsets and item sizes, blocks smaller than one item
        (50_001, {"x": (17, 101, 99), "y": (20_000, 3, 7_001)}, 500),
        # no regions: the digest alone
        (3 * ALIGNMENT, {}, 1 << 20),
    ],
)
def test_read_in_order_digests_the_file_and_hands_out_each_region_once_in_order(tmp_path, direct, threads, size, regions, block_bytes):
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    path = tmp_path / "file.bin"
    path.write_bytes(data)
    seen = {name: bytearray() for name in regions}
    firsts = {name: [] for name in regions}

    def consume(name, first, block):
        offset, count, item = regions[name]
        assert len(block) % item == 0 and first * item == len(seen[name])
        seen[name] += block.tobytes()
        firsts[name].append(first)

    assert read_in_order(path, regions, consume, block_bytes=block_bytes, direct=direct, threads=threads) == hashlib.sha256(data).hexdigest()
    for name, (offset, count, item) in regions.items():
        assert bytes(seen[name]) == data[offset : offset + count * item]
        assert firsts[name] == sorted(firsts[name])


def test_overlapping_regions_are_refused(tmp_path):
    path = tmp_path / "file.bin"
    path.write_bytes(bytes(1000))
    with pytest.raises(ValueError, match="overlaps"):
        read_in_order(path, {"a": (0, 10, 10), "b": (50, 10, 10)}, lambda *args: None)
    with pytest.raises(ValueError, match="past the end"):
        read_in_order(path, {"a": (900, 20, 10)}, lambda *args: None)


def test_aligned_empty_starts_on_a_page():
    for shape, dtype in [((1000, 112, 112), "float64"), ((3, 5, 7), "float32"), ((1,), "uint8")]:
        array = aligned_empty(shape, dtype)
        assert array.shape == shape and array.dtype == np.dtype(dtype) and array.ctypes.data % ALIGNMENT == 0
        array[...] = 1  # writable


def test_a_file_system_that_refuses_direct_reads_is_read_the_buffered_way(tmp_path, monkeypatch):
    import errno
    import fcntl
    import os

    from mnist_large_scale import direct_io

    data = np.random.default_rng(1).integers(0, 256, 5 * ALIGNMENT, dtype=np.uint8).tobytes()
    path = tmp_path / "file.bin"
    path.write_bytes(data)
    preadv = os.preadv

    def refusing(fd, buffers, offset):
        if fcntl.fcntl(fd, fcntl.F_GETFL) & getattr(os, "O_DIRECT", 0):
            raise OSError(errno.EINVAL, "Invalid argument")
        return preadv(fd, buffers, offset)

    monkeypatch.setattr(direct_io.os, "preadv", refusing)
    seen = bytearray()
    digest = read_in_order(path, {"x": (ALIGNMENT, 3, ALIGNMENT)}, lambda name, first, block: seen.extend(block.tobytes()))
    assert digest == hashlib.sha256(data).hexdigest() and bytes(seen) == data[ALIGNMENT : 4 * ALIGNMENT]
