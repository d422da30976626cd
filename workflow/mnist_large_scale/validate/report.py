"""A validation report's checks: recording them, and the report as strict JSON and as a verdict."""

from __future__ import annotations

import json
import math

import numpy as np

__all__ = ["ValidationFailed", "add_check", "add_check_every", "json_safe", "raise_on_failure"]


class ValidationFailed(RuntimeError):
    """A file failed one or more checks; the message lists them."""


def add_check(report: dict, name: str, ok: bool, **details) -> None:
    """Record one check of ``report``: its name, whether it passed and the numbers behind it."""
    report["checks"].append({"check": name, "ok": bool(ok), **details})


def add_check_every(report: dict, name: str, off: np.ndarray, tolerance: float, each: np.ndarray, worst_key: str, measured: np.ndarray) -> None:
    """One check that ``off`` (NaN counts as failing) is within ``tolerance`` for every digit in ``each``.

    Records the worst digit's index and its ``measured`` value under ``worst_key``,
    how many digits are outside, and how many were checked.
    """
    off = np.where(each, np.nan_to_num(off, nan=np.inf), -np.inf)
    worst = int(np.argmax(off))
    add_check(
        report,
        name,
        bool(np.all(off[each] <= tolerance)),
        worst_index=worst,
        **{worst_key: float(measured[worst])},
        outside=int(np.count_nonzero(off[each] > tolerance)),
        digits=int(each.sum()),
    )


def json_safe(value):
    """The report with NaN and infinities as None, so that it is strict JSON."""
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def raise_on_failure(report: dict) -> None:
    """Raise ValidationFailed naming every failed check of a report, and each difference it found."""
    failed = [check for check in report["checks"] if not check["ok"]]
    if failed:
        lines = []
        for check in failed:
            details = {key: value for key, value in check.items() if key not in ("check", "ok", "differences")}
            lines.append(f"  - {check['check']}" + (f": {json.dumps(details)}" if details else ""))
            lines += [f"      {difference}" for difference in check.get("differences", [])]
        raise ValidationFailed(f"{report['file']}: {len(failed)} check(s) failed:\n" + "\n".join(lines))
