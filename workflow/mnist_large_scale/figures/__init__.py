"""Pictures of MNIST Large Scale files, for the report and the inspect command.

Four figures, each a matplotlib ``Figure`` of a fixed pixel size (built without
pyplot, so no global state; saved without tight cropping, so the PNG has exactly
the size the layout computes):

* ``montage_figure``: the first images of a split, one image pixel per screen pixel;
* ``scale_ladder_figure``: one image of each class at all 17 published test scales;
* ``size_vs_scale_figure``: measured digit size against nominal scale, log-log;
* ``scale_histogram_figure``: the per-sample scales of a scale-range file;
* ``comparison_figure``: a published file against its rebuild (``compare.py``).

Images are drawn in grey from their value range; a NaN pixel is red, so a
broken value shows at a glance.  Labels are drawn with the base data set's
class names where the config gives them (``base_data.<key>.classes``).

The package's modules: ``drawing`` (what every figure shares), ``images``
(montages, the ladder, the comparison) and ``scales`` (digit size and
per-sample scales).
"""

from .drawing import DPI, class_label, save_figure, tile_grid, to_rgb
from .images import (
    LADDER_SCALES,
    comparison_figure,
    file_montage,
    first_of_each_class,
    ladder_columns,
    montage_figure,
    scale_ladder_figure,
)
from .scales import file_scale_histogram, scale_histogram_figure, size_series, size_vs_scale_figure

__all__ = [
    "DPI",
    "LADDER_SCALES",
    "to_rgb",
    "tile_grid",
    "montage_figure",
    "class_label",
    "first_of_each_class",
    "ladder_columns",
    "scale_ladder_figure",
    "size_series",
    "size_vs_scale_figure",
    "scale_histogram_figure",
    "file_montage",
    "file_scale_histogram",
    "comparison_figure",
    "save_figure",
]
