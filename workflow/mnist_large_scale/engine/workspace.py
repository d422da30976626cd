"""Scratch memory of one worker thread, reused across the groups it computes."""

from __future__ import annotations

import math

import numpy as np


class Workspace:
    """Reusable scratch arrays of one worker thread.

    Fresh large arrays cost page faults on every use (the allocator hands big
    blocks back to the system when freed); these are allocated once per call.
    """

    def __init__(self) -> None:
        self._buffers: dict[tuple[str, type], np.ndarray] = {}
        self._views: dict[tuple[str, type], dict[tuple[int, ...], np.ndarray]] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype=np.float64) -> np.ndarray:
        """A C-contiguous array of ``shape`` (contents undefined), reusing the memory of ``name``.

        The same shape gives the same view again (the engine asks for a few
        shapes thousands of times).
        """
        key = (name, dtype)
        views = self._views.get(key)
        view = None if views is None else views.get(shape)
        if view is not None:
            return view
        size = math.prod(shape)
        buffer = self._buffers.get(key)
        if buffer is None or buffer.size < size:
            buffer = self._buffers[key] = np.empty(max(size, 1), dtype=dtype)
            views = self._views[key] = {}  # views of the old memory stay valid, but are not handed out again
        view = views[shape] = buffer[:size].reshape(shape)
        return view
