"""``evaluate`` and ``compare-model``: a model across the test scales, and on two versions of one file.

The commands' options and their work live in ``mnist_large_scale.evaluate``
(``evaluate/cli.py``); this module plugs them into the command line, whose
``main`` turns a bad input into one line and exit status 2.
"""

from __future__ import annotations

import argparse

from ..evaluate.cli import add_commands, compare_model, evaluate

NAMES = ("evaluate", "compare-model")


def add_to(commands) -> None:
    add_commands(commands)
    for name in NAMES:
        commands.choices[name].set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``evaluate`` or ``compare-model``: 0 done, 1 the model sees a difference (compare-model)."""
    return evaluate(args) if args.command == "evaluate" else compare_model(args)
