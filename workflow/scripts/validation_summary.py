"""Snakemake entry point: the summary table of every validation report, as TSV and HTML."""

import json
import logging
from pathlib import Path

import mnist_large_scale.job_packages  # noqa: F401  (first: without the rules' packages, the job stops here in one line)
from mnist_large_scale import logs
from mnist_large_scale.validate import summary_html, summary_rows, summary_tsv
from mnist_large_scale.writer import write_text_atomically

logs.setup(snakemake)
reports = [json.loads(Path(path).read_text()) for path in snakemake.input]
rows = summary_rows(reports)
write_text_atomically(snakemake.output.tsv, summary_tsv(rows))
write_text_atomically(snakemake.output.html, summary_html(reports, rows))
logging.info("%d reports, %d rows", len(reports), len(rows))
