"""Moving image bytes between memory and the disk past the page cache (``O_DIRECT``).

The kernel's buffered path copies every byte into the page cache on its way to
or from the disk.  On some machines, virtual ones in particular, handing out
those pages costs more CPU than computing the images: on the 2-core
development VM a buffered write of 7 GB took 4 to 17 s of system time, a
direct one 0.7 s, and a buffered read of a file not in the cache cost 1.7 s of
CPU a GB.  Direct I/O needs page-aligned buffers, offsets and lengths; what is
not aligned goes the buffered way.  Where the operating system or file system
has no direct I/O, everything does, with the same bytes as the result.
"""

from __future__ import annotations

import errno
import hashlib
import math
import mmap
import os
from collections.abc import Callable

import h5py
import numpy as np

__all__ = ["ALIGNMENT", "aligned_empty", "DirectWriter", "read_in_order"]

#: Image datasets start on multiples of this (bytes): the page size that direct I/O needs.
ALIGNMENT = 4096


def _open_direct(path: str | os.PathLike, flags: int) -> int | None:
    """A descriptor with ``O_DIRECT``, or None where there is no direct I/O."""
    if not hasattr(os, "O_DIRECT"):
        return None
    try:
        return os.open(path, flags | os.O_DIRECT)
    except OSError as error:  # file systems without direct I/O refuse the flag
        if error.errno in (errno.EINVAL, errno.EOPNOTSUPP):
            return None
        raise


def aligned_empty(shape: tuple[int, ...], dtype="float64") -> np.ndarray:
    """An uninitialised array whose data starts on a page boundary (as direct I/O needs)."""
    nbytes = max(1, int(np.prod(shape)) * np.dtype(dtype).itemsize)
    return np.frombuffer(mmap.mmap(-1, nbytes), dtype=np.uint8, count=nbytes)[: nbytes - nbytes % np.dtype(dtype).itemsize].view(dtype).reshape(shape)


