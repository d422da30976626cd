"""What a file of the MNIST Large Scale layout says about itself, checked at a cost the reader chooses.

Three levels, each including the one before:

``layout`` (cheap: the metadata alone, milliseconds whatever the size)
    the file opens as HDF5; it has ``x_test`` and ``y_test``, and for every split
    it has, images of shape ``(n, H, W, 1)`` (or one ``(H, W, 1)`` sample) with
    as many labels (and per-sample scales); every contiguous dataset's bytes lie
    inside the file (a truncated copy fails here).
``crc``
    every dataset that carries a ``crc32`` attribute (the writer stores one per
    dataset) has values whose CRC-32 is that attribute: reads every byte once
    (about 1 GB/s here); a published file carries no CRC and is said to.
``values``
    also every image value is finite and inside the soft threshold's range
    [-1, 1], and every per-sample scale is finite and positive: damage that
    rewrote the stored CRC too, or a published file, which has none, is still
    found where it moves a value out of range.

``check_file`` returns what it found; ``require_intact`` raises ``DamagedFile``
(a ValueError) with one line naming the file and the first problem.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from .layout import SPLITS

__all__ = ["CHECKS", "VALUE_RANGE", "DamagedFile", "Integrity", "check_file", "require_intact", "open_checked", "stored_crc_problem", "range_problem"]

#: The levels of ``check_file``, cheapest first.
CHECKS = ("layout", "crc", "values")
#: Bytes read at a time for the CRC and the range.
_BLOCK_BYTES = 64 << 20
#: The soft threshold's values, (2/pi) arctan(...), lie inside [-1, 1].
VALUE_RANGE = (-1.0, 1.0)


class DamagedFile(ValueError):
    """A file that is not what it says it is: not HDF5, truncated, not the layout, or values that fail its CRC-32.

    ``str()`` is one line, ``<path> is damaged: <problem>``; ``problem`` is the part after the colon.
    """

    def __init__(self, path: str | os.PathLike, problem: str):
        super().__init__(f"{path} is damaged: {problem}")
        self.path, self.problem = str(path), problem


@dataclass
class Integrity:
    """What ``check_file`` found.

    Attributes
    ----------
    path : str
    check : str
        The level checked (one of ``CHECKS``).
    problems : list of str
        Each a sentence; empty when the file passed.
    notes : list of str
        What could not be checked and why (no stored CRC-32, ...).
    crc_checked : list of str
        The datasets whose CRC-32 was compared.
    """

    path: str
    check: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    crc_checked: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def sentence(self) -> str:
        """One line: the file and its first problem (and how many more), or that it passed."""
        if self.ok:
            return f"{self.path}: intact ({self.check} check)"
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        return f"{self.path} is damaged: {self.problems[0]}{more}"

    def as_dict(self) -> dict:
        return {"ok": self.ok, "check": self.check, "problems": self.problems, "notes": self.notes, "crc_checked": self.crc_checked}


def _level(check: str) -> int:
    if check not in CHECKS:
        raise ValueError(f"check must be one of {', '.join(CHECKS)}, got {check!r}")
    return CHECKS.index(check)


def open_checked(path: str | os.PathLike) -> h5py.File:
    """Open ``path`` read-only as HDF5, or raise DamagedFile saying why it cannot be (missing: OSError)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        return h5py.File(path, "r")
    except OSError as error:
        with open(path, "rb") as handle:
            head = handle.read(8)
        if head != b"\x89HDF\r\n\x1a\n":
            raise DamagedFile(path, f"not an HDF5 file (it starts with {head!r}, not HDF5's signature)") from None
        raise DamagedFile(path, f"HDF5 cannot open it ({_first_line(error)}); a truncated or overwritten copy?") from None


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _layout_problems(h5: h5py.File, size: int) -> list[str]:
    """Why the open file is not the layout, or is cut short; [] when it is the layout."""
    if "x_test" not in h5 or "y_test" not in h5:
        return [f"not the MNIST Large Scale layout: no x_test and y_test (datasets: {', '.join(sorted(h5)) or 'none'})"]
    problems = []
    for split in SPLITS:
        if f"x_{split}" not in h5:
            continue
        x = h5[f"x_{split}"]
        if not isinstance(x, h5py.Dataset) or x.ndim not in (3, 4) or x.shape[-1] != 1:
            problems.append(f"x_{split} has shape {getattr(x, 'shape', '?')}, not (n, H, W, 1) or (H, W, 1)")
            continue
        n = x.shape[0] if x.ndim == 4 else None
        for other in (f"y_{split}", f"s_{split}"):
            if other in h5:
                shape = h5[other].shape
                if (shape[:1] if n is not None else shape) != ((n,) if n is not None else ()):
                    problems.append(f"{other} has shape {shape}, which does not go with x_{split}'s {x.shape}")
            elif other.startswith("y"):
                problems.append(f"x_{split} has no labels ({other})")
    for key in sorted(h5):
        dataset = h5[key]
        if isinstance(dataset, h5py.Dataset) and dataset.chunks is None:
            offset = dataset.id.get_offset()
            end = None if offset is None else offset + dataset.id.get_storage_size()
            if end is not None and end > size:
                problems.append(f"truncated: the file ends at byte {size:,}, {key} needs bytes up to {end:,}")
    return problems


