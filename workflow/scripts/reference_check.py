"""Snakemake entry point: compare every target with this workflow's reference checksums.

The references (``reference_checksums.tsv``) are the bytes that the default configuration gives
for the 21 published names, on any machine; the published files themselves are not among them.
Writes one row per file (status, sha256, reference) and prints the verdicts, so that
`snakemake all` ends by saying whether the files are the bytes every other build gives.
"""

import logging
from pathlib import Path

import mnist_large_scale.job_packages  # noqa: F401  (first: without the rules' packages, the job stops here in one line)
from mnist_large_scale import logs
from mnist_large_scale.references import MATCH, VALUES_MATCH, compare, load_references
from mnist_large_scale.writer import write_text_atomically

logs.setup(snakemake)
table = load_references(snakemake.input.table)
verdicts = []
for h5, checksum in zip(snakemake.input.h5, snakemake.input.checksums, strict=True):
    sha256 = Path(checksum).read_text().split()[0]  # computed by the file's validation
    verdicts.append(compare(h5, table, snakemake.params.configuration, sha256=sha256))
rows = ["file\tstatus\tsha256\treference_sha256\treason"]
rows += [f"{v.file}\t{v.status}\t{v.sha256}\t{v.reference_sha256 or ''}\t{v.reason}" for v in verdicts]
write_text_atomically(snakemake.output[0], "\n".join(rows) + "\n")
same = sum(v.status in (MATCH, VALUES_MATCH) for v in verdicts)
summary = [f"Reference check: {same} of {len(verdicts)} files match this workflow's reference checksums (bytes or values)"]
summary += [f"  {v.line()}" for v in verdicts]
logging.info("\n".join(summary))
print("\n".join(summary), flush=True)
