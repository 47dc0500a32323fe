"""One factory per strategy: the model, the optimizer and the Avalanche strategy.

All baselines are Avalanche's own strategies on the dense multi-head backbone
of :mod:`benchmarks.models`, except where avalanche-lib 0.6.0 is broken:
Synaptic Intelligence uses :class:`FixedSynapticIntelligencePlugin` (the CPU
bug) and PackNet uses :class:`FixedPackNet` (nested plugin list, ``bias=False``
crash, AdamW re-creation), both from :mod:`avalanche_nispa.baselines`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import torch
from torch import nn
from torch.nn import CrossEntropyLoss

from avalanche.training import AGEM, EWC, GEM, MAS, JointTraining, LwF, Naive, Replay
from avalanche.training.templates import SupervisedTemplate

from ..baselines import (
    FixedPackNet,
    FixedSynapticIntelligencePlugin,
    TaskMaskedPackNetModel,
    equal_share_prune_proportions,
)

from ..configs import TRAINING_KEYS, BenchmarkConfig
from ..models import (
    count_dense_parameters,
    count_packnet_parameters,
    multi_head_net,
    single_head_net,
)

__all__ = [
    "BuiltStrategy",
    "StrategyNotAvailable",
    "build_strategy",
    "nispa_available",
]

#: Keys of NISPA's settings that go to the model rather than the strategy.
_NISPA_MODEL_KEYS = ("density", "num_classes", "dense_first_conv")


class StrategyNotAvailable(RuntimeError):
    """The strategy cannot be built in this installation."""


@dataclass
class BuiltStrategy:
    """A strategy ready to train, with what the runner needs to know about it.

    Attributes:
        strategy: the Avalanche strategy.
        model: its model (the strategy's ``model`` attribute, same object).
        kind: ``"dense"``, ``"packnet"`` or ``"nispa"``: how parameters count.
        epochs: epochs per experience, or None when the strategy decides
            (NISPA's phases; read from ``phase_history`` after training).
        joint: train once on the whole stream instead of experience by
            experience.
        notes: adjustments made to the requested hyperparameters.
    """

    strategy: SupervisedTemplate
    model: nn.Module
    kind: str
    epochs: Optional[int]
    joint: bool = False
    notes: list[str] = field(default_factory=list)

    def count_parameters(self) -> dict[str, int]:
        """Active, frozen and total parameters of the model, right now."""
        if self.kind == "nispa":
            from avalanche_nispa import count_parameters

            counts = count_parameters(self.model)
            return {key: int(counts[key]) for key in ("active", "frozen", "total")}
        if self.kind == "packnet":
            return count_packnet_parameters(self.model)
        return count_dense_parameters(self.model)


def _optimizer(hp: dict[str, Any], params: Any) -> torch.optim.Optimizer:
    name = str(hp["optimizer"]).lower()
    if name == "adam":
        return torch.optim.Adam(params, lr=hp["lr"])
    if name == "sgd":
        return torch.optim.SGD(params, lr=hp["lr"], momentum=hp.get("momentum", 0.0))
    raise ValueError(f"optimizer must be 'adam' or 'sgd', got {hp['optimizer']!r}")


def _split(hp: dict[str, Any], *keys: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``hp`` split into (the entries named by ``keys``, the others)."""
    chosen = {k: hp[k] for k in keys if k in hp}
    rest = {k: v for k, v in hp.items() if k not in keys}
    return chosen, rest


def _common(hp: dict[str, Any], device: str, evaluator: Any, plugins: Sequence[Any]) -> dict:
    common = dict(
        criterion=CrossEntropyLoss(),
        train_mb_size=int(hp["batch_size"]),
        eval_mb_size=int(hp["eval_batch_size"]),
        device=device,
        plugins=list(plugins),  # a fresh list: Avalanche wrappers append to it
        evaluator=evaluator,
    )
    if hp.get("epochs") is not None:
        common["train_epochs"] = int(hp["epochs"])
    return common


def _dense(cls: type, **fixed: Any) -> Callable[..., BuiltStrategy]:
    """Factory for an Avalanche strategy on the dense multi-head backbone."""

    def build(cfg: BenchmarkConfig, hp: dict, n_experiences: int, common: dict) -> BuiltStrategy:
        _, algorithm = _split(hp, *TRAINING_KEYS, "momentum")
        model = multi_head_net(cfg.backbone)
        strategy = cls(
            model=model,
            optimizer=_optimizer(hp, model.parameters()),
            **common,
            **fixed,
            **algorithm,
        )
        joint = cls is JointTraining
        return BuiltStrategy(strategy, model, "dense", int(hp["epochs"]), joint=joint)

    return build


def _synaptic_intelligence(
    cfg: BenchmarkConfig, hp: dict, n_experiences: int, common: dict
) -> BuiltStrategy:
    _, algorithm = _split(hp, *TRAINING_KEYS, "momentum")
    model = multi_head_net(cfg.backbone)
    # avalanche.training.SynapticIntelligence builds the CPU-broken plugin; this
    # is the same strategy (Naive + plugin) with the fixed one.
    common["plugins"].append(FixedSynapticIntelligencePlugin(**algorithm))
    strategy = Naive(model=model, optimizer=_optimizer(hp, model.parameters()), **common)
    return BuiltStrategy(strategy, model, "dense", int(hp["epochs"]))


def _packnet(cfg: BenchmarkConfig, hp: dict, n_experiences: int, common: dict) -> BuiltStrategy:
    notes = []
    epochs = int(hp["epochs"])
    post_prune = int(hp["post_prune_epochs"])
    if epochs < 2:
        notes.append(f"PackNet needs an epoch before and after pruning: epochs {epochs} -> 2")
        epochs = 2
    if post_prune >= epochs or post_prune < 1:
        clamped = min(max(post_prune, 1), epochs - 1)
        notes.append(f"post_prune_epochs {post_prune} -> {clamped} (of {epochs} epochs)")
        post_prune = clamped
    proportion = hp["prune_proportion"]
    if proportion == "equal_share":
        proportion = equal_share_prune_proportions(n_experiences)
    common["train_epochs"] = epochs
    model = TaskMaskedPackNetModel(single_head_net(cfg.backbone, cfg.n_classes))
    strategy = FixedPackNet(
        model=model,
        optimizer=_optimizer(hp, model.parameters()),
        post_prune_epochs=post_prune,
        prune_proportion=proportion,
        **common,
    )
    return BuiltStrategy(strategy, model, "packnet", epochs, notes=notes)


def nispa_available() -> tuple[bool, str]:
    """Whether NISPA can be built here, and if not, why (a message for users)."""
    try:
        from avalanche_nispa import NISPA  # noqa: F401
        from avalanche_nispa.models import NISPACNN, NISPAMLP  # noqa: F401
    except ImportError as err:
        return False, (
            "NISPA is not available yet: the NISPA strategy (avalanche_nispa.strategy "
            f"and its models) cannot be imported ({err})"
        )
    return True, ""


def _nispa(cfg: BenchmarkConfig, hp: dict, n_experiences: int, common: dict) -> BuiltStrategy:
    available, why = nispa_available()
    if not available:
        raise StrategyNotAvailable(why)
    from avalanche_nispa import NISPA
    from avalanche_nispa.models import NISPACNN, NISPAMLP

    training, rest = _split(hp, *TRAINING_KEYS, "momentum")
    model_kwargs, strategy_kwargs = _split(rest, *_NISPA_MODEL_KEYS)
    backbone = cfg.backbone
    if backbone.kind == "mlp":
        model_kwargs.pop("dense_first_conv", None)
        model = NISPAMLP(
            input_size=math.prod(backbone.input_shape),
            hidden_sizes=tuple(backbone.hidden_sizes),
            **model_kwargs,
        )
    else:
        model = NISPACNN(
            in_channels=backbone.input_shape[0], input_size=backbone.input_shape[1], **model_kwargs
        )
    common.pop("train_epochs", None)  # NISPA trains in phases until its stop rule fires
    strategy = NISPA(
        model=model,
        optimizer=_optimizer(training, model.parameters()),
        **common,
        **strategy_kwargs,
    )
    return BuiltStrategy(strategy, model, "nispa", None)


_FACTORIES: dict[str, Callable[..., BuiltStrategy]] = {
    "nispa": _nispa,
    "nispa_original": _nispa,
    "naive": _dense(Naive),
    "ewc": _dense(EWC),
    "si": _synaptic_intelligence,
    "mas": _dense(MAS),
    "lwf": _dense(LwF),
    "replay": _dense(Replay),
    "agem": _dense(AGEM),
    "gem": _dense(GEM),
    "packnet": _packnet,
    "joint": _dense(JointTraining),
}


def build_strategy(
    name: str,
    cfg: BenchmarkConfig,
    hp: dict[str, Any],
    *,
    n_experiences: int,
    device: str = "cpu",
    evaluator: Any = None,
    plugins: Sequence[Any] = (),
) -> BuiltStrategy:
    """Build strategy ``name`` with hyperparameters ``hp`` on ``cfg``'s backbone.

    Args:
        name: one of :data:`benchmarks.configs.STRATEGIES`.
        cfg: the benchmark configuration (backbone, number of classes).
        hp: the strategy's full hyperparameters (:meth:`BenchmarkConfig.hparams`).
        n_experiences: experiences in the stream (PackNet's pruning schedule).
        device: torch device.
        evaluator: the Avalanche ``EvaluationPlugin``.
        plugins: extra plugins; the caller's sequence is never modified.

    Raises:
        StrategyNotAvailable: NISPA requested but not importable.
        KeyError: unknown strategy.
    """
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise KeyError(f"unknown strategy {name!r}; known: {', '.join(_FACTORIES)}") from None
    common = _common(hp, device, evaluator, plugins)
    return factory(cfg, hp, n_experiences, common)
