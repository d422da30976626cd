"""Build one MNIST Large Scale file from its name, the raw files and the config."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable

import numpy as np

from . import NUMERICS_VERSION
from .exactmath import exp, log_decimal, uniform_from_raw
from .idx import read_idx
from .job_resources import job_memory_mb, job_runtime_min, scale_problem
from .names import FileSpec, ScaleSpec
from .recipe import Recipe
from .sources import BaseData, verify_raw_files
from .writer import SPLITS, OutputOptions, SplitData, write_file

__all__ = ["CITATION", "transform_for", "job_memory_mb", "job_runtime_min", "draw_scales", "split_scales", "load_split", "provenance", "build_file"]

CITATION = (
    "Jansson, Y. and Lindeberg, T. (2022). Scale-invariant scale-channel networks: deep networks that "
    "generalise to previously unseen scales. Journal of Mathematical Imaging and Vision 64(5):506-536, "
    "doi:10.1007/s10851-022-01082-2. | Jansson, Y. and Lindeberg, T. (2020). Exploring the ability of "
    "CNNs to generalise to previously unseen scales over wide scale ranges. ICPR 2020, arXiv:2004.01536. "
    "| Data set: MNIST Large Scale, Zenodo record 3820247."
)  # the base data set's own citation (MNIST: LeCun et al. 1998) follows it in each file
#: The derived data set's terms, after the base data's licence in each file's ``license`` attribute.
DATA_SET_TERMS = "MNIST Large Scale: the terms of its Zenodo record 3820247 (doi:10.5281/zenodo.3820247) apply."


def transform_for(recipe: Recipe, threads: int = 1) -> Callable:
    """The transform ``build_file`` calls for ``recipe.transform``, on ``threads`` worker threads.

    ``exact``: the engine (``engine.transform_images``), the same bytes on
    every machine.  ``scikit-image``: the reference recipe itself
    (``recipe.transform_images``: scikit-image's warp and scipy's
    gaussian_filter), whose last bits depend on the machine's libraries.
    """
    if recipe.transform == "scikit-image":
        from . import recipe as reference

        return functools.partial(reference.transform_images, threads=threads)
    from . import engine

    return functools.partial(engine.transform_images, threads=threads)


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
    largest = max(spec.split_scale(split).high for split in ("train", "val", "test"))
    if problem := scale_problem(spec.name, largest):  # outside Snakemake too (python -m mnist_large_scale build)
        raise ValueError(problem)
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
