"""Rebuild the MNIST Large Scale data set (Jansson & Lindeberg) from raw MNIST.

Modules: ``names`` (the file-name grammar), ``idx`` and ``sources`` (raw files),
``recipe`` (the per-image reference), ``engine`` (the fast batched engine, a package:
``engine.skimage_weights`` holds the weights it takes from scikit-image's and scipy's
definitions, the other modules one stage of the work each),
``writer`` (the HDF5 layout), ``build`` (one file from its name), ``validate``,
``inspect_file`` (reading any file, the ``inspect`` command), ``figures``,
``loader`` (``load`` and ``MNISTLargeScale``: the files for training, NumPy or PyTorch),
``bases`` (the base data set a file name's prefix selects), ``cli`` (the command line,
``mnist-large-scale`` or ``python -m mnist_large_scale``).
"""

__version__ = "1.0.0"

#: Version of the numerics that produce a file's values.  It changes whenever the
#: package would write other bytes for the same name and config (a new engine, a
#: new rounding, a new random stream), so that a build records it and a change to
#: it rebuilds every file.  1: the float engine (bytes depended on the CPU);
#: 2: the engine on exact grids, the same bytes on every machine; 3: as 2, but with
#: ``recipe.antialias`` an image's weights no longer depend on the images computed
#: beside it (2's files with per-sample scales and antialias depended on
#: ``output.chunk_images``).  The default configuration's values are those of 2.
#: 4: the last stage (the columns' smoothing) is rounded to the 2**-24 grid
#: before the threshold too, like every other stage, which halves its cost.
#: 5: the default recipe stretches each image and follows the public evidence on
#: the published files (docs/recipe.md); the arithmetic is 4's, so 4's recipe
#: under 5 gives 4's values.  Files of 4's default are still recognised by their
#: own reference table (reference_checksums_v4.tsv).
NUMERICS_VERSION = 5

__all__ = ["NUMERICS_VERSION", "load", "MNISTLargeScale", "split_sizes"]


def __getattr__(name: str):
    """``load``, ``MNISTLargeScale`` and ``split_sizes`` from ``loader``, imported on first use.

    The workflow imports this package for NUMERICS_VERSION alone; h5py is
    imported only where the loader is used.
    """
    if name in ("load", "MNISTLargeScale", "split_sizes"):
        from . import loader

        return getattr(loader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
