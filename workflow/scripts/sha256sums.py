"""Snakemake entry point: results/SHA256SUMS, checkable with `cd results && sha256sum -c SHA256SUMS`.

Each line was computed by the validation job of its file and written only after the file passed.
"""

from pathlib import Path

output = Path(snakemake.output[0])
lines = [Path(path).read_text() for path in sorted(snakemake.input)]
tmp = output.with_name(f".{output.name}.part")
tmp.write_text("".join(lines))
tmp.replace(output)
Path(snakemake.log[0]).write_text(f"{len(lines)} files in the manifest\n")
