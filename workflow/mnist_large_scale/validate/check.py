"""Checking a built MNIST Large Scale file against its name, the config and MNIST.

``validate_file`` returns a JSON-ready report: one entry per check with its
outcome and the numbers behind it.  It reads the file in chunks, so memory stays
bounded whatever the file's size.

Beyond layout, range and labels, it measures the one property the data set
exists for: that each file shows the digits at its scale.  For the first
images of each split it measures every digit's size (the intensity-weighted
radius of gyration of the pixels above background) and centroid, and compares
them with the same MNIST images transformed at scale 1 by the configured recipe:

* the size ratio must equal the sample's scale ``s`` (within ``size_tolerance``);
* the centroid's offset from the frame centre must equal ``s`` times the scale-1
  digit's offset from the centre of its 28 x 28 image (within
  ``centroid_tolerance_px``).

Every stage of the recipe before the pointwise soft threshold is a
magnification of the scale-1 picture (the smoothing sigma grows with ``s``), so
both hold exactly up to resampling, clipping and cropping.  Which digits are
checked, and how:

* up to the scale at which the 28 x 28 image fills the frame (4 for 112 x 112),
  the split's median size ratio and median centroid error are checked;
* from scale 1 up to that scale, every digit is checked, except digits whose
  ink (with one pixel for interpolation) reaches beyond the frame at their
  scale: MNIST itself crops about 1 % of its digits at the edge of the
  28 x 28 image, and near scale 4 these lose a strip of stroke;
* below scale 1 the recipe samples the bicubic interpolant more coarsely than
  MNIST's grid, without anti-aliasing, so thin strokes alias: over MNIST's
  70,000 digits at s = 0.5 .. 0.84 single sizes scatter by -12 % .. +15 % and
  7 centroids miss by more than 1 px (up to 1.3 px), while the medians stay
  within 0.5 % and 0.1 px;
* above that scale digits are cropped: everything is reported, nothing checked.

Every base data set in MNIST's format is checked the same way, against its own
raw files.  Garments fill their 28 x 28 image (99.98 % of Fashion-MNIST's test
images have ink on its border, 1.07 % of MNIST's digits), so the per-image
checks leave them out from s = 56 / 14.5 = 3.86 on at 112 x 112, where the
medians alone are checked (measured on all 10,000 test garments: medians within
1.1 % of s from 0.5 to 4 and 0.3 % from 1 to 4, each checked garment within
1.7 % and 0.5 px).
"""


from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import h5py
import numpy as np

from .. import NUMERICS_VERSION, engine
from ..build import load_split
from ..names import FileSpec, ScaleSpec, parse_name
from ..recipe import RECORDED_WHEN_SET, Recipe, canvas_margin, soft_threshold
from ..sources import BaseData, verify_raw_files
from ..writer import SPLITS, OutputOptions
from .measure import (
    label_histogram,
    log_uniform_ks,
    measure_scales,
    mnist_centre_of_mass_offsets,
    quantiles,
    uncropped_scale_limit,
)
from .report import add_check, add_check_every, json_safe
from .samples import integrity_checks
from .scan import scan_dataset, scan_while_hashing, stored_value

__all__ = ["ValidationSettings", "attribute_differences", "validate_file", "validate_and_checksum"]


#: Below this scale the recipe samples the bicubic interpolant more coarsely than
#: MNIST's own grid, without an anti-aliasing prefilter, so thin strokes alias and
#: single digits measure up to about 15 % large or small (median within 0.5 %).
#: Their sizes and centroids are checked as medians only; from it on, digit by digit.
ALIASING_BELOW = 1.0

#: Fewer per-sample scales than this cannot tell log-uniform from uniform on
#: [1, 4] (Kolmogorov-Smirnov distance about 0.17) at any useful alpha; the test
#: is reported for them, not checked.
KS_MIN_SAMPLES = 20


@dataclass(frozen=True)
class ValidationSettings:
    """How much validation measures and how strictly; config ``validation:``.

    Attributes
    ----------
    sample_images : int
        The first images of each split whose size and centroid are measured.
    size_tolerance : float
        Allowed relative difference between a measured size ratio and the scale.
    centroid_tolerance_px : float
        Allowed distance, in output pixels, between a measured centroid and the
        centroid the scale predicts.
    ks_alpha : float
        A range split fails when the Kolmogorov-Smirnov p-value of its
        log-scales against the uniform distribution is below this.
    """

    sample_images: int = 300
    size_tolerance: float = 0.02
    centroid_tolerance_px: float = 1.0
    ks_alpha: float = 0.001

    @classmethod
    def from_config(cls, values: dict) -> ValidationSettings:
        """Build from the config's ``validation`` mapping (unknown keys raise TypeError)."""
        return cls(**values)

    def as_dict(self) -> dict:
        return asdict(self)


