"""``python -m mnist_large_scale COMMAND ...``: the command line of ``mnist_large_scale.cli``.

The same as the ``mnist-large-scale`` console script; the commands live in
``mnist_large_scale/cli/``, one module each (docs/cli.md).
"""

import sys

from .cli import main as _cli_main

PROG = "python -m mnist_large_scale"


def main(argv: list[str] | None = None) -> int:
    """Run one command under the program name ``python -m mnist_large_scale``; return its exit status."""
    return _cli_main(argv, prog=PROG)


if __name__ == "__main__":
    sys.exit(main())
