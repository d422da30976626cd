"""Snakemake entry point: the histogram of a scale-range file's per-sample scales."""

import logging

from mnist_large_scale import logs
from mnist_large_scale.figures import file_scale_histogram, save_figure

logs.setup(snakemake)
save_figure(file_scale_histogram(snakemake.input.h5), snakemake.output.png)
logging.info("scale histogram of %s", snakemake.input.h5)
