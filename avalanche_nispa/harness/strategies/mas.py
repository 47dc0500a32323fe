"""Memory Aware Synapses (Avalanche's ``MAS``)."""

from __future__ import annotations

from dataclasses import dataclass

from avalanche.training import MAS

from ..entry import DenseEntry
from ..params import Hyperparameters

__all__ = ["ENTRIES", "MASParams"]


@dataclass(frozen=True)
class MASParams(Hyperparameters):
    lambda_reg: float = 10.0  # issue 4: λ = 10
    alpha: float = 0.5  # Avalanche default


#: The table row ``mas``.
ENTRIES = (DenseEntry("mas", 50, MASParams(), MAS),)
