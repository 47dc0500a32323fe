"""Cumulative training (Avalanche's ``Cumulative``): each experience retrains on all data so far.

An upper bound that, unlike ``joint``, still trains experience by experience.
"""

from __future__ import annotations

from avalanche.training import Cumulative

from ..entry import CLASS_ONLY, DenseEntry
from ..params import NoHyperparameters

__all__ = ["ENTRIES"]


#: The table row ``cumulative``.
ENTRIES = (
    DenseEntry("cumulative", 105, NoHyperparameters(), Cumulative, scenarios=CLASS_ONLY),
)
