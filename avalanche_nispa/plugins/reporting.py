"""Publishes NISPA's unit states and phase statistics through Avalanche's evaluator,
so every logger (TextLogger, CSVLogger, TensorBoard, ...) receives them."""
from __future__ import annotations

from avalanche.evaluation.metric_results import MetricValue

from ..algorithm.units import count_parameters, unit_state_summary
from ._common import current_task_label, require_sparse_net
from .base import NISPAPlugin

__all__ = ["UnitStateReporter"]

_LAYER_KEYS = ("stable", "candidate", "plastic", "live_connections", "frozen_connections", "density")


class UnitStateReporter(NISPAPlugin):
    """At the end of every experience, publish per layer the numbers of stable,
    candidate and plastic units, live and frozen connections and density, the active /
    frozen parameter counts, and (inside NISPA) the phases trained and the final τ.

    Names follow Avalanche's ``<Metric>/<phase>/<stream>/...`` pattern, e.g.
    ``NISPA_stable/train_phase/train_stream/Exp001/body.1``; the x position is the
    number of finished training experiences.
    """

    def after_training_exp(self, strategy, **kwargs) -> None:
        evaluator = getattr(strategy, "evaluator", None)
        if evaluator is None:
            return
        model = require_sparse_net(strategy.model, type(self).__name__)
        exp = strategy.experience.current_experience
        x = strategy.clock.train_exp_counter + 1
        prefix = f"train_phase/train_stream/Exp{exp:03d}"

        def publish(name: str, value: float) -> None:
            evaluator.publish_metric_value(MetricValue(self, name, value, x))

        for row in unit_state_summary(model, current_task_label(strategy)):
            for key in _LAYER_KEYS:
                publish(f"NISPA_{key}/{prefix}/{row['layer']}", row[key])
        for key, value in count_parameters(model).items():
            publish(f"NISPA_{key}_parameters/{prefix}", value)
        history = getattr(strategy, "phase_history", None)
        if history:
            last = history[-1]
            publish(f"NISPA_phases/{prefix}", last["phases"])
            publish(f"NISPA_final_tau/{prefix}", last["final_tau"])
