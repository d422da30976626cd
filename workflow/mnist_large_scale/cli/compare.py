"""``compare PUBLISHED.h5 [REBUILT.h5]``: a file of the published layout against its rebuild."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .common import (
    InputError,
    add_config_option,
    check_mnist_file,
    load_config,
    non_negative_int,
    note,
    output_file,
    positive_int,
    progress,
    raw_folder,
)

#: Where the report and figure go without --out-dir: beside the workflow's other reports
#: (results/validation/, results/figures/), not beside the compared file, whose folder may be
#: a read-only download, and not the current folder, which is often the repository's root.
DEFAULT_OUT_DIR = Path("results") / "compare"


def add_to(commands) -> None:
    parser = commands.add_parser(
        "compare",
        help="compare a published file with its rebuild and fit the recipe",
        description="Compare a file of the published layout (attributes not needed) with its rebuild: labels, "
        "differences and correlations per split, a recipe fitted to a sample of its images, and a verdict in one "
        "line. Writes a JSON report and a figure (into results/compare/ unless told otherwise); exits with 1 "
        "when the file differs from the rebuild.",
    )
    parser.add_argument("published", help="the published .h5 file")
    parser.add_argument("rebuilt", nargs="?", help="a rebuilt file to compare with (default: the images are computed from the raw files)")
    parser.add_argument("--name", help="the file's published name, when it was renamed")
    parser.add_argument("--scale-train", metavar="TAG", help="scale tag of the train and val splits (2p000, 1p000-4p000), replacing the name's")
    parser.add_argument("--scale-test", metavar="TAG", help="scale tag of the test split (of every split in a test-only file), replacing the name's")
    add_config_option(parser, "the base data, recipe and seed of the rebuild")
    parser.add_argument("--raw-dir", metavar="DIR", help="folder with the raw files (default: resources/<base key>, the workflow's cache)")
    parser.add_argument("--fit-images", type=non_negative_int, default=200, metavar="N", help="images per split for the recipe fit (default: 200; 0: no fit)")
    parser.add_argument("--max-images", type=positive_int, metavar="N", help="compare only the first N images of each split (default: all)")
    parser.add_argument("--out-dir", metavar="DIR", help=f"folder for the report and the figure (default: {DEFAULT_OUT_DIR}/)")
    parser.add_argument("--report", metavar="JSON", help="the JSON report (default: <out dir>/<file stem>.compare.json)")
    parser.add_argument("--figure", metavar="PNG", help="the figure (default: <out dir>/<file stem>.compare.png)")
    parser.add_argument("--threads", type=positive_int, default=1, metavar="N", help="engine threads (default: 1)")
    parser.set_defaults(run=run)


def report_paths(args: argparse.Namespace, stem: str, kind: str = "compare") -> tuple[Path, Path]:
    """Where the JSON report and the figure go: --report and --figure, else ``<out dir>/<stem>.<kind>.*``."""
    out_dir = Path(args.out_dir) if args.out_dir else DEFAULT_OUT_DIR
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out-dir {out_dir}: not a folder")
    report = output_file(args.report, "--report") if args.report else out_dir / f"{stem}.{kind}.json"
    figure = output_file(args.figure, "--figure") if args.figure else out_dir / f"{stem}.{kind}.png"
    return report, figure


def run(args: argparse.Namespace) -> int:
    """Compare one file with its rebuild; print the summary, write the report and figure; 1 if it differs."""
    from ..compare import DIFFERS, compare_file
    from ..figures import comparison_figure, save_figure
    from ..writer import atomic_path

    published = check_mnist_file(args.published, "published file")
    rebuilt = check_mnist_file(args.rebuilt, "rebuilt file") if args.rebuilt else None
    report, figure = report_paths(args, published.name.removesuffix(".h5"))  # checked before the work, made after it
    config = load_config(args.config)
    _, base = config.file(args.name or published.name)
    raw_dir = raw_folder(base, args.raw_dir)
    with progress(args, "rebuilding") as update:
        result = compare_file(
            published,
            config.values,
            raw_dir=raw_dir,
            rebuilt_path=rebuilt,
            name=args.name,
            scale_train=args.scale_train,
            scale_test=args.scale_test,
            fit_images=args.fit_images,
            max_images=args.max_images,
            threads=args.threads,
            progress=update,
        )
    for path in (report, figure):
        path.parent.mkdir(parents=True, exist_ok=True)  # only --out-dir (or its default) can be missing
    with atomic_path(report) as tmp:
        Path(tmp).write_text(json.dumps(result.as_dict(), indent=2) + "\n")
    rows = [(split.split, split.sample["published"], split.sample["rebuilt"], split.sample["mean_difference"]) for split in result.splits if split.sample]
    save_figure(comparison_figure(rows, f"{result.name}: published, rebuilt, difference"), figure)
    print_comparison(result)
    note(args, f"report: {report}; figure: {figure}")
    return 1 if result.verdict == DIFFERS else 0


def print_comparison(result) -> None:
    """The comparison on stdout: notes, one paragraph per split, the fit, and the verdict last."""
    from ..compare import DIFFERS, recipe_snippet

    for line in result.notes:
        print(f"note: {line}")
    for split in result.splits:
        print(f"{split.split}: {split.count} images at scale {split.scale}; {split.labels}")
        if split.compared:
            print(
                f"  max |diff| {split.max_abs_difference:.3g}, bit-identical images {100 * split.identical_images:.1f} %, "
                f"correlation mean {split.correlation_mean:.6f} (min {split.correlation_min:.6f}), "
                f"mean images differ by up to {split.mean_image_difference:.3g}"
            )
        for line in split.notes:
            print(f"  note: {line}")
    if result.fit is not None:
        fit = result.fit
        print(f"fit on {fit.images} images: RMS {fit.residual_before:.2e} with the configured recipe, {fit.residual_after:.2e} fitted (max |diff| {fit.max_after:.2e})")
        for constant, why in fit.identifiable.items():
            print(f"  {constant}: not identifiable here: {why}")
        if result.verdict == DIFFERS:
            print("the fitted recipe, for config.yaml:")
            print(recipe_snippet(fit.recipe), end="")
    print(result.line)
