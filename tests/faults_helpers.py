"""Fault injection for tests/test_faults.py: kills, damaged bytes, bad mirrors, full disks.

Nothing here knows what the workflow should produce; the tests decide that.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from conftest import SNAKEMAKE

#: What phase of the build each rule is.
PHASE_OF_RULE = {
    "fetch_raw": "fetch",
    "build_file": "build",
    "validate_file": "validation",
    "validation_summary": "validation",
    "sha256sums": "checksum",
    "reference_check": "checksum",
    "montage": "figures",
    "scale_ladder": "figures",
    "size_vs_scale": "figures",
    "scale_histogram": "figures",
}

#: Names that are temporary by design: the writers' ``.<name>.<host>.<pid>.<token>.part``, fetch's
#: ``.<name>.XXXXXXXX`` files and ``.fetch-*`` folders.
TEMP_NAME = re.compile(r"^\.(fetch-.*|.+\.part|.+\.[A-Za-z0-9_]{8})$")

_RULE_LINE = re.compile(r"^(?:local)?rule (\w+):$")
_JOBID_LINE = re.compile(r"^\s+jobid: (\d+)$")
_FINISHED_LINE = re.compile(r"Finished jobid: (\d+)")
_ERROR_LINE = re.compile(r"^Error in rule (\w+):$")


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class Build:
    """``snakemake`` running in its own process group, its output parsed as it comes.

    The reader thread keeps the jobs that have started and not finished
    (``running``: jobid -> rule), so a test can wait for a rule to start and
    know what was running when it killed the build.
    """

    def __init__(self, work: Path, *args: str):
        self.work = work
        self.args = args
        self.lines: list[str] = []
        self.running: dict[int, str] = {}
        self.started: list[str] = []
        self._changed = threading.Condition()
        self.process = subprocess.Popen(
            [SNAKEMAKE, *args],
            cwd=work,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # a group of its own: killpg reaches every job it starts
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        pending = None
        for line in self.process.stdout:
            line = line.rstrip("\n")
            with self._changed:
                self.lines.append(line)
                if match := _RULE_LINE.match(line):
                    pending = match.group(1)
                elif (match := _JOBID_LINE.match(line)) and pending:
                    if pending != "all":
                        self.running[int(match.group(1))] = pending
                        self.started.append(pending)
                    pending = None
                elif match := _FINISHED_LINE.search(line):
                    self.running.pop(int(match.group(1)), None)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_rule(self, rule: str, timeout: float = 120) -> bool:
        """Block until a job of ``rule`` is running; False when the build ended first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while rule not in self.running.values():
                if self.process.poll() is not None and not self._reader.is_alive():
                    return False
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {rule} job within {timeout} s:\n{self.output[-3000:]}")
                self._changed.wait(min(left, 0.05))
        return True

    def wait_for_file(self, pattern: str, timeout: float = 120) -> bool:
        """Poll until a file matching ``pattern`` (a glob under the work folder) exists; False when the build ended first."""
        deadline = time.monotonic() + timeout
        while not any(self.work.glob(pattern)):
            if self.process.poll() is not None:
                return False
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {pattern} within {timeout} s:\n{self.output[-3000:]}")
            time.sleep(0.01)
        return True

    def kill(self) -> dict:
        """SIGKILL the whole process group; return what was running at that moment."""
        with self._changed:
            running = sorted(set(self.running.values()))
        evidence = temp_files(self.work)
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self._reader.join(timeout=10)
        return {"rules": running, "phases": sorted({PHASE_OF_RULE[r] for r in running}), "temp_files": evidence}

    def wait(self, timeout: float = 600) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code


def processes_in(work: Path, settle: float = 5.0) -> list[str]:
    """Live processes whose working directory is inside ``work`` (survivors of a kill).

    A killed process takes a moment to exit; zombies (dead, not yet reaped) do not count.
    """
    root = str(work.resolve())
    deadline = time.monotonic() + settle
    while True:
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            with contextlib.suppress(OSError):
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
                if state not in "ZX" and os.readlink(f"/proc/{pid}/cwd").startswith(root):
                    found.append(f"{pid} ({state}): {Path(f'/proc/{pid}/cmdline').read_text().replace(chr(0), ' ')[:200]}")
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def temp_files(work: Path) -> list[str]:
    """Temporary names under results/ and resources/ (relative paths)."""
    found = []
    for top in ("results", "resources"):
        for path in (work / top).rglob(".*") if (work / top).exists() else ():
            if TEMP_NAME.match(path.name):
                found.append(str(path.relative_to(work)))
    return sorted(found)


