"""Reading MNIST Large Scale files for training: ``load`` (NumPy arrays) and ``MNISTLargeScale`` (lazy).

Both read rebuilt and published files alike (the same layout; a published file
has no attributes) and take everything from the file's contents: a split is a
dataset ``/x_<split>`` with its labels ``/y_<split>`` and, where the split has
per-sample scales, ``/s_<split>``; a test-only file is one whose ``x_train``
holds a single sample without the leading axis.  Nothing is read from the
file name.

``MNISTLargeScale`` never holds a split's images in memory.  An image dataset
stored contiguously and uncompressed (the published layout) is read with
positional reads (``os.preadv``) at the dataset's byte offset in the file, so
no h5py handle, no memory map and no file position are shared between the
processes of a PyTorch ``DataLoader``: each process opens the file itself, on
its first read.  Positional reads rather than a memory map keep a worker's
resident memory at one batch (pages of a mapped file count towards its RSS
for as long as they stay mapped).  Chunked or compressed datasets are read
through h5py, again with one handle per process.  Images are converted to the
requested dtype one batch at a time.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import h5py
import numpy as np

from .integrity import CHECKS, DamagedFile, open_checked, range_problem, require_intact, stored_crc_problem
from .names import ScaleSpec

__all__ = ["SPLITS", "load", "MNISTLargeScale", "split_sizes"]

SPLITS = ("train", "val", "test")
#: Images read and converted per step by ``load``: 1000 images of 112 x 112 float64 are 100 MB.
LOAD_BLOCK_IMAGES = 1000


def split_sizes(path: str | os.PathLike) -> dict[str, int]:
    """The number of images in each split of a file, from its datasets alone.

    A split stored as a single sample without the leading axis (the train and
    val splits of a test-only file) counts 0: it is not a split to train or
    test on.

    Parameters
    ----------
    path : path
        An MNIST Large Scale .h5 file, rebuilt or published.

    Returns
    -------
    dict
        ``{split: n}`` for each of 'train', 'val', 'test' that the file has.
    """
    with h5py.File(path, "r") as h5:
        return {split: (h5[f"x_{split}"].shape[0] if h5[f"x_{split}"].ndim == 4 else 0) for split in SPLITS if f"x_{split}" in h5}


def _check_split(h5: h5py.File, path, split: str) -> h5py.Dataset:
    """The image dataset of a split, or ValueError naming what the file lacks."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is not one of {', '.join(SPLITS)}")
    if f"x_{split}" not in h5 or f"y_{split}" not in h5:
        raise ValueError(f"{path} has no {split} split (no x_{split} and y_{split})")
    x = h5[f"x_{split}"]
    if x.ndim != 4:
        raise ValueError(
            f"{path}: x_{split} holds a single sample of shape {x.shape} (a test-only file, whose train and val "
            f"splits are one image each); its images are in split='test'"
        )
    if x.shape[0] != h5[f"y_{split}"].shape[0]:
        raise ValueError(f"{path}: x_{split} has {x.shape[0]} images but y_{split} has {h5[f'y_{split}'].shape[0]} labels")
    return x


def _scale_attribute(h5: h5py.File, split: str) -> float | None:
    """The single scale of a split from the root attributes of a rebuilt file; None without them or for a range."""
    key = "scale_test" if split == "test" else "scale_train"
    if key not in h5.attrs:
        return None
    tag = h5.attrs[key]
    spec = ScaleSpec.parse(tag.decode() if isinstance(tag, bytes) else str(tag))
    return None if spec.is_range else spec.low


