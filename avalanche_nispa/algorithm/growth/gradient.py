"""Gradient-based growth, after RigL.

Evci, Gale, Menick, Castro & Elsen, "Rigging the Lottery: Making All Tickets
Winners" (ICML 2020) grow, at each connectivity update, the absent connections whose
dense gradient has the largest magnitude: those are the connections whose appearance
would lower the loss fastest. ``"rigl"`` applies this to NISPA's growth step: among
the absent connections into plastic units it picks the ``count`` with the largest
``|dL/dw|`` (for a conv connection, the sum over its kernel), ties broken at random.
The gradient is the loss's on a few minibatches of the current experience, measured
by :class:`~avalanche_nispa.plugins.RewiringPlugin` at each rewiring before the drop
(RigL, too, measures before its drop), on the dense weight, in which absent
connections hold an exact zero.

What this means inside NISPA: growth only fills connections into plastic units, and a
plastic unit reaches the current task's output only through connections into stable
or candidate units (the task's head is stable from the start), which every drop cuts.
So before a drop the gradient there is non-zero only for plastic units that still
have such connections: at an experience's first rewiring (the new head reads plastic
units) and for units that were candidates in the previous phase and were not selected
again. After the drop it would be zero everywhere, hence the measurement before it.
Where all scores are zero, the random tie-break makes the rule ``full_random``.

RigL starts grown weights at zero; NISPA's ``growth_init`` still chooses (``"zero"``
is RigL's choice, ``"normal"`` the official NISPA one).
"""
from __future__ import annotations

from torch import Tensor

from .base import GrowthRequest, connection_scores, free_positions, growth_rule, top_scoring

__all__ = ["rigl"]


@growth_rule("rigl", needs=("gradient",))
def rigl(request: GrowthRequest) -> Tensor:
    """The absent connections into plastic units with the largest gradient magnitude."""
    scores = connection_scores(request.gradient)
    return top_scoring(free_positions(request), scores, request.count, request.generator)
