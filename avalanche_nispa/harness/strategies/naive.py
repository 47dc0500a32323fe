"""Naive fine-tuning: the lower bound (Avalanche's ``Naive``, nothing against forgetting)."""

from __future__ import annotations

from avalanche.training import Naive

from ..entry import BOTH_SCENARIOS, DenseEntry
from ..params import NoHyperparameters

__all__ = ["ENTRIES"]


#: The table row ``naive``.
ENTRIES = (
    DenseEntry("naive", 20, NoHyperparameters(), Naive, demo=True, scenarios=BOTH_SCENARIOS),
)
