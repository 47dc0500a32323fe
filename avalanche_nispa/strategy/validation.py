"""The validation split NISPA picks each phase's best epoch on and stops by.

A seeded share of each experience's training data is held out (spec §2.2: 10 %,
continuum's fixed seed). Its batches are moved to the device once per experience.
"""
from __future__ import annotations

from typing import Any, List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from ..algorithm.selection import batch_is_finite, raise_if_non_finite
from ..data_cache import ordered_batches

__all__ = ["validation_size", "split_validation", "ValidationSet"]


def validation_size(size: int, fraction: float) -> int:
    return int(size * fraction)


def split_validation(dataset: Any, fraction: float, seed: int) -> Tuple[Any, Any]:
    """(training part, validation part in eval mode) of an Avalanche dataset."""
    n_val = validation_size(len(dataset), fraction)
    order = np.random.RandomState(seed).permutation(len(dataset))
    return dataset.subset(order[n_val:].tolist()), dataset.subset(order[:n_val].tolist()).eval()


class ValidationSet:
    """An experience's validation batches on the training device."""

    def __init__(self, dataset: Any, batch_size: int, device: Any) -> None:
        self.batches: List[Tuple[Tensor, Tensor]] = [
            (batch[0].to(device), batch[1].to(device))
            for batch in ordered_batches(dataset, batch_size)
        ]

    @torch.no_grad()
    def evaluate(self, model, task: int, record_activations: bool = False, where: str = ""
                 ) -> Tuple[float, Optional[List[Tensor]]]:
        """Top-1 accuracy (%) of task ``task``'s head, with that task's logits only;
        optionally the mean hidden activations measured on the way.

        Raises ``FloatingPointError`` naming ``where`` (the experience) and the first
        batch whose inputs, activations or logits are not finite: a NaN would otherwise
        rank every unit first and make it stable.
        """
        was_training = model.training
        model.eval()
        total = 0
        hits: List[Tensor] = []
        sums: Optional[List[Tensor]] = [] if record_activations else None
        flags: List[Tensor] = []
        try:
            for x, y in self.batches:
                logits = model.task_logits(model.features(x, sums), task)
                flags.append(batch_is_finite(x, logits, *(sums or ())))
                hits.append((logits.argmax(dim=1) == y).sum())
                total += int(y.numel())
        finally:
            model.train(was_training)
        raise_if_non_finite(flags, where, "validation")
        correct = int(torch.stack(hits).sum()) if hits else 0  # one read per pass
        activations = [s / total for s in sums] if sums is not None else None
        return 100.0 * correct / max(total, 1), activations
