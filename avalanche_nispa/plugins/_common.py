"""Small helpers shared by the NISPA plugins."""
from __future__ import annotations

from typing import Iterator, List, Optional, Tuple

import torch
from torch import Tensor
from ..data_cache import ordered_batches
from ..models.network import SparseMultiTaskNet, _source_group
from ..sparse import MaskedLayer

__all__ = ["require_sparse_net", "current_task_label", "input_batches", "describe_learning_rate"]


def describe_learning_rate(optimizer) -> str:
    """``"learning rate 0.01"`` (or ``"learning rates 0.01, 0.001"`` for several
    parameter groups), for error messages about diverging training."""
    rates = sorted({float(group["lr"]) for group in getattr(optimizer, "param_groups", [])
                    if "lr" in group}, reverse=True)
    if not rates:
        return "learning rate (unknown)"
    plural = "s" if len(rates) > 1 else ""
    return f"learning rate{plural} " + ", ".join(f"{rate:g}" for rate in rates)


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


def input_batches(source, batch_size: int, device) -> Iterator[Tensor]:
    """The inputs of ``source`` in order, in minibatches on ``device``.

    ``source`` is a dataset or a tensor of inputs already gathered (a cache).
    """
    if isinstance(source, Tensor):
        for start in range(0, source.shape[0], batch_size):
            yield source[start:start + batch_size].to(device, non_blocking=True)
        return
    for batch in ordered_batches(source, batch_size):
        yield batch[0].to(device, non_blocking=True)


def hidden_layer_consumers(model: SparseMultiTaskNet) -> List[List[Tuple[MaskedLayer, int]]]:
    """For each hidden layer, the layers reading its units, with the input columns per
    unit: the next hidden layer, or every head (all tasks') after the last one."""
    hidden = [link for link in model.layer_links(None) if not link.is_head]
    consumers: List[List[Tuple[MaskedLayer, int]]] = [
        [(nxt.layer, nxt.source_group or 1)] for nxt in hidden[1:]]
    last = hidden[-1].layer
    consumers.append([(head, _source_group(last, head, f"heads.{key}"))
                      for key, head in model.heads.items()])
    return consumers
