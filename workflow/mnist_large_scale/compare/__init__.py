"""Compare a file of the published layout with its rebuild, and fit the recipe that explains it.

A published file has no attributes; its name (or options, when it was renamed)
tells its scales, and its datasets its counts.  For each split the comparison
reports:

* whether the labels equal the base data's split in order, and if not, which
  range of which raw labels file they are, or that they are another order of
  the expected labels;
* the largest absolute difference to the rebuild, the fraction of images that
  are bit-identical, the per-image correlation and the largest difference of
  the two mean images;

then fits the recipe to a sample of images (``recipe_fit.py``) and gives a
verdict in one line: identical, equal within float rounding, or differs, with
the fitted constants.  The rebuilt images come from a rebuilt file when one is
given, otherwise from the engine, computed block by block from raw MNIST and
never written.

The package's modules: ``labels`` (where a split's labels come from),
``splits`` (one split against its rebuild) and ``comparison`` (the whole
file, the fit and the verdict).
"""

from .comparison import DIFFERS, IDENTICAL, WITHIN_ROUNDING, Comparison, compare_file, recipe_snippet
from .labels import LabelCheck, locate_labels
from .splits import SplitComparison, compare_split

__all__ = [
    "IDENTICAL",
    "WITHIN_ROUNDING",
    "DIFFERS",
    "LabelCheck",
    "SplitComparison",
    "Comparison",
    "locate_labels",
    "compare_split",
    "compare_file",
    "recipe_snippet",
]