def _background_expected(scale_high: float, out_shape: tuple[int, int], recipe: Recipe) -> bool:
    """Whether the frame's corners lie outside the digit's reach at every scale of the split.

    The 28 x 28 MNIST image, scaled by s and widened by the smoothing kernel,
    must fit inside the frame's inscribed circle's corners: corners are at
    distance ``hypot(H, W) / 2`` from the centre, the image reaches ``14 s sqrt 2``.
    """
    reach = math.sqrt(2) * 14 * scale_high + canvas_margin(recipe.sigma(scale_high), recipe.truncate)
    return math.hypot(*out_shape) / 2 > reach


def _scale_checks(
    report: dict, split: str, measured: dict, raw_offsets: np.ndarray, out_shape: tuple[int, int], scale: ScaleSpec, limit: float, settings: ValidationSettings
) -> dict:
    """Size and centroid checks of one split's sample (see the module docstring); returns its JSON summary."""
    s = measured["scale"]
    relative = measured["ratio"] / s
    error = measured["centroid_error"]
    in_frame = s <= limit * (1 + 1e-12)
    each = in_frame & (s >= ALIASING_BELOW) & measured["ink_fits"]
    tol, tol_px = settings.size_tolerance, settings.centroid_tolerance_px
    if in_frame.any():
        median = float(np.median(relative[in_frame]))
        add_check(report, f"{split}: median size ratio / scale within 1 +- {tol:g}", abs(median - 1) <= tol, median=median, digits=int(in_frame.sum()))
        median_error = float(np.median(error[in_frame]))
        add_check(report, f"{split}: median centroid error within {tol_px:g} px", median_error <= tol_px, median_px=median_error, digits=int(in_frame.sum()))
    if each.any():
        add_check_every(
            report, f"{split}: every digit's size ratio / scale within 1 +- {tol:g}", np.abs(relative - 1), tol, each, "worst_ratio_over_scale", relative
        )
        add_check_every(
            report,
            f"{split}: every digit's centroid within {tol_px:g} px of the frame centre + s x its scale-1 offset",
            error,
            tol_px,
            each,
            "worst_error_px",
            error,
        )
    centre = np.array([(out_shape[0] - 1) / 2, (out_shape[1] - 1) / 2])
    return {
        "nominal": scale.tag,
        "sampled": int(len(s)),
        "uncropped_scale_limit": limit,
        "checked_digits": {"medians": int(in_frame.sum()), "each": int(each.sum())},
        "ratio_over_scale": quantiles(relative),
        "digits_within_size_tolerance": int(np.count_nonzero(np.abs(relative - 1) <= tol)),
        "centroid_error_px": quantiles(error),
        "mean_centroid": np.mean(measured["centroid"], axis=0).tolist(),
        "mean_centroid_from_mnist_centre_of_mass": (centre + np.mean(s[:, None] * raw_offsets, axis=0)).tolist(),
        "per_digit": {  # six decimals: far below the tolerances, a third of the text
            "scale": np.round(s, 6).tolist(),
            "ratio": np.round(measured["ratio"], 6).tolist(),
            "centroid_row": np.round(measured["centroid"][:, 0], 6).tolist(),
            "centroid_col": np.round(measured["centroid"][:, 1], 6).tolist(),
            "centroid_error_px": np.round(error, 6).tolist(),
            "checked": each.tolist(),
        },
    }


