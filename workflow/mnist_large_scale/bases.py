"""The config's base data sets, and which of them a file name's prefix selects.

A file name begins with the prefix of one ``base_data`` entry
(``mnist_large_scale_...``, ``fashion_mnist_large_scale_...``); that entry's raw
files, splits and classes are the ones the file is built from.  The workflow's
input functions, the command line and ``compare`` all find the entry here.
"""

from __future__ import annotations

from collections.abc import Mapping

from .names import FileSpec, check_counts, parse_name
from .sources import BaseData

__all__ = ["bases_by_prefix", "base_for_name"]


def bases_by_prefix(base_data: Mapping[str, Mapping]) -> dict[str, BaseData]:
    """The config's base data sets, keyed by their file-name prefix.

    Parameters
    ----------
    base_data : mapping
        The config's ``base_data`` section: ``{key: entry}``.

    Returns
    -------
    dict of str to BaseData
        In the config's order.

    Raises
    ------
    ValueError
        When two entries share one prefix (a name would not say which one it means).
    """
    bases: dict[str, BaseData] = {}
    for key, entry in base_data.items():
        base = BaseData.from_config(key, entry)
        if base.prefix in bases:
            raise ValueError(f"base_data.{bases[base.prefix].key} and base_data.{key} share the prefix {base.prefix!r}")
        bases[base.prefix] = base
    return bases


def base_for_name(name: str, bases: Mapping[str, BaseData], counts: bool = False) -> tuple[FileSpec, BaseData]:
    """Parse a file name and find the base data set its prefix selects.

    Parameters
    ----------
    name : str
        A file name of the grammar, with or without folder and ``.h5``.
    bases : mapping of str to BaseData
        ``bases_by_prefix(config['base_data'])``.
    counts : bool
        Also check that the base data set holds as many images per split as
        the name asks for (a build needs them; a comparison may not).

    Returns
    -------
    spec : FileSpec
    base : BaseData

    Raises
    ------
    InvalidName
        A ValueError saying which part of the name is wrong, or which prefix
        is unknown and which are known.
    """
    spec = parse_name(name, prefixes=tuple(bases))
    base = bases[spec.prefix]
    if counts:
        check_counts(spec, base.available())
    return spec, base
