"""The production engine: the reference recipe (``recipe.py``) as batched matrix products,
on exact grids, so that its bytes are the same on every machine.

Before the soft threshold the recipe is two separable linear stages with an
elementwise clip between them.  On one axis of length ``L`` (output pixels) with
an input of ``n`` pixels, at scale ``s``:

* resampling ``R`` (canvas x n): canvas pixel ``c`` reads the input at
  ``u = c / s + (n-1)/2 - (margin + (L-1)/2) / s``, with the weights of
  scikit-image's Cython interpolation (Keys cubic convolution, a = -0.5, for
  order 3; derived in ``skimage_weights.py``) and zero outside the input
  (the recipe's ``centre_shift`` moves ``u`` by ``-shift / s``; with ``antialias`` below scale 1, ``R`` is composed
  with the input's Gaussian prefilter ``P`` as ``R P``, summed in a fixed
  order before it is put on its grid);
* Gaussian smoothing and crop ``G`` (L x canvas): scipy's sampled kernel
  (``skimage_weights.gaussian_weights``), a band of half-width ``r = int(truncate * sigma + 0.5)`` around canvas pixel
  ``margin + o`` for frame pixel ``o``.

So ``frame = G_y clip(R_y I R_x^T) G_x^T``, computed as batched products
(columns resampled, rows resampled, clip, rows smoothed, columns smoothed; the
last as ``G_x`` from the left on the transposed rows, so that the region comes
out transposed and is stored so).

With ``recipe.smooth_boundary`` one of scipy's boundary modes (``reflect``,
``constant``, ``nearest``) instead of ``canvas``, the canvas is the frame
itself (margin 0: ``R`` has L rows, the taps at ``u = c / s + (n-1)/2 -
((L-1)/2 + shift) / s`` as the reference's warp evaluates them) and ``G`` is
the frame's L x L Gaussian with the edge folded in: the weight of a tap that
falls past the edge is added to the frame pixel the mode reads there
(``boundary_index``; ``constant`` drops it).  Only the row blocks within the
kernel's reach of the edge differ from the Toeplitz band (``plan.smoothing_band``).

One job a module, each using only those before it:

* ``skimage_weights``: the weights of scikit-image's warp and of scipy's
  Gaussian and boundary modes, as the libraries define them;
* ``grids``: the power-of-two grids of the data and the weights, and the
  rounding of weights onto them;
* ``workspace``: a worker thread's reusable scratch arrays;
* ``band``: banded matrix products, exact or checked, and the argument that
  they give the same bytes everywhere;
* ``geometry``: what an axis takes from the scales alone (kernels, taps,
  weights on their grids);
* ``plan``: one axis's matrices, cut to the images' ink, per scale or per
  sample;
* ``stages``: a group of images through the stages, from the raw images to
  the stored frames;
* ``run``: the call's shared state, its groups and threads, and the public
  ``transform_images``.
"""

from __future__ import annotations

from .run import ENGINE_TOLERANCE, blas_threads_limited, transform_images
from .skimage_weights import SUPPORTED_ORDERS
from .stages import background_value

__all__ = ["transform_images", "SUPPORTED_ORDERS", "ENGINE_TOLERANCE", "blas_threads_limited", "background_value"]
