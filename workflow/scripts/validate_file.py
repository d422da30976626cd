"""Snakemake entry point: validate one file and write its report and its line of SHA256SUMS.

Both outputs appear only when every check passes; the failed report goes to the log.
"""

import json
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mnist_large_scale.names import parse_name
from mnist_large_scale.sources import BaseData
from mnist_large_scale.validate import ValidationSettings, raise_on_failure, validate_and_checksum
from mnist_large_scale.writer import atomic_path


def write_atomically(path: str, text: str) -> None:
    """A kill must not leave half a file under its final name."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
spec = parse_name(snakemake.wildcards.name)
base = BaseData.from_config(snakemake.params.base_key, snakemake.params.base)
raw_paths = {raw.name: snakemake.input[raw.name] for raw in base.files.values()}
storage = snakemake.params.storage
settings = ValidationSettings.from_config(snakemake.params.validation)
report, sha256 = validate_and_checksum(
    snakemake.input.h5,
    base,
    raw_paths,
    dtype=storage["dtype"],
    compression=storage["compression"],
    settings=settings,
    threads=snakemake.threads,
    direct_io=storage.get("direct_io", True),
)
text = json.dumps(report, indent=2)
logging.info("report:\n%s", text)
try:
    raise_on_failure(report)
except Exception:
    logging.exception("validation failed")
    raise
write_atomically(snakemake.output.report, text + "\n")
# The manifest vouches only for a file that passed: its line is written after the checks.
write_atomically(snakemake.output.checksum, f"{sha256}  {Path(snakemake.input.h5).name}\n")
logging.info("sha256 %s", sha256)
