"""Naive fine-tuning: the lower bound (Avalanche's ``Naive``, nothing against forgetting)."""

from __future__ import annotations

from dataclasses import dataclass

from avalanche.training import Naive

from ..entry import DenseEntry
from ..params import Hyperparameters

__all__ = ["ENTRIES", "NaiveParams"]


@dataclass(frozen=True)
class NaiveParams(Hyperparameters):
    """No hyperparameters beyond the shared training budget."""


class NaiveEntry(DenseEntry):
    name = "naive"
    order = 20
    demo = True
    defaults = NaiveParams()
    strategy_class = Naive


ENTRIES = (NaiveEntry(),)
