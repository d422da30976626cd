"""What every command shares: input errors, the config and its schema, input files, raw folders, progress.

Each check here raises ``InputError`` with one line that names the problem
(the file, the key, the option); ``cli.main`` prints it and exits with 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: --help and bad options need neither numpy nor the engine
    from ..names import FileSpec
    from ..recipe import Recipe
    from ..sources import BaseData

__all__ = [
    "InputError",
    "LoadedConfig",
    "PACKAGE_DIR",
    "SCHEMA_PATH",
    "add_config_option",
    "default_config_path",
    "load_config",
    "layout_problem",
    "check_mnist_file",
    "output_file",
    "raw_folder",
    "raw_paths",
    "progress",
    "positive_int",
    "non_negative_int",
    "note",
]

#: workflow/mnist_large_scale: the schema and the repository are found from here, not from
#: the current folder, so that the command works from anywhere.
PACKAGE_DIR = Path(__file__).resolve().parents[1]
#: The workflow's own config schema, the one Snakefile's validate() uses.
SCHEMA_PATH = PACKAGE_DIR.parent / "schemas" / "config.schema.yaml"
#: The checkout that holds the package (its config.yaml is the fallback default).
REPOSITORY = PACKAGE_DIR.parents[1]
SPLITS = ("train", "val", "test")


class InputError(ValueError):
    """Bad input to a command: a file, option or config value; the message is one line that names it."""


def note(args: argparse.Namespace, text: str) -> None:
    """Print an informational line on stderr unless ``--quiet``."""
    if not getattr(args, "quiet", False):
        print(text, file=sys.stderr)


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1."""
    return _bounded_int(text, 1)


def non_negative_int(text: str) -> int:
    """argparse type: a whole number >= 0."""
    return _bounded_int(text, 0)


