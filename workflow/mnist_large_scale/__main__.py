"""Command line: ``python -m mnist_large_scale inspect FILE.h5 [--montage out.png]``,
``python -m mnist_large_scale verify FILE.h5...``,
``python -m mnist_large_scale compare PUBLISHED.h5 [REBUILT.h5]``,
``python -m mnist_large_scale build NAME --raw-dir DIR --out FILE.h5`` and
``python -m mnist_large_scale preview BASE --out PNG``.

``inspect`` prints what any MNIST Large Scale file holds, rebuilt or published:
splits, shapes, dtypes, value range, labels, scale or scales and the provenance
attributes when there are any; ``--montage`` also draws its first images.

``verify`` compares files with the reference checksums of the published set
(``references.py``): the same bytes, the same values in other container bytes,
other values, or no reference for that name.

``compare`` compares a file of the published layout (no attributes needed)
with its rebuild, per split, fits the recipe's constants to a sample of its
images and says in one line whether it is identical, equal within float
rounding, or differs, and how (``compare.py``).

``build`` builds one file by hand, outside Snakemake (for debugging and for
measurements), with the config's recipe, seed and storage, and prints as JSON
its wall time and the peak resident memory of this process.

``preview`` draws the first test images of a base data set at a few scales,
computed from its raw files with the config's recipe, without building a file.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from tqdm import tqdm


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mnist_large_scale", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    inspect = commands.add_parser("inspect", help="summarise an MNIST Large Scale .h5 file", description="Summarise an MNIST Large Scale .h5 file, rebuilt or published.")
    inspect.add_argument("file", help="the .h5 file")
    inspect.add_argument("--montage", metavar="PNG", help="also draw the first images of a split into this PNG")
    inspect.add_argument("--split", choices=("train", "val", "test"), default="test", help="the split of the montage (default: test)")
    inspect.add_argument("--count", type=int, default=64, help="images in the montage (default: 64)")
    inspect.add_argument("--max-images", type=int, default=None, metavar="N", help="scan only the first N images of each split for the value range (default: all)")
    inspect.add_argument("--chunk-images", type=int, default=500, metavar="N", help="images read at a time (default: 500, 50 MB at 112 x 112)")
    inspect.add_argument("--json", action="store_true", help="print the summary as JSON")
    inspect.add_argument(
        "--config",
        default="config.yaml",
        help="the workflow's config, for the class names of the file's base data set (default: config.yaml; none when it does not exist)",
    )
    verify = commands.add_parser(
        "verify",
        help="compare files with the reference checksums of the published set",
        description="Compare .h5 files, rebuilt or copied from elsewhere, with the reference checksums of the "
        "published files as this workflow builds them with the default configuration. Prints one line per file: "
        "match, values match (other container bytes), DIFFERS, or no reference; exits with 1 if any file differs.",
    )
    verify.add_argument("files", nargs="+", metavar="FILE", help=".h5 files, named as published")
    verify.add_argument("--name", help="the published name of a single FILE that was renamed")
    verify.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    compare = commands.add_parser(
        "compare",
        help="compare a published file with its rebuild and fit the recipe",
        description="Compare a file of the published layout (attributes not needed) with its rebuild: labels, "
        "differences and correlations per split, a recipe fitted to a sample of its images, and a verdict in one "
        "line. Writes a JSON report and a figure; exits with 1 when the file differs from the rebuild.",
    )
    compare.add_argument("published", help="the published .h5 file")
    compare.add_argument("rebuilt", nargs="?", help="a rebuilt file to compare with (default: the images are computed from raw MNIST, nothing is written)")
    compare.add_argument("--name", help="the file's published name, when it was renamed")
    compare.add_argument("--scale-train", metavar="TAG", help="scale tag of the train and val splits (2p000, 1p000-4p000), replacing the name's")
    compare.add_argument("--scale-test", metavar="TAG", help="scale tag of the test split (of every split in a test-only file), replacing the name's")
    compare.add_argument("--config", default="config.yaml", help="the workflow's config: base data, recipe, seed (default: config.yaml)")
    compare.add_argument("--raw-dir", help="folder with the raw files (default: resources/<base key>, the workflow's cache)")
    compare.add_argument("--fit-images", type=int, default=200, metavar="N", help="images per split for the recipe fit (default: 200; 0: no fit)")
    compare.add_argument("--max-images", type=int, default=None, metavar="N", help="compare only the first N images of each split (default: all)")
    compare.add_argument("--report", metavar="JSON", help="the JSON report (default: <file stem>.compare.json here)")
    compare.add_argument("--figure", metavar="PNG", help="the figure (default: <file stem>.compare.png here)")
    compare.add_argument("--threads", type=int, default=1, help="engine threads (default: 1)")
    build = commands.add_parser("build", help="build one file outside Snakemake and print its time and peak memory")
    build.add_argument("name", help="a file name of the grammar, e.g. mnist_large_scale_te10000_outsize112-112_scte2p000.h5")
    build.add_argument("--raw-dir", required=True, help="folder with the base data set's raw files")
    build.add_argument("--out", required=True, help="the .h5 file to write")
    build.add_argument("--config", default="config.yaml", help="the workflow's config (default: config.yaml)")
    build.add_argument("--threads", type=int, default=1, help="engine threads (default: 1)")
    build.add_argument("--chunk-images", type=int, default=None, help="images per block (default: the config's output.chunk_images)")
    build.add_argument("--buffered", action="store_true", help="write through the page cache, as with output.direct_io: false (default: the config's setting)")
    figure = commands.add_parser(
        "compare-figure",
        help="fit the recipe to a montage of published images (a PNG of imshow panels)",
        description="Decode a montage of published images (a grid of imshow panels, each autoscaled, one colormap), "
        "calibrate a display model on a montage drawn here through the same matplotlib calls, and fit the stretch form, "
        "sigma_per_scale, gain, offset, centre shift, order and clip (and each digit's scale for a range file). Writes a JSON "
        "report and a figure (published panel, rebuilt panel, difference); exits with 1 when the figure differs from the configured recipe.",
    )
    figure.add_argument("png", help="the montage")
    figure.add_argument("--name", required=True, help="the published file the montage shows, e.g. mnist_large_scale_te10000_outsize112-112_scte2p000.h5")
    figure.add_argument("--split", choices=("train", "val", "test"), default="test", help="the split the panels show (default: test)")
    figure.add_argument("--first", type=int, default=0, help="index in the split of the first panel (default: 0)")
    figure.add_argument("--rows", type=int, default=8, help="panel rows (default: 8)")
    figure.add_argument("--cols", type=int, default=8, help="panel columns (default: 8)")
    figure.add_argument("--colormap", default="viridis", help="the panels' colormap (default: viridis)")
    figure.add_argument("--config", default="config.yaml", help="the workflow's config: the recipe compared with (default: config.yaml)")
    figure.add_argument("--raw-dir", default="resources/mnist", help="folder with the raw MNIST files (default: resources/mnist)")
    figure.add_argument("--bootstrap", type=int, default=300, help="bootstrap draws over the digits (default: 300)")
    figure.add_argument("--report", metavar="JSON", help="the JSON report (default: <png stem>.figure.json here)")
    figure.add_argument("--figure", metavar="PNG", help="the comparison figure (default: <png stem>.figure.png here)")
    preview = commands.add_parser(
        "preview",
        help="draw a base data set's first test images at a few scales, from its raw files",
        description="Draw the first test images of a base data set at a few scales, computed from its raw files with the config's recipe: one row per scale.",
    )
    preview.add_argument("base", help="the key of the base data set in the config, e.g. fashion_mnist")
    preview.add_argument("--out", required=True, help="the PNG to write")
    preview.add_argument("--scales", type=float, nargs="+", default=[1.0, 2.0, 4.0], help="one row per scale (default: 1 2 4)")
    preview.add_argument("--count", type=int, default=8, help="images per row (default: 8)")
    preview.add_argument("--size", type=int, default=112, help="output image size in pixels (default: 112)")
    preview.add_argument("--raw-dir", help="folder with the base's raw files (default: resources/<base>)")
    preview.add_argument("--config", default="config.yaml", help="the workflow's config (default: config.yaml)")
    return parser


def _preview(args) -> str:
    """Draw the first ``args.count`` test images of a base at each of ``args.scales``; returns what was drawn."""
    from pathlib import Path

    import numpy as np
    import yaml

    from .build import load_split
    from .engine import transform_images
    from .figures import montage_figure, save_figure
    from .recipe import Recipe
    from .sources import BaseData, verify_raw_files

    config = yaml.safe_load(Path(args.config).read_text())
    base = BaseData.from_config(args.base, config["base_data"][args.base])
    folder = Path(args.raw_dir or Path("resources") / args.base)
    raw_paths = {raw.name: str(folder / raw.name) for raw in base.files.values()}
    verify_raw_files(base, raw_paths)
    images, labels = load_split(base, raw_paths, "test", args.count)
    rows = [transform_images(images, np.full(len(images), scale), (args.size, args.size), Recipe.from_config(config["recipe"])) for scale in args.scales]
    figure = montage_figure(
        np.concatenate(rows),
        np.tile(labels, len(rows)),
        f"{base.key}: the first {len(images)} test images at s = {', '.join(f'{scale:g}' for scale in args.scales)}",
        f"{args.size} x {args.size} px; rows from top: s = {', '.join(f'{scale:g}' for scale in args.scales)}",
        ncols=len(images),
        classes=base.classes,
    )
    save_figure(figure, args.out)
    return f"{len(rows)} rows of {len(images)} {base.key} test images: {args.out}"


def _build(args) -> dict:
    """Build one file as the build rule does; return its wall time and this process's peak memory."""
    import functools
    import time
    from pathlib import Path

    import yaml

    from .build import build_file
    from .engine import transform_images
    from .names import check_counts, parse_name
    from .recipe import Recipe
    from .sources import BaseData
    from .writer import OutputOptions

    config = yaml.safe_load(Path(args.config).read_text())
    bases = [BaseData.from_config(key, entry) for key, entry in config["base_data"].items()]
    spec = parse_name(args.name, prefixes=tuple(base.prefix for base in bases))
    base = next(base for base in bases if base.prefix == spec.prefix)
    check_counts(spec, base.available())
    options = OutputOptions.from_config(config["output"])
    if args.chunk_images:
        options = dataclasses.replace(options, chunk_images=args.chunk_images)
    if args.buffered:
        options = dataclasses.replace(options, direct_io=False)
    start = time.perf_counter()
    build_file(
        spec,
        base,
        {raw.name: str(Path(args.raw_dir) / raw.name) for raw in base.files.values()},
        args.out,
        Recipe.from_config(config["recipe"]),
        functools.partial(transform_images, threads=args.threads),
        seed=config["scale_seed"],
        options=options,
    )
    return {"seconds": time.perf_counter() - start, "peak_rss_mb": peak_rss_mb()}


