"""Snakemake script of rule evaluate: one model on each test file (mnist_large_scale.evaluate)."""

import logging

import mnist_large_scale.job_packages  # noqa: F401  (first: without the rules' packages, the job stops here in one line)
from mnist_large_scale import logs
from mnist_large_scale.evaluate.model import InputConvention
from mnist_large_scale.evaluate.pipeline import run_evaluation
from mnist_large_scale.evaluate.run import EvaluationSettings

logs.setup(snakemake)
import torch  # noqa: E402  (after job_packages, which names the rules' missing packages first)

torch.set_num_threads(snakemake.threads)
run_evaluation(
    snakemake.params.model,
    list(snakemake.input.tests),
    table=snakemake.output.table,
    report=snakemake.output.report,
    figure=snakemake.output.figure,
    state_dict=snakemake.input.get("state_dict"),
    train_scale=snakemake.params.train_scale,
    convention=InputConvention.from_config(snakemake.params.input),
    settings=EvaluationSettings(snakemake.params.batch_size, snakemake.threads, snakemake.params.device, snakemake.params.test_images),
    published_counts=snakemake.input.get("published_counts"),
    log=logging.info,
)
