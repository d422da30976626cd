"""A full disk, recognised wherever it shows and reported with the numbers that help."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

__all__ = ["disk_full", "no_space"]


def disk_full(error: BaseException) -> bool:
    """Whether ``error`` says that the disk is full.

    h5py and some libraries raise their own exceptions with the system's text
    instead of ``OSError(ENOSPC)``, so the message counts too.
    """
    return getattr(error, "errno", None) == errno.ENOSPC or "no space left on device" in str(error).lower()


def no_space(path: str | Path, needed: int | None = None) -> OSError:
    """``OSError(ENOSPC)`` naming ``path``, what it needs (if known) and what is free beside it."""
    path = Path(path)
    free = shutil.disk_usage(path.parent).free
    need = f"it needs about {needed / 1e6:.1f} MB, " if needed else ""
    return OSError(
        errno.ENOSPC,
        f"no space left on device while writing {path}: {need}{free / 1e6:.1f} MB free there; "
        "free some space (or put results/ on a bigger disk) and rerun",
    )
