"""Rebuild the MNIST Large Scale data set (Jansson & Lindeberg) from raw MNIST.

Modules: ``names`` (the file-name grammar), ``idx`` and ``sources`` (raw files),
``recipe`` (the per-image reference), ``engine`` (the fast batched engine),
``writer`` (the HDF5 layout), ``build`` (one file from its name), ``validate``.
"""

__version__ = "1.0.0"
