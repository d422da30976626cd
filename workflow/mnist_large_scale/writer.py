"""Writing the published HDF5 layout of MNIST Large Scale.

Layout (docs/recipe.md): ``/x_train``, ``/x_val``, ``/x_test`` of shape ``[n, H, W, 1]``,
float64, C order, contiguous, uncompressed; ``/y_*`` uint8 of shape ``[n]``.  A
test-only file holds one train and one val sample without the leading axis
(``x`` of shape ``[H, W, 1]``, ``y`` a scalar).  Splits with per-sample scales
also hold ``/s_*``, the scale of each sample.  Attributes carry provenance and
nothing that changes from run to run.  Every dataset carries the CRC-32 of its
values (C order, stored dtype) as the attribute ``crc32``, so that damage after
writing can be found; CRC-32 (zlib's, as in gzip and PNG) finds every burst of
up to 32 flipped bits and runs at over twice the speed of sha256, which the
checksum manifest of the whole file uses.
"""

from __future__ import annotations

import os
import shutil
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from .atomic import atomic_path, remove_stale_temporaries, write_text_atomically
from .direct_io import ALIGNMENT, DirectWriter, aligned_empty
from .disk import no_space
from .layout import COMPRESSED_LAYOUT, SPLITS

__all__ = ["SPLITS", "COMPRESSED_LAYOUT", "OutputOptions", "atomic_path", "write_text_atomically", "SplitData", "write_file", "data_crc32"]



@dataclass(frozen=True)
class OutputOptions:
    """How a file is stored and written; config ``output:``.

    Only ``dtype``, ``compression`` and, in a compressed file, ``shuffle``
    change a file's bytes.  ``chunk_images`` is the number of images
    transformed and written per step (it bounds a job's memory; a compressed
    file's HDF5 chunks hold one image whatever it is, so that a shuffled read
    decompresses only the images it asks for), and ``direct_io`` only chooses
    how the bytes reach the disk.

    Attributes
    ----------
    dtype : {'float64', 'float32'}
        Stored image dtype.
    compression : {None, 'gzip', 'lzf'}
        None (the published layout) writes contiguous datasets; otherwise chunks of one image.
    chunk_images : int
        Images transformed and written (or read and checked) per step.
    direct_io : bool
        Write and read image bytes past the page cache where the file system allows.
    shuffle : bool
        HDF5's byte-shuffle filter before the compression (compressed files only).
    """

    dtype: str = "float64"
    compression: str | None = None
    chunk_images: int = 1000
    direct_io: bool = True
    shuffle: bool = True

    @classmethod
    def from_config(cls, values: dict) -> OutputOptions:
        """Build from the config's ``output`` mapping (unknown keys raise TypeError).

        A ``compressed_layout`` entry (from the rules' params) must name this
        package's ``COMPRESSED_LAYOUT``.
        """
        values = dict(values)
        layout = values.pop("compressed_layout", COMPRESSED_LAYOUT)
        if layout != COMPRESSED_LAYOUT:
            raise ValueError(f"compressed layout {layout!r} asked for; this package writes {COMPRESSED_LAYOUT!r}")
        return cls(**values)


def data_crc32(values: np.ndarray, crc: int = 0) -> int:
    """The ``crc32`` attribute of a dataset: zlib's CRC-32 of its values' bytes in C order.

    ``crc`` continues a running value, so blocks in order give the whole's CRC.
    """
    return zlib.crc32(np.ascontiguousarray(values), crc)


class SplitData:
    """What goes into one split: the source images, labels and per-sample scales.

    Parameters
    ----------
    images : (n, h, w) ndarray of uint8
    labels : (n,) ndarray of uint8
    scales : (n,) ndarray of float64
    single : bool
        Store one sample without the leading axis (test-only files' train and val).
    store_scales : bool
        Write ``/s_<split>`` (for splits with per-sample scales).
    """

    def __init__(self, images, labels, scales, single=False, store_scales=False):
        if single and len(images) != 1:
            raise ValueError("a single-sample split holds exactly one image")
        self.images, self.labels, self.scales = images, labels, np.asarray(scales, dtype=np.float64)
        self.single, self.store_scales = single, store_scales


