"""Selective unfreezing: releasing stable units back to plastic when a layer runs out
of plastic ones.

NISPA freezes a stable unit for good, so a long stream can leave a layer with no
plastic unit to grow into (the paper's authors name selective unfreezing as a way
out). Here, at the start of an experience, a hidden layer whose plastic share is below
a threshold releases its least important stable units, as many as bring the share
back to the threshold and at most a bound per experience. A released unit becomes
plastic: its incoming connections and its bias are trainable again, it can receive
grown connections and be selected again. Its *outgoing* connections into stable units
stay live and frozen, as does every other frozen value, so the old tasks that read
the unit see it change: forgetting is traded for capacity, limited by choosing units
of low importance.

Importance is the activation score NISPA selects by: a unit's share of its layer's
total activation on an experience's training data, kept as its largest share over the
experiences it was stable in (:func:`activation_shares`, :func:`update_importance`).
"""
from __future__ import annotations

import math
from typing import Literal, Optional

import torch
from torch import Tensor

from ..sparse import PLASTIC, STABLE, MaskedLayer

__all__ = [
    "UnfreezeImportance",
    "UNFREEZE_IMPORTANCES",
    "units_to_release",
    "choose_units_to_release",
    "release_units_",
    "activation_shares",
    "update_importance",
]

UnfreezeImportance = Literal["activation", "random"]
UNFREEZE_IMPORTANCES = ("activation", "random")


def units_to_release(unit_state: Tensor, below: float, bound: float) -> int:
    """How many stable units a layer with states ``unit_state`` releases: enough to
    bring its plastic units to ``ceil(below * units)``, at most ``floor(bound *
    units)`` and at most its stable units; 0 when its plastic share is not below
    ``below``."""
    units = unit_state.numel()
    plastic = int((unit_state == PLASTIC).sum())
    if plastic >= below * units:
        return 0
    wanted = math.ceil(below * units) - plastic
    stable = int((unit_state == STABLE).sum())
    return max(0, min(wanted, math.floor(bound * units), stable))


def choose_units_to_release(unit_state: Tensor, importance: Tensor, count: int,
                            generator: Optional[torch.Generator] = None) -> Tensor:
    """Bool mask of the ``count`` stable units of lowest ``importance`` (ties broken
    uniformly at random with ``generator``: the units are shuffled, then stably
    sorted). Draws nothing when ``count`` is 0."""
    chosen = torch.zeros_like(unit_state, dtype=torch.bool)
    stable = (unit_state == STABLE).nonzero().squeeze(1)
    if count <= 0 or stable.numel() == 0:
        return chosen
    shuffle = torch.randperm(stable.numel(), generator=generator, device=stable.device)
    values = importance.to(device=stable.device, dtype=torch.float64)[stable[shuffle]]
    order = torch.sort(values, stable=True).indices[:count]
    chosen[stable[shuffle[order]]] = True
    return chosen


@torch.no_grad()
def release_units_(layer: MaskedLayer, units: Tensor) -> int:
    """Make ``units`` (bool mask over the layer's units) plastic and unfreeze their
    incoming connections and biases; every other frozen entry keeps its value bit
    for bit. Returns the number released."""
    units = units.to(layer.unit_state.device)
    layer.unit_state[units] = PLASTIC
    layer.frozen_connections[units] = False
    layer.frozen_bias[units] = False
    layer.refresh_()
    return int(units.sum())


def activation_shares(activation: Tensor, unit_state: Tensor) -> Tensor:
    """Each stable unit's share of the stable units' total activation (float64; 0 for
    other units, and everywhere when the stable units are silent)."""
    stable = unit_state == STABLE
    values = torch.where(stable, activation.to(torch.float64).clamp_min(0.0), 0.0)
    total = values.sum()
    return values / total if bool(total > 0) else torch.zeros_like(values)


def update_importance(importance: Optional[Tensor], activation: Tensor,
                      unit_state: Tensor) -> Tensor:
    """The importance after one more experience: the largest share so far."""
    shares = activation_shares(activation.to(unit_state.device), unit_state)
    return shares if importance is None else torch.maximum(importance.to(shares.device), shares)