def load(
    path: str | os.PathLike, split: str = "train", dtype: str | np.dtype = "float32", channels_first: bool = False, check: str = "crc"
) -> tuple[np.ndarray, ...]:
    """One split of a file as NumPy arrays: ``(x, y)``, or ``(x, y, s)`` where it has per-sample scales.

    The images are read ``LOAD_BLOCK_IMAGES`` at a time and converted into the
    returned array, so memory holds the result and one block, never a copy of
    the split in the stored dtype (the published float64 training split is
    5 GB, 2.5 GB as float32).

    Parameters
    ----------
    path : path
        An MNIST Large Scale .h5 file, rebuilt or published.
    split : {'train', 'val', 'test'}
    dtype : dtype
        Of the returned images (float32 by default; 'float64' gives the stored values).
    channels_first : bool
        Return ``(n, 1, H, W)`` instead of the stored ``(n, H, W, 1)``.
    check : {'layout', 'crc', 'values'}
        What the file must pass (``integrity.CHECKS``): its layout (always),
        the CRC-32 the writer stored for each of the split's datasets (the
        default: summed over the blocks as they are read, a few per cent of
        the read's time), and the images' value range.

    Returns
    -------
    x : (n, H, W, 1) or (n, 1, H, W) ndarray of ``dtype``
    y : (n,) ndarray of uint8
        The labels, as stored.
    s : (n,) ndarray of float64
        The scale of each image; only for splits stored with per-sample scales.

    Raises
    ------
    ValueError
        An unknown split, one the file does not have, or the single-sample
        train or val split of a test-only file.
    integrity.DamagedFile
        (a ValueError) The file is not HDF5, is truncated, is not the layout,
        or fails ``check``.
    """
    if check not in CHECKS:
        raise ValueError(f"check must be one of {', '.join(CHECKS)}, got {check!r}")
    level = CHECKS.index(check)
    require_intact(path, "layout")
    with open_checked(path) as h5:
        x = _check_split(h5, path, split)
        n, height, width, channels = x.shape
        images = np.empty((n, channels, height, width) if channels_first else x.shape, dtype=dtype)
        crc, problems = 0, []
        try:
            for start in range(0, n, LOAD_BLOCK_IMAGES):
                stop = min(start + LOAD_BLOCK_IMAGES, n)
                block = x[start:stop]
                if level >= 1:
                    crc = zlib.crc32(np.ascontiguousarray(block), crc)
                if level >= 2 and (problem := range_problem(f"x_{split}", block)):
                    problems.append(problem)
                images[start:stop] = np.moveaxis(block, -1, 1) if channels_first else block
            labels = h5[f"y_{split}"][()]
            scales = h5[f"s_{split}"][()].astype(np.float64) if f"s_{split}" in h5 else None
        except OSError as error:  # HDF5 cannot read what its metadata promises
            raise DamagedFile(path, f"HDF5 cannot read x_{split} ({str(error).strip().splitlines()[0]})") from None
        if level >= 1:
            problems.append(stored_crc_problem(f"x_{split}", x, crc))
            problems.append(stored_crc_problem(f"y_{split}", h5[f"y_{split}"], zlib.crc32(np.ascontiguousarray(labels))))
            if scales is not None:
                problems.append(stored_crc_problem(f"s_{split}", h5[f"s_{split}"], zlib.crc32(np.ascontiguousarray(h5[f"s_{split}"][()]))))
        if problems := [problem for problem in problems if problem]:
            raise DamagedFile(path, problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
    return (images, labels) if scales is None else (images, labels, scales)


class MNISTLargeScale:
    """One split of an MNIST Large Scale file as a lazy map-style dataset (PyTorch's ``Dataset`` protocol).

    An item is ``(image, label)``, or ``(image, label, scale)`` in a split with
    per-sample scales, as torchvision's datasets give them: ``image`` a
    ``(1, H, W)`` array of ``dtype`` (channels first, as ``torch.nn.Conv2d``
    takes it; ``(H, W, 1)`` with ``channels_first=False``), after ``transform``
    when one is given; ``label`` an int; ``scale`` a float.  A slice or a
    sequence of indices gives the batch at once: ``(x, y)`` or ``(x, y, s)``
    as arrays with a leading axis.  PyTorch's ``DataLoader`` reads a batch
    through ``__getitems__``: the batch's images are read in file order and
    converted to ``dtype`` together.

    Only the labels and scales (one byte and eight bytes an image) are held in
    memory; images are read from the file at each access.  The object holds no
    open file when it is pickled or copied into a worker process, and opens the
    file in each process on first use.  Torch is not needed to use it.

    Parameters
    ----------
    path : path
        An MNIST Large Scale .h5 file, rebuilt or published.
    split : {'train', 'val', 'test'}
    dtype : dtype
        Of the returned images (float32 by default).
    transform : callable, optional
        Applied to each image (after conversion), as torchvision's ``transform``.
    channels_first : bool
        Images as ``(1, H, W)`` (default) or as stored, ``(H, W, 1)``.
    check : {'layout', 'crc', 'values'}
        What the file must pass when the dataset is made (``integrity.CHECKS``):
        its layout, in milliseconds (the default), or also the stored CRC-32
        of the split's datasets and the images' value range, which read the
        split once.  A file that fails raises ``integrity.DamagedFile``.

    Attributes
    ----------
    labels : (n,) ndarray of uint8
    scales : (n,) ndarray of float64 or None
        Per-sample scales, where the split has them.
    scale : float or None
        The split's single scale, from a rebuilt file's attributes (None in a
        published file, which has no attributes, and in a split with per-sample scales).
    image_shape : tuple
        The shape of one image as returned.
    contiguous : bool
        Whether images are read at their byte offset (contiguous, unfiltered)
        rather than through h5py.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        split: str = "train",
        dtype: str | np.dtype = "float32",
        transform=None,
        channels_first: bool = True,
        check: str = "layout",
    ) -> None:
        require_intact(path, check, splits=(split,) if split in SPLITS else SPLITS)
        self.path = Path(path)
        self.split = split
        self.dtype = np.dtype(dtype)
        self.transform = transform
        self.channels_first = channels_first
        with open_checked(self.path) as h5:
            x = _check_split(h5, self.path, split)
            self._stored_shape = x.shape
            self._stored_dtype = x.dtype
            self.labels = h5[f"y_{split}"][()]
            self.scales = h5[f"s_{split}"][()].astype(np.float64) if f"s_{split}" in h5 else None
            self.scale = _scale_attribute(h5, split) if self.scales is None else None
            offset = x.id.get_offset()
            plain = x.chunks is None and x.compression is None and x.dtype.isnative
            self._offset = offset if plain and offset is not None else None
        n, height, width, channels = self._stored_shape
        self.image_shape = (channels, height, width) if channels_first else (height, width, channels)
        self.contiguous = self._offset is not None
        self._image_bytes = height * width * channels * self._stored_dtype.itemsize
        self._opened_in = None  # the process id that opened the handle below
        self._handle = None  # a file descriptor (contiguous) or an h5py dataset, per process
        self._buffer = None  # scratch for stored values, per process (read_images)

    def __len__(self) -> int:
        return self._stored_shape[0]

    def __repr__(self) -> str:
        how = "read at its offset" if self.contiguous else "read through h5py"
        return f"MNISTLargeScale({str(self.path)!r}, split={self.split!r}, {len(self)} images {self.image_shape} {self.dtype}, {how})"

    # A worker process gets a copy without the parent's handle; it opens the file on its first read.
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_handle"] = state["_opened_in"] = state["_buffer"] = None
        return state

    def __del__(self) -> None:
        self.close()

    def close(self) -> None:
        """Close this process's handle on the file (it is opened again by the next read)."""
        handle, opened_in = getattr(self, "_handle", None), getattr(self, "_opened_in", None)
        self._handle = self._opened_in = None
        if handle is None or opened_in != os.getpid():
            return  # a handle inherited through fork belongs to the parent
        if isinstance(handle, int):
            os.close(handle)
        else:
            handle.file.close()

    def _open(self):
        if self._opened_in != os.getpid():
            self._handle = None  # inherited through fork: the parent's, left alone
            if self.contiguous:
                self._handle = os.open(self.path, os.O_RDONLY)
                if hasattr(os, "posix_fadvise"):  # shuffled reads: read-ahead would read bytes nobody asked for
                    os.posix_fadvise(self._handle, 0, 0, os.POSIX_FADV_RANDOM)
            else:
                self._handle = h5py.File(self.path, "r")[f"x_{self.split}"]
            self._opened_in = os.getpid()
        return self._handle

    def read_images(self, indices) -> np.ndarray:
        """The images at ``indices`` (in that order) as ``(k, *image_shape)`` of ``dtype``, without ``transform``.

        The images are read in file order (runs of consecutive images that go
        to consecutive places of the batch with one read each), each into its
        place in the batch, and converted to ``dtype`` together.  The stored
        values pass through a scratch buffer that each process allocates once
        and reuses: a fresh buffer for every batch would cost the kernel more
        (handing out and zeroing its pages) than the reads.
        """
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        n, k = len(self), len(indices)
        if k and (indices.min() < -n or indices.max() >= n):
            raise IndexError(f"index out of range for {n} images")
        indices = np.where(indices < 0, indices + n, indices)
        batch = np.empty((k, *self.image_shape), dtype=self.dtype)
        same_layout = self._stored_shape[-1] == 1 or not self.channels_first
        straight = same_layout and self.dtype == self._stored_dtype
        stored = batch.reshape(k, *self._stored_shape[1:]) if straight else self._scratch(k)
        handle = self._open()
        order = np.argsort(indices, kind="stable")  # batch positions, in file order
        runs = list(_runs(indices[order], order))
        if self.contiguous and hasattr(os, "posix_fadvise"):
            # Ask for every run at once: the disk then serves them in parallel, not one read at a time.
            for first, last, _ in runs:
                os.posix_fadvise(handle, self._offset + first * self._image_bytes, (last - first) * self._image_bytes, os.POSIX_FADV_WILLNEED)
        for first, last, at in runs:
            if self.contiguous:
                self._pread(handle, stored[at : at + last - first], first)
            else:  # one slice a run: h5py's point selections of scattered indices are several times slower
                handle.read_direct(stored, np.s_[first:last], np.s_[at : at + last - first])
        if not straight:
            if same_layout:
                np.copyto(batch.reshape(k, -1), stored.reshape(k, -1), casting="unsafe")
            else:
                np.copyto(batch, np.moveaxis(stored, -1, 1), casting="unsafe")
        return batch

    def _scratch(self, k: int) -> np.ndarray:
        """This process's buffer for ``k`` stored images (grown when a larger batch comes)."""
        buffer = getattr(self, "_buffer", None)
        if buffer is None or len(buffer) < k:
            buffer = self._buffer = np.empty((max(k, 1), *self._stored_shape[1:]), dtype=self._stored_dtype)
        return buffer[:k]

    def _pread(self, fd: int, out: np.ndarray, first: int) -> None:
        """Fill ``out`` with the stored images from ``first`` on, at their byte offset."""
        view = memoryview(out).cast("B")
        done = 0
        while done < len(view):  # a positional read may return fewer bytes than asked for
            got = os.preadv(fd, [view[done:]], self._offset + first * self._image_bytes + done)
            if got == 0:
                raise OSError(f"{self.path}: file ends inside x_{self.split} (truncated?)")
            done += got

    def _item(self, index: int, image: np.ndarray) -> tuple:
        image = self.transform(image) if self.transform is not None else image
        if self.scales is None:
            return image, int(self.labels[index])
        return image, int(self.labels[index]), float(self.scales[index])

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self._batch(np.arange(len(self))[index])
        if isinstance(index, (int, np.integer)):
            index = int(index) + len(self) if index < 0 else int(index)
            return self._item(index, self.read_images([index])[0])
        index = np.asarray(index)
        if index.dtype == bool:  # a mask over the split
            if index.shape != (len(self),):
                raise IndexError(f"a boolean index must have shape ({len(self)},), not {index.shape}")
            index = np.flatnonzero(index)
        return self._batch(index.astype(np.int64))

    def __getitems__(self, indices) -> list[tuple]:
        """The items at ``indices`` as a list (what PyTorch's DataLoader asks a dataset for a batch)."""
        indices = [int(index) + len(self) if index < 0 else int(index) for index in indices]
        images = self.read_images(indices)
        return [self._item(index, image) for index, image in zip(indices, images, strict=True)]

    def _batch(self, indices: np.ndarray) -> tuple:
        """``(x, y[, s])`` of a slice or an index array; with a ``transform``, x is the list of transformed images."""
        images = self.read_images(indices)
        if self.transform is not None:
            images = [self.transform(image) for image in images]
        indices = np.where(indices < 0, indices + len(self), indices)
        if self.scales is None:
            return images, self.labels[indices]
        return images, self.labels[indices], self.scales[indices]


def _runs(values: np.ndarray, positions: np.ndarray):
    """``(first, stop, position)`` of each run of ``values`` (sorted) that is consecutive both in value and in ``positions``.

    ``values[j]`` goes to batch position ``positions[j]``; a run
    ``values[j:j+m] = first .. first+m-1`` with ``positions[j:j+m] =
    position .. position+m-1`` is one read of m images into m consecutive places.
    """
    if not len(values):
        return
    joined = (np.diff(values) == 1) & (np.diff(positions) == 1)
    breaks = np.flatnonzero(~joined) + 1
    starts = np.concatenate([[0], breaks])
    stops = np.concatenate([breaks, [len(values)]])
    for start, stop in zip(starts.tolist(), stops.tolist(), strict=True):
        yield int(values[start]), int(values[stop - 1]) + 1, int(positions[start])
