"""Validation of built files, along its three jobs and its summary.

``measure`` (the digits' size, centroid and ink), ``scan`` (one pass over a
file's image bytes: range, corners, CRC-32, with the file's sha256), ``check``
(a file against its name, the config and MNIST), ``samples`` (the stored
CRC-32s and images recomputed from the raw files), ``report`` (a report's
checks, as JSON and as a verdict) and ``table`` (the summary of every report,
as TSV and HTML).
"""

from .check import ValidationSettings, attribute_differences, validate_and_checksum, validate_file
from .measure import (
    digit_moments,
    ink_reach,
    label_histogram,
    log_uniform_ks,
    measure_scales,
    mnist_centre_of_mass_offsets,
    reference_moments,
    uncropped_scale_limit,
)
from .report import ValidationFailed, raise_on_failure
from .samples import reference_bound
from .table import SUMMARY_COLUMNS, summary_html, summary_rows, summary_tsv

__all__ = [
    "ValidationSettings",
    "ValidationFailed",
    "attribute_differences",
    "validate_file",
    "validate_and_checksum",
    "raise_on_failure",
    "reference_bound",
    "digit_moments",
    "reference_moments",
    "uncropped_scale_limit",
    "ink_reach",
    "measure_scales",
    "mnist_centre_of_mass_offsets",
    "label_histogram",
    "log_uniform_ks",
    "SUMMARY_COLUMNS",
    "summary_rows",
    "summary_tsv",
    "summary_html",
]
