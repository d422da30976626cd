"""Reading IDX files, the format of the raw MNIST files (LeCun et al., 1998).

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of
dimensions), one big-endian uint32 per dimension, then the data in C order.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["IdxError", "parse_idx", "read_idx"]

_DTYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


class IdxError(ValueError):
    """A file that is not a well-formed IDX file of the expected kind."""


def parse_idx(data: bytes, name: str = "<bytes>", ndim: int | None = None, shape: tuple[int | None, ...] | None = None) -> np.ndarray:
    """Decode the bytes of an IDX file.

    Parameters
    ----------
    data : bytes
        The whole (uncompressed) file.
    name : str
        What to call the file in error messages.
    ndim : int, optional
        The number of dimensions the file must have.
    shape : tuple, optional
        The shape it must have; None entries match any size.

    Returns
    -------
    ndarray
        The data in its own dtype (uint8 for MNIST), native byte order;
        read-only when it is a view of ``data``.

    Raises
    ------
    IdxError
        On a bad magic number, unexpected dimensions, or a length that does not
        match the header; the message names the file.
    """
    if len(data) < 4:
        raise IdxError(f"{name}: {len(data)} bytes is too short for an IDX header")
    zero, type_code, dims = int.from_bytes(data[0:2], "big"), data[2], data[3]
    if zero != 0 or type_code not in _DTYPES or dims == 0:
        raise IdxError(f"{name}: bad IDX magic number 0x{data[:4].hex()} (expected 0x0000TTDD with a known type TT)")
    if ndim is not None and dims != ndim:
        raise IdxError(f"{name}: IDX file has {dims} dimensions, expected {ndim}")
    header = 4 + 4 * dims
    if len(data) < header:
        raise IdxError(f"{name}: truncated IDX header ({len(data)} bytes)")
    sizes = tuple(int.from_bytes(data[4 + 4 * k : 8 + 4 * k], "big") for k in range(dims))
    if shape is not None and (len(shape) != dims or any(want is not None and want != got for want, got in zip(shape, sizes, strict=True))):
        raise IdxError(f"{name}: IDX dimensions {sizes}, expected {shape}")
    dtype = _DTYPES[type_code]
    expected = header + int(np.prod(sizes, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        problem = "truncated" if len(data) < expected else "has trailing bytes"
        raise IdxError(f"{name}: {problem}: {len(data)} bytes, the header {sizes} implies {expected}")
    # A view of the bytes where they are already native (uint8, as in MNIST: no copy), else a copy.
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(sizes).astype(dtype.newbyteorder("="), copy=False)


def read_idx(path: str | os.PathLike, ndim: int | None = None, shape: tuple[int | None, ...] | None = None) -> np.ndarray:
    """Read an uncompressed IDX file; see parse_idx."""
    with open(path, "rb") as handle:
        return parse_idx(handle.read(), name=os.fspath(path), ndim=ndim, shape=shape)
