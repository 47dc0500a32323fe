"""ER-ACE (Avalanche's ``ER_ACE``): replay with asymmetric cross-entropy, class-incremental."""

from __future__ import annotations

from dataclasses import dataclass

from avalanche.training import ER_ACE

from ..entry import CLASS_ONLY, DenseEntry
from ..params import Hyperparameters

__all__ = ["ENTRIES", "ERACEParams"]


@dataclass(frozen=True)
class ERACEParams(Hyperparameters):
    mem_size: int = 1000  # the comparison's one memory size (spec §6: M = 1000)
    batch_size_mem: int = 10  # Avalanche ER_ACE default


#: The table row ``er_ace``.
ENTRIES = (DenseEntry("er_ace", 72, ERACEParams(), ER_ACE, scenarios=CLASS_ONLY),)
