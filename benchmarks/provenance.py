"""What every benchmark record names besides its numbers: the machine, the date and the command.

Each ``benchmarks/*.json`` record carries these three keys, so that the docs can quote a number
together with where, when and how it was measured. The machine is described by what changes
speed (processor, cores, memory, Python and numpy), never by its name.
"""

from __future__ import annotations

import os
import platform
import shlex
import sys
import time
from pathlib import Path


def processor_model() -> str:
    """The processor's model name from /proc/cpuinfo where there is one, else the architecture."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine() -> dict:
    """The machine's processor, architecture, cores, memory (GiB), Python and numpy versions."""
    import numpy

    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 0
    return {
        "cpu": processor_model(),
        "architecture": platform.machine(),
        "cores": os.cpu_count(),
        "memory_gb": round(memory / 2**30, 1),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
    }


def provenance(module: str) -> dict:
    """The ``machine``, ``date`` (UTC, ISO 8601) and ``command`` of a record made by ``python -m module``."""
    return {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": shlex.join(["python", "-m", module, *sys.argv[1:]]),
    }