def _verify(args) -> int:
    """Print each file's verdict against the reference checksums; 1 if any differs, else 0."""
    from .references import DIFFERS, attribute_hint, compare, load_references

    if args.name and len(args.files) != 1:
        print("--name applies to a single FILE", file=sys.stderr)
        return 2
    table = load_references()
    verdicts = []
    for path in args.files:
        verdict = compare(path, table, name=args.name)
        if verdict.status == DIFFERS:
            hint = attribute_hint(path, table)
            verdict = verdict if not hint else dataclasses.replace(verdict, reason=f"{verdict.reason}; {hint}")
        verdicts.append(verdict)
    if args.json:
        print(json.dumps([verdict.as_dict() for verdict in verdicts], indent=2))
    else:
        for verdict in verdicts:
            print(verdict.line())
    return 1 if any(verdict.status == DIFFERS for verdict in verdicts) else 0


def _compare(args) -> int:
    """Compare one file with its rebuild; print the summary, write the report and figure; 1 if it differs."""
    from pathlib import Path

    import yaml

    from .compare import DIFFERS, compare_file, recipe_snippet
    from .figures import comparison_figure, save_figure
    from .writer import atomic_path

    config = yaml.safe_load(Path(args.config).read_text())
    stem = Path(args.published).name.removesuffix(".h5")
    with tqdm(unit="img", desc="rebuilding", file=sys.stderr, disable=None, leave=False) as bar:
        try:
            result = compare_file(
                args.published,
                config,
                raw_dir=args.raw_dir,
                rebuilt_path=args.rebuilt,
                name=args.name,
                scale_train=args.scale_train,
                scale_test=args.scale_test,
                fit_images=args.fit_images,
                max_images=args.max_images,
                threads=args.threads,
                progress=bar.update,
            )
        except (ValueError, OSError) as error:  # a bad name, option, raw file or HDF5 file
            print(f"compare: {error}", file=sys.stderr)
            return 2
    report = Path(args.report or f"{stem}.compare.json")
    figure = Path(args.figure or f"{stem}.compare.png")
    with atomic_path(report) as tmp:
        Path(tmp).write_text(json.dumps(result.as_dict(), indent=2) + "\n")
    rows = [(split.split, split.sample["published"], split.sample["rebuilt"], split.sample["mean_difference"]) for split in result.splits if split.sample]
    save_figure(comparison_figure(rows, f"{result.name}: published, rebuilt, difference"), figure)
    for note in result.notes:
        print(f"note: {note}")
    for split in result.splits:
        print(f"{split.split}: {split.count} images at scale {split.scale}; {split.labels}")
        if split.compared:
            print(
                f"  max |diff| {split.max_abs_difference:.3g}, bit-identical images {100 * split.identical_images:.1f} %, "
                f"correlation mean {split.correlation_mean:.6f} (min {split.correlation_min:.6f}), "
                f"mean images differ by up to {split.mean_image_difference:.3g}"
            )
        for note in split.notes:
            print(f"  note: {note}")
    if result.fit is not None:
        fit = result.fit
        print(f"fit on {fit.images} images: RMS {fit.residual_before:.2e} with the configured recipe, {fit.residual_after:.2e} fitted (max |diff| {fit.max_after:.2e})")
        for constant, why in fit.identifiable.items():
            print(f"  {constant}: not identifiable here: {why}")
        if result.verdict == DIFFERS:
            print("the fitted recipe, for config.yaml:")
            print(recipe_snippet(fit.recipe), end="")
    print(result.line)
    print(f"report: {report}; figure: {figure}", file=sys.stderr)
    return 1 if result.verdict == DIFFERS else 0


