"""The phase loop's bookkeeping: τ per phase, the stop rule and what is kept.

A task trains in phases of ``e`` epochs. After phase ``t`` (validation accuracy
``acc_t``, the best epoch's), training stops when

    (acc_t < best_so_far - a_f and t > min_phases)  or  τ_t <= min_tau   (spec §2.2)

(``min_phases`` is 2 in the task-incremental code, 3-5 in NISPA-Replay's scripts)

and the model of phase ``t - 1`` is kept, with the candidates that were in force while
it trained. ``best_so_far`` is the maximum over all accepted phases. A cap on phases
(``max_phases``) keeps the last phase when reached, and so does a stop requested from
outside (another plugin's ``strategy.stop_training()``) once two phases are done: the
kept model must have been trained after one selection, so a stop asked for in phase 1
ends phase 1 at once and trains phase 2 for a single epoch (:meth:`PhaseController.epochs_allowed`).

:class:`PhaseController` is the only place where any of these decisions is made.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

from .schedules import TauSchedule

__all__ = ["PhaseDecision", "PhaseController"]


@dataclass(frozen=True)
class PhaseDecision:
    """What to do after a phase: go on, or stop and keep the previous phase's model
    (``revert``) or this one."""

    stop: bool
    revert: bool
    reason: str = ""


@dataclass
class PhaseController:
    """The state of one experience's phases and every decision to stop or revert."""

    schedule: TauSchedule
    accuracy_drop_threshold: float
    min_tau: float = 0.05
    max_phases: Optional[int] = None
    min_phases: int = 2
    phase: int = 0
    best_accuracy: float = float("-inf")
    accuracies: List[float] = field(default_factory=list)
    taus: List[float] = field(default_factory=list)
    stop_requested: bool = False

    @property
    def tau(self) -> float:
        """τ of the current phase."""
        return self.schedule(self.phase)

    def start_phase(self) -> float:
        self.phase += 1
        self.taus.append(self.tau)
        return self.tau

    def request_stop(self) -> None:
        """A stop asked for from outside; the current phase's epochs end now."""
        self.stop_requested = True

    def epochs_allowed(self, phase_epochs: int) -> int:
        """Epochs the current phase may train: ``phase_epochs``, or a single one when a
        stop was requested in an earlier phase (the shortest phase that still trains
        after a selection)."""
        return 1 if self.stop_requested else phase_epochs

    def end_phase(self, accuracy: float) -> PhaseDecision:
        """Record the phase's validation accuracy (in %) and decide."""
        self.accuracies.append(accuracy)
        t = self.phase
        if accuracy < self.best_accuracy - self.accuracy_drop_threshold and t > self.min_phases:
            return PhaseDecision(stop=True, revert=True, reason="accuracy_drop")
        if self.tau <= self.min_tau:
            return PhaseDecision(stop=True, revert=True, reason="tau")
        self.best_accuracy = max(self.best_accuracy, accuracy)
        if self.max_phases is not None and t >= self.max_phases:
            return PhaseDecision(stop=True, revert=False, reason="max_phases")
        if self.stop_requested and t >= 2:
            return PhaseDecision(stop=True, revert=False, reason="stop_training")
        return PhaseDecision(stop=False, revert=False)

    def kept_phase(self, decision: PhaseDecision) -> int:
        return self.phase - 1 if decision.revert else self.phase

    def final_tau(self, decision: PhaseDecision) -> float:
        """τ of the selection that gets promoted: the one made after the phase before
        the kept one (the official "Final P", spec §2.2)."""
        selection_phase = self.kept_phase(decision) - 1
        return self.schedule(selection_phase) if selection_phase >= 1 else 1.0

    def as_dict(self, decision: PhaseDecision) -> Dict:
        return {
            "phases": self.phase,
            "kept_phase": self.kept_phase(decision),
            "final_tau": self.final_tau(decision),
            "stop_reason": decision.reason,
            "val_accuracies": list(self.accuracies),
            "taus": list(self.taus),
        }
