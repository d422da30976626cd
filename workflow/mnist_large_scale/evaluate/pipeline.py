"""The two commands as functions: ``run_evaluation`` (evaluate) and ``run_model_comparison`` (compare-model).

Both load the model, run it over the files and write their reports; the
command line (``__main__``) and the Snakemake rule call them alike.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from ..writer import write_text_atomically
from .model import InputConvention, load_model
from .model_compare import ModelComparison, compare_predictions
from .report import compare_with_published, plot_accuracy, read_published_counts, write_json, write_table
from .run import EvaluationSettings, evaluate_files, file_scale, predict

__all__ = ["run_evaluation", "run_model_comparison", "write_changed_images"]


def run_evaluation(
    model: str,
    test_files: Sequence[str | os.PathLike],
    *,
    table: str | os.PathLike,
    report: str | os.PathLike,
    figure: str | os.PathLike,
    state_dict: str | os.PathLike | None = None,
    train_scale: float | None = None,
    convention: InputConvention = InputConvention(),
    settings: EvaluationSettings = EvaluationSettings(),
    published_counts: str | os.PathLike | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Evaluate a model (file or ``module:callable``) on each test file; write the TSV, the JSON and the figure.

    Parameters
    ----------
    model, state_dict : see ``model.load_model``
    test_files : paths
        Files with a single test scale each (from their attributes or their names).
    table, report, figure : paths
        The TSV (``report.TABLE_COLUMNS``), the JSON (everything) and the PNG.
    train_scale : float, optional
        The scale the model was trained at: marked in the figure, the centre of the summary measures.
    convention : InputConvention
    settings : EvaluationSettings
    published_counts : path, optional
        A table of published correct counts per scale (``report.read_published_counts``) to compare with.
    log : callable

    Returns
    -------
    dict
        What the JSON holds.
    """
    published = read_published_counts(published_counts) if published_counts else None  # a bad table fails before the model runs
    for path in test_files:
        file_scale(path)  # a file without a single test scale fails before the model is loaded
    for output in (table, report, figure):
        Path(output).parent.mkdir(parents=True, exist_ok=True)
    loaded = load_model(model, state_dict, settings.device)
    result = evaluate_files(loaded, test_files, train_scale, convention, settings, log=log)
    result = {
        "model": str(model),
        "state_dict": str(state_dict) if state_dict else None,
        "input": {"channels": convention.channels, "dtype": convention.dtype, "transform": convention.transform},
        "device": settings.device,
        **result,
    }
    compared = []
    if published is not None:
        compared = compare_with_published(result["rows"], published)
        missing = sorted(set(published) - {row["scale_tag"] for row in compared})
        result["published"] = {"file": Path(published_counts).name, "rows": compared, "scales_not_evaluated": missing}
        for row in compared:
            log(
                f"s = {row['test_scale']:.3f}: {100 * row['accuracy']:.2f} % here, {100 * row['published_accuracy']:.2f} % published; "
                f"difference {100 * row['difference']:+.2f} points [{100 * row['difference_low']:+.2f}, {100 * row['difference_high']:+.2f}], "
                f"p = {row['p_value']:.3g}{' (differs)' if row['differs'] else ''}"
            )
    write_table(result["rows"], table)
    write_json(result, report)
    title = f"{Path(model).name if Path(model).is_file() else model}" + (f", trained at s = {train_scale:g}" if train_scale else "")
    plot_accuracy(result["rows"], train_scale, figure, title=title, published=compared)
    return result


def write_changed_images(comparison: ModelComparison, path: str | os.PathLike) -> None:
    """The images whose prediction changes, one line each: index, label, prediction on each file (TSV)."""
    lines = ["index\tlabel\tfirst\tsecond", *(f"{row['index']}\t{row['label']}\t{row['first']}\t{row['second']}" for row in comparison.changed_images)]
    write_text_atomically(path, "\n".join(lines) + "\n")


def run_model_comparison(
    model: str,
    first: str | os.PathLike,
    second: str | os.PathLike,
    *,
    report: str | os.PathLike | None = None,
    state_dict: str | os.PathLike | None = None,
    convention: InputConvention = InputConvention(),
    settings: EvaluationSettings = EvaluationSettings(),
) -> ModelComparison:
    """The same model on two versions of one file, image by image (``model_compare.compare_predictions``); writes the JSON report when asked."""
    loaded = load_model(model, state_dict, settings.device)
    comparison = compare_predictions(predict(loaded, first, convention, settings), predict(loaded, second, convention, settings))
    if report:
        write_json({"model": str(model), "state_dict": str(state_dict) if state_dict else None, **comparison.as_dict()}, report)
    return comparison
