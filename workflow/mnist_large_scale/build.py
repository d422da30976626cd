"""Build one MNIST Large Scale file from its name, the raw files and the config."""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Callable

import numpy as np

from . import NUMERICS_VERSION
from .exactmath import exp, log_decimal, uniform_from_raw
from .idx import read_idx
from .names import FileSpec, ScaleSpec
from .recipe import Recipe
from .sources import BaseData, verify_raw_files
from .writer import SPLITS, OutputOptions, SplitData, write_file

__all__ = ["CITATION", "job_memory_mb", "job_runtime_min", "draw_scales", "split_scales", "load_split", "provenance", "build_file"]

CITATION = (
    "Jansson, Y. and Lindeberg, T. (2022). Scale-invariant scale-channel networks: deep networks that "
    "generalise to previously unseen scales. Journal of Mathematical Imaging and Vision 64(5):506-536, "
    "doi:10.1007/s10851-022-01082-2. | Jansson, Y. and Lindeberg, T. (2020). Exploring the ability of "
    "CNNs to generalise to previously unseen scales over wide scale ranges. ICPR 2020, arXiv:2004.01536. "
    "| Data set: MNIST Large Scale, Zenodo record 3820247."
)  # the base data set's own citation (MNIST: LeCun et al. 1998) follows it in each file
#: The derived data set's terms, after the base data's licence in each file's ``license`` attribute.
DATA_SET_TERMS = "MNIST Large Scale: the terms of its Zenodo record 3820247 (doi:10.5281/zenodo.3820247) apply."


def job_memory_mb(out_shape: tuple[int, int], chunk_images: int) -> int:
    """Memory a build job may use, in MB, to declare as its ``mem_mb``; independent of n.

    About 300 MB for the interpreter, its libraries and the raw MNIST arrays,
    plus 2.5 float64 blocks of ``chunk_images`` output images: one being written,
    one being computed, and the engine's working arrays.  Measured peaks on a
    2-core machine: 340-420 MB at 112 x 112 and 960 MB at 224 x 224 with 1000
    images a block (tests/test_memory.py checks the bound).
    """
    block_mb = chunk_images * out_shape[0] * out_shape[1] * 8 / 2**20
    return int(math.ceil(300 + 2.5 * block_mb))


#: Output pixels a second, per thread, that a job is assumed to reach: the slowest rate
#: measured on the 2-core development machine, 19 Mpx/s (validation of 500 images at
#: 448 x 448, 5.9 s); builds reached 25-40 Mpx/s at 112 x 112 to 448 x 448 (scale 8).
JOB_PIXEL_RATE = 20e6
#: A job's time limit is this many times its time at ``JOB_PIXEL_RATE``: room for slower
#: nodes, a busy shared file system and a cold page cache.
JOB_RUNTIME_MARGIN = 10
#: Minutes every job gets on top: Snakemake's start-up inside the job (4-8 s measured under
#: SLURM) and its wait for the file system (latency-wait).
JOB_RUNTIME_BASE_MIN = 2


def job_runtime_min(out_shape: tuple[int, int], images: int) -> int:
    """Wall time a build or validation job may take, in whole minutes, to declare as its ``runtime``.

    Both jobs pass once over every output pixel (computing or reading and
    checking it), so their time grows with ``images * H * W``:
    ``JOB_RUNTIME_BASE_MIN`` plus ``JOB_RUNTIME_MARGIN`` times that many pixels
    at ``JOB_PIXEL_RATE``, rounded up: 3 minutes for the small files of the
    tests, 4 for a published test-only file, 10 for a published 70,000-image
    file at 112 x 112, 120 for one at 448 x 448.

    Parameters
    ----------
    out_shape : tuple of int
        ``(H, W)`` of the output images, in pixels.
    images : int
        Images in the file, all splits together (a test-only file's single
        train and val sample included).
    """
    seconds = JOB_RUNTIME_MARGIN * images * out_shape[0] * out_shape[1] / JOB_PIXEL_RATE
    return JOB_RUNTIME_BASE_MIN + int(math.ceil(seconds / 60))


def draw_scales(spec: ScaleSpec, n: int, seed: int, split: str) -> np.ndarray:
    """Per-sample scales of one split, log-uniform on ``[low, high)``, the same on every machine.

    ``s = low * exp(u * ln(high / low))`` with ``u`` uniform on [0, 1): the top
    53 bits of the raw 64-bit outputs of numpy's PCG64 seeded by
    ``SeedSequence([seed, k])`` (k the split's index in ('train', 'val', 'test')),
    times ``2**-53``.  The logarithm is correctly rounded (``decimal``) and the
    exponential is ``exactmath.exp``, built from basic operations.  The first n
    draws do not depend on the total, so a file with smaller counts holds the
    first n scales of the larger one.
    """
    bits = np.random.PCG64(np.random.SeedSequence([seed, SPLITS.index(split)]))
    u = uniform_from_raw(bits.random_raw(n))
    return spec.low * exp(u * log_decimal(spec.high / spec.low))


