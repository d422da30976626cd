"""Snakemake entry point: put one verified raw file into resources/<base>/."""

import logging

import mnist_large_scale.job_packages  # noqa: F401  (first: without the rules' packages, the job stops here in one line)
from mnist_large_scale import logs
from mnist_large_scale.fetch import fetch_raw_file, route_pooch_log
from mnist_large_scale.sources import BaseData

logs.setup(snakemake)
route_pooch_log(logging.getLogger().handlers)  # pooch's lines go to this log too
# The sources come from the config, not params: a new mirror or timeout must not fetch again.
base = BaseData.from_config(snakemake.wildcards.base, snakemake.config["base_data"][snakemake.wildcards.base])
fetch_raw_file(base, snakemake.wildcards.file, snakemake.output[0])
