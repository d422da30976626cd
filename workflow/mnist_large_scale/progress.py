"""Progress of a long job as log lines: a tqdm bar whose every refresh is one line.

tqdm redraws its bar in place with carriage returns, which a log file shows as
one endless line (or, in ``less``, as ``^M`` soup).  ``progress_bar`` gives
each refresh a line of its own through ``logging``, with the time stamp of the
log's other lines, the images per second and the time left::

    2026-06-05 12:00:10,000 INFO build:  40% |########            | 28000/70000 img, 02:00 elapsed, 03:00 left, 233.33img/s
"""

from __future__ import annotations

import logging

from tqdm import tqdm

__all__ = ["LogLines", "progress_bar", "BAR_FORMAT"]

BAR_FORMAT = "{desc}: {percentage:3.0f}% |{bar:20}| {n_fmt}/{total_fmt} img, {elapsed} elapsed, {remaining} left, {rate_fmt}"


class LogLines:
    """A text stream for tqdm that logs each refresh of the bar as one line.

    Parameters
    ----------
    logger : logging.Logger
        Each non-empty refresh goes to ``logger.info``; a refresh that differs
        from the previous one only after its last ``", "`` (the rate: tqdm
        redraws the final state on close, with the mean rate) is dropped.
    """

    def __init__(self, logger: logging.Logger):
        self.logger = logger
        self.last = None

    def write(self, text: str) -> int:
        for part in text.replace("\n", "\r").split("\r"):
            line = part.strip()
            key = line.rsplit(", ", 1)[0]
            if line and key != self.last:
                self.logger.info("%s", line)
                self.last = key
        return len(text)

    def flush(self) -> None:
        for handler in self.logger.handlers or logging.getLogger().handlers:
            handler.flush()


def progress_bar(total: int, desc: str, logger: logging.Logger, mininterval: float = 10.0) -> tqdm:
    """A tqdm bar over ``total`` images that logs a line at most every ``mininterval`` seconds.

    Use as a context manager and call ``update(n)`` after each n images; the
    first line (0 %) and the last (100 %, with the mean rate) are always logged.
    """
    return tqdm(total=total, desc=desc, unit="img", file=LogLines(logger), mininterval=mininterval, ascii=True, bar_format=BAR_FORMAT)
