"""Reading and summarising any MNIST Large Scale file, rebuilt or published (the `inspect` command).

A published file has no attributes and may be 7 GB, and a test-only file's
``x_train`` and ``x_val`` hold one sample without the leading axis; everything
here copes with both and reads images in chunks.
"""

from __future__ import annotations

import json
import math
import os
import zlib
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np

from .integrity import VALUE_RANGE, DamagedFile, open_checked, require_intact, stored_crc_problem
from .layout import SPLITS
from .names import InvalidName, parse_name

__all__ = ["read_images", "scan_values", "summarize_file", "format_summary", "DamagedFile"]


def read_images(path: str | os.PathLike, split: str, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The first ``count`` images of a split, with labels and per-sample scales.

    Parameters
    ----------
    path : path
        An MNIST Large Scale .h5 file.
    split : {'train', 'val', 'test'}
    count : int
        At most this many images are read.

    Returns
    -------
    images : (n, H, W) ndarray of float64
        ``n = min(count, stored)``; a single sample stored without the leading
        axis counts as one image.
    labels : (n,) ndarray of int64
        -1 where the file has no ``y_<split>``.
    scales : (n,) ndarray of float64 or None
        From ``s_<split>`` when the file has it.
    """
    with h5py.File(path, "r") as h5:
        x = h5[f"x_{split}"]
        images = x[()][np.newaxis] if x.ndim == 3 else x[:count]
        images = np.asarray(images[..., 0] if images.shape[-1] == 1 else images, dtype=np.float64)
        n = len(images)
        labels = np.atleast_1d(h5[f"y_{split}"][()])[:n].astype(np.int64) if f"y_{split}" in h5 else np.full(n, -1)
        scales = np.atleast_1d(h5[f"s_{split}"][()])[:n].astype(np.float64) if f"s_{split}" in h5 else None
    return images, labels, scales


def scan_values(x: h5py.Dataset, chunk_images: int = 500, max_images: int | None = None, progress: Callable[[int], None] | None = None) -> dict:
    """Value range of an image dataset, read ``chunk_images`` images at a time.

    Parameters
    ----------
    x : h5py.Dataset
        ``(n, H, W, 1)``, or ``(H, W, 1)`` for a single sample.
    chunk_images : int
        Images per read; bounds memory (500 images of 112 x 112 float64: 50 MB).
    max_images : int, optional
        Scan only the first this many images.
    progress : callable, optional
        Called with the number of images just scanned.

    Returns
    -------
    dict
        ``{'scanned', 'min', 'max', 'mean', 'nonfinite', 'outside_range', 'crc32'}``:
        min, max and mean over the finite values (None when there is none);
        ``outside_range`` the values outside the threshold's ``[-1, 1]`` or not
        finite; ``crc32`` that of the stored values (as the writer's ``crc32``
        attribute), None when only part of the dataset was scanned.
    """
    single = x.ndim == 3
    n = 1 if single else x.shape[0]
    whole = max_images is None or max_images >= n
    n = n if max_images is None else min(n, max_images)
    low, high, total, count, nonfinite, outside, crc = math.inf, -math.inf, 0.0, 0, 0, 0, 0
    for start in range(0, n, chunk_images):
        stored = x[()] if single else x[start : min(start + chunk_images, n)]
        crc = zlib.crc32(np.ascontiguousarray(stored), crc)
        block = np.asarray(stored, dtype=np.float64)
        outside += int(np.count_nonzero(~((block >= VALUE_RANGE[0]) & (block <= VALUE_RANGE[1]))))
        finite = block[np.isfinite(block)]
        nonfinite += block.size - finite.size
        if finite.size:
            low, high = min(low, float(finite.min())), max(high, float(finite.max()))
            total, count = total + float(finite.sum()), count + finite.size
        if progress is not None:
            progress(1 if single else len(block))
    return {
        "scanned": n,
        "min": low if count else None,
        "max": high if count else None,
        "mean": total / count if count else None,
        "nonfinite": int(nonfinite),
        "outside_range": outside,
        "crc32": crc if whole else None,
    }


def _attribute(value):
    """An HDF5 attribute as plain Python; JSON strings decoded."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def summarize_file(
    path: str | os.PathLike, chunk_images: int = 500, max_images: int | None = None, progress: Callable[[int], None] | None = None, check: str = "values"
) -> dict:
    """What an MNIST Large Scale file holds, and whether it is intact.

    Parameters
    ----------
    path : path
    chunk_images, max_images, progress
        As in ``scan_values``; the scan of each split's images.
    check : {'layout', 'crc', 'values'}
        What the file must pass (``integrity.CHECKS``).  The layout is checked
        first and a file that fails it raises ``integrity.DamagedFile``; the
        stored CRC-32 and the value range come from the scan itself (no second
        read), and only where the whole dataset is scanned for the CRC.

    Raises
    ------
    integrity.DamagedFile
        Not HDF5, truncated, or not the layout.

    Returns
    -------
    dict
        ``{'file', 'bytes', 'name' (what the file name says, or 'name_error'),
        'attributes', 'splits': {split: {'x_shape', 'x_dtype', 'layout',
        'single_sample', 'images', 'values', 'labels', 'scales'}}, 'other_datasets'}``;
        ``format_summary`` also prints ``'classes'``, the class names, where the
        caller adds them (the command line takes them from the config).
    """
    path = Path(path)
    require_intact(path, "layout")
    summary = {"file": path.name, "bytes": path.stat().st_size, "splits": {}}
    problems, notes = [], []
    try:
        spec = parse_name(path.name)
        summary["name"] = {
            "counts": {split: spec.split_count(split) for split in SPLITS},
            "out_shape": list(spec.out_shape),
            "scales": {split: spec.split_scale(split).tag for split in SPLITS},
            "test_only": spec.test_only,
        }
    except InvalidName as error:
        summary["name_error"] = str(error)
    with open_checked(path) as h5:
        summary["attributes"] = {key: _attribute(h5.attrs[key]) for key in sorted(h5.attrs)}
        known = set()
        for split in SPLITS:
            if f"x_{split}" not in h5:
                continue
            x = h5[f"x_{split}"]
            known.update({f"x_{split}", f"y_{split}", f"s_{split}"})
            single = x.ndim == 3
            entry = {
                "x_shape": list(x.shape),
                "x_dtype": str(x.dtype),
                "layout": "contiguous" if x.chunks is None else f"chunks {list(x.chunks)}, {x.compression or 'uncompressed'}",
                "single_sample": single,
                "images": 1 if single else int(x.shape[0]),
                "values": scan_values(x, chunk_images, max_images, progress),
            }
            if f"y_{split}" in h5:
                y = h5[f"y_{split}"]
                labels = np.atleast_1d(y[()])
                entry["labels"] = {
                    "shape": list(y.shape),
                    "dtype": str(y.dtype),
                    "histogram": {int(k): int(v) for k, v in zip(*np.unique(labels, return_counts=True), strict=True)},
                }
            if f"s_{split}" in h5:
                s = np.atleast_1d(h5[f"s_{split}"][()]).astype(np.float64)
                entry["scales"] = {"count": int(s.size), "min": float(s.min()), "max": float(s.max()), "geometric_mean": float(np.exp(np.log(s).mean()))}
            summary["splits"][split] = entry
            problems += _split_problems(h5, split, entry["values"], check, notes)
        summary["other_datasets"] = sorted(set(h5) - known)
    summary["integrity"] = {"check": check, "ok": not problems, "problems": problems, "notes": notes}
    return summary