class DirectWriter:
    """Writes whole pages of a contiguous dataset's images past the page cache.

    Only page-aligned runs of whole images go directly from the (page-aligned)
    buffer to the disk; the rest of a block, and everything where the operating
    system or file system has no direct I/O, goes through h5py.  The bytes in
    the file are the same either way.

    Parameters
    ----------
    path : path
        The file h5py has open (and flushed), with its datasets allocated.
    enabled : bool
        False writes everything through h5py.
    """

    def __init__(self, path: str | os.PathLike, enabled: bool = True) -> None:
        self.fd = _open_direct(path, os.O_WRONLY) if enabled else None

    def __enter__(self) -> DirectWriter:
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def write(self, x: h5py.Dataset, start: int, values: np.ndarray) -> None:
        """``x[start:start + len(values)] = values``; its page-aligned run of whole images directly."""
        stop = start + len(values)
        first = last = start  # the images [first, last) go straight to the disk
        if self.fd is not None and x.chunks is None and len(values):
            image_bytes = values[0].nbytes
            offset = x.id.get_offset()
            step = ALIGNMENT // math.gcd(image_bytes, ALIGNMENT)  # images per whole number of pages
            first, last = -(-start // step) * step, stop // step * step
            aligned = offset is not None and offset % ALIGNMENT == 0 and last > first and values[first - start :].ctypes.data % ALIGNMENT == 0
            if not aligned or not self._pwrite(values[first - start : last - start], offset + first * image_bytes):
                first = last = start
        if first == last:
            x[start:stop] = values
            return
        if start < first:
            x[start:first] = values[: first - start]
        if last < stop:
            x[last:stop] = values[last - start :]

    def _pwrite(self, values: np.ndarray, offset: int) -> bool:
        """Write ``values``' bytes at ``offset``; False (and no more tries) if the file system refuses."""
        view = memoryview(values.reshape(-1).view(np.uint8))
        try:
            done = 0
            while done < len(view):
                done += os.pwrite(self.fd, view[done:], offset + done)
        except OSError as error:
            if error.errno != errno.EINVAL:
                raise
            os.close(self.fd)
            self.fd = None
            return False
        return True


def read_in_order(
    path: str | os.PathLike,
    regions: dict[str, tuple[int, int, int]],
    consume: Callable[[str, int, np.ndarray], None],
    block_bytes: int = 1 << 26,
    direct: bool = True,
    threads: int = 2,
) -> str:
    """Read a file once, front to back, and return its sha256; hand regions of it to ``consume``.

    Parameters
    ----------
    path : path
    regions : dict
        ``name -> (offset, count, item_bytes)``: non-overlapping byte ranges of
        ``count`` items of ``item_bytes`` each (the images of contiguous datasets).
    consume : callable
        ``consume(name, first_item, data)`` with ``data`` a uint8 array of whole
        items, called in file order, blocks of at most about ``block_bytes``.
        It runs in a worker thread while the next block is read; it must not
        keep ``data``.
    block_bytes : int
        Bytes read per step.
    direct : bool
        Read page-aligned runs past the page cache where the file system allows.
    threads : int
        1: the digest and ``consume`` take turns in one worker; 2 or more: they
        run side by side.  Reading the next block overlaps them either way.

    Returns
    -------
    str
        Hex sha256 of the file's bytes, as ``sha256sum`` prints it.
    """
    from concurrent.futures import ThreadPoolExecutor

    size = os.path.getsize(path)
    # The file as segments in order: (start, stop, region name or None, first item).
    segments, cursor = [], 0
    for name, (offset, count, item_bytes) in sorted(regions.items(), key=lambda item: item[1][0]):
        if offset < cursor or offset + count * item_bytes > size:
            raise ValueError(f"{path}: region {name} at {offset} overlaps another or runs past the end")
        segments += _gap_segments(cursor, offset, block_bytes)
        per_block = max(1, block_bytes // item_bytes)
        per_block = max(ALIGNMENT // math.gcd(item_bytes, ALIGNMENT), per_block - per_block % (ALIGNMENT // math.gcd(item_bytes, ALIGNMENT)))
        for first in range(0, count, per_block):
            last = min(count, first + per_block)
            segments.append((offset + first * item_bytes, offset + last * item_bytes, name, first))
        cursor = offset + count * item_bytes
    segments += _gap_segments(cursor, size, block_bytes)

    longest = max([stop - start for start, stop, *_ in segments] + [1])
    buffers = [aligned_empty((longest + ALIGNMENT,), np.uint8) for _ in range(2)]
    digest = hashlib.sha256()
    fd_direct = _open_direct(path, os.O_RDONLY) if direct else None
    try:
        with open(path, "rb", buffering=0) as handle, ThreadPoolExecutor(max_workers=1 if threads <= 1 else 2) as pool:
            pending = []
            for turn, (start, stop, name, first) in enumerate(segments):
                data = _read_exactly(handle.fileno(), fd_direct, buffers[turn % 2], start, stop)
                for future in pending:  # the previous block's digest and consumer are done with the other buffer
                    future.result()
                pending = [pool.submit(digest.update, data)]  # one worker: the digest goes first, in file order
                if name is not None:
                    pending.append(pool.submit(consume, name, first, data))
            for future in pending:
                future.result()
    finally:
        if fd_direct is not None:
            os.close(fd_direct)
    return digest.hexdigest()


def _gap_segments(start: int, stop: int, block_bytes: int) -> list[tuple[int, int, None, int]]:
    return [(a, min(stop, a + block_bytes), None, 0) for a in range(start, stop, block_bytes)]


def _read_exactly(fd: int, fd_direct: int | None, buffer: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Bytes ``start:stop`` of the file as a view of ``buffer``; directly when page-aligned."""
    view = memoryview(buffer)[: stop - start]
    done = 0
    if fd_direct is not None and start % ALIGNMENT == 0:
        whole = (stop - start) // ALIGNMENT * ALIGNMENT  # the aligned part; a tail goes the buffered way
        try:
            while done < whole:
                got = os.preadv(fd_direct, [view[done:whole]], start + done)
                if got <= 0:
                    break
                done += got
        except OSError as error:
            if error.errno != errno.EINVAL:
                raise
            done = done // ALIGNMENT * ALIGNMENT
    while done < stop - start:
        got = os.preadv(fd, [view[done:]], start + done)
        if got <= 0:
            raise OSError(errno.EIO, f"file ended at byte {start + done}, expected {stop}")
        done += got
    return buffer[: stop - start]
