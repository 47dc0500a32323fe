"""Experience replay (Avalanche's ``Replay``, class-balanced buffer)."""

from __future__ import annotations

from dataclasses import dataclass

from avalanche.training import Replay

from ..entry import DenseEntry
from ..params import Hyperparameters

__all__ = ["ENTRIES", "ReplayParams"]


@dataclass(frozen=True)
class ReplayParams(Hyperparameters):
    mem_size: int = 1000  # issue 4: Replay 1000


class ReplayEntry(DenseEntry):
    name = "replay"
    order = 70
    demo = True
    defaults = ReplayParams()
    strategy_class = Replay


ENTRIES = (ReplayEntry(),)
