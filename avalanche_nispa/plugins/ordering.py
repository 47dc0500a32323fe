"""The end of an experience in one fixed order, whatever the order of the plugin list.

At the end of an experience NISPA's plugins must act in this order:

1. :class:`~avalanche_nispa.plugins.StableSelectionPlugin` selects (if no phase loop
   did), promotes the candidates and freezes the connections among stable units;
2. :class:`~avalanche_nispa.plugins.RewiringPlugin` cuts the plastic inputs of the
   (now) stable units and regrows as many into plastic units;
3. :class:`~avalanche_nispa.plugins.MaskingPlugin` redraws every weight left unfrozen.

Avalanche calls ``after_training_exp`` on plugins in list order, and in any other
order the result is wrong without an error: re-initialising first redraws the weights
that selection was about to freeze, rewiring first cuts every input of the task's head
(no hidden unit is stable yet). So each of these plugins' ``after_training_exp`` runs
the end steps of *all* of them present in the strategy, ranked by ``end_rank``; the
first one called does the work and the others find their step done.
"""
from __future__ import annotations

from typing import Any

from .base import NISPAPlugin

__all__ = ["ExperienceEndPlugin", "run_experience_end"]


class ExperienceEndPlugin(NISPAPlugin):
    """A plugin with one step at the end of each experience, run in ``end_rank``
    order among all such plugins of the strategy (lower first)."""

    end_rank: int = 0

    def __init__(self) -> None:
        super().__init__()
        self._ended = False

    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        self._ended = False

    def end_experience(self, strategy: Any) -> None:
        """This plugin's step at the end of the experience."""
        raise NotImplementedError

    def end_experience_once(self, strategy: Any) -> None:
        """Run :meth:`end_experience` unless it already ran for this experience."""
        if not self._ended:
            self._ended = True
            self.end_experience(strategy)

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        run_experience_end(strategy)


def run_experience_end(strategy: Any) -> None:
    """Run the end step of every :class:`ExperienceEndPlugin` of ``strategy`` that has
    not run yet, in ``end_rank`` order (selection, rewiring, masking)."""
    steps = [p for p in strategy.plugins if isinstance(p, ExperienceEndPlugin)]
    for plugin in sorted(steps, key=lambda p: p.end_rank):
        plugin.end_experience_once(strategy)
