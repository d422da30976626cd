"""Recomputed samples of a file: the stored CRC-32s, and images recomputed from the raw files by the engine and by scikit-image.

A flipped low bit stays finite and in range; these checks see it.  The
engine must give a file's stored values bit for bit when the file says it was
built by the exact transform at this numerics version; scikit-image
(``recipe.py``) must lie within ``reference_bound`` of them.
"""

from __future__ import annotations

import dataclasses
import json
import math

import h5py
import numpy as np

from .. import NUMERICS_VERSION, engine
from .. import recipe as reference
from ..build import load_split, split_scales
from ..names import FileSpec
from ..recipe import Recipe
from ..sources import BaseData
from ..writer import SPLITS, data_crc32
from .report import add_check

__all__ = ["reference_bound", "smoothed_peaks", "integrity_checks"]


def reference_bound(recipe: Recipe, peaks: np.ndarray | None = None) -> np.ndarray | float:
    """How far a correct file's values may lie from scikit-image's (``recipe.py``), per image.

    ``engine.ENGINE_TOLERANCE`` bounds the engine's difference to the
    reference after the soft threshold at the default gain: it is the
    engine's error in grey levels before the threshold times the threshold's
    steepest slope, ``(2/pi) 0.02``.  So another ``gain`` scales it by
    ``gain / 0.02``.  ``stretch`` multiplies each image by ``clip_max / peak``
    (its smoothed maximum ``peak``), and the peak carries the same error: the
    bound grows by ``2 clip_max / peak`` (``peaks``, one per image).  Values
    rounded to float32 (``round_to_float32`` or a float32 file) may round the
    other way: one float32 step (2**-24 below 1) more.  Every other recipe
    key leaves the bound as it is.
    """
    bound = engine.ENGINE_TOLERANCE * max(1.0, abs(recipe.gain) / Recipe().gain)
    if recipe.stretch and peaks is not None:
        positive = np.asarray(peaks) > 0
        bound = bound * np.where(positive, 2.0 * recipe.clip_max / np.where(positive, peaks, 1.0), 1.0)
    return bound


def smoothed_peaks(images: np.ndarray, scales: np.ndarray, out_shape: tuple[int, int], recipe: Recipe) -> np.ndarray:
    """Each image's smoothed frame maximum before the stretch, in grey levels (scikit-image's, through the threshold's inverse)."""
    unstretched = dataclasses.replace(recipe, stretch=False, round_to_float32=False)
    top = reference.transform_images(images, scales, out_shape, unstretched).reshape(len(images), -1).max(axis=1)
    return recipe.offset + np.tan(top * (math.pi / 2)) / recipe.gain


def _built_exactly(h5: h5py.File) -> bool:
    """Whether the file says it was built by the exact transform at this package's numerics version."""
    try:
        transform = json.loads(h5.attrs["recipe"]).get("transform", "exact")
        version = int(h5.attrs["numerics_version"])
    except (KeyError, TypeError, ValueError, AttributeError):
        return False
    return transform == "exact" and version == NUMERICS_VERSION


def _sample_checks(report: dict, split: str, index: np.ndarray, stored: np.ndarray, images: np.ndarray, scales: np.ndarray, out_shape, recipe: Recipe, exact: bool) -> None:
    """The recomputed samples of one split: with the engine (bit for bit when ``exact``) and with scikit-image within ``reference_bound``."""
    dtype = stored.dtype
    float32_step = 2.0**-24 if (dtype == np.float32 or recipe.round_to_float32) else 0.0
    peaks = smoothed_peaks(images, scales, out_shape, recipe) if recipe.stretch else None
    bound = np.broadcast_to(np.asarray(reference_bound(recipe, peaks), dtype=np.float64) + float32_step, (len(index),))
    computed = engine.transform_images(images, scales, out_shape, recipe).astype(dtype)
    engine_error = np.abs(stored.astype(np.float64) - computed).reshape(len(index), -1).max(axis=1)
    differing = index[engine_error != 0].tolist()
    if exact:
        add_check(
            report,
            f"{split}: {len(index)} recomputed samples equal the engine's bit for bit",
            not differing,
            differing_images=differing,
            max_abs_diff=float(engine_error.max()),
        )
    else:  # another transform or numerics version: the engine within the recipe's bound
        outside = index[engine_error > 2 * bound].tolist()
        add_check(report, f"{split}: {len(index)} recomputed samples within twice the recipe's bound of the engine's", not outside, outside_images=outside, max_abs_diff=float(engine_error.max()))
    expected = reference.transform_images(images, scales, out_shape, recipe).astype(dtype)
    error = np.abs(stored.astype(np.float64) - expected).reshape(len(index), -1).max(axis=1)
    worst = int(np.argmax(error / bound))
    add_check(
        report,
        f"{split}: {len(index)} recomputed samples within the recipe's bound of scikit-image's",
        bool(np.all(error <= bound)),
        outside_images=index[error > bound].tolist(),
        worst_index=int(index[worst]),
        max_abs_diff=float(error[worst]),
        bound=float(bound[worst]),
    )


def integrity_checks(
    report: dict,
    h5: h5py.File,
    spec: FileSpec,
    base: BaseData,
    raw_paths: dict[str, str],
    recipe: Recipe,
    seed: int,
    samples: int = 32,
) -> None:
    """Damage and drift that range checks cannot see: a flipped low bit stays finite and in range.

    1. Every dataset's values against the ``crc32`` attribute the writer stored.
    2. Up to ``samples`` images per split, spread evenly, recomputed from the
       raw files with the configured recipe and seed: with the engine, which
       must give the stored values bit for bit when the file says it was
       built by the exact transform at this numerics version (otherwise
       within twice ``reference_bound``), and with scikit-image
       (``recipe.py``), within ``reference_bound``.
    """
    for name in sorted(h5):
        dataset = h5[name]
        if "crc32" not in dataset.attrs:
            continue
        scanned = report["summary"].get(name.removeprefix("x_"), {}) if name.startswith("x_") else {}
        if "crc32" in scanned:  # the images: summed while _scan read them
            found = scanned["crc32"]
        else:  # labels, scales: small
            found = data_crc32(dataset[()])
        stored = int(dataset.attrs["crc32"])
        add_check(report, f"{name}: values equal the crc32 stored when written", found == stored, found=f"{found:08x}", stored=f"{stored:08x}")
    exact = _built_exactly(h5)
    for split in SPLITS:
        n = spec.split_count(split)
        single = spec.test_only and split != "test"
        x = h5.get(f"x_{split}")
        if x is None or x.dtype.kind != "f" or x.shape != ((*spec.out_shape, 1) if single else (n, *spec.out_shape, 1)):
            continue  # the layout checks above already failed
        index = np.unique(np.linspace(0, n - 1, min(n, samples)).round().astype(int))
        images, _ = load_split(base, raw_paths, split, n)
        stored = (x[()][np.newaxis] if single else x[index.tolist()])[..., 0]
        scales = split_scales(spec, split, seed)[index]
        _sample_checks(report, split, index, stored, images[index], scales, spec.out_shape, recipe, exact)
