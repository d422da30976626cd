"""Checksums of a built file: of its bytes, and of its datasets' values alone.

``file_sha256`` is the sha256 of the file as it lies on disk, the line of
``SHA256SUMS``.  It changes with anything that reaches the container: the HDF5
library's version and layout choices, attributes (the provenance records the
software's versions), and of course the values.

``dataset_sha256s`` gives, for each dataset, a sha256 over its values and
nothing else, so that a file written by another HDF5 library, or with other
storage options (chunked, compressed, big-endian), can still be checked value
for value, and a difference is named by dataset.  For a dataset at its full
path (``x_test``; datasets inside groups count too, as ``group/name``) the hash
takes

1. the path, UTF-8, then a NUL byte;
2. the numpy dtype string in little-endian form (``'<f8'``, ``'|u1'``), then NUL;
3. the shape as decimal sizes joined by ``,`` (empty for a scalar), then NUL;
4. the values' bytes in C order, little-endian.

``values_sha256`` is the file's digest of them: the sha256 of the lines
``<path><TAB><dataset sha256><LF>`` in sorted order of the paths.
Attributes are not part of it.
"""

from __future__ import annotations

import hashlib
import os

import h5py
import numpy as np

__all__ = ["file_sha256", "dataset_sha256s", "values_sha256"]

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


def dataset_sha256s(path: str | os.PathLike) -> dict[str, str]:
    """The sha256 of each dataset's values in an HDF5 file, independent of how they are stored.

    Parameters
    ----------
    path : str or path-like
        An HDF5 file.

    Returns
    -------
    dict
        ``{path of the dataset: 64 lower-case hex digits}``, in sorted order.
        Two datasets have the same digest exactly when they have the same path,
        dtype (up to byte order), shape and values (bit for bit, so ``-0.0``
        differs from ``0.0`` and NaNs compare by their bits); chunking,
        compression, byte order on disk, attributes and the HDF5 library's
        version do not enter.

    Raises
    ------
    TypeError
        For a dataset whose values have no fixed-size numpy dtype (strings of
        variable length, references).
    """
    digests = {}
    with h5py.File(path, "r") as h5:
        names: list[str] = []
        h5.visititems(lambda name, item: names.append(name) if isinstance(item, h5py.Dataset) else None)
        for name in sorted(names):
            digest = hashlib.sha256()
            _update_with_dataset(digest, name, h5[name])
            digests[name] = digest.hexdigest()
    return digests


def values_sha256(path: str | os.PathLike | None = None, datasets: dict[str, str] | None = None) -> str:
    """The digest of a file's values: the sha256 of its ``dataset_sha256s``, one line each.

    Parameters
    ----------
    path : str or path-like, optional
        An HDF5 file; read unless ``datasets`` is given.
    datasets : dict, optional
        Its ``dataset_sha256s``, when they are already known.

    Returns
    -------
    str
        64 lower-case hex digits; equal for two files exactly when all their
        datasets' digests are.
    """
    datasets = dataset_sha256s(path) if datasets is None else datasets
    return hashlib.sha256("".join(f"{name}\t{datasets[name]}\n" for name in sorted(datasets)).encode()).hexdigest()


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