def _blocks(dataset: h5py.Dataset):
    """The dataset's values in C order, a block of leading-axis rows at a time."""
    if dataset.ndim == 0 or dataset.ndim == 3:
        yield np.asarray(dataset[()])
        return
    row = max(1, dataset.dtype.itemsize * int(np.prod(dataset.shape[1:])))
    step = max(1, _BLOCK_BYTES // row)
    for start in range(0, dataset.shape[0], step):
        yield dataset[start : start + step]


def _scan(name: str, dataset: h5py.Dataset, with_crc: bool, with_values: bool) -> list[str]:
    """Problems of one dataset's values: its CRC-32 against the stored one, and the range."""
    crc, problems, outside = 0, [], 0
    low, high = VALUE_RANGE
    for block in _blocks(dataset):
        if with_crc:
            crc = zlib.crc32(np.ascontiguousarray(block), crc)
        if with_values and name.startswith("x_"):
            values = np.asarray(block, dtype=np.float64)
            outside += int(np.count_nonzero(~((values >= low) & (values <= high))))
        elif with_values and name.startswith("s_"):
            values = np.asarray(block, dtype=np.float64)
            outside += int(np.count_nonzero(~(np.isfinite(values) & (values > 0))))
    if with_crc and (problem := stored_crc_problem(name, dataset, crc)):
        problems.append(problem)
    if outside:
        what = f"outside [{low:g}, {high:g}] or not finite" if name.startswith("x_") else "not finite and positive"
        problems.append(f"{name}: {outside} values {what}")
    return problems


def stored_crc_problem(name: str, dataset: h5py.Dataset, crc: int) -> str | None:
    """The sentence for a dataset whose values' CRC-32 ``crc`` is not its stored one; None when it is (or none is stored)."""
    if "crc32" not in dataset.attrs or crc == int(dataset.attrs["crc32"]):
        return None
    return f"{name}: the values' CRC-32 is {crc:08x}, the file stored {int(dataset.attrs['crc32']):08x} when it was written"


def range_problem(name: str, values: np.ndarray) -> str | None:
    """The sentence for image values outside the threshold's range (or not finite); None when all are inside."""
    low, high = VALUE_RANGE
    outside = int(np.count_nonzero(~((values >= low) & (values <= high))))
    return f"{name}: {outside} values outside [{low:g}, {high:g}] or not finite" if outside else None


def check_file(path: str | os.PathLike, check: str = "layout", splits: tuple[str, ...] = SPLITS) -> Integrity:
    """Check what a file says about itself, to the level ``check`` (see the module's docstring).

    Parameters
    ----------
    path : path
    check : {'layout', 'crc', 'values'}
    splits : tuple of str
        The splits whose datasets the ``crc`` and ``values`` levels read
        (the layout is checked for all).

    Returns
    -------
    Integrity
        A file HDF5 cannot open has that as its one problem.
    """
    level = _level(check)
    result = Integrity(str(path), check)
    try:
        h5 = open_checked(path)
    except DamagedFile as error:
        result.problems.append(error.problem)
        return result
    with h5:
        try:
            result.problems += _layout_problems(h5, Path(path).stat().st_size)
            if result.problems or level == 0:
                return result
            names = [f"{kind}_{split}" for split in splits for kind in "xys" if f"{kind}_{split}" in h5]
            unsummed = [name for name in names if "crc32" not in h5[name].attrs]
            if unsummed:
                result.notes.append(f"no stored CRC-32 for {', '.join(unsummed)} (a published file has none): only the value range can tell")
            for name in names:
                with_crc = "crc32" in h5[name].attrs
                if with_crc or level >= 2:
                    result.problems += _scan(name, h5[name], with_crc, level >= 2)
                    result.crc_checked += [name] if with_crc else []
        except (OSError, RuntimeError, KeyError) as error:  # HDF5 cannot read what its metadata promises
            result.problems.append(f"HDF5 cannot read it ({_first_line(error)})")
    return result


def require_intact(path: str | os.PathLike, check: str = "layout", splits: tuple[str, ...] = SPLITS) -> Integrity:
    """``check_file``, raising DamagedFile with its one-line sentence when the file fails."""
    result = check_file(path, check, splits)
    if not result.ok:
        more = f" (and {len(result.problems) - 1} more)" if len(result.problems) > 1 else ""
        raise DamagedFile(path, result.problems[0] + more)
    return result
