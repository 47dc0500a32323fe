"""The configuration of one benchmark: :class:`BenchmarkConfig`.

The values of every benchmark are in :mod:`.configs`; this module holds the
class, its checks and how a strategy's flat hyperparameters are merged from it.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from . import strategies as registry
from .params import Backbone, Hyperparameters, Training

__all__ = ["BenchmarkConfig", "Overrides", "STRATEGIES", "TRAINING_KEYS", "make_benchmark"]

#: Every strategy the harness knows, in the order tables list them.
STRATEGIES = registry.names()

#: Hyperparameters every strategy has: the optimizer and the training budget.
TRAINING_KEYS = ("optimizer", "lr", "batch_size", "eval_batch_size", "epochs")

Overrides = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class BenchmarkConfig:
    """Everything needed to run one benchmark.

    Attributes:
        name: the benchmark's name; also the builder's name in
            :mod:`avalanche_nispa.benchmarks` unless ``builder`` is given.
        description: one line for tables and ``--show-config``.
        n_experiences: experiences (tasks) in the stream.
        n_classes: classes in the whole stream.
        backbone: the shared network.
        training: the training settings every strategy shares.
        strategies: every registered strategy's typed hyperparameters here.
        scoped_training: training settings of one strategy only
            (``--set ewc.lr=0.01``), by strategy.
        default_seeds: seeds used when ``--seeds`` is not given.
        builder_kwargs: extra keyword arguments for the benchmark builder.
        notes: caveats printed with the results.
        threads: torch CPU threads when ``--threads`` is not given (None:
            torch's default).
        builder: the builder in :mod:`avalanche_nispa.benchmarks`, when it is
            not ``name`` (a variant of a benchmark, e.g. fewer images).
        scenario: ``"task"`` (task-incremental: baselines are multi-head) or
            ``"class"`` (class-incremental: one output layer over all classes,
            no task label at test time); only strategies whose ``scenarios``
            include it may run here.
        tune_grids: what ``--tune`` tries, by strategy: ``{key: (v1, v2, ...)}``
            (:mod:`.tuning`; every strategy gets the same number of configurations).
        tune_seed: the seed ``--tune`` tunes on (never a reported seed).
        validation_fraction: the share of each training experience that
            ``--tune`` holds out, class by class, to score the configurations.
    """

    name: str
    description: str
    n_experiences: int
    n_classes: int
    backbone: Backbone
    training: Training
    strategies: dict[str, Hyperparameters]
    scoped_training: dict[str, dict[str, Any]] = field(default_factory=dict)
    default_seeds: tuple[int, ...] = (0, 1, 2)
    builder_kwargs: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    threads: Optional[int] = None
    builder: Optional[str] = None
    scenario: str = "task"
    tune_grids: dict[str, dict[str, tuple[Any, ...]]] = field(default_factory=dict)
    tune_seed: int = 0
    validation_fraction: float = 0.1

    @property
    def class_incremental(self) -> bool:
        """One output layer over all classes, no task label at test time."""
        return self.scenario == "class"

    def supported(self) -> tuple[str, ...]:
        """The registered strategies that support this benchmark's scenario, in table order."""
        return tuple(e.name for e in registry.entries() if self.scenario in e.scenarios)

    def check_scenario(self, strategies: Sequence[str]) -> None:
        """ValueError, before anything runs, for a strategy of another setting."""
        refused = [s for s in strategies if s in STRATEGIES and s not in self.supported()]
        if refused:
            raise ValueError(
                f"{', '.join(refused)} cannot run on {self.name!r}, a "
                f"{self.scenario}-incremental benchmark; strategies that support it: "
                f"{', '.join(self.supported())}"
            )

    @property
    def builder_name(self) -> str:
        """The builder in :mod:`avalanche_nispa.benchmarks` that makes this stream."""
        return self.builder or self.name

    def check_key(self, strategy: str, key: str, value: Any) -> Any:
        """``value`` for ``<strategy>.<key>``, type-checked; KeyError/TypeError otherwise."""
        params = self.strategies[strategy]
        if key in params.keys():
            return params.check(key, value)
        if key in Training.keys():
            return Training.check(key, value)
        raise KeyError(
            f"strategy {strategy!r} has no setting {key!r}; known: "
            f"{', '.join(dict.fromkeys((*Training.keys(), *params.keys())))}"
        )

    def hparams(self, strategy: str, overrides: Optional[Mapping[str, Any]] = None) -> dict:
        """The full flat hyperparameters of ``strategy``: common, its own, then overrides."""
        if strategy not in self.strategies:
            raise KeyError(
                f"benchmark {self.name!r} has no settings for strategy {strategy!r}; "
                f"known: {', '.join(self.strategies)}"
            )
        extra = {k: self.check_key(strategy, k, v) for k, v in (overrides or {}).items()}
        merged = {
            **self.training.as_dict(),
            **self.strategies[strategy].as_dict(),
            **self.scoped_training.get(strategy, {}),
            **extra,
        }
        return copy.deepcopy(merged)


def make_benchmark(*, training: Training, overrides: Overrides, **fields: Any) -> BenchmarkConfig:
    """A configuration whose strategies are every registered one, with ``overrides``."""
    unknown = sorted(set(overrides) - set(STRATEGIES))
    if unknown:
        raise KeyError(f"overrides for unknown strategies: {', '.join(unknown)}")
    strategies = {e.name: e.params_for(overrides, fields["n_classes"]) for e in registry.entries()}
    return BenchmarkConfig(training=training, strategies=strategies, **fields)