def attribute_differences(
    attrs: dict, spec: FileSpec, base: BaseData, recipe: Recipe, seed: int, numerics_version: int
) -> list[str]:
    """What the file says about itself that the config, the name or this package say otherwise.

    Parameters
    ----------
    attrs : mapping
        The file's root attributes (``build.provenance`` wrote them).
    spec : FileSpec
        The parsed file name.
    base : BaseData
        The configured base data set (its key, pins and splits).
    recipe : Recipe
        The configured recipe.
    seed : int
        The configured seed of per-sample scales (compared for files that have them).
    numerics_version : int
        ``mnist_large_scale.NUMERICS_VERSION`` of the package validating.

    Returns
    -------
    list of str
        One sentence per difference, e.g. ``'recipe.sigma_per_scale is 0.8 in
        the file, 0.875 in the config'``; empty when everything agrees.
    """

    def loaded(key: str):
        try:
            return json.loads(attrs[key])
        except (KeyError, TypeError, ValueError):
            return None

    def value(item):
        return item.item() if isinstance(item, np.generic) else item

    differences = []

    def compare(what: str, found, expected, source: str) -> None:
        if found != expected:
            differences.append(f"{what} is {'missing' if found is None else found!r} in the file, {expected!r} {source}")

    file_recipe = loaded("recipe")
    if not isinstance(file_recipe, dict):
        differences.append("recipe is missing in the file or not JSON")
    else:
        file_recipe = {**RECORDED_WHEN_SET, **file_recipe}  # a key recorded only when set: missing is its default
        configured = recipe.as_dict()
        for key, expected in configured.items():
            compare(f"recipe.{key}", file_recipe.get(key), expected, "in the config")
        for key in sorted(set(file_recipe) - set(configured)):
            differences.append(f"recipe.{key} is {file_recipe[key]!r} in the file and unknown to the config")
    ranged = any(spec.split_scale(split).is_range for split in SPLITS)
    compare("scale_seed", value(attrs.get("scale_seed")), seed if ranged else None, "in the config" if ranged else "for a file without per-sample scales")
    compare("numerics_version", value(attrs.get("numerics_version")), numerics_version, "in this package")
    compare("base_data", value(attrs.get("base_data")), base.key, "in the config")
    compare("scale_train", value(attrs.get("scale_train")), (spec.train_scale or spec.test_scale).tag, "in the name")
    compare("scale_test", value(attrs.get("scale_test")), spec.test_scale.tag, "in the name")
    splits = loaded("splits") or {}
    for split in SPLITS:
        source, found = base.splits[split], splits.get(split) or {}
        compare(f"splits.{split}.source", found.get("source"), source.images, "in the config")
        compare(f"splits.{split}.first_index", found.get("first_index"), source.start, "in the config")
        compare(f"splits.{split}.count", found.get("count"), spec.split_count(split), "in the name")
    pins = loaded("source_sha256") or {}
    for raw in base.files.values():
        compare(f"source_sha256.{raw.name}", pins.get(raw.name), raw.pin, "in the config")
    return differences


def validate_file(
    path: str | os.PathLike,
    base: BaseData,
    raw_paths: dict[str, str],
    recipe: Recipe,
    seed: int | None,
    options: OutputOptions = OutputOptions(),
    settings: ValidationSettings = ValidationSettings(),
    scans: dict[str, dict] | None = None,
    numerics_version: int = NUMERICS_VERSION,
) -> dict:
    """Check one built file against its name and the config.

    Parameters
    ----------
    path : path
        The .h5 file; its name says what it must hold.
    base : BaseData
        The configured base data set: the labels, the pins and the splits.
    raw_paths : dict
        Raw file paths by file name.
    recipe : Recipe
        The configured recipe: the file's attributes must name it, and the
        measurements and recomputed samples use it (never the file's own).
    seed : int or None
        The configured seed of per-sample scales (None for a file without them).
    options : OutputOptions
        The configured dtype and compression (None: contiguous datasets), and
        the images read per step.
    settings : ValidationSettings
        Sample size and tolerances of the scale checks.
    scans : dict, optional
        Splits' image scans made elsewhere (``validate_and_checksum``); the
        others are read here.
    numerics_version : int
        The numerics version the file must have been built with (this package's).

    Returns
    -------
    dict
        ``{'file', 'ok', 'checks': [{'check', 'ok', ...}], 'summary': {...},
        'settings': {...}}``; ``summary[split]`` holds the value range, the
        label histogram, the scale measurements of the sample (``scale``, with
        per-digit lists) and, for a range split, the Kolmogorov-Smirnov test of
        its scales (``scale_distribution``).  Non-finite numbers become None.
    """
    path = Path(path)
    spec = parse_name(path.name)
    verify_raw_files(base, raw_paths)  # the labels and recomputed samples come from them
    report = {"file": path.name, "checks": [], "summary": {}, "settings": settings.as_dict()}
    # the background as the engine computes it (the value of every pixel the ink does not reach)
    background = engine.background_value(recipe)
    top = float(soft_threshold(recipe.clip_max, recipe.gain, recipe.offset))
    with h5py.File(path, "r") as h5:
        report["summary"]["background"] = background
        add_check(report, "attributes name the file", h5.attrs.get("file_name") == spec.name, found=str(h5.attrs.get("file_name")))
        differences = attribute_differences(dict(h5.attrs), spec, base, recipe, seed, numerics_version)
        add_check(report, "attributes agree with the config, the name and the package", not differences, differences=differences)
        checks = _SplitChecks(report, h5, spec, base, raw_paths, recipe, options, settings, scans or {}, background, top)
        for split in SPLITS:
            checks.run(split)
        integrity_checks(report, h5, spec, base, raw_paths, recipe, seed)
    report["ok"] = all(check["ok"] for check in report["checks"])
    return json_safe(report)


