"""Snakemake entry point: build one MNIST Large Scale file from its name."""

import logging

import mnist_large_scale.job_packages  # noqa: F401  (first: without the rules' packages, the job stops here in one line)
from mnist_large_scale import logs
from mnist_large_scale.build import build_file, transform_for
from mnist_large_scale.names import parse_name
from mnist_large_scale.progress import progress_bar
from mnist_large_scale.recipe import Recipe
from mnist_large_scale.sources import BaseData
from mnist_large_scale.writer import OutputOptions

logs.setup(snakemake)
spec = parse_name(f"{snakemake.wildcards.name}.h5")
# recipe.transform picks the exact engine or scikit-image itself (build.transform_for)
recipe = Recipe.from_config(snakemake.params.recipe)
base = BaseData.from_config(snakemake.params.base_key, snakemake.params.base)
# dtype and compression from params (they change the bytes); images per step and direct
# writes from the config: changing them reruns nothing.
options = OutputOptions.from_config({**snakemake.config["output"], **snakemake.params.storage})
raw_paths = {name: snakemake.input[name] for name in (raw.name for raw in base.files.values())}
total = sum(spec.split_count(split) for split in ("train", "val", "test"))
# One log line per refresh (at most every 10 s), with images per second and time left.
with progress_bar(total, "build", logging.getLogger("progress"), mininterval=10) as bar:
    build_file(
        spec,
        base,
        raw_paths,
        snakemake.output[0],
        recipe,
        transform_for(recipe, snakemake.threads),
        seed=snakemake.params.scale_seed,
        options=options,
        progress=bar.update,
    )
