"""NISPA's training of one experience: phases of ``e`` epochs until the phase
controller stops (spec §2.2).

Per phase: reset the optimizer state (official: a fresh optimizer every phase), call
``before_phase`` on every plugin, train up to ``e`` epochs with Avalanche's own epoch
(``training_epoch`` and the epoch callbacks), keep the epoch with the best validation
accuracy, ask the :class:`~avalanche_nispa.algorithm.phases.PhaseController`, revert
to the previous phase's model when it says so, then call ``after_phase`` on every
plugin (selection and rewiring act there on an accepted phase).
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Tuple

from torch import Tensor

from avalanche.training.utils import trigger_plugins

from .._avalanche import take_stop_request
from ..algorithm.phases import PhaseController

__all__ = ["train_in_phases"]


def _snapshot(model) -> Dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def train_in_phases(strategy: Any, experience: Any, **kwargs: Any) -> Dict[str, Any]:
    """Train ``experience`` in phases; return its ``phase_history`` entry."""
    config = strategy.config
    controller = PhaseController(config.schedule, config.accuracy_drop_threshold,
                                 config.min_tau, config.max_phases, config.min_phases)
    strategy.phase_controller = controller
    timer = strategy.timer
    previous: Optional[Dict[str, Tensor]] = None
    epochs = 0
    while True:
        tau = controller.start_phase()
        strategy.optimizer.state.clear()  # keeps the user's optimizer and its groups
        trigger_plugins(strategy, "before_phase", phase=controller.phase, tau=tau)
        accuracy, activations, trained = _train_phase(strategy, controller, **kwargs)
        epochs += trained
        decision = controller.end_phase(accuracy)
        with timer("snapshots"):
            if decision.revert:
                assert previous is not None  # guaranteed by validate_tau_schedule
                strategy.model.load_state_dict(previous)
            elif not decision.stop:
                previous = _snapshot(strategy.model)
        with timer("phase_end"):
            trigger_plugins(strategy, "after_phase", phase=controller.phase, tau=tau,
                            activations=activations, decision=decision)
        if decision.stop:
            break
    return {
        "experience": int(getattr(experience, "current_experience", len(strategy.phase_history))),
        "task": int(experience.task_labels[0]),
        "epochs": epochs,
        **controller.as_dict(decision),
    }


def _train_phase(strategy: Any, controller: PhaseController, **kwargs: Any
                 ) -> Tuple[float, Optional[List[Tensor]], int]:
    """Up to ``e`` epochs; the model is left at the best epoch (or the last one, with
    ``keep_best_epoch=False``). Returns its validation accuracy, its activations (when
    selection reads the validation split) and the number of epochs trained."""
    timer = strategy.timer
    record = strategy.config.resolved_selection_data == "validation"
    phase_epochs = controller.epochs_allowed(strategy.config.phase_epochs)
    keep_best = strategy.config.keep_best_epoch
    best_accuracy, best_state, best_activations = -math.inf, None, None
    trained = 0
    for epoch in range(phase_epochs):
        trigger_plugins(strategy, "before_training_epoch", **kwargs)
        if take_stop_request(strategy):
            controller.request_stop()
            break
        with timer("training"):
            strategy.training_epoch(**kwargs)
        trigger_plugins(strategy, "after_training_epoch", **kwargs)
        trained += 1
        with timer("validation"):
            accuracy, activations = strategy.validate(record)
        if not keep_best:
            best_accuracy, best_activations = accuracy, activations
        elif accuracy > best_accuracy:
            best_accuracy, best_activations = accuracy, activations
            last = epoch == phase_epochs - 1
            with timer("snapshots"):
                best_state = None if last else _snapshot(strategy.model)
    if best_state is not None:
        with timer("snapshots"):
            strategy.model.load_state_dict(best_state)
    if best_accuracy == -math.inf:
        best_accuracy, best_activations = strategy.validate(record)
    return best_accuracy, best_activations, trained
