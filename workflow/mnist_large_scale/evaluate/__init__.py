"""Evaluating a model across the scales, and comparing it on two versions of one file.

Modules: ``stats`` (Wilson, McNemar, Newcombe's intervals, the two-proportion
test: pure functions of counts), ``measures`` (summary measures of scale
generalisation), ``reader`` (ordered blocks read and converted in threads),
``model`` (loading a TorchScript file or ``module:callable`` with a state
dict; input conventions), ``run`` (predictions and per-scale rows),
``report`` (TSV, JSON, figure, published counts), ``model_compare`` (the
paired comparison and its verdict).  PyTorch is imported only where a model
runs, and scipy (``stats``) only where a name below is first used: the
command line imports ``evaluate.cli`` for every command, and a build job
must not pay for either.
"""

import importlib

__all__ = ["InputConvention", "EvaluationSettings", "load_model", "predict", "evaluate_files"]

#: Where each public name lives (imported on first use, PEP 562).
_HOMES = {"InputConvention": "model", "load_model": "model", "EvaluationSettings": "run", "evaluate_files": "run", "predict": "run"}


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
