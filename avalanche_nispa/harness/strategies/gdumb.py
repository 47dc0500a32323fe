"""GDumb (Avalanche's ``GDumb``): a class-balanced memory, the model retrained on it alone."""

from __future__ import annotations

from dataclasses import dataclass

from avalanche.training import GDumb

from ..entry import CLASS_ONLY, DenseEntry
from ..params import Hyperparameters

__all__ = ["ENTRIES", "GDumbParams"]


@dataclass(frozen=True)
class GDumbParams(Hyperparameters):
    mem_size: int = 1000  # the comparison's one memory size (spec §6: M = 1000)


#: The table row ``gdumb``.
ENTRIES = (DenseEntry("gdumb", 76, GDumbParams(), GDumb, scenarios=CLASS_ONLY),)
