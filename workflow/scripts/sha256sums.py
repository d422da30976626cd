"""Snakemake entry point: results/SHA256SUMS, checkable with `cd results && sha256sum -c SHA256SUMS`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mnist_large_scale.sources import sha256_of

output = Path(snakemake.output[0])
lines = [f"{sha256_of(path)}  {Path(path).relative_to(output.parent)}\n" for path in sorted(snakemake.input.h5)]
tmp = output.with_name(f".{output.name}.part")
tmp.write_text("".join(lines))
tmp.replace(output)
Path(snakemake.log[0]).write_text(f"{len(lines)} files summed\n")
