"""``build NAME``: one file built outside Snakemake, with its wall time and peak memory."""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from .common import add_config_option, load_config, output_file, positive_int, progress, raw_paths


def add_to(commands) -> None:
    parser = commands.add_parser(
        "build",
        help="build one file outside Snakemake and print its time and peak memory",
        description="Build one file as the workflow's build rule does, with the config's recipe, seed and storage, "
        "from raw files already fetched (snakemake fetches them), and print as JSON its wall time and the peak "
        "resident memory of this process. For debugging and measurements; the workflow builds the published set.",
    )
    parser.add_argument("name", help="a file name of the grammar, e.g. mnist_large_scale_te10000_outsize112-112_scte2p000.h5")
    parser.add_argument("--raw-dir", metavar="DIR", help="folder with the base data set's raw files (default: resources/<base key>, the workflow's cache)")
    parser.add_argument("--out", metavar="FILE", help="the .h5 file to write (default: results/<name>, where the workflow puts it)")
    add_config_option(parser, "the base data, recipe, seed and storage")
    parser.add_argument("--threads", type=positive_int, default=1, metavar="N", help="engine threads (default: 1)")
    parser.add_argument("--chunk-images", type=positive_int, metavar="N", help="images per block (default: the config's output.chunk_images)")
    parser.add_argument("--buffered", action="store_true", help="write through the page cache, as with output.direct_io: false (default: the config's setting)")
    parser.set_defaults(run=run)


def output_path(out: str | None, name: str) -> Path:
    """``--out``, whose folder must exist, or ``results/<name>``, whose folder is made."""
    if out is None:
        path = Path("results") / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path
    return output_file(out, "--out")


def run(args: argparse.Namespace) -> int:
    """Build one file as the build rule does; print its wall time and this process's peak memory as JSON."""
    from ..build import build_file, transform_for
    from ..writer import OutputOptions

    config = load_config(args.config)
    spec, base = config.file(args.name, counts=True)
    paths = raw_paths(base, args.raw_dir)
    out = output_path(args.out, spec.name)
    options = OutputOptions.from_config(config.values["output"])
    if args.chunk_images:
        options = dataclasses.replace(options, chunk_images=args.chunk_images)
    if args.buffered:
        options = dataclasses.replace(options, direct_io=False)
    start = time.perf_counter()
    with progress(args, "building", total=sum(spec.split_count(split) for split in ("train", "val", "test"))) as update:
        build_file(
            spec,
            base,
            paths,
            out,
            config.recipe,
            transform_for(config.recipe, args.threads),
            seed=config.values["scale_seed"],
            options=options,
            progress=update,
        )
    print(json.dumps({"file": str(out), "seconds": time.perf_counter() - start, "peak_rss_mb": peak_rss_mb()}))
    return 0


def peak_rss_mb() -> float:
    """Peak resident memory of this process image, in MB (VmHWM, Linux).

    Not ``ru_maxrss``: Linux carries a parent's resident size over ``exec``, so
    a child started by a large process would report the parent's peak.
    """
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
