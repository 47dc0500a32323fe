"""Small helpers shared by the NISPA plugins."""
from __future__ import annotations

from typing import Iterator, Optional

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from ..models.network import SparseMultiTaskNet

__all__ = ["require_sparse_net", "current_task_label", "input_batches"]


def require_sparse_net(model: torch.nn.Module, plugin: str) -> SparseMultiTaskNet:
    if not isinstance(model, SparseMultiTaskNet):
        raise TypeError(
            f"{plugin} needs a NISPA network (SparseMultiTaskNet), got {type(model).__name__}; "
            "build one with avalanche_nispa.models.NISPAMLP / NISPACNN or convert yours "
            "with avalanche_nispa.models.to_nispa(model, density=...)"
        )
    return model


def current_task_label(strategy) -> Optional[int]:
    experience = strategy.experience
    labels = getattr(experience, "task_labels", None)
    if not labels:
        return None
    return int(labels[0])


def input_batches(dataset, batch_size: int, device) -> Iterator[Tensor]:
    """The inputs of ``dataset`` in order, moved to ``device``."""
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=0,
        collate_fn=getattr(dataset, "collate_fn", None),
    )
    for batch in loader:
        yield batch[0].to(device, non_blocking=True)