def _bounded_int(text: str, lowest: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < lowest:
        raise argparse.ArgumentTypeError(f"{value} is less than {lowest}")
    return value


# --- the config -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadedConfig:
    """A config file checked against the schema: its values, base data sets by prefix and recipe."""

    path: Path
    values: dict
    bases: dict[str, BaseData]  # by file-name prefix
    recipe: Recipe

    def base(self, key: str) -> BaseData:
        """The BaseData of a ``base_data`` key; InputError listing the known keys otherwise."""
        found = next((base for base in self.bases.values() if base.key == key), None)
        if found is None:
            known = ", ".join(base.key for base in self.bases.values())
            raise InputError(f"{self.path}: no base data set {key!r} in base_data (known: {known})")
        return found

    def file(self, name: str, counts: bool = False) -> tuple[FileSpec, BaseData]:
        """``(FileSpec, BaseData)`` of a file name, by its prefix (``bases.base_for_name``)."""
        from ..bases import base_for_name

        return base_for_name(name, self.bases, counts=counts)


def add_config_option(parser: argparse.ArgumentParser, what: str) -> None:
    """The ``--config FILE`` option, the same on every command that reads the config."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        help=f"the workflow's config, for {what} (default: config.yaml in the current folder, else the repository's)",
    )


#: The levels of ``integrity.check_file``, cheapest first (named here: the parser must not import h5py).
CHECK_LEVELS = ("layout", "crc", "values")


def add_check_option(parser: argparse.ArgumentParser, default: str, what: str) -> None:
    """The ``--check {layout,crc,values}`` option of the commands that check a file's integrity."""
    parser.add_argument(
        "--check",
        choices=CHECK_LEVELS,
        default=default,
        help=f"{what}: layout (HDF5, the datasets, not truncated; milliseconds), crc (also each dataset's stored "
        f"CRC-32) or values (also the value range [-1, 1]); default {default}. A damaged file makes the exit status 1",
    )


def default_config_path() -> Path | None:
    """config.yaml in the current folder, else the one beside the package's workflow; None when neither exists."""
    for candidate in (Path("config.yaml"), REPOSITORY / "config.yaml"):
        if candidate.is_file():
            return candidate
    return None


def load_config(path: str | os.PathLike | None) -> LoadedConfig:
    """Read a config, check it against the workflow's schema and build its base data sets and recipe.

    Parameters
    ----------
    path : path or None
        The config file; None: ``default_config_path()``.

    Raises
    ------
    InputError
        One line naming the file and the problem: missing, not YAML, the first
        key that breaks the schema (by its path, e.g. ``recipe.gain``), two
        base data sets with one prefix, or a recipe the engine refuses.
    """
    import yaml

    from ..bases import bases_by_prefix
    from ..recipe import Recipe

    config_path = Path(path) if path is not None else default_config_path()
    if config_path is None:
        raise InputError("no config.yaml in the current folder nor in the repository: give --config FILE")
    if not config_path.is_file():
        raise InputError(f"--config {config_path}: no such file")
    try:
        values = yaml.safe_load(config_path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise InputError(f"{config_path}: not valid YAML{where}: {getattr(error, 'problem', None) or error}") from error
    except UnicodeDecodeError as error:
        raise InputError(f"{config_path}: not a text file ({error.reason})") from error
    problem = schema_problem(values)
    if problem:
        raise InputError(f"{config_path}: {problem}")
    try:
        bases = bases_by_prefix(values["base_data"])
        recipe = Recipe.from_config(values["recipe"])
    except (ValueError, TypeError) as error:
        raise InputError(f"{config_path}: {error}") from error
    return LoadedConfig(config_path, values, bases, recipe)


def schema_problem(values) -> str | None:
    """The most telling way ``values`` breaks the workflow's schema, in one line; None when it fits."""
    import jsonschema
    import yaml

    if not SCHEMA_PATH.is_file():
        raise InputError(f"the config schema {SCHEMA_PATH} is missing: the package must be run from its checkout (pip install -e)")
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(values))
    if error is None:
        return None
    where = ".".join(str(part) for part in error.absolute_path) or "the top level"
    return f"{where}: {_one_line(error.message)} (see {SCHEMA_PATH.name})"


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- input files ----------------------------------------------------------------------------


def layout_problem(h5, every_split: bool = True) -> str | None:
    """What keeps an open HDF5 file from being of the published layout; None when it is.

    The layout: ``x_<split>`` of shape ``(n, H, W, 1)`` (a test-only file's
    single train and val sample ``(H, W, 1)``) and ``y_<split>`` for the
    three splits.  With ``every_split`` false, one split is enough, and the
    ones there must be whole.
    """
    import h5py

    present = [split for split in SPLITS if f"x_{split}" in h5 or f"y_{split}" in h5]
    if not present:
        return "no dataset x_train, x_val or x_test"
    for split in SPLITS if every_split else present:
        for kind in ("x", "y"):
            key = f"{kind}_{split}"
            if key not in h5:
                return f"no dataset {key}"
            if not isinstance(h5[key], h5py.Dataset):
                return f"{key} is not a dataset"
        shape = h5[f"x_{split}"].shape
        if len(shape) not in (3, 4) or shape[-1] != 1:
            return f"x_{split} has shape {list(shape)}, not [n, H, W, 1]"
    return None


def check_mnist_file(path: str | os.PathLike, what: str = "file", every_split: bool = True) -> Path:
    """Return ``path`` when it is an HDF5 file of the published layout; InputError naming the problem otherwise.

    ``every_split`` as in ``layout_problem``.
    """
    import h5py

    path = Path(path)
    if not path.exists():
        raise InputError(f"{what} {path}: no such file")
    if not path.is_file():
        raise InputError(f"{what} {path}: not a file")
    if not os.access(path, os.R_OK):
        raise InputError(f"{what} {path}: not readable")
    if not h5py.is_hdf5(path):
        raise InputError(f"{what} {path}: not an HDF5 file")
    try:
        with h5py.File(path, "r") as h5:
            problem = layout_problem(h5, every_split)
    except OSError as error:
        raise InputError(f"{what} {path}: HDF5 cannot read it ({_one_line(str(error))})") from error
    if problem:
        raise InputError(f"{what} {path}: {problem}: not an MNIST Large Scale file")
    return path


def output_file(path: str | os.PathLike, option: str) -> Path:
    """A file to write that the user named: its folder must exist, and it must not be a folder."""
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError(f"{option} {path}: folder {path.parent} does not exist")
    if path.is_dir():
        raise InputError(f"{option} {path}: is a folder; give the file to write")
    return path


def raw_folder(base: BaseData, raw_dir: str | os.PathLike | None) -> Path:
    """The folder of a base data set's raw files, checked to hold each of them.

    Parameters
    ----------
    base : BaseData
    raw_dir : path or None
        ``--raw-dir``; None: ``resources/<base key>``, where the workflow keeps them.
    """
    folder = Path(raw_dir) if raw_dir is not None else Path("resources") / base.key
    option = f"--raw-dir {folder}" if raw_dir is not None else f"raw folder {folder} (the default: give --raw-dir)"
    if not folder.is_dir():
        raise InputError(f"{option}: no such folder")
    missing = [raw.name for raw in base.files.values() if not (folder / raw.name).is_file()]
    if missing:
        raise InputError(
            f"{option}: {', '.join(missing)} missing (the workflow fetches them: snakemake --cores 1 resources/{base.key}/{missing[0]})"
        )
    return folder


def raw_paths(base: BaseData, raw_dir: str | os.PathLike | None) -> dict[str, str]:
    """The path of each raw file of a base data set, by its name, in ``raw_folder(base, raw_dir)``."""
    folder = raw_folder(base, raw_dir)
    return {raw.name: str(folder / raw.name) for raw in base.files.values()}


# --- progress -------------------------------------------------------------------------------


@contextmanager
def progress(args: argparse.Namespace, desc: str, total: int | None = None, unit: str = "img") -> Iterator:
    """A tqdm bar on stderr, drawn only on a terminal and without ``--quiet``; yields its ``update``."""
    from tqdm import tqdm

    disable = True if getattr(args, "quiet", False) else None  # None: tqdm draws only when stderr is a terminal
    with tqdm(total=total, unit=unit, desc=desc, file=sys.stderr, disable=disable, leave=False) as bar:
        yield bar.update
