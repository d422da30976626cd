"""Running a model over test files: predictions image by image, and per-scale results.

``predict`` hands the images of a file's test split to the model in order,
in blocks read and converted by ``reader.ordered_blocks`` while the model
works on the block before, and keeps the predicted class of every image.
``scale_result`` turns labels and predictions into one row of the
evaluation: accuracy with its Wilson interval, the confusion matrix, the
count of images.  ``evaluate_files`` does both for each file and adds the
summary measures of scale generalisation.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from ..names import InvalidName, ScaleSpec, parse_name, scale_tag
from .measures import generalisation_summary
from .model import InputConvention, value_transform
from .reader import ordered_blocks
from .stats import wilson_interval

__all__ = ["Predictions", "predict", "file_scale", "confusion_matrix", "scale_result", "evaluate_files", "EvaluationSettings"]


@dataclass(frozen=True)
class EvaluationSettings:
    """How the images reach the model.

    Attributes
    ----------
    batch_size : int
        Images per block read and per call of the model.
    workers : int
        Reading threads (and blocks read ahead).
    device : str
        'cpu', 'cuda' or 'mps': where the batches go (the model is loaded there).
    limit : int or None
        Evaluate only the first this many images of each file.
    """

    batch_size: int = 500
    workers: int = 2
    device: str = "cpu"
    limit: int | None = None


@dataclass(frozen=True)
class Predictions:
    """A model's predicted class for every test image of one file.

    Attributes
    ----------
    path : Path
    labels : (n,) ndarray of int64
    predicted : (n,) ndarray of int64
    classes : int
        Outputs of the model (the width of its logits).
    seconds : float
        Wall time from the first read to the last prediction.
    """

    path: Path
    labels: np.ndarray
    predicted: np.ndarray
    classes: int
    seconds: float = field(default=0.0, compare=False)

    @property
    def correct(self) -> np.ndarray:
        return self.predicted == self.labels


def predict(model, path: str | os.PathLike, convention: InputConvention = InputConvention(), settings: EvaluationSettings = EvaluationSettings()) -> Predictions:
    """The predicted class (argmax of the model's output) of every image in the test split of ``path``.

    Parameters
    ----------
    model : callable
        Takes a batch tensor laid out as ``convention`` says, gives ``(k, classes)`` scores.
    path : path
        An MNIST Large Scale file (rebuilt or published).
    convention : InputConvention
    settings : EvaluationSettings

    Returns
    -------
    Predictions
    """
    import torch

    transform = value_transform(convention.transform)
    device = torch.device(settings.device)
    with h5py.File(path, "r") as h5:
        if "y_test" not in h5:
            raise ValueError(f"{path} has no y_test")
        labels = h5["y_test"][()].astype(np.int64)
    n = len(labels) if settings.limit is None else min(len(labels), settings.limit)
    predicted = np.empty(n, dtype=np.int64)
    classes = 0
    start_time = time.perf_counter()
    blocks = ordered_blocks(path, "test", settings.batch_size, convention.dtype, convention.channels_first, settings.workers, limit=n)
    with torch.inference_mode():
        for start, block in blocks:
            batch = torch.from_numpy(block).to(device)  # blocking: the block's buffer is reused once the next one is asked for
            scores = model(transform(batch) if transform else batch)
            if scores.ndim != 2 or scores.shape[0] != len(block):
                raise ValueError(f"the model gave scores of shape {tuple(scores.shape)} for {len(block)} images; expected ({len(block)}, classes)")
            classes = scores.shape[1]
            predicted[start : start + len(block)] = scores.argmax(1).cpu().numpy()
    if len(labels[:n]) and (labels[:n].max() >= classes):
        raise ValueError(f"{path} has labels up to {labels[:n].max()} but the model gives {classes} scores")
    return Predictions(Path(path), labels[:n], predicted, classes, time.perf_counter() - start_time)


def file_scale(path: str | os.PathLike) -> float:
    """The single test scale of a file: its ``scale_test`` attribute (rebuilt), else its name (published files have no attributes).

    Raises
    ------
    ValueError
        When neither gives a single scale.
    """
    with h5py.File(path, "r") as h5:
        tag = h5.attrs.get("scale_test")
    reason = "no scale_test attribute"
    if tag is not None:
        spec = ScaleSpec.parse(tag.decode() if isinstance(tag, bytes) else str(tag))
        if not spec.is_range:
            return spec.low
        reason = f"scale_test {spec.tag} is a range"
    try:
        spec = parse_name(Path(path).name).test_scale
    except InvalidName as error:
        raise ValueError(f"{path}: {reason}, and its name gives no test scale ({error})") from None
    if spec.is_range:
        raise ValueError(f"{path}: its test split has a range of scales ({spec.tag}), not one")
    return spec.low


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """``(classes, classes)`` counts: row = true label, column = predicted class."""
    return np.bincount(labels * classes + predicted, minlength=classes * classes).reshape(classes, classes)


def scale_result(predictions: Predictions, scale: float) -> dict:
    """One row of an evaluation: scale, counts, accuracy and its 95 % Wilson interval, confusion matrix, file."""
    correct, images = int(predictions.correct.sum()), len(predictions.labels)
    if images == 0:
        raise ValueError(f"{predictions.path} has no test images")
    low, high = wilson_interval(correct, images)
    return {
        "test_scale": scale,
        "scale_tag": scale_tag(scale),
        "accuracy": correct / images,
        "ci_low": low,
        "ci_high": high,
        "correct": correct,
        "images": images,
        "file": predictions.path.name,
        "confusion": confusion_matrix(predictions.labels, predictions.predicted, max(predictions.classes, 1)).tolist(),
    }


def evaluate_files(
    model,
    paths: Sequence[str | os.PathLike],
    train_scale: float | None,
    convention: InputConvention = InputConvention(),
    settings: EvaluationSettings = EvaluationSettings(),
    log: Callable[[str], None] = print,
) -> dict:
    """Evaluate ``model`` on the test split of each file; rows sorted by scale and the summary measures.

    Returns
    -------
    dict
        ``rows`` (``scale_result`` of each file, by scale), ``summary``
        (``measures.generalisation_summary``) and ``images``.  Nothing in it
        depends on the machine's speed (the rate goes to ``log``), so that the
        same model on the same files gives the same report.
    """
    if not paths:
        raise ValueError("no test files to evaluate on")
    rows, seconds = [], 0.0
    scales = [file_scale(path) for path in paths]  # every file's scale before any model runs
    for path, scale in zip(paths, scales, strict=True):
        predictions = predict(model, path, convention, settings)
        row = scale_result(predictions, scale)
        seconds += predictions.seconds
        log(
            f"s = {scale:.3f}: accuracy {row['accuracy']:.4f} [{row['ci_low']:.4f}, {row['ci_high']:.4f}] ({row['correct']} of {row['images']}; "
            f"{Path(path).name}; {row['images'] / max(predictions.seconds, 1e-9):.0f} images/s)"
        )
        rows.append(row)
    rows.sort(key=lambda row: row["test_scale"])
    summary = generalisation_summary([row["test_scale"] for row in rows], [row["accuracy"] for row in rows], train_scale)
    images = sum(row["images"] for row in rows)
    log(f"{images} images in {seconds:.1f} s of reading and predicting ({images / max(seconds, 1e-9):.0f} images/s)")
    return {"rows": rows, "summary": summary, "images": images}
