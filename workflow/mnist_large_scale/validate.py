"""Checks of a built MNIST Large Scale file against its name, the recipe and MNIST.

``validate_file`` returns a JSON-ready report: one entry per check with its
outcome and the numbers behind it.  It reads the file in chunks, so memory stays
bounded whatever the file's size.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import h5py
import numpy as np

from .build import load_split, split_scales
from .names import FileSpec, parse_name
from .recipe import Recipe, canvas_margin, soft_threshold, transform_images
from .sources import BaseData
from .writer import SPLITS, data_sha256

__all__ = ["validate_file", "raise_on_failure", "ValidationFailed"]


class ValidationFailed(RuntimeError):
    """A file failed one or more checks; the message lists them."""


def _check(report: dict, name: str, ok: bool, **details) -> None:
    report["checks"].append({"check": name, "ok": bool(ok), **details})


def _background_expected(scale_high: float, out_shape: tuple[int, int], recipe: Recipe) -> bool:
    """Whether the frame's corners lie outside the digit's reach at every scale of the split.

    The 28 x 28 MNIST image, scaled by s and widened by the smoothing kernel,
    must fit inside the frame's inscribed circle's corners: corners are at
    distance ``hypot(H, W) / 2`` from the centre, the image reaches ``14 s sqrt 2``.
    """
    reach = math.sqrt(2) * 14 * scale_high + canvas_margin(recipe.sigma(scale_high), recipe.truncate)
    return math.hypot(*out_shape) / 2 > reach


def validate_file(
    path: str | os.PathLike,
    base: BaseData,
    raw_paths: dict[str, str],
    dtype: str = "float64",
    compression: str | None = None,
    chunk_images: int = 1000,
) -> dict:
    """Check one built file.

    Parameters
    ----------
    path : path
        The .h5 file; its name says what it must hold.
    base : BaseData
        The base data set, for the labels.
    raw_paths : dict
        Raw file paths by file name.
    dtype, compression
        The configured storage; None compression means contiguous datasets.
    chunk_images : int
        Images read per step.

    Returns
    -------
    dict
        ``{'file', 'ok', 'checks': [{'check', 'ok', ...}], 'summary': {...}}``.
    """
    path = Path(path)
    spec = parse_name(path.name)
    report = {"file": path.name, "checks": [], "summary": {}}
    with h5py.File(path, "r") as h5:
        recipe = Recipe.from_config(json.loads(h5.attrs["recipe"]))
        background = float(soft_threshold(0.0, recipe.gain, recipe.offset))
        top = float(soft_threshold(recipe.clip_max, recipe.gain, recipe.offset))
        report["summary"]["background"] = background
        _check(report, "attributes name the file", h5.attrs.get("file_name") == spec.name, found=str(h5.attrs.get("file_name")))
        for split in SPLITS:
            n = spec.split_count(split)
            single = spec.test_only and split != "test"
            want_x = (*spec.out_shape, 1) if single else (n, *spec.out_shape, 1)
            x, y = h5.get(f"x_{split}"), h5.get(f"y_{split}")
            if x is None or y is None:
                _check(report, f"{split}: datasets present", False, missing=[k for k in (f"x_{split}", f"y_{split}") if k not in h5])
                continue
            _check(report, f"{split}: x shape", x.shape == want_x, found=list(x.shape), expected=list(want_x))
            _check(report, f"{split}: x dtype", x.dtype == np.dtype(dtype), found=str(x.dtype), expected=dtype)
            _check(report, f"{split}: y shape and dtype", y.shape == (() if single else (n,)) and y.dtype == np.uint8, found=[list(y.shape), str(y.dtype)])
            if not compression:
                _check(report, f"{split}: contiguous, uncompressed", x.chunks is None and x.compression is None, chunks=str(x.chunks))
            _, labels = load_split(base, raw_paths, split, n)
            stored = np.atleast_1d(y[()])
            _check(report, f"{split}: labels equal the base data's, in order", np.array_equal(stored, labels), mismatches=int(np.sum(stored != labels)) if stored.shape == labels.shape else -1)
            scale = spec.split_scale(split)
            if scale.is_range:
                s = np.atleast_1d(h5[f"s_{split}"][()]) if f"s_{split}" in h5 else np.array([])
                _check(report, f"{split}: per-sample scales within [{scale.low:.4f}, {scale.high:.4f})", len(s) == n and bool(np.all((s >= scale.low) & (s < scale.high))), count=len(s))
            stats = _scan(x, single, chunk_images, background, n)
            report["summary"][split] = stats
            _check(report, f"{split}: finite", stats["nonfinite"] == 0, nonfinite=stats["nonfinite"])
            low_ok = stats["min"] >= background - 1e-9 if recipe.clip else stats["min"] > -1
            _check(report, f"{split}: values within [background, arctan of clip_max]", low_ok and stats["max"] <= top + 1e-9, min=stats["min"], max=stats["max"], background=background, top=top)
            if _background_expected(scale.high, spec.out_shape, recipe):
                _check(report, f"{split}: every image's corners are background", stats["corner_background_fraction"] == 1.0, fraction=stats["corner_background_fraction"])
        _integrity_checks(report, h5, spec, base, raw_paths, recipe, chunk_images)
    report["ok"] = all(check["ok"] for check in report["checks"])
    return report


def _integrity_checks(
    report: dict,
    h5: h5py.File,
    spec: FileSpec,
    base: BaseData,
    raw_paths: dict[str, str],
    recipe: Recipe,
    chunk_images: int,
    samples: int = 32,
) -> None:
    """Damage and drift that range checks cannot see: a flipped low bit stays finite and in range.

    1. Every dataset's values against the ``sha256`` attribute the writer stored.
    2. Up to ``samples`` images per split, spread evenly, recomputed with the
       reference recipe (recipe.py) from the raw files and compared to 1e-9.
    """
    for name in sorted(h5):
        dataset = h5[name]
        if "sha256" not in dataset.attrs:
            continue
        if dataset.ndim == 4:  # images: a chunk at a time
            digest = hashlib.sha256()
            for start in range(0, dataset.shape[0], chunk_images):
                digest.update(np.ascontiguousarray(dataset[start : start + chunk_images]))
            found = digest.hexdigest()
        else:  # labels, scales, a single sample: small
            found = data_sha256(dataset[()])
        stored = dataset.attrs["sha256"]
        stored = stored.decode() if isinstance(stored, bytes) else str(stored)
        _check(report, f"{name}: values equal the sha256 stored when written", found == stored, found=found, stored=stored)
    seed = int(h5.attrs["scale_seed"]) if "scale_seed" in h5.attrs else 0
    for split in SPLITS:
        n = spec.split_count(split)
        single = spec.test_only and split != "test"
        x = h5.get(f"x_{split}")
        if x is None or x.dtype.kind != "f" or x.shape != ((*spec.out_shape, 1) if single else (n, *spec.out_shape, 1)):
            continue  # the layout checks above already failed
        index = np.unique(np.linspace(0, n - 1, min(n, samples)).round().astype(int))
        images, _ = load_split(base, raw_paths, split, n)
        expected = transform_images(images[index], split_scales(spec, split, seed)[index], spec.out_shape, recipe)
        stored = (x[()][np.newaxis] if single else x[index.tolist()])[..., 0]
        tolerance = 1e-9 if x.dtype == np.float64 else 4 * float(np.finfo(x.dtype).eps)
        error = np.abs(stored - expected.astype(x.dtype)).reshape(len(index), -1).max(axis=1)
        _check(
            report,
            f"{split}: {len(index)} recomputed samples equal the recipe",
            bool(np.all(error <= tolerance)),
            tolerance=tolerance,
            max_abs_diff=float(error.max()),
            worst_index=int(index[int(error.argmax())]),
        )


def _scan(x: h5py.Dataset, single: bool, chunk_images: int, background: float, n: int) -> dict:
    """Range, finiteness and background corners of one split, read in chunks."""
    low, high, nonfinite, corner_ok = math.inf, -math.inf, 0, 0
    for start in range(0, n, chunk_images):
        block = x[()][np.newaxis] if single else x[start : start + chunk_images]
        finite = np.isfinite(block)
        nonfinite += int(block.size - np.count_nonzero(finite))
        if finite.any():
            low, high = min(low, float(block[finite].min())), max(high, float(block[finite].max()))
        corners = block[:, [0, 0, -1, -1], [0, -1, 0, -1], 0]
        corner_ok += int(np.count_nonzero(np.all(np.abs(corners - background) <= 1e-9, axis=1)))
    return {"min": low, "max": high, "nonfinite": nonfinite, "corner_background_fraction": corner_ok / n}


def raise_on_failure(report: dict) -> None:
    """Raise ValidationFailed naming every failed check of a report."""
    failed = [check for check in report["checks"] if not check["ok"]]
    if failed:
        raise ValidationFailed(f"{report['file']}: {len(failed)} check(s) failed:\n" + "\n".join(f"  - {json.dumps(c)}" for c in failed))
