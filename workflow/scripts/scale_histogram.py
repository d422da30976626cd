"""Snakemake entry point: the histogram of a scale-range file's per-sample scales."""

from pathlib import Path

import mnist_large_scale.job_packages  # noqa: F401  (first: without the rules' packages, the job stops here in one line)
from mnist_large_scale.figures import file_scale_histogram, save_figure

save_figure(file_scale_histogram(snakemake.input.h5), snakemake.output.png)
Path(snakemake.log[0]).write_text(f"scale histogram of {snakemake.input.h5}\n")
