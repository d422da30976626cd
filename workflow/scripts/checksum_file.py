"""Snakemake entry point: one line of results/SHA256SUMS, for one validated file."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mnist_large_scale.sources import sha256_of

output = Path(snakemake.output[0])
tmp = output.with_name(f".{output.name}.part")
tmp.write_text(f"{sha256_of(snakemake.input.h5)}  {Path(snakemake.input.h5).name}\n")
tmp.replace(output)
Path(snakemake.log[0]).write_text(f"summed {snakemake.input.h5}\n")
