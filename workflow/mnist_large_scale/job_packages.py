"""Imported first by every rule's script: a job whose Python lacks the rules' packages stops with one line.

Reading the workflow needs Snakemake alone (``common.smk`` imports only the
standard-library parts of the package), so a stock Snakemake plans and starts
jobs that need numpy, h5py and the rest.  Where the Python that runs a job lacks
them (no ``.venv``, no ``--sdm conda``), the job stops here with one line that
names what is missing and the two ways to get it, instead of a traceback from
deep inside an import.
"""

from __future__ import annotations

import importlib.util
import sys

__all__ = ["RUN_TIME_PACKAGES", "missing_packages"]

#: The rules' run-time packages, import name to distribution name: the package's dependencies in
#: pyproject.toml (tests/test_stock_snakemake.py checks that they are the same).
RUN_TIME_PACKAGES = {
    "numpy": "numpy",
    "scipy": "scipy",
    "skimage": "scikit-image",
    "h5py": "h5py",
    "yaml": "pyyaml",
    "pooch": "pooch",
    "tqdm": "tqdm",
    "matplotlib": "matplotlib",
    "threadpoolctl": "threadpoolctl",
    "jsonschema": "jsonschema",
}


def missing_packages() -> list[str]:
    """The distributions of ``RUN_TIME_PACKAGES`` that this Python cannot import."""
    return [dist for module, dist in RUN_TIME_PACKAGES.items() if importlib.util.find_spec(module) is None]


def missing_packages_message(missing: list[str], python: str) -> str:
    """One line: what ``python`` lacks, and the two ways to run the jobs with it."""
    return (
        f"this job's Python ({python}) lacks {', '.join(missing)}, which the rules need: run `make` and use "
        ".venv/bin/snakemake, or let Snakemake make the rules' environments with `snakemake --sdm conda`"
    )


if _missing := missing_packages():
    raise SystemExit(missing_packages_message(_missing, sys.executable))
