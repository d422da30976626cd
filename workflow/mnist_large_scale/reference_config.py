"""Where the reference checksums live and the configuration they hold for, in the standard library alone.

The workflow's ``reference_check`` rule names the table and the configuration
while Snakemake reads it; ``references`` reads, compares and writes the table
and gives these under its own name too.
"""

from __future__ import annotations

from . import NUMERICS_VERSION
from .layout import COMPRESSED_LAYOUT
from .recipe_constants import recorded

__all__ = ["EARLIER_TABLES", "TABLE_NAME", "reference_configuration"]

#: The table's file name, beside this module.
TABLE_NAME = "reference_checksums.tsv"

#: The tables of earlier defaults, beside it: files built under one of them are still
#: recognised (``references.table_for``).
EARLIER_TABLES: tuple[str, ...] = ()


def reference_configuration(config: dict, base_key: str = "mnist") -> dict:
    """What a file's bytes depend on besides its name: the part of ``config`` references hold for.

    The recipe, the seed of per-sample scales, the stored dtype and compression,
    the base data's pinned raw files, splits, citation and licence (the last two
    are attributes of every file), and the package's numerics version.  Mirrors,
    time limits, memory and I/O settings do not change bytes and are left out.
    """
    base = config["base_data"][base_key]
    configuration = {
        "numerics_version": NUMERICS_VERSION,
        "recipe": dict(sorted(recorded(config["recipe"]).items())),
        "scale_seed": config["scale_seed"],
        "dtype": config["output"]["dtype"],
        "compression": config["output"]["compression"],
        "base_data": base_key,
        "raw_sha256": {raw["name"]: raw.get("sha256") or f"gz-sha256:{raw['gz_sha256']}" for raw in sorted(base["files"].values(), key=lambda raw: raw["name"])},
        "splits": {name: dict(sorted(split.items())) for name, split in sorted(base["splits"].items())},
        # stored in every file's attributes, so they are part of its bytes
        "citation": base.get("citation"),
        "license": base.get("license"),
    }
    if config["output"]["compression"]:  # and the chunk layout: no key is added for the published layout
        configuration["shuffle"] = config["output"].get("shuffle", True)
        configuration["compressed_layout"] = COMPRESSED_LAYOUT
    return configuration
