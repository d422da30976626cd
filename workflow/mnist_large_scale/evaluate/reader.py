"""Reading a split in order, block by block, converted in reading threads: what an evaluation needs.

An evaluation reads every image once, in file order, so nothing of the
loader's shuffled access is needed: ``ordered_blocks`` hands out blocks of
consecutive images as ``(start, images)`` in order, while up to ``workers``
threads read and convert the next blocks.  A contiguous, unfiltered image
dataset (the published layout) is read with positional reads at its byte
offset, a few images at a time into a small per-thread buffer that stays in
the core's cache, and converted from there into the block (float64 to
float32, and to channels first).  ``os.preadv`` and NumPy's conversion both
release the GIL, so the threads read and convert in parallel with each other
and with the model.  A chunked or compressed dataset is read through h5py,
which serialises its calls (one lock for the library), so its threads
overlap the model but not each other.

The blocks are views of a ring of ``workers + 2`` buffers allocated once
(fresh buffers for every block would cost the kernel more, handing out and
zeroing pages, than the reads): a block stays valid until the consumer asks
for the next one, so the consumer copies what it keeps.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

__all__ = ["SplitLayout", "split_layout", "ordered_blocks", "READ_STEP_BYTES"]

#: Bytes read into a thread's buffer per positional read: small enough to stay in a core's L2 cache
#: while it is converted into the block (a whole block read first would pass through memory twice).
READ_STEP_BYTES = 1 << 20


@dataclass(frozen=True)
class SplitLayout:
    """Where and how a split's images are stored.

    Attributes
    ----------
    path : Path
    split : str
    shape : tuple of int
        ``(n, H, W, C)`` as stored.
    dtype : numpy.dtype
        As stored.
    offset : int or None
        Byte offset of a contiguous, unfiltered, native-order dataset; None otherwise.
    """

    path: Path
    split: str
    shape: tuple[int, ...]
    dtype: np.dtype
    offset: int | None

    @property
    def image_bytes(self) -> int:
        return int(np.prod(self.shape[1:])) * self.dtype.itemsize


def split_layout(path: str | os.PathLike, split: str = "test") -> SplitLayout:
    """The layout of ``x_<split>`` in a file; ValueError if the file has no such split of images."""
    with h5py.File(path, "r") as h5:
        if f"x_{split}" not in h5:
            raise ValueError(f"{path} has no x_{split}")
        x = h5[f"x_{split}"]
        if x.ndim != 4:
            raise ValueError(f"{path}: x_{split} has shape {x.shape}, not (n, H, W, C)")
        if x.dtype.kind != "f":
            raise ValueError(f"{path}: x_{split} holds {x.dtype}, not floating-point images")
        offset = x.id.get_offset()
        plain = x.chunks is None and x.compression is None and x.dtype.isnative and offset is not None
        return SplitLayout(Path(path), split, tuple(x.shape), x.dtype, offset if plain else None)


class _OffsetReader:
    """Reads images at the dataset's byte offset into a block (one file descriptor, shared: preadv has no position)."""

    def __init__(self, layout: SplitLayout):
        self.layout = layout
        self.fd = os.open(layout.path, os.O_RDONLY)
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(self.fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        self.step = max(1, READ_STEP_BYTES // layout.image_bytes)
        self.local = threading.local()

    def _scratch(self) -> np.ndarray:
        buffer = getattr(self.local, "buffer", None)
        if buffer is None:
            buffer = self.local.buffer = np.empty((self.step, *self.layout.shape[1:]), dtype=self.layout.dtype)
        return buffer

    def _pread(self, out: np.ndarray, first: int) -> None:
        view = memoryview(out).cast("B")
        done, at = 0, self.layout.offset + first * self.layout.image_bytes
        while done < len(view):  # a positional read may return fewer bytes than asked for
            got = os.preadv(self.fd, [view[done:]], at + done)
            if got == 0:
                raise OSError(f"{self.layout.path}: the file ends inside x_{self.layout.split} (truncated?)")
            done += got

    def read(self, out: np.ndarray, start: int, channels_first: bool) -> None:
        """Fill ``out`` (k images, in the layout asked for) with the stored images from ``start`` on."""
        k = len(out)
        if out.dtype == self.layout.dtype and (not channels_first or self.layout.shape[-1] == 1):
            self._pread(out, start)  # nothing to convert: straight into the block
            return
        scratch = self._scratch()
        for first in range(0, k, self.step):
            m = min(self.step, k - first)
            self._pread(scratch[:m], start + first)
            stored = np.moveaxis(scratch[:m], -1, 1) if channels_first else scratch[:m]
            np.copyto(out[first : first + m], stored, casting="unsafe")

    def close(self) -> None:
        os.close(self.fd)


class _H5pyReader:
    """Reads images through h5py (chunked or compressed data); one handle, h5py's own lock serialises the reads."""

    def __init__(self, layout: SplitLayout):
        self.layout = layout
        self.file = h5py.File(layout.path, "r")
        self.dataset = self.file[f"x_{layout.split}"]

    def read(self, out: np.ndarray, start: int, channels_first: bool) -> None:
        k = len(out)
        if not channels_first or self.layout.shape[-1] == 1:
            # HDF5 converts to the block's dtype as it reads; (k, 1, H, W) and (k, H, W, 1) share one memory order
            self.dataset.read_direct(out.reshape(k, *self.layout.shape[1:]), np.s_[start : start + k])
            return
        stored = self.dataset[start : start + k]
        np.copyto(out, np.moveaxis(stored, -1, 1), casting="unsafe")

    def close(self) -> None:
        self.file.close()


def ordered_blocks(
    path: str | os.PathLike,
    split: str = "test",
    block_images: int = 500,
    dtype: str | np.dtype = "float32",
    channels_first: bool = True,
    workers: int = 2,
    limit: int | None = None,
    method: str = "auto",
) -> Iterator[tuple[int, np.ndarray]]:
    """The images of ``x_<split>`` in file order, as ``(start, block)`` with ``block`` of up to ``block_images`` images.

    Parameters
    ----------
    path : path
    split : str
    block_images : int
        Images per block (the model's batch).
    dtype : dtype
        Of the blocks (float32 or float64).
    channels_first : bool
        Blocks of ``(k, C, H, W)`` rather than the stored ``(k, H, W, C)``.
    workers : int
        Reading threads, and blocks read ahead (>= 1).
    limit : int, optional
        Read only the first ``limit`` images.
    method : {'auto', 'offset', 'h5py'}
        Positional reads at the byte offset (contiguous data only) or h5py;
        'auto' takes the first where it can (the benchmark measures both).

    Yields
    ------
    start : int
        Index of the block's first image.
    block : ndarray
        Valid until the consumer asks for the next block.
    """
    if block_images < 1 or workers < 1:
        raise ValueError(f"block_images and workers must be >= 1, not {block_images} and {workers}")
    layout = split_layout(path, split)
    n, height, width, channels = layout.shape
    n = n if limit is None else min(n, limit)
    shape = (channels, height, width) if channels_first else (height, width, channels)
    ring = [np.empty((min(block_images, max(n, 1)), *shape), dtype=dtype) for _ in range(workers + 2)]
    if method not in ("auto", "offset", "h5py"):
        raise ValueError(f"method must be 'auto', 'offset' or 'h5py', not {method!r}")
    if method == "offset" and layout.offset is None:
        raise ValueError(f"{path}: x_{split} is chunked or filtered; it cannot be read at a byte offset")
    reader = _OffsetReader(layout) if layout.offset is not None and method != "h5py" else _H5pyReader(layout)
    starts = list(range(0, n, block_images))
    pending: deque = deque()
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="evaluate-reader") as pool:

            def submit(index: int) -> None:
                start = starts[index]
                block = ring[index % len(ring)][: min(block_images, n - start)]
                pending.append((start, block, pool.submit(reader.read, block, start, channels_first)))

            for index in range(min(workers + 1, len(starts))):
                submit(index)
            for index in range(len(starts)):
                start, block, done = pending.popleft()
                done.result()
                if index + workers + 1 < len(starts):
                    submit(index + workers + 1)  # into the ring slot of the block before this one, which the consumer is done with
                yield start, block
    finally:
        reader.close()
