"""The experiment the data set was made for: train a CNN at one scale, test it at all 17.

A plain CNN (``build_cnn``) is trained on the training split of one file (the
scale-2 training file in ``make experiment``) and tested on the test split of
each test-only file; the accuracy against the test scale shows how far an
ordinary CNN generalises to scales it was not trained on.  Training images
come through ``MNISTLargeScale`` and a PyTorch ``DataLoader``, test images
through the evaluation's ordered reader (``evaluate``), which also gives the
intervals, confusion matrices and summary measures of ``summary.json``;
scales come from the files' attributes, never from their names.

PyTorch is an optional dependency (the ``torch`` extra): it is imported only
inside the functions that need it, so that the package imports without it.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .evaluate.measures import generalisation_summary
from .loader import MNISTLargeScale

__all__ = ["ExperimentSettings", "build_cnn", "train", "evaluate", "run_experiment", "write_accuracy_table", "read_accuracy_table", "plot_accuracy"]

#: Columns of results/experiment/accuracy_vs_scale.tsv.
TABLE_COLUMNS = ("test_scale", "scale_tag", "accuracy", "correct", "images", "file")


@dataclass(frozen=True)
class ExperimentSettings:
    """How the network is trained and tested; config ``experiment:``.

    Attributes
    ----------
    epochs : int
        Passes over the training images.
    train_images : int or None
        Train on the first this many training images (None: all).
    test_images : int or None
        Test on the first this many images of each test file (None: all).
    batch_size : int
    learning_rate : float
        Adam's step size; multiplied by 0.1 for the last epoch when there are several.
    seed : int
        Seeds the weights and the shuffling.
    threads : int
        PyTorch's threads.
    loader_workers : int
        DataLoader worker processes (0 reads in the training process).
    channels : tuple of int
        Output channels of the four convolution blocks.
    """

    epochs: int = 2
    train_images: int | None = None
    test_images: int | None = None
    batch_size: int = 64
    learning_rate: float = 1e-3
    seed: int = 0
    threads: int = 2
    loader_workers: int = 0
    channels: tuple[int, ...] = (8, 16, 32, 64)

    @classmethod
    def from_config(cls, values: dict) -> ExperimentSettings:
        """From the config's ``experiment`` mapping, less ``train_file`` (unknown keys raise TypeError)."""
        values = {key: value for key, value in values.items() if key != "train_file"}
        if "channels" in values:
            values["channels"] = tuple(values["channels"])
        return cls(**values)


