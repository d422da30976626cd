"""Checksums of a built file: of its bytes, and of its datasets' values alone.

``file_sha256`` is the sha256 of the file as it lies on disk, the line of
``SHA256SUMS``.  It changes with anything that reaches the container: the HDF5
library's version and layout choices, attributes (the provenance records the
software's versions), and of course the values.

``values_sha256`` is a sha256 over the values of every dataset and nothing
else, so that a file written by another HDF5 library, or with other storage
options (chunked, compressed, big-endian), can still be checked value for
value.  For each dataset, in sorted order of its full path (``x_test``,
``x_train``, ... for the published layout; datasets inside groups count too,
as ``group/name``), the hash is updated with

1. the path, UTF-8, then a NUL byte;
2. the numpy dtype string in little-endian form (``'<f8'``, ``'|u1'``), then NUL;
3. the shape as decimal sizes joined by ``,`` (empty for a scalar), then NUL;
4. the values' bytes in C order, little-endian.

Attributes are not part of it.
"""

from __future__ import annotations

import hashlib
import os

import h5py
import numpy as np

__all__ = ["file_sha256", "values_sha256"]

_BLOCK_BYTES = 64 << 20  # read at most this much of a dataset at a time


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of a file's bytes.

    Parameters
    ----------
    path : str or path-like
        Any file.

    Returns
    -------
    str
        64 lower-case hex digits, as ``sha256sum`` prints them.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(4 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def values_sha256(path: str | os.PathLike) -> str:
    """The sha256 of an HDF5 file's dataset values, independent of how they are stored.

    Parameters
    ----------
    path : str or path-like
        An HDF5 file.

    Returns
    -------
    str
        64 lower-case hex digits.  Two files have the same one exactly when they
        hold datasets of the same paths, dtypes (up to byte order), shapes and
        values (bit for bit, so ``-0.0`` differs from ``0.0`` and NaNs compare
        by their bits); chunking, compression, byte order on disk, attributes
        and the HDF5 library's version do not enter.

    Raises
    ------
    TypeError
        For a dataset whose values have no fixed-size numpy dtype (strings of
        variable length, references).
    """
    digest = hashlib.sha256()
    with h5py.File(path, "r") as h5:
        names: list[str] = []
        h5.visititems(lambda name, item: names.append(name) if isinstance(item, h5py.Dataset) else None)
        for name in sorted(names):
            _update_with_dataset(digest, name, h5[name])
    return digest.hexdigest()


def _update_with_dataset(digest, name: str, dataset: h5py.Dataset) -> None:
    dtype = dataset.dtype
    if dtype.hasobject:
        raise TypeError(f"dataset {name!r} has dtype {dtype}, which has no fixed-size values to hash")
    little = dtype.newbyteorder("<")  # a no-op for '|u1' and other single-byte types
    shape = dataset.shape
    digest.update(name.encode() + b"\0" + little.str.encode() + b"\0" + ",".join(map(str, shape)).encode() + b"\0")
    if len(shape) == 0:
        digest.update(np.asarray(dataset[()], dtype=little).tobytes())
        return
    if dataset.size == 0:
        return
    row_bytes = max(1, dataset.size // shape[0] * dtype.itemsize)
    step = max(1, _BLOCK_BYTES // row_bytes)
    for start in range(0, shape[0], step):
        block = dataset[start : start + step]
        digest.update(np.ascontiguousarray(block, dtype=little))  # hashes the buffer, no copy to bytes