def _compare_figure(args) -> int:
    """Fit the recipe to a montage; print the verdict, write the report and figure; 1 if it differs from the configured recipe."""
    from pathlib import Path

    import numpy as np
    import yaml

    from .build import load_split
    from .figure_fit import analyse_figure
    from .figures import comparison_figure, save_figure
    from .names import parse_name
    from .recipe import Recipe
    from .sources import BaseData
    from .writer import atomic_path

    config = yaml.safe_load(Path(args.config).read_text())
    try:
        spec = parse_name(args.name)
        scale = spec.test_scale if args.split == "test" or spec.train_scale is None else spec.train_scale
        base = BaseData.from_config("mnist", config["base_data"]["mnist"])
        raw_paths = {raw.name: str(Path(args.raw_dir) / raw.name) for raw in base.files.values()}
        count = args.rows * args.cols
        images, labels = load_split(base, raw_paths, args.split, args.first + count)
        images, labels = images[args.first :], labels[args.first :]
        analysis = analyse_figure(
            Path(args.png).read_bytes(), args.rows, args.cols, args.colormap, images, labels,
            None if scale.is_range else np.full(count, scale.low), spec.out_shape, Recipe.from_config(config["recipe"]),
            scale_range=(scale.low, scale.high) if scale.is_range else None, bootstrap=args.bootstrap,
        )
    except (ValueError, OSError) as error:
        print(f"compare-figure: {error}", file=sys.stderr)
        return 2
    stem = Path(args.png).name.removesuffix(".png")
    report, figure = Path(args.report or f"{stem}.figure.json"), Path(args.figure or f"{stem}.figure.png")
    result = {"file": args.name, "split": args.split, "first": args.first, **analysis.result}
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
    print(f"report: {report}; figure: {figure}", file=sys.stderr)
    return 0 if result["consistent_with_configured"] else 1


