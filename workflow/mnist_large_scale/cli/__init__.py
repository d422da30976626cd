"""The command line: ``mnist-large-scale COMMAND ...``, also ``python -m mnist_large_scale COMMAND ...``.

Each command is a module of this package with ``add_to(commands)``, which adds
its subparser and sets ``run``, a function of the parsed arguments that returns
the exit status.  ``COMMANDS`` lists them in the order of ``--help``; a new
command is a new module and one entry there.  ``main`` parses, runs, and turns
bad input into one line on stderr and exit status 2 (docs/cli.md).
"""

from __future__ import annotations

import argparse
import sys
import traceback

from .. import NUMERICS_VERSION, __version__
from . import build, compare, compare_figure, evaluate, inspect, preview, verify
from .common import InputError

__all__ = ["main", "COMMANDS", "InputError"]

#: The command modules, in the order ``--help`` lists them.
COMMANDS = (inspect, verify, compare, compare_figure, build, preview, evaluate)

#: Exit statuses (docs/cli.md).
OK, DIFFERS, BAD_INPUT, INTERNAL_ERROR, INTERRUPTED = 0, 1, 2, 3, 130

DESCRIPTION = """\
Rebuild, inspect and check the files of the MNIST Large Scale data set
(Jansson and Lindeberg, Zenodo 3820247). The workflow itself runs with
snakemake; these commands work on one file at a time."""
EPILOG = """\
exit status:
  0  done (verify, compare: the files match)
  1  verify, compare: a file differs
  2  bad input: a file, name, option or config value (one line on stderr names it)
  3  an internal error (a bug: rerun with --debug for the traceback)

Run a command with --help for its options; docs/cli.md describes them all."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (what is wrong, and where help is), exit status 2."""

    def error(self, message: str):
        self.exit(BAD_INPUT, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _add_shared_options(parser: argparse.ArgumentParser, top: bool) -> None:
    """--debug and --quiet, before the command or after it.

    On a command's parser their default is SUPPRESS, so that an option given
    before the command is not reset by the command's own default.
    """
    default = {} if top else {"default": argparse.SUPPRESS}
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error", **default)
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars or notes on stderr (errors still)", **default)


def parser(prog: str = "mnist-large-scale") -> Parser:
    """The command line's parser, every command of ``COMMANDS`` included."""
    top = Parser(prog=prog, description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    top.add_argument("--version", action="version", version=f"%(prog)s {__version__} (numerics version {NUMERICS_VERSION})")
    _add_shared_options(top, top=True)
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    for command in COMMANDS:
        command.add_to(commands)
    for command_parser in commands.choices.values():
        _add_shared_options(command_parser, top=False)
    top.command_parsers = commands.choices
    return top


def _message(error: BaseException) -> str:
    """An error as one line: an OSError as ``file: reason``, anything else by its text."""
    if isinstance(error, OSError) and error.strerror and error.filename:
        text = f"{error.filename}: {error.strerror}"
    else:
        text = str(error) or type(error).__name__
    return " ".join(text.split())


def main(argv: list[str] | None = None, prog: str = "mnist-large-scale") -> int:
    """Run one command; return its exit status.

    Bad input (``InputError``, a ValueError such as a bad name, an OSError
    such as a missing or unreadable file) is one line on stderr and status 2;
    any other exception is reported as an internal error, status 3.  With
    ``--debug`` the traceback comes first.
    """
    command_line = parser(prog)
    try:
        args, unknown = command_line.parse_known_args(argv)
        if unknown:  # said by the command's parser, whose --help lists the options it knows
            command_line.command_parsers[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    except SystemExit as exit:  # --help, --version, or a usage error already printed
        return exit.code if isinstance(exit.code, int) else BAD_INPUT
    where = f"{prog} {args.command}"
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print(f"{where}: interrupted", file=sys.stderr)
        return INTERRUPTED
    except (ValueError, OSError) as error:
        failure, status, text = error, BAD_INPUT, _message(error)
    except Exception as error:  # a bug: said in one line, the traceback with --debug
        failure, status = error, INTERNAL_ERROR
        text = f"internal error: {type(error).__name__}: {_message(error)} (rerun with --debug for the traceback)"
    if args.debug:
        traceback.print_exception(failure)
    print(f"{where}: {text}", file=sys.stderr)
    return status


def console_main() -> None:
    """The ``mnist-large-scale`` console script."""
    sys.exit(main())
