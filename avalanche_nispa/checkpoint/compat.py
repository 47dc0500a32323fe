"""Whether a checkpoint fits the strategy it is loaded into: the model's fingerprint,
a fresh model, the same settings (the :class:`~avalanche_nispa.NISPAConfig`, batch
sizes, optimizer class, stateful plugins) and the same optimizer groups. Every check
runs before anything is changed."""
from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any, Dict, List

from torch import Tensor

from avalanche.training.plugins import LRSchedulerPlugin

from ..models.growth import replay_growth_
from ..models.network import SparseMultiTaskNet
from .._avalanche import criterion_of
from .plain import qualname

__all__ = ["model_fingerprint", "settings", "stateful_plugins", "check_fingerprint",
           "check_fresh_model", "check_settings", "check_optimizer_groups", "grown_like"]


def model_fingerprint(model: SparseMultiTaskNet) -> Dict[str, Any]:
    """What must match between the saved model and the one a checkpoint is loaded
    into: the class, every body module with its weight shape and its settings as
    PyTorch prints them (conv stride, padding and dilation, dropout probability,
    pooling size, ...), the head input width, the density and how new heads are drawn."""
    body = []
    for index, module in enumerate(model.body):
        weight = getattr(module, "weight", None)
        shape = list(weight.shape) if isinstance(weight, Tensor) else []
        body.append(f"body.{index} {type(module).__name__} {tuple(shape)} "
                    f"{_torch_settings(module)}".rstrip())
    return {
        "class": qualname(model),
        "body": body,
        "head_in_features": int(model.head_in_features),
        "density": float(model.density),
        # as the user built it: the original mode widens a None to the stream's classes
        "num_classes": model.configured_num_classes,
        "mask_init": str(model.mask_init),
        "head_bias_init": str(model.head_bias_init),
        "head_weight_init": str(model.head_weight_init),
        "head_fan_out": str(model.head_fan_out),
    }


#: Fingerprint entries added after files were first written, with the value every
#: model had before they existed (a file without them was saved from such a model).
_ADDED_LATER = {"head_weight_init": None, "head_fan_out": "output_width"}


def grown_like(model: SparseMultiTaskNet, state: Dict[str, Tensor]) -> SparseMultiTaskNet:
    """``model``, or when ``state`` was saved from a network that grew units and
    ``model`` has not, a copy grown to its shapes (for comparing fingerprints without
    touching the user's model before every check has passed)."""
    if "unit_growth" not in state or getattr(model, "unit_growth", None) is not None:
        return model
    twin = copy.deepcopy(model)
    replay_growth_(twin, state)
    return twin


def _torch_settings(module: Any) -> str:
    """The module's settings as its PyTorch class prints them (for a masked layer,
    the ``Linear``/``Conv2d`` it extends: nothing that changes while training)."""
    for cls in type(module).__mro__:
        if cls.__module__.startswith("torch.nn") and "extra_repr" in vars(cls):
            return cls.extra_repr(module)
    return ""


def settings(strategy) -> Dict[str, Any]:
    """The settings a resumed run must share with the saved one."""
    return {**strategy.config.comparable(),
            "criterion": describe_criterion(criterion_of(strategy)),
            "train_mb_size": int(strategy.train_mb_size),
            "eval_mb_size": int(strategy.eval_mb_size)}


def describe_criterion(criterion: Any) -> str:
    """The loss's class and its plain settings (reduction, label smoothing, ...)."""
    values = {name: value for name, value in sorted(vars(criterion).items())
              if not name.startswith("_") and name != "training"
              and isinstance(value, (bool, int, float, str, type(None)))}
    return f"{qualname(criterion)}({', '.join(f'{k}={v!r}' for k, v in values.items())})"


