"""Publishes NISPA's unit states and phase statistics through Avalanche's evaluator,
so every logger (TextLogger, TensorBoard, W&B, ...) receives them."""
from __future__ import annotations

from typing import Optional

from avalanche.evaluation.metric_results import MetricValue

from ..algorithm.units import count_parameters, unit_state_summary
from ._common import current_task_label, require_sparse_net
from .base import NISPAPlugin

__all__ = ["HEAD", "UnitStateReporter", "metric_name"]

_LAYER_KEYS = ("stable", "candidate", "plastic", "live_connections", "frozen_connections", "density")
_PREFIX = "train_phase/train_stream"
HEAD = "head"
"""Layer name under which the head of the task just trained is reported."""


def metric_name(key: str, layer: Optional[str] = None) -> str:
    """The name ``UnitStateReporter`` publishes ``key`` under, e.g.
    ``metric_name("stable", "body.1") == "NISPA_stable/train_phase/train_stream/body.1"``
    and ``metric_name("phases") == "NISPA_phases/train_phase/train_stream"``."""
    name = f"NISPA_{key}/{_PREFIX}"
    return name if layer is None else f"{name}/{layer}"


class UnitStateReporter(NISPAPlugin):
    """At the end of every experience, publish per layer the numbers of stable,
    candidate and plastic units, live and frozen connections and density, the active /
    frozen / total parameter counts, and (inside NISPA) the phases trained and the
    final τ.

    As with Avalanche's own metrics, each name is one curve and the x position
    (TensorBoard's step) is the number of experiences trained so far, so the name
    holds no experience: ``NISPA_stable/train_phase/train_stream/body.1``,
    ``NISPA_phases/train_phase/train_stream`` (see :func:`metric_name`). The hidden
    layers keep their module names; the head of the task just trained is ``head``.

    With selective unfreezing (:class:`~avalanche_nispa.plugins.SelectiveUnfreezingPlugin`)
    it also publishes, per hidden layer, the stable units released back to plastic at
    the start of the experience (``NISPA_released/train_phase/train_stream/body.1``).
    """

    def after_training_exp(self, strategy, **kwargs) -> None:
        evaluator = getattr(strategy, "evaluator", None)
        if evaluator is None:
            return
        model = require_sparse_net(strategy.model, type(self).__name__)
        task = current_task_label(strategy)
        current_head = None if task is None else f"heads.{model.head_key(task)}"
        x = strategy.clock.train_exp_counter + 1

        def publish(name: str, value: float) -> None:
            evaluator.publish_metric_value(MetricValue(self, name, value, x))

        for row in unit_state_summary(model, task):
            layer = HEAD if row["layer"] == current_head else row["layer"]
            for key in _LAYER_KEYS:
                publish(metric_name(key, layer), row[key])
        for key, value in count_parameters(model).items():
            publish(metric_name(f"{key}_parameters"), value)
        for plugin in strategy.plugins:
            for layer, count in getattr(plugin, "last_released", {}).items():
                publish(metric_name("released", layer), count)
        history = getattr(strategy, "phase_history", None)
        if history:
            last = history[-1]
            publish(metric_name("phases"), last["phases"])
            publish(metric_name("final_tau"), last["final_tau"])
