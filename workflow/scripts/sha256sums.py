"""Snakemake entry point: results/SHA256SUMS, checkable with `cd results && sha256sum -c SHA256SUMS`.

Each line was computed by the validation job of its file and written only after the file passed.
"""

import logging
from pathlib import Path

import mnist_large_scale.job_packages  # noqa: F401  (first: without the rules' packages, the job stops here in one line)
from mnist_large_scale import logs
from mnist_large_scale.writer import write_text_atomically

logs.setup(snakemake)
lines = [Path(path).read_text() for path in sorted(snakemake.input)]
write_text_atomically(snakemake.output[0], "".join(lines))
logging.info("%d files in the manifest", len(lines))