def final_files(work: Path) -> list[Path]:
    """Every file under a final (non-temporary) name in results/ and resources/."""
    found = []
    for top in ("results", "resources"):
        for path in sorted((work / top).rglob("*")) if (work / top).exists() else ():
            if path.is_file() and not any(TEMP_NAME.match(part) for part in path.relative_to(work).parts):
                found.append(path)
    return found


def wrong_final_files(work: Path, reference: Path, pinned: dict[str, str]) -> list[str]:
    """Files under a final name that are not exactly what an uninterrupted build makes.

    results/ files must equal the reference build's bytes (reports: equal JSON);
    raw files in resources/ must have their pinned sha256.
    """
    wrong = []
    for path in final_files(work):
        relative = path.relative_to(work)
        if relative.parts[0] == "resources":
            if sha256_file(path) != pinned.get(path.name):
                wrong.append(f"{relative}: sha256 is not the pinned one ({path.stat().st_size} bytes)")
            continue
        twin = reference / relative
        if not twin.is_file():
            wrong.append(f"{relative}: not made by the uninterrupted build")
        elif path.suffix == ".json":
            try:
                if json.loads(path.read_text()) != json.loads(twin.read_text()):
                    wrong.append(f"{relative}: report differs from the uninterrupted build's")
            except ValueError as error:
                wrong.append(f"{relative}: not valid JSON ({error})")
        elif sha256_file(path) != sha256_file(twin):
            wrong.append(f"{relative}: bytes differ from the uninterrupted build's ({path.stat().st_size} vs {twin.stat().st_size})")
    return wrong


def damage(path: Path, offset: int, count: int = 8, mode: str = "flip") -> None:
    """Flip ``count`` bytes at ``offset`` (or truncate there) in a fresh copy, then replace ``path``.

    Replacing (not writing in place) keeps hard-linked twins of the file, such
    as the checkout's resources/mnist/, intact.
    """
    data = bytearray(path.read_bytes())
    if mode == "truncate":
        data = data[:offset]
    else:
        for k in range(offset, offset + count):
            data[k] ^= 0xFF
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".damage-")
    with os.fdopen(fd, "wb") as handle:
        handle.write(bytes(data))
    os.replace(tmp, path)


class _Handler(http.server.SimpleHTTPRequestHandler):
    delays: dict[str, float] = {}

    def do_GET(self):  # noqa: N802 (http.server's name)
        for prefix, delay in self.delays.items():
            if self.path.startswith(prefix):
                time.sleep(delay)
        super().do_GET()

    def log_message(self, *args):  # keep pytest's output clean
        pass


@contextlib.contextmanager
def http_server(root: Path, delays: dict[str, float] | None = None) -> Iterator[str]:
    """Serve ``root`` on 127.0.0.1 (a free port) in a thread; yield its base URL.

    ``delays`` maps a URL path prefix to seconds to wait before answering (a
    mirror that hangs).
    """
    handler = type("Handler", (_Handler,), {"delays": dict(delays or {})})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def small_disk(mount_point: Path, size_mb: int) -> Iterator[None]:
    """A tmpfs of ``size_mb`` MB mounted at ``mount_point``, or a loop-mounted ext4 image.

    Raises OSError with the reason when neither can be mounted (tests skip on it).
    """
    mount_point.mkdir(parents=True, exist_ok=True)
    tried = []
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(mount_point)], capture_output=True, text=True)
    image = None
    if done.returncode != 0:
        tried.append(f"tmpfs: {done.stderr.strip() or done.returncode}")
        image = mount_point.with_name(mount_point.name + ".img")
        with open(image, "wb") as handle:
            handle.truncate(size_mb << 20)
        steps = [["mkfs.ext4", "-q", "-F", str(image)], ["mount", "-o", "loop", str(image), str(mount_point)]]
        for step in steps:
            if shutil.which(step[0]) is None:
                tried.append(f"{step[0]}: not installed")
                break
            done = subprocess.run(step, capture_output=True, text=True)
            if done.returncode != 0:
                tried.append(f"{' '.join(step[:2])}: {done.stderr.strip() or done.returncode}")
                break
        else:
            tried = []
        if tried:
            image.unlink(missing_ok=True)
            raise OSError("cannot mount a small file system: " + "; ".join(tried))
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)
        if image is not None:
            image.unlink(missing_ok=True)


def fill(folder: Path, leave_mb: float) -> Path:
    """Write a filler file so that about ``leave_mb`` MB stay free in ``folder``'s file system."""
    filler = folder / "filler"
    free = shutil.disk_usage(folder).free
    size = max(0, free - int(leave_mb * (1 << 20)))
    with open(filler, "wb") as handle:
        block = b"\0" * (1 << 20)
        while size > 0:
            size -= handle.write(block[: min(size, len(block))])
    return filler
