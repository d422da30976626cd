"""Compare a file of the published layout with its rebuild, and fit the recipe that explains it.

A published file has no attributes; its name (or options, when it was renamed)
tells its scales, and its datasets its counts.  For each split the comparison
reports:

* whether the labels equal the base data's split in order, and if not, which
  range of which raw labels file they are, or that they are another order of
  the expected labels;
* the largest absolute difference to the rebuild, the fraction of images that
  are bit-identical, the per-image correlation and the largest difference of
  the two mean images;

then fits the recipe to a sample of images (``recipe_fit.py``) and gives a
verdict in one line: identical, equal within float rounding, or differs, with
the fitted constants.  The rebuilt images come from a rebuilt file when one is
given, otherwise from the engine, computed block by block from raw MNIST and
never written.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import yaml

from .bases import base_for_name, bases_by_prefix
from .build import draw_scales, load_split
from .engine import transform_images
from .idx import read_idx
from .names import FileSpec, InvalidName, ScaleSpec, parse_name
from .recipe import Recipe
from .recipe_fit import ROUNDING, Fit, changes, fit_recipe, is_float32
from .sources import BaseData, verify_raw_files
from .writer import SPLITS

__all__ = [
    "IDENTICAL",
    "WITHIN_ROUNDING",
    "DIFFERS",
    "LabelCheck",
    "SplitComparison",
    "Comparison",
    "locate_labels",
    "compare_split",
    "compare_file",
    "recipe_snippet",
]

IDENTICAL = "identical"
WITHIN_ROUNDING = "equal within float rounding"
DIFFERS = "differs"
#: Labels compared before the whole sequence is searched for: enough to make a chance match unlikely.
_PROBE = 32


@dataclass(frozen=True)
class LabelCheck:
    """How a split's labels relate to the base data's labels.

    Attributes
    ----------
    status : {'match', 'offset', 'shuffled', 'unknown'}
        The expected range in order; another range (``source``, ``first_index``)
        in order; the expected labels in another order; none of these.
    source, first_index : str, int
        The raw labels file and first index that the labels equal (match, offset).
    """

    status: str
    source: str = ""
    first_index: int = -1

    def sentence(self, split: str, expected_source: str, expected_first: int) -> str:
        if self.status == "match":
            return f"{split} labels equal {expected_source}[{expected_first}:] in order"
        if self.status == "offset":
            return f"{split} labels are {self.source}[{self.first_index}:], not {expected_source}[{expected_first}:]"
        if self.status == "shuffled":
            return f"{split} labels are those of {expected_source}[{expected_first}:] in another order: images cannot be paired"
        return f"{split} labels match no range of the raw labels: images cannot be paired"


def locate_labels(labels: np.ndarray, expected: np.ndarray, raw: dict[str, np.ndarray], expected_source: str, expected_first: int) -> LabelCheck:
    """Where ``labels`` come from: the expected range, another range of a raw labels file, or neither.

    Parameters
    ----------
    labels : (n,) ndarray
        A split's labels as stored.
    expected : (n,) ndarray
        The base data's labels for that split, in order.
    raw : dict of str to (N,) ndarray
        Every raw labels file, by name.
    expected_source, expected_first : str, int
        Where ``expected`` starts.
    """
    labels = np.asarray(labels).astype(np.int64).ravel()
    if np.array_equal(labels, np.asarray(expected, dtype=np.int64)):
        return LabelCheck("match", expected_source, expected_first)
    probe = labels[: min(_PROBE, len(labels))]
    for source, values in raw.items():
        values = np.asarray(values, dtype=np.int64)
        if len(values) < len(labels) or not len(probe):
            continue
        windows = np.lib.stride_tricks.sliding_window_view(values, len(probe))
        for start in np.flatnonzero((windows == probe).all(axis=1)):
            if start + len(labels) <= len(values) and np.array_equal(values[start : start + len(labels)], labels):
                return LabelCheck("offset", source, int(start))
    if np.array_equal(np.sort(labels), np.sort(np.asarray(expected, dtype=np.int64))):
        return LabelCheck("shuffled")
    return LabelCheck("unknown")


@dataclass
class SplitComparison:
    """One split: labels, differences to the rebuild, and the images kept for the fit and the figure."""

    split: str
    count: int
    scale: str
    labels: str
    label_status: str
    dtype: str = ""
    compared: int = 0
    max_abs_difference: float | None = None
    identical_images: float | None = None
    correlation_mean: float | None = None
    correlation_min: float | None = None
    mean_image_difference: float | None = None
    float32_values: bool | None = None
    support_ratio: float | None = None
    notes: list[str] = field(default_factory=list)
    sample: dict = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict:
        return {key: value for key, value in dataclasses.asdict(self).items() if key != "sample"}


def _correlations(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each pair of images (1 where both are constant and equal)."""
    a = a.reshape(len(a), -1) - a.reshape(len(a), -1).mean(axis=1, keepdims=True)
    b = b.reshape(len(b), -1) - b.reshape(len(b), -1).mean(axis=1, keepdims=True)
    norm = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    dot = (a * b).sum(axis=1)
    return np.where(norm > 0, dot / np.where(norm > 0, norm, 1.0), np.where(np.all(a == b, axis=1), 1.0, 0.0))


