"""Experience replay (Avalanche's ``Replay``, class-balanced buffer)."""

from __future__ import annotations

from dataclasses import dataclass

from avalanche.training import Replay

from ..entry import BOTH_SCENARIOS, DenseEntry
from ..params import Hyperparameters

__all__ = ["ENTRIES", "ReplayParams"]


@dataclass(frozen=True)
class ReplayParams(Hyperparameters):
    mem_size: int = 1000  # issue 4: Replay 1000


#: The table row ``replay``.
ENTRIES = (
    DenseEntry("replay", 70, ReplayParams(), Replay, demo=True, scenarios=BOTH_SCENARIOS),
)