def _split_problems(h5: h5py.File, split: str, values: dict, check: str, notes: list[str]) -> list[str]:
    """A split's problems at the level ``check``: stored CRC-32s (from the scan for the images), the value range."""
    if check == "layout":
        return []
    problems = []
    for name in (f"x_{split}", f"y_{split}", f"s_{split}"):
        if name not in h5:
            continue
        if "crc32" not in h5[name].attrs:
            notes.append(f"{name}: no stored CRC-32 (a published file has none)")
            continue
        crc = values["crc32"] if name.startswith("x_") else zlib.crc32(np.ascontiguousarray(h5[name][()]))
        if crc is None:
            notes.append(f"{name}: CRC-32 not checked (only part of it was scanned)")
        elif problem := stored_crc_problem(name, h5[name], crc):
            problems.append(problem)
    if check == "values" and values["outside_range"]:
        problems.append(f"x_{split}: {values['outside_range']} values outside [{VALUE_RANGE[0]:g}, {VALUE_RANGE[1]:g}] or not finite")
    return problems


def _format_value(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def format_summary(summary: dict) -> str:
    """The summary of ``summarize_file`` as plain text, one fact a line."""
    lines = [f"file        {summary['file']}", f"size        {summary['bytes']:,} bytes ({summary['bytes'] / 1e9:.2f} GB)"]
    name = summary.get("name")
    if name:
        counts = ", ".join(f"{split} {n}" for split, n in name["counts"].items())
        scales = ", ".join(f"{split} {tag}" for split, tag in name["scales"].items())
        lines.append(f"name says   {'test-only file; ' if name['test_only'] else ''}{counts}; {name['out_shape'][0]} x {name['out_shape'][1]} px; scales {scales}")
    else:
        lines.append(f"name says   nothing: {summary.get('name_error')}")
    lines.append("")
    lines.append(f"{'split':6} {'x shape':22} {'dtype':8} {'images':>7}  {'min':>9} {'max':>9} {'mean':>9} {'non-finite':>10}  layout")
    for split, entry in summary["splits"].items():
        values = entry["values"]
        scanned = "" if values["scanned"] == entry["images"] else f"  (first {values['scanned']} scanned)"
        lines.append(
            f"{split:6} {str(tuple(entry['x_shape'])):22} {entry['x_dtype']:8} {entry['images']:>7}  "
            f"{_format_value(values['min']):>9} {_format_value(values['max']):>9} {_format_value(values['mean']):>9} {values['nonfinite']:>10}  "
            f"{entry['layout']}{'; one sample, no leading axis' if entry['single_sample'] else ''}{scanned}"
        )
    lines.append("")
    if summary.get("classes"):
        lines.append("classes     " + ", ".join(f"{k} {name}" for k, name in enumerate(summary["classes"])))
    for split, entry in summary["splits"].items():
        labels = entry.get("labels")
        if labels:
            counts = " ".join(f"{k}:{v}" for k, v in labels["histogram"].items())
            lines.append(f"labels {split:5} {labels['dtype']} shape {tuple(labels['shape'])}: {counts}")
        else:
            lines.append(f"labels {split:5} none")
    for split, entry in summary["splits"].items():
        scales = entry.get("scales")
        if scales:
            lines.append(f"scales {split:5} per sample (s_{split}): {scales['count']} in [{scales['min']:.4f}, {scales['max']:.4f}], geometric mean {scales['geometric_mean']:.4f}")
    if summary["other_datasets"]:
        lines.append(f"other datasets: {', '.join(summary['other_datasets'])}")
    integrity = summary.get("integrity")
    if integrity:
        verdict = "intact" if integrity["ok"] else "DAMAGED: " + "; ".join(integrity["problems"])
        lines.append(f"integrity   {verdict} ({integrity['check']} check)")
        lines += [f"  note: {note}" for note in integrity["notes"]]
    lines.append("")
    if summary["attributes"]:
        lines.append("attributes (provenance):")
        for key, value in summary["attributes"].items():
            lines.append(f"  {key}: {_format_value(value)}")
    else:
        lines.append("attributes: none (a published file carries no provenance attributes)")
    return "\n".join(lines) + "\n"
