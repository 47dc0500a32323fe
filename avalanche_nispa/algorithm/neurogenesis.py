"""Neurogenesis: new plastic units for a layer that has run out of them.

NISPA freezes stable units for good, so on a long stream a hidden layer can end with
no plastic unit left, and later tasks can only reuse what earlier ones froze. Selective
unfreezing (:mod:`.unfreezing`) wins capacity back by releasing stable units, at a cost
to the old tasks that read them. Neurogenesis (the brain's addition of new neurons,
which the NISPA authors point to as inspiration) adds units instead: at the start of
an experience, a hidden layer whose plastic share is below a threshold grows new
plastic units, as many as bring the share back to it and at most a bound per
experience. Nothing an old task reads changes:

- a new unit reads every unit of the layer before (stable or plastic) through random
  connections at the network's density, drawn as the end-of-experience
  re-initialisation draws plastic weights (``kaiming_normal_(fan_out)``), bias 0;
- it feeds only plastic units of the next layer (random connections at the same
  density), never a stable unit nor a head of a trained task (per-task heads are
  stable; a shared output layer's rows of unseen classes are plastic and can be fed);
- the grown layers compute the old units' outputs block by block at their old shapes
  (:mod:`avalanche_nispa.sparse.growth`), so old tasks' outputs stay bit-identical.

After that the new units are ordinary plastic units: NISPA trains, selects, rewires
and re-initialises them like the others.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, List, Optional, Sequence

import torch
from torch import Tensor

from ..sparse import PLASTIC, MaskedLayer, random_connection_mask
from ..sparse.init import draw_device

if TYPE_CHECKING:  # pragma: no cover
    from ..models.network import SparseMultiTaskNet

__all__ = ["units_to_add", "connect_new_units_"]


def units_to_add(unit_state: Tensor, below: float, bound: float) -> int:
    """How many plastic units a layer with states ``unit_state`` grows: the fewest
    that bring its plastic share to ``below`` (``ceil((below*units - plastic) /
    (1 - below))``), at most ``floor(bound * units)``; 0 when the share is not below."""
    units = unit_state.numel()
    plastic = int((unit_state == PLASTIC).sum())
    if plastic >= below * units:
        return 0
    wanted = math.ceil((below * units - plastic) / (1.0 - below) - 1e-9)
    return max(0, min(wanted, math.floor(bound * units)))


@torch.no_grad()
def _connect_(layer: MaskedLayer, grow: Tensor, generator: Optional[torch.Generator]) -> int:
    """Make the connections ``grow`` (``out x in`` bool, absent ones) live, with
    ``kaiming_normal_(fan_out)`` values; returns how many."""
    count = int(grow.sum())
    if count == 0:
        return 0
    fan_out = layer.out_units * layer.connection_size
    where = draw_device(generator, layer.weight.device)
    values = torch.empty(layer.weight.shape, dtype=layer.weight.dtype, device=where)
    values.normal_(0.0, math.sqrt(2.0 / fan_out), generator=generator)
    values = values.to(layer.weight.device)
    positions = layer.expand(grow)
    layer.weight[positions] = values[positions]
    layer.set_connection_mask_(layer.connection_mask | grow)
    return count


def _draw(rows: int, cols: int, density: float, model, generator) -> Tensor:
    return random_connection_mask(rows, cols, density, method=model.mask_init,
                                  generator=generator, device=model.masked_logit_value.device)


@torch.no_grad()
def connect_new_units_(model: "SparseMultiTaskNet", counts: Sequence[int], density: float,
                       groups: Sequence[int],
                       generator: Optional[torch.Generator] = None) -> List[int]:
    """Draw the connections of units just added by
    :func:`~avalanche_nispa.models.growth.grow_hidden_units_` (``counts`` per hidden
    layer, ``groups`` its consumers' columns per unit): into each new unit from every
    input, and from each new unit into the plastic units (rows) of what reads it.
    Returns the connections added to each hidden layer's weights, then to the heads'."""
    hidden = model.hidden_layers()
    added = []
    for i, layer in enumerate(hidden):
        new_rows = int(counts[i])
        new_cols = int(counts[i - 1]) * int(groups[i - 1]) if i else 0
        old_rows = layer.out_units - new_rows
        grow = torch.zeros_like(layer.connection_mask)
        if new_rows:
            grow[old_rows:] = _draw(new_rows, layer.in_units, density, model, generator)
        if new_cols:
            plastic = (layer.unit_state[:old_rows] == PLASTIC).unsqueeze(1)
            grow[:old_rows, layer.in_units - new_cols:] = (
                _draw(old_rows, new_cols, density, model, generator) & plastic)
        added.append(_connect_(layer, grow & ~layer.connection_mask, generator))
    into_heads = 0
    new_cols = int(counts[-1]) * int(groups[-1])
    if new_cols:
        for key in sorted(model.heads):
            head = model.heads[key]
            plastic = (head.unit_state == PLASTIC).unsqueeze(1)
            grow = torch.zeros_like(head.connection_mask)
            grow[:, head.in_units - new_cols:] = (
                _draw(head.out_units, new_cols, density, model, generator) & plastic)
            into_heads += _connect_(head, grow, generator)
    return added + [into_heads]
