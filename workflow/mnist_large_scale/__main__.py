"""Command line: ``python -m mnist_large_scale inspect FILE.h5 [--montage out.png]``.

``inspect`` prints what any MNIST Large Scale file holds, rebuilt or published:
splits, shapes, dtypes, value range, labels, scale or scales and the provenance
attributes when there are any; ``--montage`` also draws its first images.
"""

from __future__ import annotations

import argparse
import json
import sys

from tqdm import tqdm

from .figures import file_montage, save_figure
from .summary import format_summary, summarize_file


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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "inspect":
        # The bar goes to stderr and only on a terminal (disable=None), so pipes stay clean.
        with tqdm(unit="img", desc="scanning", file=sys.stderr, disable=None, leave=False) as bar:
            summary = summarize_file(args.file, chunk_images=args.chunk_images, max_images=args.max_images, progress=bar.update)
        print(json.dumps(summary, indent=2) if args.json else format_summary(summary), end="" if not args.json else "\n")
        if args.montage:
            save_figure(file_montage(args.file, args.split, args.count), args.montage)
            print(f"montage of the first {args.split} images: {args.montage}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
