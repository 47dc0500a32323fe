"""Growing a masked layer by whole units, in place.

``add_output_units_`` appends output units (rows: a ``Linear``'s outputs, a
``Conv2d``'s output channels), ``add_input_units_`` input columns (the units of the
layer before, times the columns each owns after a flatten). The new entries start
absent (mask off, weight 0), not frozen, and new units plastic; whoever grows a layer
then draws the connections it wants (:mod:`avalanche_nispa.algorithm.neurogenesis`).

The weight and bias stay the same ``Parameter`` objects (their data is replaced), so
an optimizer holding them keeps working once its state is cleared (NISPA clears it
every phase). Each call appends a block to ``row_blocks`` / ``col_blocks``: the layer
then computes its output block by block, so what it computed before it grew stays
bit-identical (:meth:`MaskedLayer._blocked_forward`).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .layers import PLASTIC, MaskedLayer

__all__ = ["add_output_units_", "add_input_units_"]


def _grow(tensor: Tensor, count: int, dim: int, fill) -> Tensor:
    shape = list(tensor.shape)
    shape[dim] = count
    return torch.cat([tensor, torch.full(shape, fill, dtype=tensor.dtype, device=tensor.device)],
                     dim=dim)


def _check(layer: MaskedLayer, count: int) -> None:
    if not isinstance(layer, MaskedLayer):
        raise TypeError(f"only masked layers can grow, got {type(layer).__name__}")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"the number of units to add must be an integer >= 0, got {count!r}")


#: per grown dimension: the nn attributes counting it (Linear, Conv2d) and the
#: per-unit tensors that grow with it (a new unit is plastic, its bias not frozen)
_AXES = {0: (("out_features", "out_channels"), ("frozen_bias", "unit_state")),
         1: (("in_features", "in_channels"), ())}


@torch.no_grad()
def _add_units_(layer: MaskedLayer, count: int, dim: int) -> None:
    _check(layer, count)
    if count == 0:
        return
    names, per_unit = _AXES[dim]
    layer.weight.data = _grow(layer.weight.data, count, dim, 0.0)
    layer.weight.grad = None
    if dim == 0 and layer.bias is not None:
        layer.bias.data = _grow(layer.bias.data, count, 0, 0.0)
        layer.bias.grad = None
    for name in ("connection_mask", "frozen_connections", *per_unit):
        fill = PLASTIC if name == "unit_state" else False
        setattr(layer, name, _grow(getattr(layer, name), count, dim, fill))
    attribute = names[0] if isinstance(layer, nn.Linear) else names[1]
    setattr(layer, attribute, getattr(layer, attribute) + count)
    if dim == 0:
        layer.row_blocks = [*layer.row_blocks, count]
    else:
        layer.col_blocks = [*layer.col_blocks, count]
    layer.refresh_()


def add_output_units_(layer: MaskedLayer, count: int) -> None:
    """Append ``count`` plastic output units with no connections, zero bias."""
    _add_units_(layer, count, 0)


def add_input_units_(layer: MaskedLayer, count: int) -> None:
    """Append ``count`` input columns, absent in every output unit."""
    _add_units_(layer, count, 1)