def split_scales(spec: FileSpec, split: str, seed: int) -> np.ndarray:
    """The ``(n,)`` float64 scales of one split of a file."""
    scale = spec.split_scale(split)
    n = spec.split_count(split)
    if scale.is_range:
        return draw_scales(scale, n, seed, split)
    return np.full(n, scale.low)


def _read_raw(path: str, ndim: int) -> np.ndarray:
    """A raw IDX file, read once per process while it is unchanged (read-only array)."""
    stat = os.stat(path)
    return _read_raw_cached(os.fspath(path), ndim, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _read_raw_cached(path: str, ndim: int, mtime_ns: int, size: int) -> np.ndarray:
    array = read_idx(path, ndim=ndim)
    array.setflags(write=False)
    return array


def load_split(base: BaseData, raw_paths: dict[str, str], split: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first n images ``(n, 28, 28) uint8`` and labels ``(n,) uint8`` of a split."""
    source = base.splits[split]
    if n > source.size:
        raise ValueError(f"{n} {split} images asked for, but {base.key} has {source.size}")
    images = _read_raw(raw_paths[source.images], ndim=3)
    labels = _read_raw(raw_paths[source.labels], ndim=1)
    if len(images) != len(labels):
        raise ValueError(f"{raw_paths[source.images]} has {len(images)} images but {raw_paths[source.labels]} has {len(labels)} labels")
    if source.stop > len(images):
        raise ValueError(f"{raw_paths[source.images]} has {len(images)} images; split {split} needs {source.stop}")
    window = slice(source.start, source.start + n)
    return images[window], labels[window]


def provenance(spec: FileSpec, base: BaseData, recipe: Recipe, seed: int) -> dict:
    """Root attributes: what the file is and how it was made; nothing that depends on the run or the machine.

    The libraries' versions are not recorded: they do not change the values
    (``numerics_version`` names the numerics that do), and a file must have the
    same bytes whichever numpy or scipy built it.
    """
    attrs = {
        "title": "MNIST Large Scale (rebuilt)",
        "file_name": spec.name,
        "citation": CITATION + (f" | {base.citation}" if base.citation else ""),
        "license": (f"{base.license} | " if base.license else "") + DATA_SET_TERMS,
        "base_data": base.key,
        "scale_train": (spec.train_scale or spec.test_scale).tag,
        "scale_test": spec.test_scale.tag,
        # smooth_boundary only when it is not the canvas: files built with the defaults keep their bytes
        "recipe": json.dumps(recipe.recorded(), sort_keys=True),
        "numerics_version": NUMERICS_VERSION,
        "splits": json.dumps(
            {name: {"source": base.splits[name].images, "first_index": base.splits[name].start, "count": spec.split_count(name)} for name in SPLITS},
            sort_keys=True,
        ),
        "source_sha256": json.dumps({raw.name: raw.pin for raw in base.files.values()}, sort_keys=True),
    }
    if any(spec.split_scale(name).is_range for name in SPLITS):
        attrs["scale_seed"] = seed
        attrs["scale_distribution"] = (
            "log-uniform: s = low * exp(u ln(high/low)), u = (top 53 bits of PCG64(SeedSequence([seed, split index])) "
            "raw outputs) * 2**-53"
        )
    return attrs


def build_file(
    spec: FileSpec,
    base: BaseData,
    raw_paths: dict[str, str],
    out_path: str | os.PathLike,
    recipe: Recipe,
    transform: Callable,
    seed: int,
    options: OutputOptions = OutputOptions(),
    progress: Callable[[int], None] | None = None,
) -> None:
    """Build the file that ``spec`` names.

    Parameters
    ----------
    spec : FileSpec
    base : BaseData
    raw_paths : dict
        Path of each raw file, by its name (``'train-images-idx3-ubyte'`` ...).
    out_path : path
    recipe : Recipe
    transform : callable
        ``transform(images, scales, out_shape, recipe, out=None) -> (n, H, W)``:
        the engine (or the reference recipe); ``out`` is a float64 buffer to fill.
    seed : int
        Seed of per-sample scales.
    options : OutputOptions
        How the file is stored and written.
    progress : callable, optional
        Called with the number of images just written.
    """
    verify_raw_files(base, raw_paths)  # a damaged cache must not become a wrong file
    splits = {}
    for name in SPLITS:
        n = spec.split_count(name)
        images, labels = load_split(base, raw_paths, name, n)
        scale = spec.split_scale(name)
        splits[name] = SplitData(
            images, labels, split_scales(spec, name, seed), single=spec.test_only and name != "test", store_scales=scale.is_range
        )
    write_file(
        out_path,
        splits,
        lambda images, scales, out: transform(images, scales, spec.out_shape, recipe, out=out),
        spec.out_shape,
        provenance(spec, base, recipe, seed),
        options,
        progress=progress,
    )
