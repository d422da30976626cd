"""``preview BASE``: a base data set's first test images at a few scales, from its raw files."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_config_option, load_config, note, output_file, positive_int, raw_paths


def positive_scale(text: str) -> float:
    """argparse type: a scale greater than 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text}: a scale must be a finite number greater than 0")
    return value


def add_to(commands) -> None:
    parser = commands.add_parser(
        "preview",
        help="draw a base data set's first test images at a few scales, from its raw files",
        description="Draw the first test images of a base data set at a few scales, computed from its raw files "
        "with the config's recipe, one row per scale, without building a file.",
    )
    parser.add_argument("base", help="the key of the base data set in the config, e.g. fashion_mnist")
    parser.add_argument("--out", metavar="PNG", help="the PNG to write (default: results/preview/<base>.png)")
    parser.add_argument("--scales", type=positive_scale, nargs="+", metavar="S", default=[1.0, 2.0, 4.0], help="one row per scale (default: 1 2 4)")
    parser.add_argument("--count", type=positive_int, default=8, metavar="N", help="images per row (default: 8)")
    parser.add_argument("--size", type=positive_int, default=112, metavar="PX", help="output image size in pixels (default: 112)")
    parser.add_argument("--raw-dir", metavar="DIR", help="folder with the base's raw files (default: resources/<base>)")
    add_config_option(parser, "the base data and the recipe")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Draw the first ``args.count`` test images of a base at each of ``args.scales``."""
    import numpy as np

    from ..build import load_split
    from ..engine import transform_images
    from ..figures import montage_figure, save_figure
    from ..sources import verify_raw_files

    config = load_config(args.config)
    base = config.base(args.base)
    paths = raw_paths(base, args.raw_dir)
    out = output_file(args.out, "--out") if args.out else Path("results") / "preview" / f"{base.key}.png"
    verify_raw_files(base, paths)
    out.parent.mkdir(parents=True, exist_ok=True)
    images, labels = load_split(base, paths, "test", args.count)
    rows = [transform_images(images, np.full(len(images), scale), (args.size, args.size), config.recipe) for scale in args.scales]
    scales = ", ".join(f"{scale:g}" for scale in args.scales)
    figure = montage_figure(
        np.concatenate(rows),
        np.tile(labels, len(rows)),
        f"{base.key}: the first {len(images)} test images at s = {scales}",
        f"{args.size} x {args.size} px; rows from top: s = {scales}",
        ncols=len(images),
        classes=base.classes,
    )
    save_figure(figure, out)
    note(args, f"{len(rows)} rows of {len(images)} {base.key} test images: {out}")
    return 0
