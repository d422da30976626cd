"""Scanning a file's image bytes: range, finiteness, background corners and CRC-32 in one pass.

``scan_while_hashing`` reads the file front to back once (past the page cache
where allowed) and feeds each contiguous image dataset's bytes to a ``Scan``
while the same read computes the file's sha256 for the manifest.
"""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import numpy as np

from .. import engine
from ..direct_io import read_in_order
from ..names import FileSpec
from ..recipe import Recipe
from ..writer import SPLITS, data_crc32

__all__ = ["Scan", "scan_dataset", "scan_while_hashing"]


class Scan:
    """Range, finiteness, background corners and the CRC-32 of one split's images, block by block.

    The blocks must come in order: the CRC is that of ``writer.data_crc32``
    (C order, stored dtype), so the integrity check needs no second read.
    """

    def __init__(self, background: float) -> None:
        self.background = background
        self.low, self.high, self.nonfinite, self.corner_ok, self.crc = math.inf, -math.inf, 0, 0, 0

    def update(self, block: np.ndarray) -> None:
        """Take the next ``(m, H, W, 1)`` images."""
        self.crc = data_crc32(block, self.crc)
        block_low, block_high = float(block.min()), float(block.max())
        if math.isfinite(block_low) and math.isfinite(block_high):  # NaN and infinities show in min or max
            self.low, self.high = min(self.low, block_low), max(self.high, block_high)
        else:
            finite = np.isfinite(block)
            self.nonfinite += int(block.size - np.count_nonzero(finite))
            if finite.any():
                self.low, self.high = min(self.low, float(block[finite].min())), max(self.high, float(block[finite].max()))
        corners = block[:, [0, 0, -1, -1], [0, -1, 0, -1], 0]
        self.corner_ok += int(np.count_nonzero(np.all(np.abs(corners - self.background) <= 1e-9, axis=1)))

    def result(self, n: int) -> dict:
        """The split's summary; ``n`` its image count (for the corner fraction)."""
        return {"min": self.low, "max": self.high, "nonfinite": self.nonfinite, "corner_background_fraction": self.corner_ok / max(n, 1), "crc32": self.crc}


def scan_dataset(x: h5py.Dataset, single: bool, chunk_images: int, background: float, n: int) -> dict:
    """``Scan`` of one split read through h5py, a chunk at a time."""
    scan = Scan(background)
    for start in range(0, n, chunk_images):
        scan.update(x[()][np.newaxis] if single else x[start : start + chunk_images])
    return scan.result(n)


def stored_value(value: float, recipe: Recipe, dtype) -> float:
    """A value of the recipe (the background, the top) as a file stores it: rounded to float32 when the recipe or the dtype does."""
    return float(np.float32(value)) if recipe.round_to_float32 or np.dtype(dtype) == np.float32 else float(value)


def scan_while_hashing(path: Path, spec: FileSpec, recipe: Recipe, threads: int = 2, direct: bool = True) -> tuple[dict[str, dict], str]:
    """Scans of the image datasets and the file's sha256, from one front-to-back read of its bytes.

    Only contiguous floating-point image datasets of the shape the name asks
    for are scanned so (the others are left to ``validate_file``'s own reads,
    and fail its layout checks).
    """
    regions, shapes, scans = {}, {}, {}
    background = engine.background_value(recipe)
    with h5py.File(path, "r") as h5:
        for split in SPLITS:
            x = h5.get(f"x_{split}")
            n = spec.split_count(split)
            single = spec.test_only and split != "test"
            want = (*spec.out_shape, 1) if single else (n, *spec.out_shape, 1)
            if x is None or x.shape != want or x.chunks is not None or x.dtype.kind != "f" or x.id.get_offset() is None:
                continue
            count = 1 if single else n
            regions[split] = (x.id.get_offset(), count, x.dtype.itemsize * math.prod(want[-3:]))
            shapes[split] = (x.dtype, want[-3:], n)
            scans[split] = Scan(stored_value(background, recipe, x.dtype))

    def consume(split: str, first: int, data: np.ndarray) -> None:
        dtype, shape, _ = shapes[split]
        scans[split].update(data.view(dtype).reshape(-1, *shape))

    sha256 = read_in_order(path, regions, consume, direct=direct, threads=threads)
    return {split: scans[split].result(shapes[split][2]) for split in scans}, sha256