#: Output values farther than this from an image's corner value count as the digit's support.
_SUPPORT_EPSILON = 1e-6
#: The images' linear extent may differ by this fraction before the scales are called different:
#: below a step of the published ladder (2^(1/4); measured 14-21 % at s = 0.5..4 on 112 x 112,
#: where the frame crops the larger digits), above what a changed recipe constant does to the
#: support (measured on 16 test images: at most 8.4 %, sigma_per_scale 0.7 against 0.875; offset,
#: gain, order, clip, stretch and a half-pixel shift 0.1-5 %).
_SCALE_TOLERANCE = 0.1


def _support_sizes(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each image's support in pixels, and whether its four corners show the background.

    The support is where a value differs from the corner value: the resampled
    digit widened by the truncated smoothing kernel.  Both scale with ``s``,
    and neither depends on the threshold's gain and offset or on the stretch,
    so the square root of the ratio of two files' supports estimates the ratio
    of their scales.
    """
    corners = images[:, [0, 0, -1, -1], [0, -1, 0, -1]]
    background = corners[:, :1]
    usable = np.all(corners == background, axis=1)
    support = np.abs(images - background[:, :, None]) > _SUPPORT_EPSILON
    return support.reshape(len(images), -1).sum(axis=1), usable


def compare_split(
    published: np.ndarray | h5py.Dataset,
    rebuilt: Callable[[slice], np.ndarray],
    block: int = 500,
    max_images: int | None = None,
    keep: int = 0,
) -> dict:
    """Differences between a split's published images and the rebuilt ones, block by block.

    Parameters
    ----------
    published : (n, H, W, 1) or (n, H, W) array or dataset
    rebuilt : callable
        ``rebuilt(slice) -> (m, H, W)`` float64 images of those indices.
    block : int
        Images held at once.
    max_images : int, optional
        Compare only the first this many.
    keep : int
        The first this many published and rebuilt images are returned too.

    Returns
    -------
    dict
        ``compared``, ``max_abs_difference``, ``identical_images`` (fraction),
        ``correlation_mean`` and ``_min``, ``mean_image_difference``,
        ``float32_values`` (every published value is a float32),
        ``support_ratio`` (the published digits' linear extent over the
        rebuilt ones', about the ratio of their scales; None when no image
        shows its background) and, under ``sample``, the kept images.
    """
    n = len(published) if max_images is None else min(len(published), max_images)
    worst, identical, corr_sum, corr_min, float32 = 0.0, 0, 0.0, 1.0, True
    support_published = support_rebuilt = 0
    sum_published = sum_rebuilt = None
    kept_published, kept_rebuilt = [], []
    for a in range(0, n, block):
        window = slice(a, min(n, a + block))
        ours = np.asarray(rebuilt(window), dtype=np.float64)
        theirs = np.asarray(published[window], dtype=np.float64).reshape(ours.shape)
        difference = np.abs(theirs - ours)
        worst = max(worst, float(difference.max()))
        identical += int(np.count_nonzero((difference == 0).reshape(len(ours), -1).all(axis=1)))
        corr = _correlations(theirs, ours)
        corr_sum, corr_min = corr_sum + float(corr.sum()), min(corr_min, float(corr.min()))
        float32 = float32 and is_float32(theirs)
        (size_theirs, usable_theirs), (size_ours, usable_ours) = _support_sizes(theirs), _support_sizes(ours)
        usable = usable_theirs & usable_ours
        support_published += int(size_theirs[usable].sum())
        support_rebuilt += int(size_ours[usable].sum())
        sum_published = theirs.sum(axis=0) if sum_published is None else sum_published + theirs.sum(axis=0)
        sum_rebuilt = ours.sum(axis=0) if sum_rebuilt is None else sum_rebuilt + ours.sum(axis=0)
        if a < keep:
            kept_published.append(theirs[: keep - a])
            kept_rebuilt.append(ours[: keep - a])
    if n == 0:
        return {"compared": 0, "sample": {}}
    return {
        "compared": n,
        "max_abs_difference": worst,
        "identical_images": identical / n,
        "correlation_mean": corr_sum / n,
        "correlation_min": corr_min,
        "mean_image_difference": float(np.abs(sum_published - sum_rebuilt).max() / n),
        "float32_values": float32,
        "support_ratio": math.sqrt(support_published / support_rebuilt) if support_published and support_rebuilt else None,
        "sample": {
            "published": np.concatenate(kept_published) if kept_published else np.empty((0, *sum_published.shape)),
            "rebuilt": np.concatenate(kept_rebuilt) if kept_rebuilt else np.empty((0, *sum_published.shape)),
            "mean_difference": (sum_published - sum_rebuilt) / n,
        },
    }


@dataclass
class Comparison:
    """The whole comparison of one file: per split, the fit and the verdict."""

    file: str
    name: str
    splits: list[SplitComparison]
    fit: Fit | None
    configured: Recipe
    verdict: str
    line: str
    notes: list[str]

    def as_dict(self) -> dict:
        fit = None
        if self.fit is not None:
            fit = {
                "recipe": self.fit.recipe.as_dict(),
                "changes": changes(self.fit.recipe, self.configured),
                "residual_rms_before": self.fit.residual_before,
                "residual_rms_after": self.fit.residual_after,
                "max_abs_difference_after": self.fit.max_after,
                "images": self.fit.images,
                "not_identifiable": self.fit.identifiable,
                "config_snippet": recipe_snippet(self.fit.recipe),
            }
        return {
            "file": self.file,
            "name": self.name,
            "verdict": self.verdict,
            "line": self.line,
            "configured_recipe": self.configured.as_dict(),
            "splits": [split.as_dict() for split in self.splits],
            "fit": fit,
            "notes": self.notes,
        }


def _plain(value):
    """``value`` with numpy scalars (in lists too) as Python ones, which YAML's safe dumper takes."""
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value.item() if isinstance(value, np.generic) else value


def recipe_snippet(recipe: Recipe) -> str:
    """The ``recipe:`` section of ``config.yaml`` that builds with ``recipe``, ready to paste."""
    values = {key: _plain(value) for key, value in recipe.as_dict().items()}
    lines = ["recipe:"]
    for key, value in values.items():
        text = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
        lines.append(f"  {key}: {text}")
    return "\n".join(lines) + "\n"


def _format_change(key: str, before, after) -> str:
    def text(value):
        if isinstance(value, list):
            return "[" + ", ".join(f"{v:g}" for v in value) + "]"
        if isinstance(value, bool):
            return "true" if value else "false"
        return f"{value:g}" if isinstance(value, float) else str(value)

    return f"{key} {text(before)} -> {text(after)}"


def _split_scale(spec: FileSpec, split: str, overrides: dict[str, ScaleSpec]) -> ScaleSpec:
    """A split's scale: the name's, unless an option replaces it (a test-only file has one scale for all)."""
    which = "test" if split == "test" or spec.test_only else "train"
    return overrides.get(which, spec.split_scale(split))


def compare_file(
    published_path: str | os.PathLike,
    config: dict,
    raw_dir: str | os.PathLike | None = None,
    rebuilt_path: str | os.PathLike | None = None,
    name: str | None = None,
    scale_train: str | None = None,
    scale_test: str | None = None,
    fit_images: int = 200,
    max_images: int | None = None,
    figure_images: int = 4,
    threads: int = 1,
    progress: Callable[[int], None] | None = None,
) -> Comparison:
    """Compare a published-layout file with its rebuild and fit the recipe.

    Parameters
    ----------
    published_path : path
        The file to compare (any attributes are ignored).
    config : dict
        The workflow's config: base data, recipe and seed of the rebuild.
    raw_dir : path, optional
        Folder with the base data set's raw files; the workflow's
        ``resources/<base key>`` when None.
    rebuilt_path : path, optional
        A rebuilt file to compare with; otherwise the images are computed.
    name : str, optional
        The published name, when the file was renamed.
    scale_train, scale_test : str, optional
        Scale tags (``2p000``, ``1p000-4p000``) that replace the name's.
    fit_images : int
        Images per split given to the fit (0: no fit).
    max_images : int, optional
        Compare only the first this many images of each split.
    figure_images : int
        Images per split kept for the figure.
    threads : int
        Engine threads.
    progress : callable, optional
        Called with the number of images compared.
    """
    if fit_images < 0 or (max_images is not None and max_images < 1):
        raise ValueError(f"fit_images must be >= 0 and max_images >= 1, got {fit_images} and {max_images}")
    published_path = Path(published_path)
    name = name or published_path.name
    by_prefix = bases_by_prefix(config["base_data"])
    spec, base = base_for_name(name, by_prefix)
    overrides = {}
    for which, tag in (("train", scale_train), ("test", scale_test)):
        if tag:
            overrides[which] = ScaleSpec.parse(tag)
    configured = Recipe.from_config(config["recipe"])
    raw_dir = Path("resources") / base.key if raw_dir is None else Path(raw_dir)
    raw_paths = {raw.name: str(raw_dir / raw.name) for raw in base.files.values()}
    verify_raw_files(base, raw_paths)
    raw_labels = {}
    for split in SPLITS:
        source = base.splits[split]
        if source.labels not in raw_labels:
            raw_labels[source.labels] = read_idx(raw_paths[source.labels], ndim=1)
    rebuilt_file = h5py.File(rebuilt_path, "r") if rebuilt_path else None
    notes, comparisons, scale_warnings = [], [], []
    fit_images_all, fit_scales, fit_published = [], [], []
    try:
        with h5py.File(published_path, "r") as h5:
            out_shape = None
            for split in SPLITS:
                if f"x_{split}" not in h5:
                    continue
                x = h5[f"x_{split}"]
                x = x if x.ndim == 4 else x[()][np.newaxis]  # a single sample stored without the leading axis
                out_shape = x.shape[1:3]
                n = len(x)
                source = base.splits[split]
                images, expected = load_split(base, raw_paths, split, min(n, source.size))
                labels = np.atleast_1d(h5[f"y_{split}"][()]) if f"y_{split}" in h5 else np.array([], dtype=np.int64)
                scale = _split_scale(spec, split, overrides)
                check = locate_labels(labels, expected, raw_labels, source.labels, source.start) if len(labels) == n else LabelCheck("unknown")
                result = SplitComparison(split, n, scale.tag, check.sentence(split, source.labels, source.start), check.status, str(x.dtype))
                comparisons.append(result)
                if n != spec.split_count(split):
                    notes.append(f"the name says {spec.split_count(split)} {split} images; the file holds {n}, which are compared")
                if x.dtype == np.float32:
                    result.notes.append("stored as float32: rebuild with output.dtype: float32 rather than recipe.round_to_float32")
                if check.status == "offset":
                    images = read_idx(_images_of(base, raw_paths, check.source), ndim=3)[check.first_index : check.first_index + n]
                elif check.status not in ("match",):
                    continue
                scales = _scales(h5, rebuilt_file, split, spec, scale, n, config, result)

                def rebuilt(window: slice, images=images, scales=scales, split=split, out_shape=out_shape) -> np.ndarray:
                    if rebuilt_file is not None:
                        ours = rebuilt_file[f"x_{split}"]
                        ours = ours[()][np.newaxis] if ours.ndim == 3 else ours[window]
                        return np.asarray(ours, dtype=np.float64).reshape(-1, *out_shape)
                    values = transform_images(images[window], scales[window], out_shape, configured, threads=threads)
                    if progress:
                        progress(len(values))
                    return values

                stats = compare_split(x, rebuilt, max_images=max_images, keep=max(figure_images, 0))
                result.sample = stats.pop("sample")
                for key, value in stats.items():
                    setattr(result, key, value)
                scale_warnings.extend(_scale_warnings(result, scale, rebuilt_path, list(by_prefix.values())))
                k = min(fit_images, n)
                if k:
                    fit_images_all.append(images[:k])
                    fit_scales.append(scales[:k])
                    fit_published.append(np.asarray(x[:k], dtype=np.float64).reshape(k, *out_shape))
    finally:
        if rebuilt_file is not None:
            rebuilt_file.close()

    fit = None
    if fit_published:
        fit = fit_recipe(np.concatenate(fit_images_all), np.concatenate(fit_scales), out_shape, np.concatenate(fit_published), configured)
    verdict, line = _verdict(published_path.name, comparisons, fit, configured, scale_warnings)
    return Comparison(str(published_path), name, comparisons, fit, configured, verdict, line, notes + scale_warnings)


def _scale_warnings(result: SplitComparison, scale: ScaleSpec, rebuilt_path, bases: list[BaseData]) -> list[str]:
    """Why the two sides of a split may be at different scales: the rebuilt file's name, or the digits' extent."""
    warnings = []
    if rebuilt_path is not None:
        try:
            rebuilt_spec = parse_name(Path(rebuilt_path).name, prefixes=tuple(base.prefix for base in bases))
        except InvalidName:
            rebuilt_spec = None
        if rebuilt_spec is not None and _split_scale(rebuilt_spec, result.split, {}).tag != scale.tag:
            warnings.append(
                f"{result.split}: the rebuilt file's name says scale {_split_scale(rebuilt_spec, result.split, {}).tag}, "
                f"the published file's {scale.tag}: two different scales are compared"
            )
    ratio = result.support_ratio
    if ratio is not None and abs(ratio - 1) > _SCALE_TOLERANCE:
        looks = f" (about {scale.low * ratio:.3g})" if not scale.is_range else ""
        warnings.append(
            f"{result.split}: the published digits are {ratio:.2f} times as large as the rebuilt ones at scale {scale.tag}: "
            f"the file looks to be at another scale{looks}; check its name (--name, --scale-train, --scale-test)"
        )
    return warnings


def _images_of(base: BaseData, raw_paths: dict[str, str], labels_name: str) -> str:
    """The raw images file that goes with a raw labels file."""
    source = next(source for source in base.splits.values() if source.labels == labels_name)
    return raw_paths[source.images]


def _scales(h5, rebuilt_file, split: str, spec: FileSpec, scale: ScaleSpec, n: int, config: dict, result: SplitComparison) -> np.ndarray:
    """Each image's scale: the one of the name, or per sample from the file, the rebuilt file or the seed."""
    if not scale.is_range:
        return np.full(n, scale.low)
    for where, h5file in (("the published file", h5), ("the rebuilt file", rebuilt_file)):
        if h5file is not None and f"s_{split}" in h5file:
            if where != "the published file":
                result.notes.append(f"per-sample scales taken from {where}")
            return np.atleast_1d(h5file[f"s_{split}"][()]).astype(np.float64)[:n]
    result.notes.append(
        f"the file holds no per-sample scales (s_{split}); compared with the scales drawn from scale_seed {config['scale_seed']}, "
        "which only a file made with the same draws can match"
    )
    return draw_scales(scale, n, config["scale_seed"], split)


def _verdict(file: str, splits: list[SplitComparison], fit: Fit | None, configured: Recipe, scale_warnings: list[str] = ()) -> tuple[str, str]:
    """The verdict and its one-line statement (which names any sign of two different scales)."""
    compared = [split for split in splits if split.compared]
    unpaired = [split for split in splits if split.label_status not in ("match",)]
    if not compared:
        return DIFFERS, f"{file}: differs: no split could be compared ({'; '.join(split.labels for split in splits) or 'no x_ datasets'})"
    worst = max(split.max_abs_difference for split in compared)
    images = sum(split.compared for split in compared)
    found = changes(fit.recipe, configured) if fit else {}
    if not unpaired and all(split.identical_images == 1.0 for split in compared):
        return IDENTICAL, f"{file}: identical to the rebuild ({images} images, every value bit for bit)"
    if not unpaired and worst <= ROUNDING and not found:
        return WITHIN_ROUNDING, f"{file}: equal within float rounding (max |diff| {worst:.1e} over {images} images)"
    what = f"{file}: differs (max |diff| {worst:.2g} over {images} images)"
    if scale_warnings:
        what += "; different scales? " + "; ".join(scale_warnings)
    if unpaired:
        what += "; " + "; ".join(split.labels for split in unpaired)
    if fit:
        listed = ", ".join(_format_change(key, *values) for key, values in found.items()) or "no recipe constant"
        what += f"; best fit: {listed} (RMS {fit.residual_before:.1e} -> {fit.residual_after:.1e})"
    return DIFFERS, what
