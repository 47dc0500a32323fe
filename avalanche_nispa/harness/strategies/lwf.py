"""Learning without Forgetting (Avalanche's ``LwF``)."""

from __future__ import annotations

from dataclasses import dataclass

from avalanche.training import LwF

from ..entry import BOTH_SCENARIOS, DenseEntry
from ..params import Hyperparameters

__all__ = ["ENTRIES", "LwFParams"]


@dataclass(frozen=True)
class LwFParams(Hyperparameters):
    alpha: float = 1.0  # Avalanche LwFPlugin default
    temperature: float = 2.0  # Avalanche LwFPlugin default


#: The table row ``lwf``.
ENTRIES = (DenseEntry("lwf", 60, LwFParams(), LwF, scenarios=BOTH_SCENARIOS),)
