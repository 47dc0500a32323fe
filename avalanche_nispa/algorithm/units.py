"""Unit states across the layers of a :class:`SparseMultiTaskNet`.

Each masked layer holds a ``unit_state`` per output unit: ``PLASTIC``, ``CANDIDATE``
(selected in the current task, still trainable) or ``STABLE`` (permanent; its incoming
connections from stable units and its bias are frozen). The inputs of the first layer
always count as stable, and a task head's units are stable from the start (spec §2.1).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Iterable, List, Optional

import torch

from ..sparse import CANDIDATE, PLASTIC, STABLE, MaskedLayer, is_masked_layer
from .links import LayerLink, source_states

if TYPE_CHECKING:  # the model class is Avalanche glue; the algorithm only reads it
    from ..models.network import SparseMultiTaskNet

__all__ = [
    "source_states",
    "promote_candidates_",
    "freeze_stable_connections_",
    "unit_state_summary",
    "count_parameters",
]


@torch.no_grad()
def promote_candidates_(layers: Iterable[MaskedLayer]) -> int:
    """Turn every candidate unit of ``layers`` (the hidden layers) into a stable one;
    return how many were promoted."""
    promoted = 0
    for layer in layers:
        candidates = layer.unit_state == CANDIDATE
        promoted += int(candidates.sum())
        layer.unit_state[candidates] = STABLE
    return promoted


@torch.no_grad()
def freeze_stable_connections_(links: List[LayerLink]) -> None:
    """Freeze, in every layer, the live connections from stable sources into stable
    targets and the biases of stable targets (spec §2.6)."""
    for i, link in enumerate(links):
        target_stable = link.layer.unit_state == STABLE
        source_stable = source_states(links, i) == STABLE
        link.layer.freeze_(target_stable[:, None] & source_stable[None, :], target_stable)


def unit_state_summary(model: "SparseMultiTaskNet", task_label: Optional[int] = None) -> List[Dict]:
    """Per masked layer (hidden layers, then the heads): unit counts by state, live and
    frozen connections, total possible connections and density."""
    rows = []
    named = list(model.named_hidden_layers())
    named += [(f"heads.{t}", h) for t, h in model.heads.items()
              if task_label is None or t == model.head_key(task_label)]
    for name, layer in named:
        state = layer.unit_state
        rows.append({
            "layer": name,
            "stable": int((state == STABLE).sum()),
            "candidate": int((state == CANDIDATE).sum()),
            "plastic": int((state == PLASTIC).sum()),
            "live_connections": layer.live_connections(),
            "frozen_connections": int(layer.frozen_connections.sum()),
            "total_connections": int(layer.connection_mask.numel()),
            "density": layer.density(),
        })
    return rows


def count_parameters(model: torch.nn.Module) -> Dict[str, int]:
    """Active (live weights and all biases), frozen and total (dense) parameter counts.
    Parameters outside masked layers count as active."""
    active = frozen = total = 0
    counted = set()
    for module in model.modules():
        if is_masked_layer(module):
            size = module.connection_size
            active += module.live_connections() * size
            frozen += int(module.frozen_connections.sum()) * size
            total += module.weight.numel()
            counted.add(id(module.weight))
            if module.bias is not None:
                active += module.bias.numel()
                frozen += int(module.frozen_bias.sum())
                total += module.bias.numel()
                counted.add(id(module.bias))
    for parameter in model.parameters():
        if id(parameter) not in counted:
            active += parameter.numel()
            total += parameter.numel()
            if not parameter.requires_grad:
                frozen += parameter.numel()
    return {"active": active, "frozen": frozen, "total": total}
