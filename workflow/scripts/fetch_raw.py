"""Snakemake entry point: put one verified raw file into resources/<base>/."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mnist_large_scale.sources import BaseData, fetch_raw_file

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
base = BaseData.from_config(snakemake.wildcards.base, snakemake.params.base)
try:
    fetch_raw_file(base, snakemake.wildcards.file, snakemake.output[0])
except Exception:
    logging.exception("fetching %s failed", snakemake.wildcards.file)
    raise
