"""Files written under a temporary name of their writer's own and renamed when complete.

Every writer takes a name nobody else uses, ``.<name>.<host>.<pid>.<token>.part``
beside the final ``<name>``, so that two writers of one file (a build orphaned
by a killed Snakemake and its rerun) never write into, delete or rename each
other's bytes: each renames only the file it wrote, in one atomic step, and the
final name holds, at every moment, nothing or one complete file.

Before renaming, the writer checks that the temporary name still holds the file
it created (same device and inode, one link): whatever else happened there, what
is renamed is its own, complete file.  A temporary file whose writer is dead (a
process of this host that no longer exists) is stale: the next writer of the same
name removes it, so that it neither lingers nor takes the space the rewrite
needs.  Temporaries of writers on other hosts (a shared file system) are left
alone; their own host's next writer removes them.

Standard library only: the workflow reads this while it loads.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

from .disk import disk_full, no_space

__all__ = ["process_alive", "host_name", "temporary_path", "parse_temporary", "stale_temporaries", "remove_stale_temporaries", "atomic_path", "write_text_atomically"]

_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<host>[^./]+)\.(?P<pid>\d+)\.(?P<token>[0-9a-f]{8})\.part$")


def host_name() -> str:
    """This host's name as a temporary name holds it (no dots, so that the name parses back)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname().split(".")[0]) or "host"


def temporary_path(path: str | os.PathLike, pid: int | None = None) -> Path:
    """A fresh temporary name beside ``path`` for the writer ``pid`` (default: this process)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{host_name()}.{os.getpid() if pid is None else pid}.{secrets.token_hex(4)}.part")


def parse_temporary(path: str | os.PathLike) -> tuple[str, str, int] | None:
    """``(final name, host, pid)`` of a temporary name, or None for any other name."""
    match = _TEMPORARY.match(Path(path).name)
    return (match["name"], match["host"], int(match["pid"])) if match else None


def process_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """The temporary files beside ``path`` whose writers, processes of this host, are dead."""
    path = Path(path)
    stale = []
    for candidate in path.parent.glob(f".{_glob_escape(path.name)}.*.part"):
        parsed = parse_temporary(candidate)
        if parsed and parsed[0] == path.name and parsed[1] == host_name() and not process_alive(parsed[2]):
            stale.append(candidate)
    return sorted(stale)


def _glob_escape(name: str) -> str:
    """``name`` with the characters glob treats specially taken literally."""
    return re.sub(r"([*?\[])", r"[\1]", name)


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the stale temporary files of ``path`` (see ``stale_temporaries``); return them."""
    removed = []
    for stale in stale_temporaries(path):
        with contextlib.suppress(FileNotFoundError):  # another writer removed it first
            stale.unlink()
            removed.append(stale)
    return removed


def _identity(stat: os.stat_result) -> tuple[int, int]:
    return stat.st_dev, stat.st_ino


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a new temporary name beside ``path``; rename it to ``path`` only on success.

    The temporary file is created empty (exclusively) before the block runs;
    the block may rewrite it in place (open it for writing, truncate it), not
    replace it.  Whatever fails inside the block, nothing is left under the
    temporary name and ``path`` is untouched.  A full disk raises
    OSError(ENOSPC) naming ``path``; a temporary file replaced or removed by
    someone else raises RuntimeError, and nothing is renamed.
    """
    path = Path(path)
    remove_stale_temporaries(path)
    tmp = temporary_path(path)
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    created = _identity(os.stat(tmp))
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
            now = os.fstat(handle.fileno())
            if _identity(now) != created or now.st_nlink != 1:
                raise RuntimeError(f"{tmp} is no longer the file this process wrote for {path}: nothing renamed")
            os.replace(tmp, path)
    except OSError as error:
        if disk_full(error):  # h5py's message names the temporary file and buries the cause
            raise no_space(path) from error
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            if _identity(os.stat(tmp)) == created:  # ours, not renamed: a failure inside the block
                tmp.unlink()


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through ``atomic_path``: a kill leaves no half-written file."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
