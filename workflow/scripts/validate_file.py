"""Snakemake entry point: validate one file and write its report and its line of SHA256SUMS.

Both outputs appear only when every check passes; the failed report goes to the log.
"""

import json
import logging
from pathlib import Path

import mnist_large_scale.job_packages  # noqa: F401  (first: without the rules' packages, the job stops here in one line)
from mnist_large_scale import logs
from mnist_large_scale.recipe import Recipe
from mnist_large_scale.sources import BaseData
from mnist_large_scale.validate import ValidationSettings, raise_on_failure, validate_and_checksum
from mnist_large_scale.writer import OutputOptions, write_text_atomically

logs.setup(snakemake)
base = BaseData.from_config(snakemake.params.base_key, snakemake.params.base)
raw_paths = {raw.name: snakemake.input[raw.name] for raw in base.files.values()}
# What the file must be comes from params (the config's recipe, seed, dtype, compression, pins);
# how it is read (images per step, direct reads) from the config.
options = OutputOptions.from_config({**snakemake.config["output"], **snakemake.params.storage})
report, sha256 = validate_and_checksum(
    snakemake.input.h5,
    base,
    raw_paths,
    Recipe.from_config(snakemake.params.recipe),
    snakemake.params.scale_seed,
    options,
    ValidationSettings.from_config(snakemake.params.validation),
    threads=snakemake.threads,
    numerics_version=snakemake.params.numerics,
)
text = json.dumps(report, indent=2)
logging.info("report:\n%s", text)
raise_on_failure(report)
write_text_atomically(snakemake.output.report, text + "\n")
# The manifest vouches only for a file that passed: its line is written after the checks.
write_text_atomically(snakemake.output.checksum, f"{sha256}  {Path(snakemake.input.h5).name}\n")
logging.info("sha256 %s", sha256)