def build_cnn(channels: tuple[int, ...] = (8, 16, 32, 64), classes: int = 10):
    """A plain CNN: blocks of 3 x 3 convolution, batch normalisation, ReLU and 2 x 2 max pooling, then global max pooling and a linear layer.

    On a 112 x 112 image the four blocks see 46 x 46 pixels at the last
    convolution (a 2-pixel-wide stroke at s = 2 is 4 pixels); the global max
    pooling lets the network take any image size and any position of the
    digit, but nothing in it is built for scale.

    Parameters
    ----------
    channels : tuple of int
        Output channels of each block.
    classes : int

    Returns
    -------
    torch.nn.Sequential
        Takes ``(n, 1, H, W)`` float32, gives ``(n, classes)`` logits.
    """
    from torch import nn

    layers, before = [], 1
    for out in channels:
        layers += [nn.Conv2d(before, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        before = out
    return nn.Sequential(*layers, nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(before, classes))


def _subset(dataset, count: int | None):
    """The first ``count`` items of a dataset (all when count is None or larger)."""
    from torch.utils.data import Subset

    return dataset if count is None or count >= len(dataset) else Subset(dataset, range(count))


def train(train_path: str | os.PathLike, settings: ExperimentSettings, log=print):
    """Train ``build_cnn`` on the training split of ``train_path``.

    Returns
    -------
    model : torch.nn.Module
        In eval mode.
    history : list of dict
        Per epoch: mean loss, training accuracy, images, seconds.
    """
    import torch
    from torch.utils.data import DataLoader

    torch.manual_seed(settings.seed)
    torch.set_num_threads(settings.threads)
    dataset = _subset(MNISTLargeScale(train_path, "train"), settings.train_images)
    loader = DataLoader(
        dataset,
        batch_size=settings.batch_size,
        shuffle=True,
        num_workers=settings.loader_workers,
        generator=torch.Generator().manual_seed(settings.seed),
        drop_last=False,
    )
    model = build_cnn(settings.channels)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    history = []
    for epoch in range(settings.epochs):
        if settings.epochs > 1 and epoch == settings.epochs - 1:
            for group in optimizer.param_groups:
                group["lr"] = settings.learning_rate * 0.1
        model.train()
        start, total_loss, correct, seen = time.perf_counter(), 0.0, 0, 0
        for images, labels in loader:
            optimizer.zero_grad()
            logits = model(images)
            loss = torch.nn.functional.cross_entropy(logits, labels)
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(labels)
            correct += int((logits.argmax(1) == labels).sum())
            seen += len(labels)
        row = {"epoch": epoch + 1, "loss": total_loss / seen, "train_accuracy": correct / seen, "images": seen, "seconds": time.perf_counter() - start}
        history.append(row)
        log(f"epoch {row['epoch']}: loss {row['loss']:.4f}, training accuracy {row['train_accuracy']:.4f}, {seen} images in {row['seconds']:.0f} s")
    model.eval()
    return model, history


def evaluate(model, test_path: str | os.PathLike, settings: ExperimentSettings) -> dict:
    """Accuracy of ``model`` on the test split of ``test_path``, and the split's scale (from the file's attributes).

    The images go through the evaluation's reader and model loop
    (``evaluate.run``): in file order, in blocks of 500 converted in reading
    threads; the row is ``evaluate.run.scale_result``'s (with its Wilson
    interval and confusion matrix), of which the table keeps ``TABLE_COLUMNS``.

    Raises
    ------
    ValueError
        If the file states no single test scale (a published file has no
        attributes: its scale would have to come from its name, which this
        experiment does not read).
    """
    from .evaluate.run import EvaluationSettings, predict, scale_result

    dataset = MNISTLargeScale(test_path, "test")
    if dataset.scale is None:
        raise ValueError(f"{test_path} states no single test scale in its attributes (scale_test); the experiment needs rebuilt files")
    reading = EvaluationSettings(batch_size=500, workers=max(1, settings.loader_workers), limit=settings.test_images)
    return scale_result(predict(model, test_path, settings=reading), dataset.scale)


def write_accuracy_table(rows: list[dict], path: str | os.PathLike) -> None:
    """The rows, sorted by test scale, as a tab-separated table with a header (``TABLE_COLUMNS``); floats in full."""
    lines = ["\t".join(TABLE_COLUMNS)]
    for row in sorted(rows, key=lambda row: row["test_scale"]):
        lines.append("\t".join(repr(row[key]) if isinstance(row[key], float) else str(row[key]) for key in TABLE_COLUMNS))
    Path(path).write_text("\n".join(lines) + "\n")


def read_accuracy_table(path: str | os.PathLike) -> list[dict]:
    """The rows of a table written by ``write_accuracy_table``."""
    header, *lines = Path(path).read_text().splitlines()
    columns = header.split("\t")
    if tuple(columns) != TABLE_COLUMNS:
        raise ValueError(f"{path}: columns {columns}, expected {list(TABLE_COLUMNS)}")
    rows = []
    for line in lines:
        row = dict(zip(columns, line.split("\t"), strict=True))
        rows.append({**row, "test_scale": float(row["test_scale"]), "accuracy": float(row["accuracy"]), "correct": int(row["correct"]), "images": int(row["images"])})
    return rows


def plot_accuracy(rows: list[dict], train_scale: float, path: str | os.PathLike, title: str = "") -> None:
    """Accuracy against test scale (log axis) with 95 % Wilson intervals, the training scale marked; a 700 x 400 PNG (``evaluate.report.plot_accuracy``)."""
    from .evaluate.report import plot_accuracy as plot_evaluation

    plot_evaluation(rows, train_scale, path, title=title or "CNN trained at one scale, tested at each")


def run_experiment(train_path, test_paths, settings: ExperimentSettings, table, figure, summary, log=print) -> list[dict]:
    """Train on ``train_path``, test on each of ``test_paths``; write the table, the figure and a JSON summary.

    Returns
    -------
    list of dict
        One row per test file (``TABLE_COLUMNS``).
    """
    start = time.perf_counter()
    train_set = MNISTLargeScale(train_path, "train")
    if train_set.scale is None:
        raise ValueError(f"{train_path} states no single training scale in its attributes (scale_train)")
    model, history = train(train_path, settings, log=log)
    trained = time.perf_counter()
    rows = []
    for path in test_paths:
        row = evaluate(model, path, settings)
        log(f"s = {row['test_scale']:.3f}: accuracy {row['accuracy']:.4f} ({row['correct']} of {row['images']})")
        rows.append(row)
    tested = time.perf_counter()
    write_accuracy_table(rows, table)
    plot_accuracy(rows, train_set.scale, figure, title=f"CNN trained at s = {train_set.scale:g} ({history[-1]['images'] if history else 0} images, {settings.epochs} epochs)")
    best = max(rows, key=lambda row: row["accuracy"]) if rows else None
    Path(summary).write_text(
        json.dumps(
            {
                "train_file": Path(train_path).name,
                "train_scale": train_set.scale,
                "settings": asdict(settings),
                "parameters": int(sum(parameter.numel() for parameter in model.parameters())),
                "history": history,
                "train_seconds": trained - start,
                "test_seconds": tested - trained,
                "best_scale": best["test_scale"] if best else math.nan,
                "accuracy_at_training_scale": next((row["accuracy"] for row in rows if math.isclose(row["test_scale"], train_set.scale)), None),
                "scale_generalisation": generalisation_summary([row["test_scale"] for row in rows], [row["accuracy"] for row in rows], train_set.scale) if rows else None,
                "rows": [{key: row[key] for key in ("test_scale", "accuracy", "ci_low", "ci_high", "correct", "images", "confusion")} for row in rows],
            },
            indent=2,
        )
        + "\n"
    )
    return rows