def write_file(
    path: str | os.PathLike,
    splits: dict[str, SplitData],
    transform: Callable[[np.ndarray, np.ndarray], np.ndarray],
    out_shape: tuple[int, int],
    attrs: dict,
    options: OutputOptions = OutputOptions(),
    progress: Callable[[int], None] | None = None,
) -> None:
    """Transform and write all splits to ``path`` atomically, one chunk at a time.

    Parameters
    ----------
    path : path
        The final file name; written under a temporary name first.
    splits : dict
        ``SplitData`` by split name, in ``SPLITS``.
    transform : callable
        ``transform(images, scales, out) -> (n, H, W) float64``; ``out`` is an
        ``(n, H, W)`` float64 buffer it may fill and return (it is reused for
        later blocks).
    out_shape : (H, W)
    attrs : dict
        Root attributes (str, numbers or arrays).
    options : OutputOptions
        Stored dtype and compression, images per step, direct writes.  Direct
        writes apply to contiguous datasets (``DirectWriter``); the file's bytes
        do not depend on them or on the images per step.
    progress : callable, optional
        Called with the number of images just written.
    """
    height, width = out_shape
    dtype, compression, chunk_images = options.dtype, options.compression, options.chunk_images
    # A killed build's temporary file would otherwise count against the space this one needs;
    # a live writer's (another build of the same name) is its own and stays.
    remove_stale_temporaries(path)
    if not compression:  # the size is known: fail at once rather than after hours of work
        needed = sum(len(data.images) * (height * width * np.dtype(dtype).itemsize + 9) for data in splits.values()) + (1 << 16)
        if shutil.disk_usage(Path(path).parent).free < needed:
            raise no_space(path, needed)
    # Contiguous files put the image datasets on page boundaries, their space allocated at
    # creation and never filled, so that their bytes can go straight to the disk (DirectWriter).
    # The layout is the same whether or not the file system takes direct writes.
    layout = {} if compression else {"alignment_threshold": ALIGNMENT, "alignment_interval": ALIGNMENT}
    with atomic_path(path) as tmp, h5py.File(tmp, "w", **layout) as h5:
        for key in sorted(attrs):
            h5.attrs[key] = attrs[key]
        blocks = []
        max_n = max([len(data.images) for data in splits.values()] + [1])
        for name in SPLITS:
            data = splits[name]
            n = len(data.images)
            shape = (height, width, 1) if data.single else (n, height, width, 1)
            if compression and not data.single:
                # One image a chunk: a random access decompresses the image it reads and no other.
                creation = {"compression": compression, "chunks": (1, height, width, 1), "shuffle": options.shuffle}
            else:
                creation = {"dcpl": _preallocated()}
            x = h5.create_dataset(f"x_{name}", shape=shape, dtype=dtype, track_times=False, **creation)
            labels = np.asarray(data.labels, dtype=np.uint8)
            y = h5.create_dataset(f"y_{name}", data=labels[0] if data.single else labels, track_times=False)
            y.attrs["crc32"] = data_crc32(y[()])
            if data.store_scales:
                s = h5.create_dataset(f"s_{name}", data=data.scales[0] if data.single else data.scales, track_times=False)
                s.attrs["crc32"] = data_crc32(s[()])
            blocks += [(x, data, start, min(start + chunk_images, n)) for start in range(0, n, chunk_images)]
        h5.flush()
        with DirectWriter(tmp, enabled=options.direct_io and not compression) as direct:
            _transform_and_write(blocks, transform, (min(chunk_images, max_n), height, width), direct, progress)


def _preallocated() -> h5py.h5p.PropDCID:
    """Dataset creation properties: contiguous space allocated when the dataset is created, never filled.

    Set on the property list rather than through ``create_dataset(fill_time=...)``,
    which h5py accepts only from 3.12 on (Debian 12 ships 3.7).
    """
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
    return dcpl


def _transform_and_write(
    blocks: list, transform: Callable, buffer_shape: tuple[int, int, int], direct: DirectWriter, progress: Callable[[int], None] | None
) -> None:
    """Write each block while the next one is computed, and sum it while it is written.

    numpy, zlib and the writes release the GIL in their heavy parts, so the
    disk and the CPU work at the same time: a worker computes block k+1 while
    block k is written and, in a second worker, CRC'd.  Two output buffers,
    allocated once and page-aligned, take turns, so memory stays at two blocks
    and the kernel does not have to hand out (and zero) fresh pages for every
    block.  Blocks are summed in order, so each dataset's CRC sees its bytes in
    C order.
    """
    stored = {x.dtype for x, *_ in blocks}
    buffers = [aligned_empty(buffer_shape) for _ in range(min(2, len(blocks)))]
    # A stored dtype other than float64 is converted into aligned buffers of its own.
    converted = [{dtype: aligned_empty(buffer_shape, dtype) for dtype in stored if dtype != np.float64} for _ in buffers]
    crcs = {}  # id(dataset) -> (dataset, CRC-32 of its values so far)

    def compute(block, turn):
        x, data, start, stop = block
        values = transform(data.images[start:stop], data.scales[start:stop], buffers[turn][: stop - start])
        if x.dtype != np.float64:
            target = converted[turn][x.dtype][: stop - start]
            np.copyto(target, values, casting="same_kind")
            values = target
        return np.ascontiguousarray(values[..., np.newaxis], dtype=x.dtype)  # exactly the bytes stored

    def add_crc(x, values):
        dataset, crc = crcs.get(id(x), (x, 0))
        crcs[id(x)] = (dataset, data_crc32(values, crc))

    with ThreadPoolExecutor(max_workers=1) as computing, ThreadPoolExecutor(max_workers=1) as summing:
        pending = computing.submit(compute, blocks[0], 0) if blocks else None
        for index, (x, data, start, stop) in enumerate(blocks):
            values = pending.result()
            if index + 1 < len(blocks):  # the other buffer: its block was written in the last round
                pending = computing.submit(compute, blocks[index + 1], (index + 1) % 2)
            summed = summing.submit(add_crc, x, values)
            if data.single:
                x[...] = values[0]
            else:
                direct.write(x, start, values)
            summed.result()  # before the buffer is handed out again
            del values
            if progress is not None:
                progress(stop - start)
    for x, crc in crcs.values():
        x.attrs["crc32"] = np.uint32(crc)
