"""Learning-rate schedules and NISPA's phases.

An Avalanche ``LRSchedulerPlugin`` steps after every epoch (or iteration) it sees, and
inside NISPA an experience is ``e`` epochs × however many phases the stop rule allows:
by default the schedule runs across the phases of an experience, so later phases
train at the decayed rate (``NISPAConfig(lr_schedule="experience")``, Avalanche's
own behaviour; the scheduler's ``reset_lr`` / ``reset_scheduler`` still act at the end
of the experience). With ``lr_schedule="phase"`` the schedule restarts with every
phase, as it would for the fresh optimizer the official code builds per phase: this
plugin puts every scheduler and the optimizer's learning rates back to their state at
the start of the experience when phase 2, 3, ... begins.
"""
from __future__ import annotations

import copy
from typing import Any, List, Tuple

from avalanche.training.plugins import LRSchedulerPlugin

from .base import NISPAPlugin

__all__ = ["RestartLRSchedulePerPhase"]


class RestartLRSchedulePerPhase(NISPAPlugin):
    """Restart every ``LRSchedulerPlugin``'s schedule, and the learning rates, at the
    start of each phase after the first."""

    def __init__(self) -> None:
        super().__init__()
        self._schedulers: List[Tuple[Any, dict]] = []
        self._learning_rates: List[float] = []

    def before_training_exp(self, strategy, **kwargs) -> None:
        self._schedulers = [(p.scheduler, copy.deepcopy(p.scheduler.state_dict()))
                            for p in strategy.plugins if isinstance(p, LRSchedulerPlugin)]
        self._learning_rates = [group["lr"] for group in strategy.optimizer.param_groups]

    def before_phase(self, strategy, *, phase: int, tau: float, **kwargs) -> None:
        if phase == 1:
            return
        for group, lr in zip(strategy.optimizer.param_groups, self._learning_rates):
            group["lr"] = lr
        for scheduler, state in self._schedulers:
            scheduler.load_state_dict(copy.deepcopy(state))
