"""Evaluating a model across the scales, and comparing it on two versions of one file.

Modules: ``stats`` (Wilson, McNemar, Newcombe's intervals, the two-proportion
test: pure functions of counts), ``measures`` (summary measures of scale
generalisation), ``reader`` (ordered blocks read and converted in threads),
``model`` (loading a TorchScript file or ``module:callable`` with a state
dict; input conventions), ``run`` (predictions and per-scale rows),
``report`` (TSV, JSON, figure, published counts), ``model_compare`` (the
paired comparison and its verdict).  PyTorch is imported only where a model
runs.
"""

from .model import InputConvention, load_model
from .run import EvaluationSettings, evaluate_files, predict

__all__ = ["InputConvention", "EvaluationSettings", "load_model", "predict", "evaluate_files"]
