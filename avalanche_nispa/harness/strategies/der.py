"""Dark Experience Replay++ (Avalanche's ``DER``: logits and labels of a reservoir memory)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from avalanche.training import DER

from ..entry import CLASS_ONLY, DenseEntry
from ..params import Hyperparameters, omitted_when_none

__all__ = ["DERParams", "ENTRIES"]


@dataclass(frozen=True)
class DERParams(Hyperparameters):
    mem_size: int = 1000  # the comparison's one memory size (spec §6: M = 1000)
    alpha: float = 0.1  # Avalanche DER default (logit distillation weight)
    beta: float = 0.5  # Avalanche DER default (memory label weight; 0 is plain DER)
    batch_size_mem: Optional[int] = omitted_when_none()  # None: the training batch size


#: The table row ``der``.
ENTRIES = (DenseEntry("der", 74, DERParams(), DER, scenarios=CLASS_ONLY),)
