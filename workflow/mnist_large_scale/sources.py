"""Where the raw files of a base data set come from, and how they are verified.

A base data set (MNIST, or another one in MNIST's format) is one config entry:
its file-name prefix, its four IDX files with pinned sha256 sums, its sources,
and how its splits map onto the files.  A file is accepted only when the
sha256 of its uncompressed bytes is the pinned one; ``fetch.py`` fetches it.

A file whose uncompressed sha256 is not known (no copy could be hashed) may be
pinned by the sha256 of the .gz that the mirrors serve (``gz_sha256``) and its
uncompressed size: only a .gz with that sha256 is accepted, and the sha256 of
the bytes it inflates to is recorded beside the file (``<file>.sha256``) and
checked from then on as a pinned one is.

This module needs the standard library alone: the workflow reads it while
Snakemake parses the rules.
"""

from __future__ import annotations

import hashlib
import os
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "RawFile",
    "Split",
    "BaseData",
    "FetchError",
    "sha256_of",
    "recorded_sha256_path",
    "sha256_record_line",
    "expected_sha256",
    "raw_file_problem",
    "verify_raw_files",
    "cache_path",
    "split_overlap_problem",
    "damaged_raw_message",
    "mirror_url_problem",
    "npm_spec_problem",
]

#: Hosts whose mirrors may be plain http: this machine only.
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
#: A registry package at one exact version: ``name@1.2.6`` or ``@scope/name@1.2.6`` (semver,
#: with an optional pre-release or build tag). The config schema holds the same pattern.
NPM_SPEC = re.compile(
    r"(@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]*@(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?"
)


@dataclass(frozen=True)
class RawFile:
    """One raw IDX file: its name, size and sha256 uncompressed, md5 of its .gz.

    ``sha256`` is None for a file pinned by its .gz alone: ``gz_sha256``, the
    sha256 of the .gz the mirrors serve, is then its pin.
    """

    name: str
    size: int
    sha256: str | None = None
    gz_md5: str | None = None
    gz_sha256: str | None = None

    def __post_init__(self):
        if not (self.sha256 or self.gz_sha256):
            raise ValueError(f"raw file {self.name}: neither sha256 nor gz_sha256 is pinned")

    @property
    def pin(self) -> str:
        """What identifies the file's bytes: its sha256, or ``'gz-sha256:<hex>'`` when only its .gz is pinned."""
        return self.sha256 or f"gz-sha256:{self.gz_sha256}"


@dataclass(frozen=True)
class Split:
    """A split as a range ``[start, stop)`` of one images file and its labels file."""

    images: str
    labels: str
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start


def split_overlap_problem(key: str, splits: dict[str, Split]) -> str | None:
    """Why two splits of a base share images (leakage: one image in training and in testing); None when none do.

    Two splits overlap when they take ranges that meet from the same images
    file or from the same labels file.
    """
    names = sorted(splits)
    for index, first in enumerate(names):
        for second in names[index + 1 :]:
            a, b = splits[first], splits[second]
            low, high = max(a.start, b.start), min(a.stop, b.stop)
            shared = [name for name in dict.fromkeys((a.images, a.labels)) if name in (b.images, b.labels)]
            if shared and low < high:
                return (
                    f"config: base_data.{key}.splits.{first} [{a.start}, {a.stop}) and splits.{second} [{b.start}, {b.stop}) "
                    f"overlap in {shared[0]} ([{low}, {high}), {high - low} images): an image may be in one split only"
                )
    return None


@dataclass(frozen=True)
class BaseData:
    """A base data set as the config describes it (``base_data: {key: ...}``)."""

    key: str
    prefix: str
    files: dict[str, RawFile]
    splits: dict[str, Split]
    local_dir: str = ""
    installed_dirs: tuple[str, ...] = ()
    mirrors: tuple[str, ...] = ()
    npm_package: str = ""
    npm_data_dir: str = "package/data"
    download_timeout: float = 60.0
    download_time_limit: float = 600.0
    citation: str = ""
    license: str = ""
    classes: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, key: str, entry: dict) -> BaseData:
        return cls(
            key=key,
            prefix=entry["prefix"],
            files={role: RawFile(**spec) for role, spec in entry["files"].items()},
            splits={name: Split(**spec) for name, spec in entry["splits"].items()},
            local_dir=entry.get("local_dir") or "",
            installed_dirs=tuple(entry.get("installed_dirs") or ()),
            mirrors=tuple(entry.get("mirrors") or ()),
            npm_package=entry.get("npm_package") or "",
            npm_data_dir=entry.get("npm_data_dir", "package/data"),
            download_timeout=entry.get("download_timeout", 60.0),
            download_time_limit=entry.get("download_time_limit", 600.0),
            citation=entry.get("citation", ""),
            license=entry.get("license", ""),
            classes=tuple(entry.get("classes") or ()),
        )

    def available(self) -> dict[str, int]:
        """Images per split, e.g. ``{'train': 50000, 'val': 10000, 'test': 10000}``."""
        return {name: split.size for name, split in self.splits.items()}

    def file_by_name(self, name: str) -> RawFile:
        return next(f for f in self.files.values() if f.name == name)

    def class_name(self, label: int) -> str:
        """The name of a label (``'Dress'``), or the label itself when the config names no classes."""
        return self.classes[label] if 0 <= label < len(self.classes) else str(label)


