"""Snakemake entry point: the montage of a file's first test images, labelled with their class names."""

import logging

import mnist_large_scale.job_packages  # noqa: F401  (first: without the rules' packages, the job stops here in one line)
from mnist_large_scale import logs
from mnist_large_scale.figures import file_montage, save_figure

logs.setup(snakemake)
figure = file_montage(snakemake.input.h5, "test", snakemake.params.images, classes=snakemake.params.classes)
save_figure(figure, snakemake.output.png)
logging.info("montage of %s", snakemake.input.h5)
