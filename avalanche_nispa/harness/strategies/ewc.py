"""Elastic Weight Consolidation (Avalanche's ``EWC``), one penalty per past task."""

from __future__ import annotations

from dataclasses import dataclass

from avalanche.training import EWC

from ..entry import BOTH_SCENARIOS, DenseEntry
from ..params import Hyperparameters

__all__ = ["ENTRIES", "EWCParams"]


@dataclass(frozen=True)
class EWCParams(Hyperparameters):
    ewc_lambda: float = 1e6  # issue 4: best λ on Split MNIST
    mode: str = "separate"  # issue 4


#: The table row ``ewc``.
ENTRIES = (DenseEntry("ewc", 30, EWCParams(), EWC, demo=True, scenarios=BOTH_SCENARIOS),)
