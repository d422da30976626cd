"""Snakemake script of rule experiment: train on one file, test on the test-only files."""

import logging

import mnist_large_scale.job_packages  # noqa: F401  (first: without the rules' packages, the job stops here in one line)
from mnist_large_scale import logs
from mnist_large_scale.experiment import ExperimentSettings, run_experiment

logs.setup(snakemake)
settings = ExperimentSettings.from_config({**snakemake.params.settings, "threads": snakemake.threads})
run_experiment(
    snakemake.input.train,
    list(snakemake.input.tests),
    settings,
    table=snakemake.output.table,
    figure=snakemake.output.figure,
    summary=snakemake.output.summary,
    log=logging.info,
)
