"""Every use of Avalanche's private or undocumented API, in one place.

avalanche-lib 0.6.0 has no public hook for some of what NISPA needs. Each such use
is a function here, with a comment naming the public hook that is missing, and
:data:`PRIVATE_API` lists them so that :func:`check_private_api` (run by the test
suite) fails loudly, naming the attribute, when a new Avalanche release moves one.
Nothing else in the library touches an underscored Avalanche name.
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

from avalanche.benchmarks.utils import classification_dataset as _classification_dataset
from avalanche.training.plugins import EvaluationPlugin
from avalanche.training.templates import SupervisedTemplate

__all__ = [
    "PRIVATE_API",
    "PhaseLoopTemplate",
    "check_private_api",
    "take_stop_request",
    "criterion_of",
    "evaluator_results",
    "replace_evaluator_results",
    "tensor_classification_dataset",
]

PRIVATE_API: Tuple[Tuple[Any, str, str], ...] = (
    # (owner, attribute, the public hook that would make it unnecessary)
    (SupervisedTemplate, "_train_exp",
     "a way to replace the epoch loop of one experience (train_epochs is fixed)"),
    (SupervisedTemplate, "_stop_training",
     "a public getter/reset for a stop_training() request"),
    (SupervisedTemplate, "_criterion",
     "a public accessor of the loss object (strategy.criterion() computes the loss)"),
    (EvaluationPlugin, "all_metric_results",
     "a documented setter of the metric history (get_all_metrics() only reads)"),
    (EvaluationPlugin, "last_metric_results",
     "a documented setter of the last metric values"),
    (_classification_dataset, "_make_taskaware_tensor_classification_dataset",
     "a public tensor dataset constructor (made private in avalanche-lib 0.5)"),
)


def check_private_api() -> List[str]:
    """The private names of :data:`PRIVATE_API` that this Avalanche does not have."""
    missing = []
    probe = _probe_instances()
    for owner, name, hook in PRIVATE_API:
        target = probe.get(owner, owner)
        if not hasattr(target, name):
            missing.append(f"{getattr(owner, '__name__', owner)}.{name} (missing public "
                           f"hook: {hook})")
    return missing


def _probe_instances() -> Dict[Any, Any]:
    """Instance attributes exist only on instances: build a minimal one of each."""
    import torch

    model = torch.nn.Linear(1, 1)
    strategy = SupervisedTemplate(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                                  evaluator=None)
    return {SupervisedTemplate: strategy, EvaluationPlugin: EvaluationPlugin(loggers=[])}


class PhaseLoopTemplate(SupervisedTemplate):
    """``SupervisedTemplate`` whose per-experience epoch loop is ``train_experience``.

    Avalanche runs ``train_epochs`` epochs in the private ``_train_exp``; NISPA trains
    in phases until its stop rule fires, so this is the one override of it.
    """

    def _train_exp(self, experience, eval_streams=None, **kwargs):
        self.train_experience(experience, **kwargs)

    def train_experience(self, experience, **kwargs) -> None:
        raise NotImplementedError


def take_stop_request(strategy: SupervisedTemplate) -> bool:
    """Whether ``strategy.stop_training()`` was called since the last look; resets it,
    as Avalanche's own epoch loop does."""
    requested = bool(strategy._stop_training)
    strategy._stop_training = False
    return requested


def criterion_of(strategy: SupervisedTemplate) -> Any:
    """The strategy's loss object (``criterion=`` of the constructor)."""
    return strategy._criterion


def evaluator_results(evaluator: EvaluationPlugin) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """The evaluator's metric history (name -> (x positions, values)) and last values."""
    return (dict(getattr(evaluator, "all_metric_results", {})),
            dict(getattr(evaluator, "last_metric_results", {})))


def replace_evaluator_results(evaluator: EvaluationPlugin, history: Dict, last: Dict) -> None:
    """Set the evaluator's metric history and last values (a resumed run's)."""
    if getattr(evaluator, "collect_all", False):
        evaluator.all_metric_results.clear()
        evaluator.all_metric_results.update(history)
    evaluator.last_metric_results = dict(last)


def tensor_classification_dataset(*tensors, **kwargs):
    """An Avalanche classification dataset over tensors (inputs, targets, ...)."""
    return _classification_dataset._make_taskaware_tensor_classification_dataset(*tensors, **kwargs)
