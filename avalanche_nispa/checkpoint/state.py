"""What a checkpoint holds, collected from a strategy and put back into one.

- the model's ``state_dict`` (weights, connection masks, frozen masks, unit states,
  every task head, ``masked_logit_value``) and the class-id bookkeeping Avalanche
  keeps outside it (``max_class_label``, the known task labels);
- the optimizer's ``state_dict`` and, by name, which parameter is in which group;
- the settings (:func:`.compat.settings`) and NISPA's ``phase_history``;
- every plugin's ``state_dict()`` (NISPA's own plugins, a user's plugin that has one,
  an ``LRSchedulerPlugin``'s scheduler), in plugin order;
- the Avalanche clock counters and the RNG states;
- the evaluator's metric history and its metric objects' state as plain data, and
  optionally the metric objects pickled.

Nothing here reads another object's private attributes: plugins and the optimizer
give their state through ``state_dict``, the model through its public attributes.
"""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Dict, List

import torch

from avalanche.training.plugins import LRSchedulerPlugin

from .compat import model_fingerprint, settings, stateful_plugins
from .evaluator import evaluator_history, evaluator_pickle
from .evaluator import metric_state as plain_metric_state
from .files import CHECKPOINT_FORMAT, CHECKPOINT_FORMAT_VERSION, run_id
from .plain import qualname, to_cpu, to_plain
from ..rng import capture_rng

__all__ = ["collect", "next_experience", "restore_model", "restore_optimizer",
           "restore_training_state", "CLOCK_COUNTERS"]

CLOCK_COUNTERS = (
    "train_iterations",
    "train_exp_counter",
    "train_exp_epochs",
    "train_exp_iterations",
    "train_epoch_iterations",
    "total_iterations",
)


def collect(strategy, metric_state: bool) -> Dict[str, Any]:
    """The whole checkpoint of ``strategy``, as plain data."""
    from .. import __version__

    model = strategy.model
    payload: Dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "library_version": __version__,
        "torch_version": str(torch.__version__),
        "run_id": run_id(strategy),
        "save_id": uuid.uuid4().hex,
        "next_experience": next_experience(strategy),
        "fingerprint": model_fingerprint(model),
        "model": to_cpu(dict(model.state_dict())),
        "model_attributes": {
            "max_class_label": int(model.max_class_label),
            "known_train_tasks_labels": sorted(int(t) for t in model.known_train_tasks_labels),
        },
        "optimizer": _optimizer_state(strategy),
        "settings": settings(strategy),
        "phase_history": to_plain(strategy.phase_history, "phase_history"),
        "plugins": [{"class": qualname(p), "state": _plugin_state(p)}
                    for p in stateful_plugins(strategy)],
        "clock": {name: int(getattr(strategy.clock, name)) for name in CLOCK_COUNTERS},
        "rng": capture_rng(),
        "evaluator": evaluator_history(strategy.evaluator),
        "metric_state": plain_metric_state(strategy.evaluator),
    }
    if metric_state:
        blob = evaluator_pickle(strategy.evaluator)
        if blob is not None:
            payload["evaluator_pickle"] = blob
    return payload


def next_experience(strategy) -> int:
    """Index of the next experience of the stream to train: one after the highest
    experience trained (training an experience twice, or a list at once, counts each
    experience once)."""
    trained = [int(entry["experience"]) for entry in strategy.phase_history]
    return max(trained) + 1 if trained else 0


def _plugin_state(plugin) -> Any:
    if isinstance(plugin, LRSchedulerPlugin):
        return to_plain(plugin.scheduler.state_dict(), f"{qualname(plugin)} state")
    return to_plain(plugin.state_dict(), f"{qualname(plugin)}.state_dict()")


def _load_plugin_state(plugin, state) -> None:
    if isinstance(plugin, LRSchedulerPlugin):
        plugin.scheduler.load_state_dict(state)
    else:
        plugin.load_state_dict(state)


def _optimizer_state(strategy) -> Dict[str, Any]:
    optimizer = strategy.optimizer
    names = {id(p): n for n, p in strategy.model.named_parameters()}
    groups = []
    for index, group in enumerate(optimizer.param_groups):
        unknown = [tuple(p.shape) for p in group["params"] if id(p) not in names]
        if unknown:
            raise ValueError(
                f"optimizer parameter group {index} holds parameters of shapes {unknown} that "
                "are not the model's; a checkpoint can only restore an optimizer over "
                "strategy.model's parameters"
            )
        groups.append([names[id(p)] for p in group["params"]])
    return {
        "class": qualname(optimizer),
        "param_names": groups,
        "state_dict": to_cpu(optimizer.state_dict()),
    }


def restore_model(model, payload: Dict[str, Any]) -> None:
    model.load_state_dict(payload["model"])  # creates the saved heads (uses the RNG)
    attributes = payload["model_attributes"]
    model.max_class_label = attributes["max_class_label"]
    model.known_train_tasks_labels = set(attributes["known_train_tasks_labels"])


def restore_optimizer(strategy, saved: Dict[str, Any], path: Path) -> None:
    optimizer = strategy.optimizer
    named = dict(strategy.model.named_parameters())
    groups: List[List[str]] = saved["param_names"]
    missing = [name for names in groups for name in names if name not in named]
    if missing:
        raise ValueError(
            f"{path} holds optimizer state for parameters {missing[:5]} that the model does "
            "not have: build the model as in the saved run"
        )
    if saved["class"] != qualname(optimizer):
        return  # refused or warned about by check_settings; keep the new optimizer
    for group, names in zip(optimizer.param_groups, groups):
        group["params"] = [named[name] for name in names]
    optimizer.load_state_dict(saved["state_dict"])
    # Tell Avalanche the optimizer already maps every parameter, as after any
    # experience of the uninterrupted run; otherwise its first make_optimizer() call
    # would reset the state just loaded.
    strategy.optimized_param_id = dict(strategy.model.named_parameters())


def restore_training_state(strategy, payload: Dict[str, Any]) -> None:
    """Phase history, plugins (matched by class, in order) and the clock."""
    strategy.phase_history = to_plain(payload["phase_history"], "phase_history")
    for plugin, saved in zip(stateful_plugins(strategy), payload["plugins"]):
        if qualname(plugin) == saved["class"]:
            _load_plugin_state(plugin, saved["state"])
    for name, value in payload["clock"].items():
        setattr(strategy.clock, name, int(value))
    strategy.experiences_started = int(strategy.clock.train_exp_counter)
