"""``verify FILE.h5...``: files against the reference checksums of the published set."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from .common import InputError, add_check_option, progress


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
    add_check_option(parser, "crc", "what a file that is not a byte-for-byte match must also pass (DAMAGED otherwise)")
    parser.set_defaults(run=run)


#: verify's status of a file that fails its own integrity (not HDF5, truncated, not the layout, CRC-32).
DAMAGED = "DAMAGED"


def run(args: argparse.Namespace) -> int:
    """Print each file's verdict against the reference checksums; 1 if any differs or is damaged, else 0."""
    from .. import references  # looked up at call time: the tests swap in a table of their own

    if args.name and len(args.files) != 1:
        raise InputError("--name applies to a single FILE")
    missing = [path for path in args.files if not Path(path).is_file()]
    if missing:
        raise InputError(f"{missing[0]}: no such file")
    tables = references.load_reference_tables()
    verdicts = []
    with progress(args, "verifying", total=len(args.files), unit="file") as update:  # sha256 of GBs a file
        for path in args.files:
            verdicts.append(verify_one(path, tables, args.name, args.check))
            update(1)
    if args.json:
        print(json.dumps([verdict.as_dict() for verdict in verdicts], indent=2))
    else:
        for verdict in verdicts:
            print(verdict.line())
    return 1 if any(verdict.status in (references.DIFFERS, DAMAGED) for verdict in verdicts) else 0


def verify_one(path: str, tables: list, name: str | None, check: str):
    """One file's verdict against the table it was built for (``references.table_for``).

    A file that fails the layout check, or ``check`` when it is not a match, is DAMAGED.
    """
    from .. import references
    from ..integrity import check_file

    label = name or Path(path).name
    integrity = check_file(path, "layout")
    if integrity.ok:
        try:
            table = references.table_for(path, tables)
            verdict = references.compare(path, table, name=name)
        except (OSError, RuntimeError, KeyError) as error:  # HDF5 cannot read what its metadata promises
            text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            return references.Verdict(label, DAMAGED, "", reason=f"HDF5 cannot read it ({text})")
        integrity = None if verdict.status == references.MATCH or check == "layout" else check_file(path, check)
    if integrity is not None and not integrity.ok:
        more = f" (and {len(integrity.problems) - 1} more)" if len(integrity.problems) > 1 else ""
        return references.Verdict(label, DAMAGED, "", reason=integrity.problems[0] + more)
    if verdict.status == references.DIFFERS:
        hint = references.attribute_hint(path, table)
        verdict = verdict if not hint else dataclasses.replace(verdict, reason=f"{verdict.reason}; {hint}")
    return verdict
