"""A model for tests/test_evaluate.py, loaded by path as ``tests/evaluate_helpers.py:small_cnn``.

The network sees where the strokes are (no global pooling: a flattened map
into the linear layer), so a two-pixel shift of the images changes its
predictions, and a digit of another size looks unlike the ones it learnt.
"""

from torch import nn

#: The side of the test images, in pixels.
IMAGE_SIDE = 40


def small_cnn() -> nn.Module:
    """Two strided 5 x 5 convolutions and a linear layer over the flattened 10 x 10 map; ``(n, 1, 40, 40)`` float32 in, 10 logits out."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 5, stride=2, padding=2),
        nn.ReLU(),
        nn.Conv2d(8, 16, 5, stride=2, padding=2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(16 * (IMAGE_SIDE // 4) ** 2, 10),
    )


def negate(batch):
    """A value transform for the tests: ``-x``."""
    return -batch
