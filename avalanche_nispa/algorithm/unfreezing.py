"""Selective unfreezing: releasing stable units back to plastic when a layer runs out
of plastic ones.

NISPA freezes a stable unit for good, so a long stream can leave a layer with no
plastic unit to grow into (the paper's authors name selective unfreezing as a way
out). Here, at the start of an experience, a hidden layer whose plastic share is below
a threshold releases its least important stable units, as many as bring the share
back to the threshold and at most a bound per experience. A released unit becomes
plastic: its incoming connections and its bias are trainable again, it can receive
grown connections and be selected again. What happens to its *outgoing* connections
into stable units is a choice (``UnfreezeOutgoing``):

- ``"drop"`` (default): they are removed when the unit is released, so NISPA's
  invariant holds again (no plastic unit feeds a stable one). Old tasks lose the
  unit's contribution once, at the release, and nothing after it: the cost is
  bounded by choosing units of low importance. The removed connections are not
  regrown (the layer's density falls by as many).
- ``"keep"``: they stay live and frozen, as does every other frozen value, so the
  old tasks that read the unit see it change under every later task: forgetting
  keeps accumulating. The end-of-experience re-initialisation of plastic weights
  spares such a unit (:func:`feeds_stable_units`), else the task just trained
  would lose it too.

Importance (``UnfreezeImportance``), kept per unit as its largest value over the
experiences it was stable in, each measured on that experience's training data:

- ``"activation"``: the activation score NISPA selects by, a unit's share of its
  layer's total stable activation (:func:`activation_shares`). Units promoted late
  share the layer with every older stable unit, so their shares are small and they
  are released first, though the latest task relies on them.
- ``"downstream"``: what a release removes from the old tasks' computation. Dropping
  a unit's connections into stable units takes away, from each stable unit it feeds
  (next layer, or heads), the part ``|w| * a`` of that unit's summed input magnitude;
  the importance is the largest such fraction over the stable units it feeds
  (:func:`downstream_shares`). It does not shrink as the stable pool grows, only with
  the consumers' fan-in.
- ``"random"``: random stable units (a control).
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
    "UnfreezeOutgoing",
    "UNFREEZE_OUTGOING",
    "outgoing_into_stable",
    "drop_outgoing_into_stable_",
    "feeds_stable_units",
    "units_to_release",
    "choose_units_to_release",
    "release_units_",
    "activation_shares",
    "downstream_shares",
    "update_importance",
]

UnfreezeImportance = Literal["activation", "downstream", "random"]
UNFREEZE_IMPORTANCES = ("activation", "downstream", "random")
UnfreezeOutgoing = Literal["drop", "keep"]
UNFREEZE_OUTGOING = ("drop", "keep")


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


@torch.no_grad()
def downstream_shares(activation: Tensor, unit_state: Tensor, consumers) -> Tensor:
    """Each stable unit's largest share of a stable consumer unit's input (float64; 0
    for other units).

    ``activation``: the layer's mean activation per unit (non-negative after ReLU;
    summed over H×W for conv maps); ``consumers``: ``(layer, group)`` pairs reading the
    layer (``group`` input columns per unit, H*W at a flatten). For a consumer's stable
    unit ``k``, unit ``j`` carries ``|W_kj| * a_j`` of its input magnitude ``sum_i
    |W_ki| * a_i`` (``|W_kj|`` summed over a conv kernel or a flatten's columns, which
    assumes a unit's activation spread evenly over them); the share is the ratio."""
    stable = unit_state == STABLE
    act = activation.to(device=unit_state.device, dtype=torch.float64).clamp_min(0.0)
    shares = torch.zeros(unit_state.shape, dtype=torch.float64, device=unit_state.device)
    for consumer, group in consumers:
        rows = (consumer.unit_state == STABLE).to(unit_state.device)
        if not bool(rows.any()):
            continue
        weight = consumer.weight.detach().to(device=unit_state.device, dtype=torch.float64)
        magnitude = (weight.abs() * consumer.expand(consumer.connection_mask).to(weight.device))
        magnitude = magnitude.flatten(2).sum(dim=2) if magnitude.dim() > 2 else magnitude
        magnitude = magnitude[rows]
        if group > 1:
            magnitude = magnitude.view(magnitude.shape[0], -1, group).sum(dim=2)
        carried = magnitude * act[None, :]
        total = carried.sum(dim=1, keepdim=True)
        share = torch.where(total > 0, carried / total.clamp_min(torch.finfo(torch.float64).tiny),
                            0.0)
        shares = torch.maximum(shares, share.max(dim=0).values)
    return torch.where(stable, shares, 0.0)


def update_importance(importance: Optional[Tensor], activation: Tensor,
                      unit_state: Tensor, consumers=None) -> Tensor:
    """The importance after one more experience: the largest share so far, of the
    layer's stable activation (``consumers`` None) or of a stable consumer unit's
    input (:func:`downstream_shares`)."""
    activation = activation.to(unit_state.device)
    shares = (activation_shares(activation, unit_state) if consumers is None
              else downstream_shares(activation, unit_state, consumers))
    return shares if importance is None else torch.maximum(importance.to(shares.device), shares)


def outgoing_into_stable(consumer: MaskedLayer, sources: Tensor, group: int,
                         targets: Optional[Tensor] = None) -> Tensor:
    """Bool ``(out, in)`` mask of ``consumer``'s live connections from the source units
    ``sources`` (bool, one per unit of the layer before; ``group`` input columns per
    unit, H*W at a flatten) into its stable units (or into ``targets``, a bool mask of
    its units)."""
    columns = sources.to(consumer.connection_mask.device)
    if group > 1:
        columns = columns.repeat_interleave(group)
    rows = consumer.unit_state == STABLE if targets is None else targets
    return consumer.connection_mask & rows.to(columns.device)[:, None] & columns[None, :]


@torch.no_grad()
def drop_outgoing_into_stable_(consumer: MaskedLayer, sources: Tensor, group: int) -> int:
    """Remove ``consumer``'s connections from ``sources`` into its stable units, frozen
    or not (weights to 0). Returns how many were removed."""
    drop = outgoing_into_stable(consumer, sources, group)
    count = int(drop.sum())
    if count:
        consumer.frozen_connections &= ~drop
        consumer.set_connection_mask_(consumer.connection_mask & ~drop)
    return count


def feeds_stable_units(consumers, layers) -> list:
    """For each of ``layers`` (hidden layers in data-flow order; ``consumers[i]`` the
    ``(layer, group)`` pairs reading layer ``i``), the bool mask of its plastic units
    from which a path of live connections reaches a stable unit: through a plastic
    unit of a later layer that itself does. Without selective unfreezing (or with
    ``"drop"``) there is none, since NISPA drops every plastic-to-stable connection."""
    masks: list = [None] * len(layers)
    for i in reversed(range(len(layers))):
        plastic = layers[i].unit_state == PLASTIC
        feeding = torch.zeros_like(plastic)
        for consumer, group in consumers[i]:
            targets = consumer.unit_state == STABLE
            if i + 1 < len(layers) and consumer is layers[i + 1]:
                targets = targets | masks[i + 1]
            per_column = outgoing_into_stable(consumer, plastic, group, targets).any(dim=0)
            if group > 1:
                per_column = per_column.view(-1, group).any(dim=1)
            feeding |= per_column.to(feeding.device)
        masks[i] = feeding & plastic
    return masks
