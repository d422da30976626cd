"""Names of the HDF5 layout that the workflow needs while Snakemake reads it, in the standard library alone.

``writer`` writes the layout and gives these under its own name too.
"""

__all__ = ["SPLITS", "COMPRESSED_LAYOUT"]

SPLITS = ("train", "val", "test")
#: The HDF5 chunk shape of compressed image datasets.  The build rule's params carry it for
#: compressed files, so that a file of another chunk shape (64 images before) is rebuilt.
COMPRESSED_LAYOUT = "one image per chunk"
