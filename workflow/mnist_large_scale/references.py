"""Reference checksums: the bytes every build of the published files must give.

The workflow's numerics do not depend on the machine, so the 21 published file
names, built with the default configuration, have one sha256 each, whoever
builds them.  ``reference_checksums.tsv`` (beside this module) records them, and
for each file also the digest of each of its datasets' values alone
(``digest.dataset_sha256s``) and of the file's values (``digest.values_sha256``),
so that a file written by another HDF5 library (other container bytes) can
still be checked value for value, and a difference is named by dataset.  Its header records the configuration the
references hold for: a build under another recipe, seed, storage, base data or
numerics version has no reference.

A file compares as one of:

``match``
    its sha256 is the reference's: the same bytes as everyone else's;
``values match``
    other container bytes (another HDF5 library, other attributes), the same values;
``DIFFERS``
    other values (the datasets that differ are named): not the file that
    everyone else has;
``no reference``
    the name is not one of the referenced names, or it was built under another
    configuration than the references'.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import h5py

from .digest import dataset_sha256s, file_sha256, values_sha256
from .recipe_constants import RECORDED_WHEN_SET
from .reference_config import EARLIER_TABLES, TABLE_NAME, reference_configuration
from .writer import write_text_atomically

__all__ = ["ReferenceTable", "Verdict", "reference_configuration", "load_references", "load_reference_tables", "table_for", "compare", "write_references"]

MATCH, VALUES_MATCH, DIFFERS, NO_REFERENCE = "match", "values match", "DIFFERS", "no reference"


@dataclass(frozen=True)
class ReferenceTable:
    """The recorded checksums, valid under ``configuration``.

    ``rows[name] = (sha256, values_sha256, {dataset: sha256 of its values})``.
    """

    configuration: dict
    rows: dict[str, tuple[str, str, dict[str, str]]]

    def applies_to(self, configuration: dict) -> bool:
        return json.dumps(configuration, sort_keys=True) == json.dumps(self.configuration, sort_keys=True)


@dataclass(frozen=True)
class Verdict:
    """How one file compares with its reference."""

    file: str
    status: str
    sha256: str
    reference_sha256: str | None = None
    values_sha256: str | None = None
    reference_values_sha256: str | None = None
    reason: str = ""

    def line(self) -> str:
        """One line for people: the status, the file, and why where it is not a match."""
        text = f"{self.status:<13} {self.file}"
        return f"{text}  ({self.reason})" if self.reason else text

    def as_dict(self) -> dict:
        return {key: value for key, value in self.__dict__.items() if value not in (None, "")}


def load_references(path: str | os.PathLike | None = None) -> ReferenceTable:
    """Read the table (the package's own unless ``path`` is given).

    The format: ``# configuration: {json}`` then lines
    ``name<TAB>sha256<TAB>values_sha256<TAB>{json of the datasets' sha256}``.
    """
    text = Path(path).read_text() if path else resources.files(__package__).joinpath(TABLE_NAME).read_text()
    configuration, rows = None, {}
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("# configuration: "):
            configuration = json.loads(line[len("# configuration: ") :])
        elif line and not line.startswith("#"):
            fields = line.split("\t")
            if len(fields) != 4 or not all(len(field) == 64 for field in fields[1:3]):
                raise ValueError(
                    f"{path or TABLE_NAME}, line {number}: expected name, sha256, values sha256 and the datasets' sha256 (JSON) "
                    "separated by tabs"
                )
            rows[fields[0]] = (fields[1], fields[2], json.loads(fields[3]))
    if configuration is None:
        raise ValueError(f"{path or TABLE_NAME}: no '# configuration:' line")
    return ReferenceTable(configuration, rows)


def load_reference_tables() -> list[ReferenceTable]:
    """The package's tables: the current one first (``TABLE_NAME``), then those of earlier defaults.

    A table of an earlier default (``EARLIER_TABLES``: a numerics version or a
    default recipe that has since changed) is kept so that files built under it
    are still recognised; ``table_for`` picks the table a file was built for.
    """
    return [load_references(), *(load_references(resources.files(__package__).joinpath(name)) for name in EARLIER_TABLES)]


def table_for(path: str | os.PathLike, tables: list[ReferenceTable]) -> ReferenceTable:
    """The table whose numerics version and recipe are those the file records; the first table otherwise.

    A file without provenance attributes (a published file, or one written by
    another program) is compared with the first, the current, table.
    """
    with h5py.File(path, "r") as h5:
        attrs = dict(h5.attrs)
    if "numerics_version" not in attrs or "recipe" not in attrs:
        return tables[0]
    recipe = {**RECORDED_WHEN_SET, **json.loads(attrs["recipe"])}
    for table in tables:
        configuration = table.configuration
        if int(attrs["numerics_version"]) == configuration["numerics_version"] and recipe == {**RECORDED_WHEN_SET, **configuration["recipe"]}:
            return table
    return tables[0]


def compare(
    path: str | os.PathLike,
    table: ReferenceTable,
    configuration: dict | None = None,
    sha256: str | None = None,
    name: str | None = None,
) -> Verdict:
    """Compare one file with its reference.

    Parameters
    ----------
    path : path
        The .h5 file.
    table : ReferenceTable
    configuration : dict, optional
        The configuration the file was built under (``reference_configuration``);
        when it is not the table's, there is no reference.  None: not known (a
        file from elsewhere), compare by name alone.
    sha256 : str, optional
        The file's sha256 when it is already known (validation computes it).
    name : str, optional
        The published name the file stands for (default: its own name).

    Returns
    -------
    Verdict
        The values digests are computed only when the file's sha256 is not the reference's.
    """
    path = Path(path)
    name = name or path.name
    sha256 = sha256 or file_sha256(path)
    if name not in table.rows:
        return Verdict(name, NO_REFERENCE, sha256, reason="not one of the published names")
    transform = recorded_transform(path)
    if transform != "exact":
        return Verdict(name, NO_REFERENCE, sha256, reason=f"built by the {transform} transform, whose last bits depend on the machine")
    if configuration is not None and not table.applies_to(configuration):
        changed = sorted(key for key in table.configuration if table.configuration.get(key) != configuration.get(key))
        return Verdict(name, NO_REFERENCE, sha256, reason=f"built under another configuration: {', '.join(changed)}")
    reference, reference_values, reference_datasets = table.rows[name]
    if sha256 == reference:
        return Verdict(name, MATCH, sha256, reference)
    datasets = dataset_sha256s(path)
    values = values_sha256(datasets=datasets)
    if values == reference_values:
        return Verdict(name, VALUES_MATCH, sha256, reference, values, reference_values, "other container bytes: another HDF5 library or other attributes")
    differ = sorted(key for key in datasets.keys() | reference_datasets.keys() if datasets.get(key) != reference_datasets.get(key))
    return Verdict(name, DIFFERS, sha256, reference, values, reference_values, f"other values than the reference build in {', '.join(differ)}")


def recorded_transform(path: str | os.PathLike) -> str:
    """The transform a file says it was built by (``recipe.transform``): ``exact`` when its recipe names none.

    Files without a ``recipe`` attribute (the published files, files from
    elsewhere) count as ``exact``: their bytes decide.
    """
    with h5py.File(path, "r") as h5:
        text = h5.attrs.get("recipe")
    try:
        recipe = json.loads(text) if text is not None else {}
    except (TypeError, ValueError):
        recipe = {}
    return str(recipe.get("transform", "exact")) if isinstance(recipe, dict) else "exact"


def attribute_hint(path: str | os.PathLike, table: ReferenceTable) -> str:
    """Why a file may differ, from its own attributes: another numerics version or recipe than the table's.

    Empty for files without provenance attributes (the published files have none).
    """
    with h5py.File(path, "r") as h5:
        attrs = dict(h5.attrs)
    hints = []
    if "numerics_version" in attrs and int(attrs["numerics_version"]) != table.configuration["numerics_version"]:
        hints.append(f"its numerics_version is {int(attrs['numerics_version'])}, the references' {table.configuration['numerics_version']}")
    if "recipe" in attrs:
        # A key recorded only when set holds its default where it is missing, on either side.
        recipe, referenced = {**RECORDED_WHEN_SET, **json.loads(attrs["recipe"])}, {**RECORDED_WHEN_SET, **table.configuration["recipe"]}
        hints += [f"recipe.{key} is {value} in the file, {referenced.get(key)} in the references" for key, value in sorted(recipe.items()) if referenced.get(key) != value]
    return "; ".join(hints)


def write_references(paths: list[str | os.PathLike], configuration: dict, out: str | os.PathLike) -> None:
    """Record the checksums of built files as the reference table (a maintainer's step after `make all`)."""
    lines = [
        "# Reference checksums of the published files as this workflow builds them: the sha256 of the file,",
        "# digest.values_sha256 of its values and digest.dataset_sha256s of each dataset's values.",
        "# Regenerate with `make references` after `make all`.",
        "# configuration: " + json.dumps(configuration, sort_keys=True),
    ]
    for path in sorted(paths, key=lambda path: Path(path).name):
        datasets = dataset_sha256s(path)
        lines.append(f"{Path(path).name}\t{file_sha256(path)}\t{values_sha256(datasets=datasets)}\t{json.dumps(datasets, sort_keys=True)}")
    write_text_atomically(out, "\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    """``python -m mnist_large_scale.references FILE...``: record built files as the reference table."""
    import argparse

    import yaml

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("files", nargs="+", help="the built published files (results/*.h5)")
    parser.add_argument("--config", default="config.yaml", help="the configuration they were built under")
    parser.add_argument("--out", default=str(resources.files(__package__).joinpath(TABLE_NAME)), help="the table to write")
    args = parser.parse_args(argv)
    config = yaml.safe_load(Path(args.config).read_text())
    missing = sorted(set(config["targets"]) - {Path(path).name for path in args.files})
    if missing:
        parser.error(f"the table must cover every target of the config; missing: {', '.join(missing)}")
    write_references(args.files, reference_configuration(config), args.out)
    print(f"{len(args.files)} files recorded in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
