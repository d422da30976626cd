"""``inspect FILE.h5``: what an MNIST Large Scale file holds, rebuilt or published."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .common import (
    add_check_option,
    add_config_option,
    check_mnist_file,
    default_config_path,
    load_config,
    note,
    positive_int,
    progress,
)


def add_to(commands) -> None:
    parser = commands.add_parser(
        "inspect",
        help="summarise an MNIST Large Scale .h5 file",
        description="Summarise an MNIST Large Scale .h5 file, rebuilt or published: splits, shapes, dtypes, "
        "value range, labels, scale or scales, and the provenance attributes when there are any.",
    )
    parser.add_argument("file", help="the .h5 file")
    parser.add_argument("--montage", metavar="PNG", help="also draw the first images of a split into this PNG")
    parser.add_argument("--split", choices=("train", "val", "test"), default="test", help="the split of the montage (default: test)")
    parser.add_argument("--count", type=positive_int, default=64, metavar="N", help="images in the montage (default: 64)")
    parser.add_argument("--max-images", type=positive_int, metavar="N", help="scan only the first N images of each split for the value range (default: all)")
    parser.add_argument("--chunk-images", type=positive_int, default=500, metavar="N", help="images read at a time (default: 500, 50 MB at 112 x 112)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_check_option(parser, "values", "what the file must pass besides being read (the CRC-32 and the range come from the scan itself)")
    add_config_option(parser, "the class names of the file's base data set (none when no config is found)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..figures import file_montage, save_figure  # matplotlib: only where a montage may be drawn
    from ..inspect_file import format_summary, summarize_file
    from ..integrity import DamagedFile, check_file

    if Path(args.file).is_file():  # a file that is not an HDF5 file of the layout is damaged: status 1
        integrity = check_file(args.file, "layout")
        if not integrity.ok:
            print(f"inspect: {args.file} is damaged: {integrity.problems[0]}", file=sys.stderr)
            return 1
    path = check_mnist_file(args.file, every_split=False)  # any split there is summarised
    try:
        with progress(args, "scanning") as update:
            summary = summarize_file(path, chunk_images=args.chunk_images, max_images=args.max_images, progress=update, check=args.check)
    except DamagedFile as error:
        print(f"inspect: {error}", file=sys.stderr)
        return 1
    classes = file_classes(args.config, path.name, summary["attributes"])
    if any(name != str(label) for label, name in enumerate(classes)):  # MNIST's digits name themselves
        summary["classes"] = classes
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary), end="\n" if args.json else "")
    if args.montage:
        save_figure(file_montage(path, args.split, args.count, classes=classes), args.montage)
        note(args, f"montage of the first {args.split} images: {args.montage}")
    if not summary["integrity"]["ok"]:
        print(f"inspect: {args.file} is damaged: {summary['integrity']['problems'][0]}", file=sys.stderr)
        return 1
    return 0


def file_classes(config_path: str | None, file_name: str, attributes: dict) -> list[str]:
    """The class names of a file's base data set; [] when no config is found or no entry fits.

    The entry is the one the file's ``base_data`` attribute names or, for a
    file without attributes (a published one), the one its name's prefix
    selects.  A config given with ``--config`` must exist and be valid.
    """
    if config_path is None and default_config_path() is None:
        return []
    config = load_config(config_path)
    key = attributes.get("base_data")
    base = next((base for base in config.bases.values() if base.key == key), None)
    if base is None:
        try:
            _, base = config.file(file_name)
        except ValueError:  # a name outside the grammar or of an unknown prefix: a renamed file
            return []
    return list(base.classes)
