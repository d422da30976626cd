"""The model under evaluation and what it expects of its input.

A model is given either as a TorchScript file (``torch.jit.save``), or as
``module:callable``, a Python callable that returns a ``torch.nn.Module``,
with an optional state-dict file loaded into it.  ``module`` is an
importable dotted name (``mypackage.models``) or the path of a ``.py`` file
(``models/cnn.py:make_cnn``).  ``InputConvention`` says how the images are
handed to it: channels first or last, float32 or float64, and a value
transform (none, affine, or a callable given the same way).

PyTorch is imported inside the functions that need it, so that the package
imports without it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEVICES", "InputConvention", "resolve_callable", "load_model", "value_transform", "check_device"]

#: The devices a model and its batches can be moved to.
DEVICES = ("cpu", "cuda", "mps")


@dataclass(frozen=True)
class InputConvention:
    """How the model takes its images.

    Attributes
    ----------
    channels : {'first', 'last'}
        ``(n, 1, H, W)`` (as ``torch.nn.Conv2d`` takes them) or ``(n, H, W, 1)`` as stored.
    dtype : {'float32', 'float64'}
    transform : str
        Applied to each batch after conversion: ``'none'``; ``'affine:A,B'``
        (``A x + B``, e.g. ``affine:2,-1`` maps [0, 1] to [-1, 1]); or
        ``'module:callable'``, a function of the batch tensor.
    """

    channels: str = "first"
    dtype: str = "float32"
    transform: str = "none"

    def __post_init__(self):
        if self.channels not in ("first", "last"):
            raise ValueError(f"channels must be 'first' or 'last', not {self.channels!r}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', not {self.dtype!r}")
        value_transform(self.transform)  # fails here, before any image is read

    @property
    def channels_first(self) -> bool:
        return self.channels == "first"

    @classmethod
    def from_config(cls, values: dict) -> InputConvention:
        """From the config's ``evaluate.input`` mapping (``channels``, ``dtype``, ``transform``)."""
        return cls(**values)


def _module_from(name: str):
    """The module ``name``: a dotted import name, or the path of a .py file (imported under its stem)."""
    if name.endswith(".py") or os.sep in name:
        path = Path(name)
        if not path.is_file():
            raise ValueError(f"model module {name}: no such file")
        spec = importlib.util.spec_from_file_location(f"_evaluated_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # so that pickling and dataclasses inside it find it
        spec.loader.exec_module(module)
        return module
    try:
        return importlib.import_module(name)
    except ImportError as error:
        raise ValueError(f"model module {name!r} cannot be imported: {error}") from error


def resolve_callable(reference: str) -> Callable:
    """The callable that ``'module:name'`` names (``name`` may be dotted: ``module:Class.build``)."""
    module_name, sep, attribute = reference.rpartition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"{reference!r} is not of the form module:callable")
    target = _module_from(module_name)
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ValueError(f"{module_name} has no {attribute!r}")
        target = getattr(target, part)
    if not callable(target):
        raise ValueError(f"{reference} is not callable")
    return target


def check_device(device: str):
    """The ``torch.device`` named ``device``; ValueError if it is not one of ``DEVICES`` or not available here."""
    import torch

    kind = device.split(":")[0]
    if kind not in DEVICES:
        raise ValueError(f"device {device!r} is not one of {', '.join(DEVICES)}")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda': this PyTorch sees no CUDA device")
    if kind == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ValueError("device 'mps': this PyTorch has no MPS device (Apple silicon only)")
    return torch.device(device)


def load_model(model: str, state_dict: str | os.PathLike | None = None, device: str = "cpu"):
    """The model to evaluate, in eval mode, on ``device``.

    Parameters
    ----------
    model : str
        A TorchScript file, or ``module:callable`` returning a ``torch.nn.Module``.
    state_dict : path, optional
        A file of ``torch.save(module.state_dict())``, loaded strictly into the
        module (only with ``module:callable``).
    device : {'cpu', 'cuda', 'mps'}

    Returns
    -------
    torch.nn.Module or torch.jit.ScriptModule
    """
    import torch

    where = check_device(device)
    if Path(model).is_file():
        if state_dict is not None:
            raise ValueError(f"{model} is a TorchScript file, which holds its weights: a state dict applies to module:callable only")
        try:
            module = torch.jit.load(model, map_location=where)
        except RuntimeError as error:
            raise ValueError(f"{model} is not a TorchScript file (torch.jit.save): {str(error).splitlines()[0]}") from error
    else:
        if ":" not in model:
            raise ValueError(f"model {model!r}: no such file, and not of the form module:callable")
        try:
            module = resolve_callable(model)()
        except TypeError as error:  # a callable that needs arguments: say which one
            raise ValueError(f"{model} cannot be called without arguments: {error}") from error
        if not isinstance(module, torch.nn.Module):
            raise ValueError(f"{model} returned {type(module).__name__}, not a torch.nn.Module")
        if state_dict is not None:
            weights = torch.load(state_dict, map_location="cpu", weights_only=True)
            if not isinstance(weights, dict):
                raise ValueError(f"{state_dict} holds {type(weights).__name__}, not a state dict")
            try:
                module.load_state_dict(weights)
            except RuntimeError as error:
                raise ValueError(f"{state_dict} does not fit {model}: {str(error).splitlines()[0]}") from error
        module = module.to(where)
    return module.eval()


def value_transform(spec: str) -> Callable | None:
    """The batch transform that ``spec`` names (see ``InputConvention.transform``); None for 'none'."""
    if spec == "none":
        return None
    if spec.startswith("affine:"):
        try:
            scale, offset = (float(part) for part in spec.removeprefix("affine:").split(","))
        except ValueError as error:
            raise ValueError(f"transform {spec!r}: expected affine:A,B with two numbers") from error
        return lambda batch: batch * scale + offset
    if ":" in spec:
        return resolve_callable(spec)
    raise ValueError(f"transform {spec!r}: expected 'none', 'affine:A,B' or 'module:callable'")
