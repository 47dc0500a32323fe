"""NISPA's invariants, checkable on any device: frozen entries never change.

A snapshot records, for every masked layer, which connections and biases are frozen
and their values. :func:`frozen_changes` compares a model with an earlier snapshot
and names every layer where a frozen entry was released or changed by even one bit.
The test suite and ``scripts/gpu_check.sh`` both check zero forgetting this way.
"""

from __future__ import annotations

from typing import Dict, List, Tuple

import torch
from torch import nn

from .sparse import is_masked_layer

__all__ = ["FrozenSnapshot", "assert_frozen_unchanged", "frozen_changes", "frozen_count",
           "frozen_snapshot"]

#: layer name -> (frozen connections, frozen biases, their weights, their bias values)
FrozenSnapshot = Dict[str, Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]


def frozen_snapshot(model: nn.Module) -> FrozenSnapshot:
    """Positions and values of every frozen weight and bias, by masked layer (copies,
    on the model's device)."""
    return {
        name: (layer.frozen_connections.clone(), layer.frozen_bias.clone(),
               layer.weight[layer.frozen_connections].detach().clone(),
               layer.bias[layer.frozen_bias].detach().clone())
        for name, layer in model.named_modules()
        if is_masked_layer(layer)
    }


def frozen_count(snapshot: FrozenSnapshot) -> int:
    """Frozen connections plus frozen biases in ``snapshot``."""
    return sum(int(c.sum()) + int(b.sum()) for c, b, _, _ in snapshot.values())


def frozen_changes(model: nn.Module, snapshot: FrozenSnapshot) -> List[str]:
    """One message per layer of ``model`` where an entry frozen in ``snapshot`` is no
    longer frozen or no longer bit-identical; empty when the invariant holds."""
    layers = dict(model.named_modules())
    problems = []
    for name, (connections, bias, weights, biases) in snapshot.items():
        layer = layers.get(name)
        if layer is None:
            problems.append(f"{name}: the layer is gone")
            continue
        if not bool(layer.frozen_connections[connections].all()):
            problems.append(f"{name}: a frozen connection was released")
        if not bool(layer.frozen_bias[bias].all()):
            problems.append(f"{name}: a frozen bias was released")
        if not torch.equal(layer.weight[connections], weights):
            changed = int((layer.weight[connections] != weights).sum())
            problems.append(f"{name}: {changed} frozen weight(s) changed")
        if not torch.equal(layer.bias[bias], biases):
            problems.append(f"{name}: a frozen bias changed")
    return problems


def assert_frozen_unchanged(model: nn.Module, snapshot: FrozenSnapshot) -> None:
    """AssertionError naming the layers where :func:`frozen_changes` finds a change."""
    problems = frozen_changes(model, snapshot)
    assert not problems, "; ".join(problems)
