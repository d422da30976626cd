"""A whole file against its rebuild: every split compared, the recipe fitted, the verdict in one line."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import yaml

from ..bases import base_for_name, bases_by_prefix
from ..build import draw_scales, load_split
from ..engine import transform_images
from ..idx import read_idx
from ..names import FileSpec, InvalidName, ScaleSpec, parse_name
from ..recipe import Recipe
from ..recipe_fit import ROUNDING, Fit, changes, fit_recipe
from ..sources import BaseData, verify_raw_files
from ..writer import SPLITS
from .labels import LabelCheck, images_of, locate_labels
from .splits import SplitComparison, compare_split

__all__ = ["IDENTICAL", "WITHIN_ROUNDING", "DIFFERS", "Comparison", "compare_file", "recipe_snippet"]

IDENTICAL = "identical"
WITHIN_ROUNDING = "equal within float rounding"
DIFFERS = "differs"
#: The images' linear extent may differ by this fraction before the scales are called different:
#: below a step of the published ladder (2^(1/4); measured 14-21 % at s = 0.5..4 on 112 x 112,
#: where the frame crops the larger digits), above what a changed recipe constant does to the
#: support (measured on 16 test images: at most 8.4 %, sigma_per_scale 0.7 against 0.875; offset,
#: gain, order, clip, stretch and a half-pixel shift 0.1-5 %).
_SCALE_TOLERANCE = 0.1


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
    options = _Options(fit_images, max_images, figure_images, threads, progress)
    run = _FileComparison.of(name, config, raw_dir, rebuilt_path, (scale_train, scale_test), options)
    rebuilt = h5py.File(rebuilt_path, "r") if rebuilt_path else contextlib.nullcontext()
    with rebuilt as rebuilt_file, h5py.File(published_path, "r") as h5:
        for split in SPLITS:
            if f"x_{split}" in h5:
                run.add_split(h5, rebuilt_file, split)
    fit = run.fit()
    verdict, line = _verdict(published_path.name, run.splits, fit, run.configured, run.scale_warnings)
    return Comparison(str(published_path), name, run.splits, fit, run.configured, verdict, line, run.notes + run.scale_warnings)


@dataclass(frozen=True)
class _Options:
    """``compare_file``'s settings of how much to compare, fit and keep, and how to compute."""

    fit_images: int
    max_images: int | None
    figure_images: int
    threads: int
    progress: Callable[[int], None] | None


