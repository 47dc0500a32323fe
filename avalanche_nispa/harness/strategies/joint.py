"""Joint training: the upper bound (same epochs over the union of all experiences)."""

from __future__ import annotations

from avalanche.training import JointTraining

from ..entry import BOTH_SCENARIOS, DenseEntry
from ..params import NoHyperparameters

__all__ = ["ENTRIES"]


#: The table row ``joint``.
ENTRIES = (
    DenseEntry(
        "joint", 110, NoHyperparameters(), JointTraining, joint=True, scenarios=BOTH_SCENARIOS
    ),
)
