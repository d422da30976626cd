"""Snakemake entry point: the montage of a file's first test images."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mnist_large_scale.figures import file_montage, save_figure

save_figure(file_montage(snakemake.input.h5, "test", snakemake.params.images), snakemake.output.png)
Path(snakemake.log[0]).write_text(f"montage of {snakemake.input.h5}\n")