@dataclass
class _FileComparison:
    """One ``compare_file`` call: what it compares against, and what its splits add up to.

    The splits' comparisons, the notes and scale warnings, and the images of
    each split kept for the fit (``fit_inputs``: images, scales and published
    values) grow as ``add_split`` goes through them; ``out_shape`` is the frame
    of the last split read.
    """

    spec: FileSpec
    base: BaseData
    bases: list[BaseData]
    config: dict
    configured: Recipe
    raw_paths: dict[str, str]
    raw_labels: dict[str, np.ndarray]
    overrides: dict[str, ScaleSpec]
    rebuilt_path: str | os.PathLike | None
    options: _Options
    splits: list[SplitComparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    scale_warnings: list[str] = field(default_factory=list)
    fit_inputs: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
    out_shape: tuple[int, int] | None = None

    @classmethod
    def of(cls, name: str, config: dict, raw_dir, rebuilt_path, scale_tags: tuple, options: _Options) -> _FileComparison:
        """The published name's base data (its raw files verified, their labels read), scales and the configured recipe."""
        by_prefix = bases_by_prefix(config["base_data"])
        spec, base = base_for_name(name, by_prefix)
        overrides = {which: ScaleSpec.parse(tag) for which, tag in zip(("train", "test"), scale_tags, strict=True) if tag}
        configured = Recipe.from_config(config["recipe"])
        raw_dir = Path("resources") / base.key if raw_dir is None else Path(raw_dir)
        raw_paths = {raw.name: str(raw_dir / raw.name) for raw in base.files.values()}
        verify_raw_files(base, raw_paths)
        raw_labels = {}
        for split in SPLITS:
            source = base.splits[split]
            if source.labels not in raw_labels:
                raw_labels[source.labels] = read_idx(raw_paths[source.labels], ndim=1)
        bases = list(by_prefix.values())
        return cls(spec, base, bases, config, configured, raw_paths, raw_labels, overrides, rebuilt_path, options)

    def add_split(self, h5: h5py.File, rebuilt_file: h5py.File | None, split: str) -> None:
        """Compare one split: its labels, then (when they pair the images) its values, and keep its first images for the fit."""
        x = h5[f"x_{split}"]
        x = x if x.ndim == 4 else x[()][np.newaxis]  # a single sample stored without the leading axis
        self.out_shape = x.shape[1:3]
        n, source = len(x), self.base.splits[split]
        images, expected = load_split(self.base, self.raw_paths, split, min(n, source.size))
        scale = _split_scale(self.spec, split, self.overrides)
        result, check = self._labels(h5, split, x, scale, expected)
        if check.status == "offset":
            images = read_idx(images_of(self.base, self.raw_paths, check.source), ndim=3)[check.first_index : check.first_index + n]
        elif check.status not in ("match",):
            return
        scales = _scales(h5, rebuilt_file, split, self.spec, scale, n, self.config, result)
        rebuilt = self._rebuilt(rebuilt_file, split, images, scales)
        stats = compare_split(x, rebuilt, max_images=self.options.max_images, keep=max(self.options.figure_images, 0))
        result.sample = stats.pop("sample")
        for key, value in stats.items():
            setattr(result, key, value)
        self.scale_warnings.extend(_scale_warnings(result, scale, self.rebuilt_path, self.bases))
        k = min(self.options.fit_images, n)
        if k:
            self.fit_inputs.append((images[:k], scales[:k], np.asarray(x[:k], dtype=np.float64).reshape(k, *self.out_shape)))

    def _labels(self, h5: h5py.File, split: str, x, scale: ScaleSpec, expected: np.ndarray) -> tuple[SplitComparison, LabelCheck]:
        """The split's entry, with where its labels come from, and the notes its counts and dtype call for."""
        n, source = len(x), self.base.splits[split]
        labels = np.atleast_1d(h5[f"y_{split}"][()]) if f"y_{split}" in h5 else np.array([], dtype=np.int64)
        check = locate_labels(labels, expected, self.raw_labels, source.labels, source.start) if len(labels) == n else LabelCheck("unknown")
        result = SplitComparison(split, n, scale.tag, check.sentence(split, source.labels, source.start), check.status, str(x.dtype))
        self.splits.append(result)
        if n != self.spec.split_count(split):
            self.notes.append(f"the name says {self.spec.split_count(split)} {split} images; the file holds {n}, which are compared")
        if x.dtype == np.float32:
            result.notes.append("stored as float32: rebuild with output.dtype: float32 rather than recipe.round_to_float32")
        return result, check

    def _rebuilt(self, rebuilt_file: h5py.File | None, split: str, images: np.ndarray, scales: np.ndarray) -> Callable[[slice], np.ndarray]:
        """``rebuilt(window)``: the rebuilt images of a window of the split, read from the rebuilt file or computed by the engine."""
        out_shape, options = self.out_shape, self.options

        def rebuilt(window: slice) -> np.ndarray:
            if rebuilt_file is not None:
                ours = rebuilt_file[f"x_{split}"]
                ours = ours[()][np.newaxis] if ours.ndim == 3 else ours[window]
                return np.asarray(ours, dtype=np.float64).reshape(-1, *out_shape)
            values = transform_images(images[window], scales[window], out_shape, self.configured, threads=options.threads)
            if options.progress:
                options.progress(len(values))
            return values

        return rebuilt

    def fit(self) -> Fit | None:
        """The recipe fitted to the images kept from every compared split; None when none was compared."""
        if not self.fit_inputs:
            return None
        images, scales, published = (np.concatenate(part) for part in zip(*self.fit_inputs, strict=True))
        return fit_recipe(images, scales, self.out_shape, published, self.configured)


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
