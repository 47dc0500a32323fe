"""Joint training: the upper bound (same epochs over the union of all experiences)."""

from __future__ import annotations

from dataclasses import dataclass

from avalanche.training import JointTraining

from ..entry import DenseEntry
from ..params import Hyperparameters

__all__ = ["ENTRIES", "JointParams"]


@dataclass(frozen=True)
class JointParams(Hyperparameters):
    """No hyperparameters beyond the shared training budget."""


class JointEntry(DenseEntry):
    name = "joint"
    order = 110
    joint = True
    defaults = JointParams()
    strategy_class = JointTraining


ENTRIES = (JointEntry(),)
