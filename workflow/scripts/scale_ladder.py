"""Snakemake entry point: one image of each class of the base data set at the 17 published test scales."""

import logging

import mnist_large_scale.job_packages  # noqa: F401  (first: without the rules' packages, the job stops here in one line)
from mnist_large_scale import logs
from mnist_large_scale.build import load_split
from mnist_large_scale.figures import first_of_each_class, ladder_columns, save_figure, scale_ladder_figure
from mnist_large_scale.recipe import Recipe
from mnist_large_scale.sources import BaseData

logs.setup(snakemake)
base = BaseData.from_config(snakemake.params.base_key, snakemake.params.base)
raw_paths = {raw.name: snakemake.input[raw.name] for raw in base.files.values()}
images, labels = load_split(base, raw_paths, "test", base.splits["test"].size)
indices = first_of_each_class(labels, len(snakemake.params.classes) or 10)
files = {key.removeprefix("scale_"): path for key, path in snakemake.input.items() if key.startswith("scale_")}
columns = ladder_columns(indices, images[indices], Recipe.from_config(snakemake.params.recipe), files)
title = f"The first test image of each class at the 17 published test scales ({base.key} test indices {', '.join(map(str, indices))})"
save_figure(scale_ladder_figure(columns, labels[indices], title, classes=snakemake.params.classes), snakemake.output.png)
for column in columns:
    logging.info("s = %.3f: %s", column["scale"], column["source"])
