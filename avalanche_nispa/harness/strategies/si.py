"""Synaptic Intelligence: ``Naive`` with the CPU-fixed SI plugin.

avalanche.training.SynapticIntelligence builds avalanche-lib 0.6.0's plugin, which
learns nothing on CPU; this is the same strategy (Naive + plugin) with
:class:`~avalanche_nispa.harness.baselines.FixedSynapticIntelligencePlugin`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from avalanche.training import Naive
from avalanche.training.templates import SupervisedTemplate

from ..baselines import FixedSynapticIntelligencePlugin
from ..entry import DenseEntry
from ..params import Hyperparameters

__all__ = ["ENTRIES", "SIParams"]


@dataclass(frozen=True)
class SIParams(Hyperparameters):
    # issue 4: λ = 1e4; eps as CLB split MNIST. Sanity check against CLB's SI
    # on Split MNIST (0.97, MLP 256-256, batch 64, 10 epochs, λ = 1):
    # --strategies si --set backbone.hidden_sizes=256,256 --set batch_size=64
    #   --epochs 10 --set si.si_lambda=1 --set si.eps=0.001
    si_lambda: float = 1e4
    eps: float = 1e-3


class SIEntry(DenseEntry):
    """Naive plus the fixed plugin, which takes the hyperparameters."""

    def make_strategy(
        self, model: nn.Module, optimizer: torch.optim.Optimizer, params: Hyperparameters,
        kwargs: dict[str, Any],
    ) -> SupervisedTemplate:
        kwargs["plugins"].append(FixedSynapticIntelligencePlugin(**params.as_dict()))
        return Naive(model=model, optimizer=optimizer, **kwargs)


#: The table row ``si``.
ENTRIES = (SIEntry("si", 40, SIParams(), Naive, demo=True),)
