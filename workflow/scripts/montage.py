"""Snakemake entry point: the montage of a file's first test images, labelled with their class names."""

from pathlib import Path

import mnist_large_scale.job_packages  # noqa: F401  (first: without the rules' packages, the job stops here in one line)
from mnist_large_scale.figures import file_montage, save_figure

figure = file_montage(snakemake.input.h5, "test", snakemake.params.images, classes=snakemake.params.classes)
save_figure(figure, snakemake.output.png)
Path(snakemake.log[0]).write_text(f"montage of {snakemake.input.h5}\n")
