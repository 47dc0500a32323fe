"""The base of NISPA's plugins: Avalanche's callbacks plus NISPA's phase hooks and a
``state_dict`` the checkpoint stores.

:class:`~avalanche_nispa.NISPA` trains each experience in phases (spec §2.2) and calls,
on every plugin that has them (a user's plugin may listen too):

- ``before_phase(strategy, *, phase, tau)`` when phase ``phase`` starts, after the
  optimizer state was reset, with that phase's τ;
- ``after_phase(strategy, *, phase, tau, activations, decision)`` once per phase, after
  its validation and the phase controller's :class:`~avalanche_nispa.algorithm.phases.PhaseDecision`
  (the model is already reverted when ``decision.revert``); ``activations`` are the
  mean hidden activations of the phase's best epoch on the validation split, when the
  strategy measured them, else ``None``.

Avalanche's own callbacks (``before_training_exp``, ``after_update``, ...) keep their
meaning. Other strategies never call the phase hooks, so a plugin written for them
does its work in Avalanche's callbacks alone.

``state_dict()`` returns what the plugin needs to continue a run (tensors, numbers,
strings and lists/dicts of them) and ``load_state_dict()`` takes it back: checkpoints
read and restore plugins through these two methods only.
"""
from __future__ import annotations

from typing import Any, Dict

from avalanche.core import SupervisedPlugin

__all__ = ["NISPAPlugin", "PHASE_HOOKS"]

PHASE_HOOKS = ("before_phase", "after_phase")
"""The callbacks NISPA adds to Avalanche's."""


class NISPAPlugin(SupervisedPlugin):
    """Avalanche's ``SupervisedPlugin`` with NISPA's phase hooks and a state."""

    def before_phase(self, strategy: Any, *, phase: int, tau: float, **kwargs: Any) -> None:
        """Called when phase ``phase`` (1, 2, ...) of an experience starts."""

    def after_phase(self, strategy: Any, *, phase: int, tau: float, activations: Any = None,
                    decision: Any = None, **kwargs: Any) -> None:
        """Called when phase ``phase`` ends, with the controller's decision."""

    def __dir__(self):
        # Avalanche's templates warn about every before_*/after_* name of a plugin that
        # their PLUGIN_CLASS lacks. NISPA declares the phase hooks (its PLUGIN_CLASS is
        # NISPAPlugin); under another strategy they are simply never called, so they
        # are left out of the names that check lists (hasattr still finds them).
        return [name for name in super().__dir__() if name not in PHASE_HOOKS]

    def state_dict(self) -> Dict[str, Any]:
        """What this plugin needs to continue a run; plain data only."""
        return {}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
