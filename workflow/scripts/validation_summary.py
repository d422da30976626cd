"""Snakemake entry point: the summary table of every validation report, as TSV and HTML."""

import json
from pathlib import Path

from mnist_large_scale.validate import summary_html, summary_rows, summary_tsv

reports = [json.loads(Path(path).read_text()) for path in snakemake.input]
rows = summary_rows(reports)
Path(snakemake.output.tsv).write_text(summary_tsv(rows))
Path(snakemake.output.html).write_text(summary_html(reports, rows))
Path(snakemake.log[0]).write_text(f"{len(reports)} reports, {len(rows)} rows\n")
