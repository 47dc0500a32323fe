"""Gradient Episodic Memory (Avalanche's ``GEM``; quadprog solves its projection)."""

from __future__ import annotations

from dataclasses import dataclass

from avalanche.training import GEM

from ..entry import DenseEntry
from ..params import Hyperparameters

__all__ = ["ENTRIES", "GEMParams"]


@dataclass(frozen=True)
class GEMParams(Hyperparameters):
    # CLB / GEM paper keep 1000 patterns per task; 256 keeps CPU runs affordable
    patterns_per_exp: int = 256
    memory_strength: float = 0.5  # GEM default strength


#: The table row ``gem``.
ENTRIES = (DenseEntry("gem", 90, GEMParams(), GEM),)
