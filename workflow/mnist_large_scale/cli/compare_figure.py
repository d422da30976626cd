"""``compare-figure MONTAGE.png --name NAME``: fit the recipe to a montage of published images.

The montage is a grid of ``imshow`` panels of one published file's images, each
autoscaled, in one colormap (a paper's or a notebook's figure).  The fit lives
in ``figure_fit.py``; this command reads the digits it shows from the raw files,
writes a JSON report and a figure (published panel, rebuilt panel, difference)
and prints the verdict.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .common import (
    InputError,
    add_config_option,
    load_config,
    non_negative_int,
    note,
    positive_int,
    raw_paths,
)
from .compare import DEFAULT_OUT_DIR, report_paths


def add_to(commands) -> None:
    parser = commands.add_parser(
        "compare-figure",
        help="fit the recipe to a montage of published images (a PNG of imshow panels)",
        description="Decode a montage of published images (a grid of imshow panels, each autoscaled, one colormap), "
        "calibrate a display model on a montage drawn through the same matplotlib calls, and fit the stretch form, "
        "sigma_per_scale, gain, offset, centre shift, order and clip (and each digit's scale for a range file). Writes "
        "a JSON report and a figure (published panel, rebuilt panel, difference; into results/compare/ unless told "
        "otherwise); exits with 1 when the figure differs from the configured recipe.",
    )
    parser.add_argument("png", help="the montage")
    parser.add_argument("--name", required=True, help="the published file the montage shows, e.g. mnist_large_scale_te10000_outsize112-112_scte2p000.h5")
    parser.add_argument("--split", choices=("train", "val", "test"), default="test", help="the split the panels show (default: test)")
    parser.add_argument("--first", type=non_negative_int, default=0, metavar="N", help="index in the split of the first panel (default: 0)")
    parser.add_argument("--rows", type=positive_int, default=8, metavar="N", help="panel rows (default: 8)")
    parser.add_argument("--cols", type=positive_int, default=8, metavar="N", help="panel columns (default: 8)")
    parser.add_argument("--colormap", default="viridis", help="the panels' matplotlib colormap (default: viridis)")
    add_config_option(parser, "the base data and the recipe compared with")
    parser.add_argument("--raw-dir", metavar="DIR", help="folder with the raw files (default: resources/<base key>, the workflow's cache)")
    parser.add_argument("--bootstrap", type=positive_int, default=300, metavar="N", help="bootstrap draws over the digits (default: 300)")
    parser.add_argument("--out-dir", metavar="DIR", help=f"folder for the report and the figure (default: {DEFAULT_OUT_DIR}/)")
    parser.add_argument("--report", metavar="JSON", help="the JSON report (default: <out dir>/<png stem>.figure.json)")
    parser.add_argument("--figure", metavar="PNG", help="the comparison figure (default: <out dir>/<png stem>.figure.png)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Fit the recipe to the montage; print the verdict, write the report and figure; 1 if it differs from the configured recipe."""
    import numpy as np

    from ..build import load_split
    from ..figure_fit import analyse_figure
    from ..figures import comparison_figure, save_figure
    from ..writer import atomic_path

    if not Path(args.png).is_file():
        raise InputError(f"{args.png}: no such file")
    report, figure = report_paths(args, Path(args.png).name.removesuffix(".png"), "figure")  # checked before the work, made after it
    config = load_config(args.config)
    spec, base = config.file(args.name)
    scale = spec.test_scale if args.split == "test" or spec.train_scale is None else spec.train_scale
    count = args.rows * args.cols
    images, labels = load_split(base, raw_paths(base, args.raw_dir), args.split, args.first + count)
    images, labels = images[args.first :], labels[args.first :]
    analysis = analyse_figure(
        Path(args.png).read_bytes(),
        args.rows,
        args.cols,
        args.colormap,
        images,
        labels,
        None if scale.is_range else np.full(count, scale.low),
        spec.out_shape,
        config.recipe,
        scale_range=(scale.low, scale.high) if scale.is_range else None,
        bootstrap=args.bootstrap,
    )
    result = {"file": args.name, "split": args.split, "first": args.first, **analysis.result}
    for path in (report, figure):
        path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(report) as tmp:
        Path(tmp).write_text(json.dumps(result, indent=2) + "\n")
    best = result["best_form"]
    rows = [(name, analysis.panels[:6], analysis.rendered[name][:6], (analysis.panels - analysis.rendered[name]).mean(axis=0)) for name in ("configured", best)]
    save_figure(comparison_figure(rows, f"{Path(args.png).name}: published panel, rebuilt panel, difference"), figure)
    for form, entry in result["hypotheses"].items():
        print(f"{form}: RMS {entry['rms_fitted']:.4f} fitted ({entry['rms_configured_constants']:.4f} with the configured constants)")
    for name, entry in result["constants"].items():
        print(f"  {name} = {entry['value']:.4g} +- {entry['std']:.2g}")
    print(f"best form {best}; digits preferring each: {result['digits_preferring']}")
    print("consistent with the configured recipe" if result["consistent_with_configured"] else f"DIFFERS from the configured recipe: {sorted(result['differs'])}")
    note(args, f"report: {report}; figure: {figure}")
    return 0 if result["consistent_with_configured"] else 1
