"""The strategy registry: every module of this package is one strategy.

A new baseline is one new file here defining ``ENTRIES``, a tuple of
:class:`~avalanche_nispa.harness.entry.StrategyEntry` instances (see
``naive.py`` for the smallest one). :func:`entries` imports every module of the
package (``pkgutil``) and orders the entries by their ``order``; there is no
list of names anywhere else. Benchmarks need no change: a strategy runs with
its ``defaults`` unless a benchmark configuration overrides some of them.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import pkgutil
from collections.abc import Sequence
from typing import Any, Mapping, Optional

from ..entry import BuiltStrategy, StrategyEntry, strategy_kwargs
from ..params import Backbone, Training

__all__ = ["BuiltStrategy", "build_strategy", "discover", "entries", "find", "get", "names"]


def discover(package: str = __name__) -> tuple[StrategyEntry, ...]:
    """The ``ENTRIES`` of every module of ``package``, by ``order`` then name."""
    root = importlib.import_module(package)
    found: list[StrategyEntry] = []
    for module_info in pkgutil.iter_modules(root.__path__):
        module = importlib.import_module(f"{package}.{module_info.name}")
        found.extend(getattr(module, "ENTRIES", ()))
    duplicated = sorted({e.name for e in found if [f.name for f in found].count(e.name) > 1})
    if duplicated:
        raise RuntimeError(f"strategies defined twice: {', '.join(duplicated)}")
    return tuple(sorted(found, key=lambda e: (e.order, e.name)))


@functools.lru_cache(maxsize=None)
def entries() -> tuple[StrategyEntry, ...]:
    """Every registered strategy, in table order."""
    return discover()


def names() -> tuple[str, ...]:
    """The names of every registered strategy, in table order."""
    return tuple(entry.name for entry in entries())


def find(name: str) -> Optional[StrategyEntry]:
    """The entry of strategy ``name``, or None (e.g. an old record's strategy)."""
    return next((entry for entry in entries() if entry.name == name), None)


def get(name: str) -> StrategyEntry:
    """The entry of strategy ``name``; KeyError naming the known ones otherwise."""
    entry = find(name)
    if entry is None:
        raise KeyError(f"unknown strategy {name!r}; known: {', '.join(names())}")
    return entry


def build_strategy(
    name: str,
    backbone: Backbone,
    n_classes: int,
    hp: Mapping[str, Any],
    *,
    n_experiences: int,
    device: str = "cpu",
    evaluator: Any = None,
    plugins: Sequence[Any] = (),
    scenario: str = "task",
) -> BuiltStrategy:
    """Build strategy ``name`` with flat hyperparameters ``hp`` on ``backbone``.

    Args:
        name: a registered strategy (:func:`names`).
        backbone: the shared network.
        n_classes: classes in the whole stream.
        hp: the strategy's full hyperparameters (``BenchmarkConfig.hparams``).
        n_experiences: experiences in the stream (PackNet's pruning schedule).
        device: torch device.
        evaluator: the Avalanche ``EvaluationPlugin``.
        plugins: extra plugins (e.g. progress); the caller's sequence is never modified.
        scenario: the benchmark's setting, ``"task"`` or ``"class"``
            (``BenchmarkConfig.scenario``).
    """
    entry = get(name)
    if hp.get("hidden_sizes"):
        # a per-run width (a matched parameter budget); the benchmark's backbone otherwise
        if backbone.kind != "mlp":
            raise ValueError(f"hidden_sizes sets an MLP's widths; the backbone is a {backbone.kind}")
        backbone = dataclasses.replace(backbone, hidden_sizes=tuple(hp["hidden_sizes"]))
    kwargs = strategy_kwargs(
        Training.from_dict(hp), device=device, evaluator=evaluator, plugins=plugins
    )
    return entry.build(backbone, n_classes, hp, n_experiences, kwargs, scenario=scenario)
