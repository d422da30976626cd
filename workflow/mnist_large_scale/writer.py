"""Writing the published HDF5 layout of MNIST Large Scale.

Layout (SPEC.md): ``/x_train``, ``/x_val``, ``/x_test`` of shape ``[n, H, W, 1]``,
float64, C order, contiguous, uncompressed; ``/y_*`` uint8 of shape ``[n]``.  A
test-only file holds one train and one val sample without the leading axis
(``x`` of shape ``[H, W, 1]``, ``y`` a scalar).  Splits with per-sample scales
also hold ``/s_*``, the scale of each sample.  Attributes carry provenance and
nothing that changes from run to run.  Every dataset carries the sha256 of its
values (C order, stored dtype) as the attribute ``sha256``, so that damage after
writing can be found.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py
import numpy as np

__all__ = ["SPLITS", "atomic_path", "SplitData", "write_file", "data_sha256"]

SPLITS = ("train", "val", "test")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary name beside ``path``; rename it to ``path`` only on success.

    Whatever fails inside the block, nothing is left under ``path`` or the
    temporary name.  A full disk raises OSError(ENOSPC) naming ``path``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.part")
    tmp.unlink(missing_ok=True)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as error:
        if _disk_full(error):  # h5py's message names the temporary file and buries the cause
            raise _no_space(path) from error
        raise
    finally:
        tmp.unlink(missing_ok=True)


def _disk_full(error: BaseException) -> bool:
    return getattr(error, "errno", None) == errno.ENOSPC or "no space left on device" in str(error).lower()


def _no_space(path: Path, needed: int | None = None) -> OSError:
    free = shutil.disk_usage(path.parent).free
    need = f"it needs about {needed / 1e6:.1f} MB, " if needed else ""
    return OSError(
        errno.ENOSPC,
        f"no space left on device while writing {path}: {need}{free / 1e6:.1f} MB free there; "
        "free some space (or put results/ on a bigger disk) and rerun",
    )


def data_sha256(values: np.ndarray) -> str:
    """The ``sha256`` attribute of a dataset: the digest of its values' bytes in C order."""
    return hashlib.sha256(np.ascontiguousarray(values)).hexdigest()


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
    dtype: str = "float64",
    compression: str | None = None,
    chunk_images: int = 1000,
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
        ``transform(images, scales) -> (n, H, W) float64``.
    out_shape : (H, W)
    attrs : dict
        Root attributes (str, numbers or arrays).
    dtype : {'float64', 'float32'}
        Stored image dtype.
    compression : {None, 'gzip', 'lzf'}
        None (the published layout) writes contiguous datasets; otherwise chunked.
    chunk_images : int
        Images transformed and written per step; bounds memory whatever n is.
    progress : callable, optional
        Called with the number of images just written.
    """
    height, width = out_shape
    if not compression:  # the size is known: fail at once rather than after hours of work
        needed = sum(len(data.images) * (height * width * np.dtype(dtype).itemsize + 9) for data in splits.values()) + (1 << 16)
        if shutil.disk_usage(Path(path).parent).free < needed:
            raise _no_space(Path(path), needed)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        for key in sorted(attrs):
            h5.attrs[key] = attrs[key]
        blocks = []
        for name in SPLITS:
            data = splits[name]
            n = len(data.images)
            shape = (height, width, 1) if data.single else (n, height, width, 1)
            options = {}
            if compression and not data.single:
                options = {"compression": compression, "chunks": (min(n, 64), height, width, 1), "shuffle": True}
            x = h5.create_dataset(f"x_{name}", shape=shape, dtype=dtype, track_times=False, **options)
            labels = np.asarray(data.labels, dtype=np.uint8)
            y = h5.create_dataset(f"y_{name}", data=labels[0] if data.single else labels, track_times=False)
            y.attrs["sha256"] = data_sha256(y[()])
            if data.store_scales:
                s = h5.create_dataset(f"s_{name}", data=data.scales[0] if data.single else data.scales, track_times=False)
                s.attrs["sha256"] = data_sha256(s[()])
            blocks += [(x, data, start, min(start + chunk_images, n)) for start in range(0, n, chunk_images)]
        _transform_and_write(blocks, transform, progress)


def _transform_and_write(blocks: list, transform: Callable, progress: Callable[[int], None] | None) -> None:
    """Write each block while the next one is computed and digested in a second thread.

    numpy, hashlib and h5py release the GIL in their heavy parts, so the disk and
    the CPU work at the same time; at most two blocks are in memory.  The one
    worker takes the blocks in order, so each dataset's digest sees its bytes in
    C order.
    """
    digests = {}  # id(dataset) -> (dataset, sha256 of its values so far)

    def compute(block):
        x, data, start, stop = block
        values = transform(data.images[start:stop], data.scales[start:stop])[..., np.newaxis]
        values = np.ascontiguousarray(values, dtype=x.dtype)  # exactly the bytes stored
        digests.setdefault(id(x), (x, hashlib.sha256()))[1].update(values)
        return values

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(compute, blocks[0]) if blocks else None
        for index, (x, data, start, stop) in enumerate(blocks):
            values = pending.result()
            pending = pool.submit(compute, blocks[index + 1]) if index + 1 < len(blocks) else None
            if data.single:
                x[...] = values[0]
            else:
                x[start:stop] = values
            del values
            if progress is not None:
                progress(stop - start)
    for x, digest in digests.values():
        x.attrs["sha256"] = digest.hexdigest()
