"""A copy of the workflow in a scratch folder, for the benchmarks and the tests that run Snakemake."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: What a run of the workflow reads from the repository.
WORKFLOW_ITEMS = ("Snakefile", "config.yaml", "workflow", "profiles", "envs")


def copy_workflow(folder: Path, mnist_dir: Path | None) -> Path:
    """Copy the workflow into ``folder`` (made here; it must not exist yet).

    ``mnist_dir``, when given, fills ``resources/mnist/`` with its files, as hard
    links where the file system allows, else as copies.
    """
    folder.mkdir(parents=True)
    for item in WORKFLOW_ITEMS:
        source = REPO / item
        if source.is_dir():
            shutil.copytree(source, folder / item, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, folder / item)
    if mnist_dir is not None:
        (folder / "resources" / "mnist").mkdir(parents=True)
        for raw in Path(mnist_dir).iterdir():
            target = folder / "resources" / "mnist" / raw.name
            try:
                os.link(raw, target)
            except OSError:
                shutil.copy2(raw, target)
    return folder
