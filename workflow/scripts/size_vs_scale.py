"""Snakemake entry point: measured image size against nominal scale, across all files."""

import json
import logging
from pathlib import Path

import mnist_large_scale.job_packages  # noqa: F401  (first: without the rules' packages, the job stops here in one line)
from mnist_large_scale import logs
from mnist_large_scale.figures import save_figure, size_series, size_vs_scale_figure

logs.setup(snakemake)
reports = [json.loads(Path(path).read_text()) for path in snakemake.input]
series = size_series(reports)
title = f"Image size against scale: {len(reports)} files, {sum(len(item['scale']) for item in series)} measured images"
save_figure(size_vs_scale_figure(series, snakemake.params.tolerance, title), snakemake.output.png)
logging.info("%d splits plotted", len(series))