class FetchError(RuntimeError):
    """No source delivered a file with the pinned checksum; the message lists each source's answer."""


def sha256_of(path: str | os.PathLike, block: int = 1 << 23) -> str:
    """Hex sha256 of a file, read in blocks into one reused buffer."""
    digest = hashlib.sha256()
    buffer = memoryview(bytearray(block))
    with open(path, "rb", buffering=0) as handle:
        while size := handle.readinto(buffer):
            digest.update(buffer[:size])
    return digest.hexdigest()


def recorded_sha256_path(path: str | os.PathLike) -> Path:
    """Where the sha256 of a raw file pinned by its .gz alone is recorded when it is fetched: ``<file>.sha256``."""
    return Path(f"{os.fspath(path)}.sha256")


def sha256_record_line(raw: RawFile, digest: str) -> str:
    """The record of a file pinned by its .gz: the sha256 it inflated to, its name, and the pin it was checked by."""
    return f"{digest}  {raw.name}  {raw.pin}\n"


def expected_sha256(raw: RawFile, path: str | os.PathLike) -> str | None:
    """The sha256 the file at ``path`` must have: the pinned one, or the one recorded when a file
    pinned by its .gz was fetched under the same pin; None when there is neither."""
    if raw.sha256:
        return raw.sha256
    try:
        recorded = recorded_sha256_path(path).read_text().split()
    except OSError:
        return None
    if len(recorded) != 3 or not re.fullmatch(r"[0-9a-f]{64}", recorded[0]) or recorded[1:] != [raw.name, raw.pin]:
        return None  # damaged, or recorded under another pin: the file is fetched again
    return recorded[0]


def raw_file_problem(raw: RawFile, path: str | os.PathLike) -> str | None:
    """What is wrong with the file at ``path`` as a copy of ``raw``; None when it matches its pins."""
    size = os.path.getsize(path)
    if size != raw.size:
        return f"{size} bytes, expected {raw.size}"
    expected = expected_sha256(raw, path)
    if expected is None:
        return f"pinned by its .gz, but no sha256 was recorded for that pin when it was fetched ({recorded_sha256_path(path)})"
    digest = sha256_of(path)
    if digest != expected:
        return f"sha256 {digest}, expected {expected}"
    return None


def cache_path(base: BaseData, raw: RawFile) -> Path:
    """Where the workflow keeps ``raw``, relative to its working folder: ``resources/<base key>/<name>``."""
    return Path("resources") / base.key / raw.name


def damaged_raw_message(base: BaseData, raw: RawFile, path: str | os.PathLike, problem: str) -> str:
    """What to say of a raw file that does not match its pins, and how to get the pinned one.

    A mismatch is a damaged file or a wrong pin, and only the sources can
    tell which; so the advice never deletes the file (``--force`` would, before
    the fetch runs): in the workflow's cache it is moved aside and fetched
    again, so that a file no source can replace stays; elsewhere (a
    ``--raw-dir``), where no rule writes, it is replaced by a copy of the cache's.
    """
    head = f"raw file {path} is damaged, or its pin (base_data.{base.key}.files) is wrong ({problem})"
    cached = cache_path(base, raw)
    if os.path.abspath(path) == os.path.abspath(cached):
        return (
            f"{head}: move it aside and fetch it again, `mv {cached} {cached}.mismatch && snakemake --cores 1 {cached}`, "
            f"then rerun; if no source delivers the pinned bytes either, check the pin: {cached}.mismatch may be the right file"
        )
    pin = f"sha256 {raw.sha256}" if raw.sha256 else f"a .gz of sha256 {raw.gz_sha256}"
    return f"{head}: replace it with the pinned file ({raw.size} bytes, {pin}), e.g. a copy of {cached}, which `snakemake --cores 1 {cached}` fetches"


def verify_raw_files(base: BaseData, raw_paths: dict[str, str]) -> None:
    """Raise ValueError naming the first raw file (by path) that does not match its pins,
    and how to get the pinned one (``damaged_raw_message``)."""
    for name, path in sorted(raw_paths.items()):
        raw = base.file_by_name(name)
        problem = raw_file_problem(raw, path)
        if problem:
            raise ValueError(damaged_raw_message(base, raw, path, problem))


def mirror_url_problem(url: str) -> str | None:
    """Why ``url`` may not be a mirror (or a redirect's target); None when it may."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and parts.hostname in LOCAL_HOSTS:
        return None
    return f"{url!r} is not an https:// URL (plain http only on this machine: {', '.join(sorted(LOCAL_HOSTS))})"


def npm_spec_problem(spec: str) -> str | None:
    """Why ``spec`` may not be the npm source; None when it is a registry package at an exact version."""
    if NPM_SPEC.fullmatch(spec):
        return None
    return f"npm package {spec!r} is not a registry package at an exact version (name@1.2.3)"
