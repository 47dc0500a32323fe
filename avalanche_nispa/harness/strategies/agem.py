"""Averaged GEM (Avalanche's ``AGEM``)."""

from __future__ import annotations

from dataclasses import dataclass

from avalanche.training import AGEM

from ..entry import BOTH_SCENARIOS, DenseEntry
from ..params import Hyperparameters

__all__ = ["AGEMParams", "ENTRIES"]


@dataclass(frozen=True)
class AGEMParams(Hyperparameters):
    patterns_per_exp: int = 250  # CLB permuted MNIST A-GEM
    sample_size: int = 256  # CLB permuted MNIST A-GEM


#: The table row ``agem``.
ENTRIES = (DenseEntry("agem", 80, AGEMParams(), AGEM, scenarios=BOTH_SCENARIOS),)
