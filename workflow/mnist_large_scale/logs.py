"""The log of a workflow script: one set-up for every ``workflow/scripts/*.py``.

Each script starts with ``logs.setup(snakemake)``. From then on the root logger
writes to the job's ``log:`` file, one time-stamped line per record, and an
exception that ends the script is written there with its traceback before
Python prints it on stderr as usual, so that a failed job's log (which
Snakemake prints at the end of the run) says what went wrong and where.
"""

from __future__ import annotations

import logging
import os
import sys
from types import TracebackType

__all__ = ["LOG_FORMAT", "setup", "log_to_file"]

LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"


def log_to_file(path: str | os.PathLike, job: str) -> logging.Logger:
    """Send every log record, and the traceback of an uncaught exception, to ``path``.

    Parameters
    ----------
    path : str or os.PathLike
        The log file; appended to, created when missing.
    job : str
        What runs, for the line that introduces a traceback (``<job> failed``).

    Returns
    -------
    logging.Logger
        The root logger, now writing to ``path`` at level INFO.
    """
    logging.basicConfig(filename=os.fspath(path), level=logging.INFO, format=LOG_FORMAT, force=True)
    previous_hook = sys.excepthook

    def log_then_report(kind: type[BaseException], error: BaseException, traceback: TracebackType | None) -> None:
        logging.getLogger().error("%s failed", job, exc_info=(kind, error, traceback))
        previous_hook(kind, error, traceback)

    sys.excepthook = log_then_report
    return logging.getLogger()


def setup(snakemake) -> logging.Logger:
    """The set-up of a Snakemake script: log to the job's first ``log:`` file.

    Parameters
    ----------
    snakemake : snakemake.script.Snakemake
        The object Snakemake gives a script; its ``log[0]`` is the file and its
        ``rule`` names the job in the line before a traceback.

    Returns
    -------
    logging.Logger
        The root logger.
    """
    return log_to_file(snakemake.log[0], f"rule {snakemake.rule}")
