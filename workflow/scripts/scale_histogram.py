"""Snakemake entry point: the histogram of a scale-range file's per-sample scales."""

import logging

import mnist_large_scale.job_packages  # noqa: F401  (first: without the rules' packages, the job stops here in one line)
from mnist_large_scale import logs
from mnist_large_scale.figures import file_scale_histogram, save_figure

logs.setup(snakemake)
save_figure(file_scale_histogram(snakemake.input.h5), snakemake.output.png)
logging.info("scale histogram of %s", snakemake.input.h5)
