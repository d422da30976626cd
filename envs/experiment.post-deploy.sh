#!/usr/bin/env bash
# Snakemake runs this once in the new environment of experiment.yaml (`--sdm conda`),
# from its working directory, the repository's root. The rules' scripts import the package
# mnist_large_scale: install it from this checkout, editable (a change to its code needs no new
# environment) and without dependencies (experiment.yaml pins them).
set -euo pipefail
if [[ ! -f pyproject.toml || ! -d workflow/mnist_large_scale ]]; then
    echo "create the conda environments from the repository's root (found no pyproject.toml in $PWD)" >&2
    exit 1
fi
python -m pip install --quiet --no-deps --editable .
