"""What one strategy of the harness is: :class:`StrategyEntry`, and what it builds.

A strategy is one module of :mod:`avalanche_nispa.harness.strategies` that
defines ``ENTRIES``: instances of a :class:`StrategyEntry` subclass. The entry
holds the strategy's name, its place in tables (``order``), its typed default
hyperparameters (``defaults``, a :class:`~.params.Hyperparameters` subclass,
which also says which keys ``--set`` / ``--grid`` accept and their types), the
model it trains and how its parameters are counted. Anything a strategy does
differently is a method it overrides; the harness never asks for its name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Optional

import torch
from torch import nn
from torch.nn import CrossEntropyLoss

from avalanche.training.templates import SupervisedTemplate

from .models import count_dense_parameters, multi_head_net, single_head_net
from .params import Backbone, Hyperparameters, Training

__all__ = [
    "BOTH_SCENARIOS", "BuiltStrategy", "CLASS_ONLY", "DenseEntry", "SCENARIOS", "StrategyEntry", "make_optimizer",
    "strategy_kwargs",
]

#: The settings a benchmark can have: task-incremental (a task label chooses the
#: head) and class-incremental (one output layer, no task label at test time).
SCENARIOS = ("task", "class")

#: ``scenarios`` of a strategy that runs in both settings.
BOTH_SCENARIOS = frozenset(SCENARIOS)

#: ``scenarios`` of a strategy for class-incremental benchmarks only.
CLASS_ONLY = frozenset({"class"})


@dataclass
class BuiltStrategy:
    """A strategy ready to train, with what the runner needs to know about it.

    Attributes:
        entry: the registry entry that built it (counts parameters, reports details).
        strategy: the Avalanche strategy.
        model: its model (the strategy's ``model`` attribute, same object).
        epochs: epochs per experience, or None when the strategy decides.
        notes: adjustments made to the requested hyperparameters.
    """

    entry: "StrategyEntry"
    strategy: SupervisedTemplate
    model: nn.Module
    epochs: Optional[int]
    notes: list[str] = field(default_factory=list)

    @property
    def joint(self) -> bool:
        """Train once on the whole stream instead of experience by experience."""
        return self.entry.joint

    def count_parameters(self) -> dict[str, int]:
        """Active, frozen and total parameters of the model, right now."""
        return self.entry.count_parameters(self.model)


def make_optimizer(training: Training, params: Any) -> torch.optim.Optimizer:
    """The optimizer named by ``training`` over ``params``."""
    name = training.optimizer.lower()
    if name == "adam":
        return torch.optim.Adam(params, lr=training.lr)
    if name == "sgd":
        return torch.optim.SGD(params, lr=training.lr, momentum=training.momentum or 0.0)
    raise ValueError(f"optimizer must be 'adam' or 'sgd', got {training.optimizer!r}")


def strategy_kwargs(
    training: Training, *, device: str, evaluator: Any, plugins: Sequence[Any]
) -> dict[str, Any]:
    """The keyword arguments every Avalanche strategy takes, from ``training``."""
    kwargs: dict[str, Any] = dict(
        criterion=CrossEntropyLoss(),
        train_mb_size=int(training.batch_size),
        eval_mb_size=int(training.eval_batch_size),
        device=device,
        plugins=list(plugins),  # a fresh list: Avalanche wrappers append to it
        evaluator=evaluator,
    )
    if training.epochs is not None:
        kwargs["train_epochs"] = int(training.epochs)
    return kwargs


class StrategyEntry:
    """One strategy of the harness: settings, construction, parameter counting.

    Subclasses set the class attributes and implement :meth:`build`.

    Attributes:
        name: the strategy's name on the command line and in tables.
        order: its place in tables and in ``--strategies all`` (ascending).
        defaults: its default hyperparameters (benchmarks may override some).
        demo: part of ``--strategies auto``.
        joint: trains once on the whole stream.
        density_sweep: the strategy ``--density-sweep`` grids over ``density``.
        plot_marker: its matplotlib marker in the accuracy-against-parameters plot.
        scenarios: the settings it supports (:data:`SCENARIOS`); the harness
            refuses it on a benchmark of another setting before anything runs.
    """

    name: ClassVar[str]
    order: ClassVar[int]
    defaults: ClassVar[Hyperparameters]
    demo: ClassVar[bool] = False
    joint: ClassVar[bool] = False
    density_sweep: ClassVar[bool] = False
    plot_marker: ClassVar[str] = "o"
    scenarios: ClassVar[frozenset[str]] = frozenset({"task"})

    def params_for(
        self, overrides: Mapping[str, Mapping[str, Any]], n_classes: int
    ) -> Hyperparameters:
        """Its hyperparameters on a benchmark: the defaults with the benchmark's overrides."""
        return self.defaults.updated(**overrides.get(self.name, {}))

    def build(
        self, backbone: Backbone, n_classes: int, hp: Mapping[str, Any], n_experiences: int,
        kwargs: dict[str, Any], *, scenario: str = "task",
    ) -> BuiltStrategy:
        """The strategy with flat hyperparameters ``hp`` and the common ``kwargs``,
        for a benchmark of setting ``scenario`` (one of :data:`SCENARIOS`)."""
        raise NotImplementedError

    def count_parameters(self, model: nn.Module) -> dict[str, int]:
        """Active, frozen and total parameters (dense: every trainable one is active)."""
        return count_dense_parameters(model)

    def epochs_trained(self, built: BuiltStrategy, n_trained: int) -> list[int]:
        """Epochs of each of the ``n_trained`` training calls."""
        return [int(built.epochs or 0)] * n_trained

    def experience_details(self, built: BuiltStrategy) -> Any:
        """What to record after each experience besides accuracy (None: nothing)."""
        return None

    def run_details(self, built: BuiltStrategy, per_experience: list[Any]) -> Any:
        """The strategy's own part of the run record (stored under ``"nispa"``)."""
        return None


class DenseEntry(StrategyEntry):
    """An Avalanche strategy class on the dense backbone: multi-head on a
    task-incremental benchmark, one output layer of ``n_classes`` (no task
    masking) on a class-incremental one.

    Its hyperparameters go to the class as keyword arguments, by field name.
    ``flags`` set the other :class:`StrategyEntry` attributes (``demo=True``).
    """

    strategy_class: type

    def __init__(
        self, name: str, order: int, defaults: Hyperparameters, strategy_class: type,
        **flags: Any,
    ) -> None:
        self.name, self.order, self.defaults = name, order, defaults
        self.strategy_class = strategy_class
        for flag, value in flags.items():
            if not hasattr(StrategyEntry, flag):
                raise TypeError(f"StrategyEntry has no attribute {flag!r}")
            setattr(self, flag, value)

    def build(
        self, backbone: Backbone, n_classes: int, hp: Mapping[str, Any], n_experiences: int,
        kwargs: dict[str, Any], *, scenario: str = "task",
    ) -> BuiltStrategy:
        training = Training.from_dict(hp)
        params = type(self.defaults).from_dict(hp)
        if scenario == "class":
            model: nn.Module = single_head_net(backbone, n_classes)
        else:
            model = multi_head_net(backbone)
        strategy = self.make_strategy(model, make_optimizer(training, model.parameters()),
                                      params, kwargs)
        return BuiltStrategy(self, strategy, model, int(training.epochs))

    def make_strategy(
        self, model: nn.Module, optimizer: torch.optim.Optimizer, params: Hyperparameters,
        kwargs: dict[str, Any],
    ) -> SupervisedTemplate:
        """The Avalanche strategy; override when the class is not called directly."""
        return self.strategy_class(model=model, optimizer=optimizer, **kwargs, **params.as_dict())
