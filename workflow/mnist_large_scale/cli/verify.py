"""``verify FILE.h5...``: files against the reference checksums of the published set."""

from __future__ import annotations

import argparse
import dataclasses
import json

from .common import InputError, check_mnist_file, progress


def add_to(commands) -> None:
    parser = commands.add_parser(
        "verify",
        help="compare files with the reference checksums of the published set",
        description="Compare .h5 files, rebuilt or copied from elsewhere, with the reference checksums of the "
        "published files as this workflow builds them with the default configuration. Prints one line per file: "
        "match, values match (other container bytes), DIFFERS, or no reference; exits with 1 if any file differs.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help=".h5 files, named as published")
    parser.add_argument("--name", help="the published name of a single FILE that was renamed")
    parser.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print each file's verdict against the reference checksums; 1 if any differs, else 0."""
    from .. import references  # looked up at call time: the tests swap in a table of their own

    if args.name and len(args.files) != 1:
        raise InputError("--name applies to a single FILE")
    paths = [check_mnist_file(path) for path in args.files]
    table = references.load_references()
    verdicts = []
    with progress(args, "verifying", total=len(paths), unit="file") as update:  # sha256 of GBs a file
        for path in paths:
            verdict = references.compare(path, table, name=args.name)
            if verdict.status == references.DIFFERS:
                hint = references.attribute_hint(path, table)
                verdict = verdict if not hint else dataclasses.replace(verdict, reason=f"{verdict.reason}; {hint}")
            verdicts.append(verdict)
            update(1)
    if args.json:
        print(json.dumps([verdict.as_dict() for verdict in verdicts], indent=2))
    else:
        for verdict in verdicts:
            print(verdict.line())
    return 1 if any(verdict.status == references.DIFFERS for verdict in verdicts) else 0
