"""NISPA-Replay's memory (replay spec §2.8): a class-balanced random sample of past
experiences, held as tensors.

After each experience its classes are registered and every seen class gets
``capacity // classes seen`` places: a new class fills its places with a uniform
random sample (without replacement) of its items, and every class already stored is
cut to its first ``per-class`` items (a random subset, since the stored order is
random). So the memory never exceeds ``capacity`` (1000 with 6 classes holds 166 × 6 =
996, as in the official code). Sampling draws from the global (CPU) torch generator,
so a seeded run (and a checkpoint's RNG state) determines it on every device. The
samples stay on the device of what was added (:meth:`ClassBalancedMemory.to_` moves
them); the saved state is on the CPU.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor

__all__ = ["ClassBalancedMemory"]


class ClassBalancedMemory:
    """At most ``capacity`` samples, the same number per seen class."""

    def __init__(self, capacity: int) -> None:
        if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
            raise ValueError(f"mem_size must be a positive integer, got {capacity!r}")
        self.capacity = capacity
        self._inputs: Dict[int, Tensor] = {}
        self._targets: Dict[int, Tensor] = {}

    @property
    def classes(self) -> List[int]:
        return sorted(self._inputs)

    def per_class(self) -> int:
        return self.capacity // max(len(self._inputs), 1)

    def __len__(self) -> int:
        return sum(int(t.shape[0]) for t in self._targets.values())

    def nbytes(self) -> int:
        return sum(t.element_size() * t.nelement() for t in (*self._inputs.values(),
                                                             *self._targets.values()))

    def add(self, inputs: Tensor, targets: Tensor) -> None:
        """Register the classes of ``targets`` and rebalance (spec §2.8, steps 1-4)."""
        targets = targets.long()
        new = sorted(set(targets.unique().tolist()) - set(self._inputs))
        for c in new:
            self._inputs[c] = inputs[:0]
            self._targets[c] = targets[:0]
        per = self.per_class()
        for c in new:
            index = (targets == c).nonzero().squeeze(1)
            chosen = index[torch.randperm(index.numel(), device="cpu")[:per].to(index.device)]
            self._inputs[c], self._targets[c] = inputs[chosen], targets[chosen]
        for c in self._inputs:
            self._inputs[c] = self._inputs[c][:per]
            self._targets[c] = self._targets[c][:per]

    def to_(self, device) -> "ClassBalancedMemory":
        """Move the stored samples to ``device`` (nothing is copied if they are there)."""
        self._inputs = {c: x.to(device) for c, x in self._inputs.items()}
        self._targets = {c: y.to(device) for c, y in self._targets.items()}
        return self

    def tensors(self) -> Optional[Tuple[Tensor, Tensor]]:
        """All stored (inputs, targets), in class order; None while empty."""
        if len(self) == 0:
            return None
        classes = self.classes
        return (torch.cat([self._inputs[c] for c in classes]),
                torch.cat([self._targets[c] for c in classes]))

    def state_dict(self) -> Dict[str, object]:
        return {"capacity": self.capacity,
                "classes": self.classes,
                "inputs": [self._inputs[c].detach().cpu() for c in self.classes],
                "targets": [self._targets[c].detach().cpu() for c in self.classes]}

    def load_state_dict(self, state: Dict[str, object], device=None) -> None:
        if state["capacity"] != self.capacity:
            raise ValueError(f"the saved memory holds {state['capacity']} samples, this one "
                             f"{self.capacity}: build the strategy with the saved mem_size")
        self._inputs = {int(c): x.to(device) if device is not None else x
                        for c, x in zip(state["classes"], state["inputs"])}
        self._targets = {int(c): y.to(device) if device is not None else y
                         for c, y in zip(state["classes"], state["targets"])}
