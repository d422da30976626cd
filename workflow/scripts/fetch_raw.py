"""Snakemake entry point: put one verified raw file into resources/<base>/."""

import logging

import pooch

from mnist_large_scale import logs
from mnist_large_scale.sources import BaseData, fetch_raw_file

logs.setup(snakemake)
# pooch's logger ("Downloading data from ...") has no parent and a stderr handler of its own:
# its lines go to this log instead.
pooch.get_logger().handlers = logging.getLogger().handlers
# Without a pinned .gz md5 pooch advises pinning the sha256 of the .gz; the uncompressed sha256 is pinned.
pooch.get_logger().addFilter(lambda record: not record.getMessage().startswith("SHA256 hash of downloaded file"))
# The sources come from the config, not params: a new mirror or timeout must not fetch again.
base = BaseData.from_config(snakemake.wildcards.base, snakemake.config["base_data"][snakemake.wildcards.base])
fetch_raw_file(base, snakemake.wildcards.file, snakemake.output[0])