@dataclass(frozen=True)
class _SplitChecks:
    """What the checks of every split of one file share: the report they add to, the open file, its name and the config.

    ``background`` and ``top`` are the recipe's values of a zero pixel and of
    ``clip_max``; ``scans`` holds the splits' image scans made elsewhere.
    """

    report: dict
    h5: h5py.File
    spec: FileSpec
    base: BaseData
    raw_paths: dict[str, str]
    recipe: Recipe
    options: OutputOptions
    settings: ValidationSettings
    scans: dict[str, dict]
    background: float
    top: float

    def run(self, split: str) -> None:
        """Every check of one split, in the report's order; its summary goes to ``report['summary'][split]``."""
        spec, h5 = self.spec, self.h5
        n = spec.split_count(split)
        single = spec.test_only and split != "test"
        x, y = h5.get(f"x_{split}"), h5.get(f"y_{split}")
        if x is None or y is None:
            add_check(self.report, f"{split}: datasets present", False, missing=[k for k in (f"x_{split}", f"y_{split}") if k not in h5])
            return
        self.layout(split, x, y, n, single)
        sources, labels = load_split(self.base, self.raw_paths, split, n)
        histogram = self.labels(split, np.atleast_1d(y[()]), labels)
        scale = spec.split_scale(split)
        s = self.sample_scales(split, scale, n)
        # the background and the top as the file stores them (float32 when rounded so)
        stored_background, stored_top = stored_value(self.background, self.recipe, x.dtype), stored_value(self.top, self.recipe, x.dtype)
        stats = self.scans[split] if split in self.scans else scan_dataset(x, single, self.options.chunk_images, stored_background, n)
        stats["labels_histogram"] = histogram
        self.report["summary"][split] = stats
        if scale.is_range and len(s) == n:
            self.distribution(split, stats, s, scale)
        if len(s) == n and x.shape[-3:] == (*spec.out_shape, 1):
            stats["scale"] = self.digit_scales(split, x, s, sources, scale, single)
        self.values(split, stats, scale, stored_background, stored_top)

    def layout(self, split: str, x: h5py.Dataset, y: h5py.Dataset, n: int, single: bool) -> None:
        """Shapes, dtypes and storage of a split's datasets, as the name and ``options`` ask."""
        report, options = self.report, self.options
        want_x = (*self.spec.out_shape, 1) if single else (n, *self.spec.out_shape, 1)
        add_check(report, f"{split}: x shape", x.shape == want_x, found=list(x.shape), expected=list(want_x))
        add_check(report, f"{split}: x dtype", x.dtype == np.dtype(options.dtype), found=str(x.dtype), expected=options.dtype)
        add_check(report, f"{split}: y shape and dtype", y.shape == (() if single else (n,)) and y.dtype == np.uint8, found=[list(y.shape), str(y.dtype)])
        if not options.compression:
            add_check(report, f"{split}: contiguous, uncompressed", x.chunks is None and x.compression is None, chunks=str(x.chunks))
        elif not single:
            layout = x.compression == options.compression and x.chunks == (1, *want_x[1:]) and x.shuffle == options.shuffle
            add_check(
                report,
                f"{split}: {options.compression}, {'shuffled, ' if options.shuffle else ''}one image a chunk",
                layout,
                compression=str(x.compression),
                chunks=str(x.chunks),
                shuffle=bool(x.shuffle),
            )

    def labels(self, split: str, stored: np.ndarray, labels: np.ndarray) -> dict:
        """The stored labels against the base data's, in order and as a histogram; returns the stored histogram."""
        mismatches = int(np.sum(stored != labels)) if stored.shape == labels.shape else -1
        add_check(self.report, f"{split}: labels equal the base data's, in order", np.array_equal(stored, labels), mismatches=mismatches)
        histogram = label_histogram(stored)
        add_check(self.report, f"{split}: label histogram equals the base data's", histogram == label_histogram(labels), histogram=histogram)
        return histogram

    def sample_scales(self, split: str, scale: ScaleSpec, n: int) -> np.ndarray:
        """Each image's scale: the name's one, or the stored per-sample scales of a range split (checked to lie in the range)."""
        if not scale.is_range:
            return np.full(n, scale.low)
        s = np.atleast_1d(self.h5[f"s_{split}"][()]) if f"s_{split}" in self.h5 else np.array([])
        inside = len(s) == n and bool(np.all((s >= scale.low) & (s < scale.high)))
        add_check(self.report, f"{split}: per-sample scales within [{scale.low:.4f}, {scale.high:.4f})", inside, count=len(s))
        return s

    def distribution(self, split: str, stats: dict, s: np.ndarray, scale: ScaleSpec) -> None:
        """The Kolmogorov-Smirnov test of a range split's scales against the log-uniform law, checked from ``KS_MIN_SAMPLES`` on."""
        n, alpha = len(s), self.settings.ks_alpha
        statistic, p_value = log_uniform_ks(s, scale.low, scale.high)
        stats["scale_distribution"] = {"count": n, "ks_statistic": statistic, "p_value": p_value}
        if n >= KS_MIN_SAMPLES:
            name = f"{split}: scales log-uniform on [{scale.low:g}, {scale.high:g}) (KS p >= {alpha:g})"
            add_check(self.report, name, p_value >= alpha, ks_statistic=statistic, p_value=p_value, count=n)

    def digit_scales(self, split: str, x: h5py.Dataset, s: np.ndarray, sources: np.ndarray, scale: ScaleSpec, single: bool) -> dict:
        """The size and centroid checks of the split's first ``sample_images`` digits (``_scale_checks``); their summary."""
        m = min(len(s), self.settings.sample_images)
        sample = (x[()][np.newaxis] if single else x[:m])[..., 0]
        measured = measure_scales(sample, s[:m], sources[:m], self.recipe)
        limit = uncropped_scale_limit(self.spec.out_shape, sources.shape[1:])
        offsets = mnist_centre_of_mass_offsets(sources[:m])
        return _scale_checks(self.report, split, measured, offsets, self.spec.out_shape, scale, limit, self.settings)

    def values(self, split: str, stats: dict, scale: ScaleSpec, stored_background: float, stored_top: float) -> None:
        """Finite values, within the recipe's range, and background corners wherever no digit can reach them."""
        report, recipe = self.report, self.recipe
        add_check(report, f"{split}: finite", stats["nonfinite"] == 0, nonfinite=stats["nonfinite"])
        # without the clip the cubic's overshoot reaches past [0, clip_max]: only the threshold's (-1, 1) holds
        low_ok = stats["min"] >= stored_background - 1e-9 if recipe.clip else stats["min"] > -1
        high_ok = stats["max"] <= stored_top + 1e-9 if recipe.clip else stats["max"] < 1
        in_range = low_ok and high_ok
        add_check(report, f"{split}: values within [background, arctan of clip_max]", in_range, min=stats["min"], max=stats["max"], background=self.background, top=self.top)
        if _background_expected(scale.high, self.spec.out_shape, recipe):
            fraction = stats["corner_background_fraction"]
            add_check(report, f"{split}: every image's corners are background", fraction == 1.0, fraction=fraction)


def validate_and_checksum(
    path: str | os.PathLike,
    base: BaseData,
    raw_paths: dict[str, str],
    recipe: Recipe,
    seed: int | None,
    options: OutputOptions = OutputOptions(),
    settings: ValidationSettings = ValidationSettings(),
    threads: int = 2,
    numerics_version: int = NUMERICS_VERSION,
) -> tuple[dict, str]:
    """``validate_file`` and the file's sha256 (its line of SHA256SUMS) from one read of the file.

    The images are scanned (range, corners, CRC) from the same front-to-back
    read of the file's bytes that the digest takes, past the page cache where
    the file system allows and ``options.direct_io`` is true
    (``direct_io.read_in_order``, with ``threads`` workers); the rest of the
    checks read only samples.  The other arguments are those of ``validate_file``.

    Returns
    -------
    report : dict
        As ``validate_file``.
    sha256 : str
        Hex digest of the file's bytes.
    """
    path = Path(path)
    scans, sha256 = scan_while_hashing(path, parse_name(path.name), recipe, threads, options.direct_io)
    report = validate_file(path, base, raw_paths, recipe, seed, options, settings, scans=scans, numerics_version=numerics_version)
    return report, sha256