def _classes(config_path: str, path: str, attributes: dict) -> list[str]:
    """The class names of a file's base data set: the config entry its ``base_data`` attribute
    names, or (a published file has no attributes) whose prefix its name has; [] when unknown."""
    from pathlib import Path

    import yaml

    from .names import InvalidName, parse_name

    if not Path(config_path).is_file():
        return []
    bases = (yaml.safe_load(Path(config_path).read_text()) or {}).get("base_data") or {}
    entry = bases.get(attributes.get("base_data"))
    if entry is None:
        try:
            prefix = parse_name(path, prefixes=tuple(base["prefix"] for base in bases.values())).prefix
        except InvalidName:
            return []
        entry = next(base for base in bases.values() if base["prefix"] == prefix)
    return list(entry.get("classes") or [])


def peak_rss_mb() -> float:
    """Peak resident memory of this process image, in MB (VmHWM, Linux).

    Not ``ru_maxrss``: Linux carries a parent's resident size over ``exec``, so
    a child started by a large process would report the parent's peak.
    """
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "inspect":
        from .figures import file_montage, save_figure  # matplotlib: only where a montage may be drawn
        from .inspect_file import format_summary, summarize_file

        # The bar goes to stderr and only on a terminal (disable=None), so pipes stay clean.
        with tqdm(unit="img", desc="scanning", file=sys.stderr, disable=None, leave=False) as bar:
            summary = summarize_file(args.file, chunk_images=args.chunk_images, max_images=args.max_images, progress=bar.update)
        classes = _classes(args.config, args.file, summary["attributes"])
        if any(name != str(label) for label, name in enumerate(classes)):  # MNIST's digits name themselves
            summary["classes"] = classes
        print(json.dumps(summary, indent=2) if args.json else format_summary(summary), end="" if not args.json else "\n")
        if args.montage:
            save_figure(file_montage(args.file, args.split, args.count, classes=classes), args.montage)
            print(f"montage of the first {args.split} images: {args.montage}", file=sys.stderr)
    elif args.command == "verify":
        return _verify(args)
    elif args.command == "compare":
        return _compare(args)
    elif args.command == "compare-figure":
        return _compare_figure(args)
    elif args.command == "build":
        print(json.dumps(_build(args)))
    elif args.command == "preview":
        print(_preview(args), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