def stateful_plugins(strategy) -> List[Any]:
    """Plugins whose state a checkpoint keeps (every plugin with ``state_dict`` and
    ``load_state_dict``, NISPA's own included, and Avalanche's LR scheduler), in
    plugin order."""
    found = []
    for plugin in strategy.plugins:
        if isinstance(plugin, LRSchedulerPlugin):
            found.append(plugin)
        elif callable(getattr(plugin, "state_dict", None)) and callable(
            getattr(plugin, "load_state_dict", None)
        ):
            found.append(plugin)
    return found


def check_fingerprint(saved: Dict[str, Any], current: Dict[str, Any], path: Path) -> None:
    fix = ("build the model exactly as in the saved run (same class, layer sizes, "
           "density and head settings) before loading")
    if saved["class"] != current["class"]:
        raise ValueError(
            f"{path} was saved from a {saved['class']}, but the strategy's model is a "
            f"{current['class']}: {fix}"
        )
    if saved["body"] != current["body"]:
        for index in range(max(len(saved["body"]), len(current["body"]))):
            old = saved["body"][index] if index < len(saved["body"]) else "nothing"
            new = current["body"][index] if index < len(current["body"]) else "nothing"
            if old != new:
                raise ValueError(
                    f"{path} was saved from another model: the saved body has {old} where "
                    f"this model has {new}: {fix}"
                )
    for key in ("head_in_features", "density", "num_classes", "mask_init", "head_bias_init",
                *_ADDED_LATER):
        if key in _ADDED_LATER and key not in saved:
            if _ADDED_LATER[key] is None:
                continue  # not recorded then, and it varied by model class: trust the class check
            saved = {**saved, key: _ADDED_LATER[key]}
        if saved[key] != current[key]:
            raise ValueError(
                f"{path} was saved from another model: {key} was {saved[key]!r}, this model "
                f"has {current[key]!r}: {fix}"
            )


def check_fresh_model(model: SparseMultiTaskNet, state: Dict[str, Tensor], path: Path) -> None:
    saved_heads = {k.split(".")[1] for k in state if k.startswith("heads.")}
    extra = sorted(set(model.heads) - saved_heads)
    if extra:
        raise ValueError(
            f"the model already has heads for tasks {extra} that {path} does not have; "
            "load a checkpoint into a freshly built model and strategy, before training"
        )


def check_settings(strategy, payload: Dict[str, Any], path: Path, strict: bool) -> None:
    problems = []
    saved = payload["settings"]
    current = settings(strategy)
    for key in saved:
        if key not in current or saved[key] != current[key]:
            shown = "a different schedule" if key == "tau_values" else repr(saved[key])
            now = "another one" if key == "tau_values" else repr(current.get(key))
            problems.append(f"{key} was {shown}, this strategy has {now}")
    optimizer = payload["optimizer"]
    if optimizer["class"] != qualname(strategy.optimizer):
        problems.append(f"the optimizer was a {optimizer['class']}, this one is a "
                        f"{qualname(strategy.optimizer)}")
    saved_plugins = [p["class"] for p in payload["plugins"]]
    current_plugins = [qualname(p) for p in stateful_plugins(strategy)]
    if saved_plugins != current_plugins:
        problems.append(f"the stateful plugins were {saved_plugins}, this strategy has "
                        f"{current_plugins}")
    if not problems:
        return
    message = (f"{path} was saved with other settings: " + "; ".join(problems) + ". ")
    if strict:
        raise ValueError(
            message + "Build the strategy with the saved settings, or pass strict=False to "
            "load anyway (the run will then differ from an uninterrupted one)"
        )
    warnings.warn(message + "Loading anyway (strict=False).", RuntimeWarning, stacklevel=3)


def check_optimizer_groups(strategy, saved: Dict[str, Any], path: Path) -> None:
    groups = saved["param_names"]
    if len(groups) != len(strategy.optimizer.param_groups):
        raise ValueError(
            f"{path} holds an optimizer with {len(groups)} parameter group(s), the strategy's "
            f"optimizer has {len(strategy.optimizer.param_groups)}: build the optimizer with "
            "the same parameter groups as in the saved run"
        )
