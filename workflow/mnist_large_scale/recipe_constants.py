"""The constants of the recipe (config ``recipe:``) and their checks, in the standard library alone.

``recipe`` (the per-image reference, in numpy, scipy and scikit-image) and
the engine take their constants from here; the workflow checks the config's
``recipe`` section with it while Snakemake reads the Snakefile, before any
rule's packages are needed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

__all__ = ["RECORDED_WHEN_SET", "Recipe", "SMOOTH_BOUNDARIES", "TRANSFORMS", "recorded"]

#: How the smoothing treats the frame's edge: ``canvas`` (as if the frame did not
#: end) or a boundary mode of scipy.ndimage on the frame itself.
SMOOTH_BOUNDARIES = ("canvas", "reflect", "constant", "nearest")

#: What computes the recipe in a build: ``exact``, the engine (the same bytes on every
#: machine), or ``scikit-image``, warp and gaussian_filter themselves (``recipe.transform_images``).
TRANSFORMS = ("exact", "scikit-image")

#: Keys added after files were first recorded, with the value that gives those
#: files' bytes: a recipe is recorded (file attributes, the references'
#: configuration, the build rules' parameters) without such a key while it has
#: this value, so that files built with the defaults keep their bytes.
RECORDED_WHEN_SET = {"smooth_boundary": "canvas", "transform": "exact"}


def recorded(values: dict) -> dict:
    """A recipe mapping as it is recorded: without the ``RECORDED_WHEN_SET`` keys that hold their default.

    Parameters
    ----------
    values : dict
        A ``recipe`` mapping (the config's, or ``Recipe.as_dict()``).

    Returns
    -------
    dict
        The same mapping, in the same order, less those keys.
    """
    return {key: value for key, value in values.items() if key not in RECORDED_WHEN_SET or value != RECORDED_WHEN_SET[key]}


@dataclass(frozen=True)
class Recipe:
    """The constants of the recipe; every one is a config value (``recipe:``).

    The workflow's default recipe is ``config.yaml``'s ``recipe:`` section,
    which every build, validation and command reads.  The field defaults here
    are the recipe without the stretch, smoothed on a canvas (the default before
    numerics version 5): the base that the tests and the evidence vary one
    switch at a time.

    Attributes
    ----------
    order : int
        Spline order of the resampling (3: bicubic, as scikit-image's warp does it).
    clip : bool
        Clip the resampled values to ``[clip_min, clip_max]`` before smoothing.
    clip_min, clip_max : float
        The clipping range, in MNIST grey levels.
    sigma_per_scale : float
        Smoothing sigma in original MNIST pixels; the output sigma is this times s.
    truncate : float
        Gaussian kernel radius in sigmas (scipy's ``truncate``).
    stretch : bool
        Scale each smoothed image so that its maximum becomes ``clip_max``.
    gain, offset : float
        Soft threshold ``(2/pi) * arctan(gain * (x - offset))``.
    antialias : bool
        Below scale 1, prefilter the input with a Gaussian of
        ``engine.skimage_weights.antialias_sigma(s)`` input pixels before resampling.
    centre_shift : (float, float)
        Output pixels ``(down, right)`` by which the digit's centre moves from the
        frame's centre.
    round_to_float32 : bool
        Round the thresholded values to float32 (then stored as ``output.dtype``).
    smooth_boundary : {"canvas", "reflect", "constant", "nearest"}
        ``canvas``: smooth on a canvas with a margin, as if the frame did not
        end, then crop.  Otherwise resample onto the H x W frame only and
        smooth it with scipy.ndimage's boundary mode of that name
        (``constant`` with 0 grey levels outside).
    transform : {"exact", "scikit-image"}
        What computes the recipe in a build (``TRANSFORMS``); like
        ``smooth_boundary``, recorded only when it is not the value that files
        built before the key existed have.
    """

    order: int = 3
    clip: bool = True
    clip_min: float = 0.0
    clip_max: float = 255.0
    sigma_per_scale: float = 0.875
    truncate: float = 4.0
    stretch: bool = False
    gain: float = 0.02
    offset: float = 128.0
    antialias: bool = False
    centre_shift: tuple[float, float] = (0.0, 0.0)
    round_to_float32: bool = False
    smooth_boundary: str = "canvas"
    transform: str = "exact"

    def __post_init__(self) -> None:
        if self.clip_min > self.clip_max:
            raise ValueError(f"recipe: clip_min ({self.clip_min:g}) is above clip_max ({self.clip_max:g})")
        shift = tuple(float(v) for v in self.centre_shift)
        if len(shift) != 2 or not all(math.isfinite(v) for v in shift):
            raise ValueError(f"recipe: centre_shift must be two finite numbers (down, right), got {self.centre_shift!r}")
        object.__setattr__(self, "centre_shift", shift)  # a list from YAML, stored hashable
        if self.transform not in TRANSFORMS:
            raise ValueError(f"recipe: transform must be one of {', '.join(TRANSFORMS)}, got {self.transform!r}")
        if self.smooth_boundary not in SMOOTH_BOUNDARIES:
            raise ValueError(f"recipe: smooth_boundary must be one of {', '.join(SMOOTH_BOUNDARIES)}, got {self.smooth_boundary!r}")

    @classmethod
    def from_config(cls, values: dict) -> Recipe:
        """Build from the config's ``recipe`` mapping (unknown keys raise TypeError)."""
        return cls(**values)

    def as_dict(self) -> dict:
        """The constants as plain values (``centre_shift`` a list, as JSON and YAML give it back)."""
        return {**asdict(self), "centre_shift": list(self.centre_shift)}

    def recorded(self) -> dict:
        """``as_dict`` as files record it (``recorded``): ``smooth_boundary`` and ``transform`` only when not ``canvas`` and ``exact``."""
        return recorded(self.as_dict())

    @property
    def on_canvas(self) -> bool:
        """True when the smoothing sees the frame as part of an infinite plane (``smooth_boundary`` ``canvas``)."""
        return self.smooth_boundary == "canvas"

    def sigma(self, scale: float) -> float:
        """Smoothing sigma in output pixels at one scale."""
        return self.sigma_per_scale * scale
