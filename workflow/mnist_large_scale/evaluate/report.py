"""Writing an evaluation: a TSV of the rows, a JSON of everything, a figure; and a published count table beside it.

The TSV has one line per test scale (``TABLE_COLUMNS``); the JSON holds the
rows with their confusion matrices, the summary measures and, when a table of
published counts was given, the comparison with it; the figure draws accuracy
against log2 scale with the 95 % intervals and the training scale marked.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

from ..names import scale_tag
from ..writer import atomic_path, write_text_atomically
from .stats import two_proportion_test, wilson_interval

__all__ = ["TABLE_COLUMNS", "PUBLISHED_COLUMNS", "write_table", "write_json", "plot_accuracy", "read_published_counts", "compare_with_published"]

#: Columns of an evaluation's TSV.
TABLE_COLUMNS = ("test_scale", "scale_tag", "accuracy", "ci_low", "ci_high", "correct", "images", "file")
#: Columns of a table of published counts: the scale (a number or a tag), correct images, images.
PUBLISHED_COLUMNS = ("scale", "correct", "total")


def _cell(value) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def write_table(rows: Sequence[dict], path: str | os.PathLike) -> None:
    """The rows as a tab-separated table with a header (``TABLE_COLUMNS``), floats in full, written atomically."""
    lines = ["\t".join(TABLE_COLUMNS), *("\t".join(_cell(row[key]) for key in TABLE_COLUMNS) for row in rows)]
    write_text_atomically(path, "\n".join(lines) + "\n")


def write_json(result: dict, path: str | os.PathLike) -> None:
    """The whole evaluation as indented JSON (NaN as null), written atomically."""

    def clean(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {key: clean(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(item) for item in value]
        return value

    write_text_atomically(path, json.dumps(clean(result), indent=2) + "\n")


def _with_interval(row: dict) -> dict:
    """The row with its Wilson interval (``ci_low``, ``ci_high``), computed from ``correct`` and ``images`` where it has none."""
    if "ci_low" in row:
        return row
    low, high = wilson_interval(row["correct"], row["images"])
    return {**row, "ci_low": low, "ci_high": high}


def plot_accuracy(rows: Sequence[dict], train_scale: float | None, path: str | os.PathLike, title: str = "", published: Sequence[dict] = ()) -> None:
    """Accuracy (%) against log2 test scale with 95 % intervals, the training scale marked; a 700 x 400 PNG.

    ``published``, when given, are the rows of ``compare_with_published``,
    drawn as a second series with their own intervals.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    rows = [_with_interval(row) for row in sorted(rows, key=lambda row: row["test_scale"])]
    logs = [math.log2(row["test_scale"]) for row in rows]
    figure, axes = plt.subplots(figsize=(7, 4), dpi=100)
    accuracy = [100 * row["accuracy"] for row in rows]
    # clipped at 0: a row's accuracy may be rounded apart from the counts its interval comes from
    errors = [[max(0.0, 100 * (row["accuracy"] - row["ci_low"])) for row in rows], [max(0.0, 100 * (row["ci_high"] - row["accuracy"])) for row in rows]]
    axes.errorbar(logs, accuracy, yerr=errors, fmt="o-", color="tab:blue", capsize=3, label="accuracy, 95 % Wilson interval")
    if published:
        shown = sorted(published, key=lambda row: row["test_scale"])
        pub_logs = [math.log2(row["test_scale"]) for row in shown]
        pub = [100 * row["published_accuracy"] for row in shown]
        pub_errors = [[100 * (row["published_accuracy"] - row["published_ci_low"]) for row in shown], [100 * (row["published_ci_high"] - row["published_accuracy"]) for row in shown]]
        axes.errorbar(pub_logs, pub, yerr=pub_errors, fmt="s--", color="tab:orange", capsize=3, label="published counts")
    if train_scale:
        axes.axvline(math.log2(train_scale), color="tab:red", linestyle="--", label=f"training scale {train_scale:g}")
    ticks = logs[::2] if len(logs) > 9 else logs
    axes.set_xticks(ticks)
    axes.set_xticklabels([f"{2**tick:.3g}" for tick in ticks])
    axes.set_ylim(0, 100)
    axes.set_xlabel("test scale s (log2 axis)")
    axes.set_ylabel("accuracy (%)")
    axes.set_title(title or "accuracy against test scale")
    axes.grid(True, alpha=0.3)
    axes.legend(loc="best", fontsize="small")
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(figure)


def read_published_counts(path: str | os.PathLike) -> dict[str, tuple[int, int]]:
    """A table of published correct counts: ``{scale tag: (correct, total)}``.

    The file is tab-separated with the header ``scale correct total``; a scale
    is a number (``2``, ``1.189``) or a tag (``2p000``); lines starting with
    ``#`` are comments.

    Raises
    ------
    ValueError
        Naming the line of a malformed table.
    """
    lines = [line for line in Path(path).read_text().splitlines() if line.strip() and not line.startswith("#")]
    if not lines or tuple(lines[0].split("\t")) != PUBLISHED_COLUMNS:
        raise ValueError(f"{path}: the first line must be the header {' '.join(PUBLISHED_COLUMNS)} (tab-separated)")
    counts = {}
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        try:
            scale_text, correct, total = fields[0], int(fields[1]), int(fields[2])
            tag = scale_text if "p" in scale_text else scale_tag(float(scale_text))
        except (ValueError, IndexError):
            raise ValueError(f"{path}: line {number} {line!r} is not <scale> <correct> <total>") from None
        if total < 1 or not 0 <= correct <= total:
            raise ValueError(f"{path}: line {number}: {correct} correct of {total}")
        if tag in counts:
            raise ValueError(f"{path}: scale {tag} appears twice")
        counts[tag] = (correct, total)
    return counts


def compare_with_published(rows: Sequence[dict], published: dict[str, tuple[int, int]], alpha: float = 0.05) -> list[dict]:
    """Per scale in both: the rebuild's accuracy against the published one, their difference and test.

    The published counts come without image-level predictions, so the test is
    the two-proportion test (``stats.two_proportion_test``: independent
    samples assumed, conservative for the same images); ``smallest_paired_p``
    says whether any pairing could have shown a difference.

    Returns
    -------
    list of dict
        ``test_scale``, ``scale_tag``, the accuracy, correct and images of each
        side with the published Wilson interval, ``difference`` (rebuild minus
        published) with ``difference_low`` and ``_high``, ``z``, ``p_value``,
        ``smallest_paired_p`` and ``differs`` (p < alpha).
    """
    compared = []
    for row in rows:
        if row["scale_tag"] not in published:
            continue
        correct, total = published[row["scale_tag"]]
        test = two_proportion_test(correct, total, row["correct"], row["images"])
        low, high = wilson_interval(correct, total)
        compared.append(
            {
                "test_scale": row["test_scale"],
                "scale_tag": row["scale_tag"],
                "accuracy": row["accuracy"],
                "correct": row["correct"],
                "images": row["images"],
                "published_accuracy": correct / total,
                "published_ci_low": low,
                "published_ci_high": high,
                "published_correct": correct,
                "published_images": total,
                "difference": test.difference,
                "difference_low": test.low,
                "difference_high": test.high,
                "z": test.z,
                "p_value": test.p_value,
                "smallest_paired_p": test.smallest_paired_p,
                "differs": test.p_value < alpha,
            }
        )
    return compared
