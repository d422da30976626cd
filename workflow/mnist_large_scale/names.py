"""The file-name grammar of MNIST Large Scale, both ways.

A published file name is the interface of the whole workflow::

    {prefix}_tr{n}_vl{n}_te{n}_outsize{H}-{W}_sctr{S}_scte{S}.h5   training file
    {prefix}_te{n}_outsize{H}-{W}_scte{S}.h5                      test-only file

where ``{S}`` is a scale tag (``2p000``) or a range of two tags (``1p000-4p000``).
A tag is the scale with three decimals and ``p`` for the point.  A tag that is the
rendering of a power ``2**(k/4)`` stands for that exact power (``1p189`` is
``2**0.25``, computed as ``sqrt(sqrt(2))``); any other tag stands for its own value.

This module is the only place that parses or formats these names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .exactscalar import quarter_octave

__all__ = [
    "InvalidName",
    "ScaleSpec",
    "FileSpec",
    "scale_tag",
    "scale_from_tag",
    "parse_name",
    "format_name",
    "check_counts",
    "PUBLISHED_TEST_SCALES",
    "published_names",
]

#: Powers 2**(k/4) whose tags stand for that power (k = -40 .. 40).  The value is
#: sqrt(sqrt(2**k)), two correctly rounded square roots of an exact power, so it is
#: the same on every machine (``2 ** (k / 4)`` goes through the C library's pow).
_QUARTER_OCTAVES = {format(quarter_octave(k), ".3f"): quarter_octave(k) for k in range(-40, 41)}

#: The scales of the 17 published test-only files, 2**(k/4) for k = -4 .. 12 (0.5 .. 8).
PUBLISHED_TEST_SCALES = tuple(quarter_octave(k) for k in range(-4, 13))

_TAG = r"(?:0|[1-9][0-9]*)p[0-9]{3}"
# The patterns below are looser than the grammar, so that a near miss (``tr0``,
# ``scte2p0``, ``outsize0-112``) gets a message naming its fault, not "no pattern".
_LOOSE_TAG = r"[0-9]+(?:p[0-9]*)?"
_SCALE = rf"{_LOOSE_TAG}(?:-{_LOOSE_TAG})?"
_COUNT = r"[0-9]+"
_SIZE = r"[0-9]+"

_TRAIN_RE = re.compile(
    rf"(?P<prefix>[a-z0-9_]+?)_tr(?P<n_train>{_COUNT})_vl(?P<n_val>{_COUNT})"
    rf"_te(?P<n_test>{_COUNT})_outsize(?P<height>{_SIZE})-(?P<width>{_SIZE})"
    rf"_sctr(?P<train_scale>{_SCALE})_scte(?P<test_scale>{_SCALE})"
)
_TEST_RE = re.compile(
    rf"(?P<prefix>[a-z0-9_]+?)_te(?P<n_test>{_COUNT})"
    rf"_outsize(?P<height>{_SIZE})-(?P<width>{_SIZE})_scte(?P<test_scale>{_SCALE})"
)

_EXPECTED = (
    "expected '<prefix>_tr<n>_vl<n>_te<n>_outsize<H>-<W>_sctr<S>_scte<S>.h5' or "
    "'<prefix>_te<n>_outsize<H>-<W>_scte<S>.h5', with <S> a scale tag such as "
    "2p000 or a range such as 1p000-4p000"
)


class InvalidName(ValueError):
    """A file name that the grammar does not accept; the message says why."""


def scale_tag(value: float) -> str:
    """Format a scale as its tag: three decimals, ``p`` for the point.

    >>> scale_tag(2 ** 0.25)
    '1p189'
    """
    return format(value, ".3f").replace(".", "p")


def scale_from_tag(tag: str) -> float:
    """The exact scale a tag stands for.

    Parameters
    ----------
    tag : str
        A tag such as ``'1p189'``.

    Returns
    -------
    float
        ``2**(k/4)`` when the tag is that power's rendering, else the tag's value.

    Raises
    ------
    InvalidName
        If the tag is malformed or stands for a scale of zero.
    """
    if not re.fullmatch(_TAG, tag):
        raise InvalidName(f"scale tag {tag!r} is malformed: expected digits, 'p', three decimals (e.g. 2p000)")
    text = tag.replace("p", ".")
    if text in _QUARTER_OCTAVES:
        return _QUARTER_OCTAVES[text]
    value = float(text)
    if value <= 0:
        raise InvalidName(f"scale tag {tag!r} is a scale of zero: a scale must be greater than 0")
    return value


@dataclass(frozen=True)
class ScaleSpec:
    """One scale, or a log-uniform range of scales ``[low, high)``.

    Attributes
    ----------
    low_tag, high_tag : str
        The tags as written in the name; equal for a single scale.
    """

    low_tag: str
    high_tag: str

    @classmethod
    def parse(cls, text: str) -> ScaleSpec:
        low, dash, high = text.partition("-")
        spec = cls(low, high or low)
        if dash and low == high:
            raise InvalidName(f"scale range {text!r} is a single scale: write {low}")
        if spec.is_range and not spec.low < spec.high:
            raise InvalidName(f"scale range {text!r} must go from a smaller to a larger scale")
        return spec

    @property
    def low(self) -> float:
        return scale_from_tag(self.low_tag)

    @property
    def high(self) -> float:
        return scale_from_tag(self.high_tag)

    @property
    def is_range(self) -> bool:
        return self.low_tag != self.high_tag

    @property
    def tag(self) -> str:
        return f"{self.low_tag}-{self.high_tag}" if self.is_range else self.low_tag


@dataclass(frozen=True)
class FileSpec:
    """Everything a file name says about the file it names.

    Attributes
    ----------
    prefix : str
        The base data set's file-name prefix, e.g. ``'mnist_large_scale'``.
    n_train, n_val : int or None
        Training and validation counts; None for a test-only file.
    n_test : int
        Test count.
    out_shape : tuple of int
        Output image size ``(H, W)`` in pixels.
    train_scale : ScaleSpec or None
        Scale(s) of the training and validation images; None for a test-only file.
    test_scale : ScaleSpec
        Scale(s) of the test images.
    """

    prefix: str
    n_train: int | None
    n_val: int | None
    n_test: int
    out_shape: tuple[int, int]
    train_scale: ScaleSpec | None
    test_scale: ScaleSpec

    @property
    def test_only(self) -> bool:
        return self.train_scale is None

    @property
    def name(self) -> str:
        return format_name(self)

    def split_scale(self, split: str) -> ScaleSpec:
        """The scale spec of one split: 'train', 'val' or 'test'.

        A test-only file's single train and val samples are at the test scale.
        """
        if split == "test" or self.test_only:
            return self.test_scale
        return self.train_scale

    def split_count(self, split: str) -> int:
        """Images in one split; a test-only file holds one train and one val sample."""
        if split == "test":
            return self.n_test
        if self.test_only:
            return 1
        return self.n_train if split == "train" else self.n_val


def parse_name(name: str, prefixes: tuple[str, ...] | None = None) -> FileSpec:
    """Parse a file name (with or without directory and ``.h5``) into a FileSpec.

    Parameters
    ----------
    name : str
        E.g. ``'mnist_large_scale_te10000_outsize112-112_scte2p000.h5'``.
    prefixes : tuple of str, optional
        The prefixes that name a known base data set; any prefix when None.

    Raises
    ------
    InvalidName
        With a message that says which part of the name is wrong.
    """
    stem = name.rsplit("/", 1)[-1]
    stem = stem[:-3] if stem.endswith(".h5") else stem
    match = _TRAIN_RE.fullmatch(stem) or _TEST_RE.fullmatch(stem)
    if match is None:
        # A minus sign cannot fit the grammar at all; say so rather than "no pattern".
        negative = re.search(rf"_sc(?:tr|te)(?:{_LOOSE_TAG}-)?-({_LOOSE_TAG})", stem)
        if negative:
            raise InvalidName(
                f"file name {stem + '.h5'!r}: scale '-{negative.group(1)}' is negative: a scale must be greater than 0"
            )
        raise InvalidName(f"file name {stem + '.h5'!r} fits no pattern: {_EXPECTED}")
    parts = match.groupdict()
    if prefixes is not None and parts["prefix"] not in prefixes:
        raise InvalidName(
            f"file name {stem + '.h5'!r} has prefix {parts['prefix']!r}; known prefixes: {', '.join(prefixes)}"
        )
    try:
        return _spec_from_parts(parts)
    except InvalidName as error:
        raise InvalidName(f"file name {stem + '.h5'!r}: {error}") from None


def _spec_from_parts(parts: dict) -> FileSpec:
    train_text = parts.get("train_scale")
    spec = FileSpec(
        prefix=parts["prefix"],
        n_train=_whole(parts, "n_train", "training count (tr)") if train_text else None,
        n_val=_whole(parts, "n_val", "validation count (vl)") if train_text else None,
        n_test=_whole(parts, "n_test", "test count (te)"),
        out_shape=(
            _whole(parts, "height", "output height (outsize)"),
            _whole(parts, "width", "output width (outsize)"),
        ),
        train_scale=ScaleSpec.parse(train_text) if train_text else None,
        test_scale=ScaleSpec.parse(parts["test_scale"]),
    )
    for scale in filter(None, (spec.train_scale, spec.test_scale)):
        scale.low, scale.high  # noqa: B018 -- evaluating raises for a zero scale
    return spec


def _whole(parts: dict, key: str, what: str) -> int:
    text = parts[key]
    if text != str(int(text)):
        raise InvalidName(f"{what} {text!r} has a leading zero: write {int(text)}")
    if int(text) == 0:
        raise InvalidName(f"{what} is 0: it must be at least 1")
    return int(text)


def check_counts(spec: FileSpec, available: dict[str, int]) -> None:
    """Raise InvalidName when a split asks for more images than the base data has.

    Parameters
    ----------
    spec : FileSpec
    available : dict
        Images available per split, e.g. ``{'train': 50000, 'val': 10000, 'test': 10000}``.
    """
    for split in ("train", "val", "test"):
        wanted = spec.split_count(split)
        if wanted > available[split]:
            raise InvalidName(
                f"{spec.name}: {wanted} {split} images asked for, but the base data set has only {available[split]}"
            )


def format_name(spec: FileSpec) -> str:
    """The file name (with ``.h5``) of a FileSpec; the inverse of parse_name."""
    height, width = spec.out_shape
    size = f"outsize{height}-{width}"
    if spec.test_only:
        return f"{spec.prefix}_te{spec.n_test}_{size}_scte{spec.test_scale.tag}.h5"
    return (
        f"{spec.prefix}_tr{spec.n_train}_vl{spec.n_val}_te{spec.n_test}_{size}"
        f"_sctr{spec.train_scale.tag}_scte{spec.test_scale.tag}.h5"
    )


def published_names(prefix: str = "mnist_large_scale") -> list[str]:
    """The 21 names of the published set, with ``prefix`` for the base data set.

    Three training files at s = 1, 2, 4 and one with per-sample scales in
    [1, 4) (50,000 / 10,000 / 10,000 images), then the 17 test-only files of
    10,000 images at ``PUBLISHED_TEST_SCALES``; all 112 x 112.
    """
    full = {"n_train": 50000, "n_val": 10000, "n_test": 10000, "out_shape": (112, 112)}
    training = [ScaleSpec(tag, tag) for tag in ("1p000", "2p000", "4p000")] + [ScaleSpec("1p000", "4p000")]
    names = [format_name(FileSpec(prefix, train_scale=scale, test_scale=scale, **full)) for scale in training]
    for scale in PUBLISHED_TEST_SCALES:
        tag = scale_tag(scale)
        names.append(format_name(FileSpec(prefix, None, None, 10000, (112, 112), None, ScaleSpec(tag, tag))))
    return names
