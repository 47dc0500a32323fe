"""How NISPA sees a network: its masked layers in data-flow order.

A :class:`LayerLink` names one masked layer and says how its input columns map onto
the units of the layer before it; every algorithm function works on a list of them
(``SparseMultiTaskNet.layer_links(task)`` builds it), so none needs to know the model
class.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import torch
from torch import Tensor

from ..sparse import STABLE, MaskedLayer

__all__ = ["LayerLink", "source_states"]


@dataclass(frozen=True)
class LayerLink:
    """One masked layer in the order data flows, with how its inputs map onto the
    units of the layer before. ``source_group`` is the number of input columns per
    source unit: 1 normally, ``H*W`` at a conv→linear flatten boundary, and ``None``
    for the first layer, whose inputs (pixels or channels) always count as stable."""

    name: str
    layer: MaskedLayer
    source_group: Optional[int]
    is_head: bool = False


def source_states(links: List[LayerLink], index: int) -> Tensor:
    """States of the units feeding each input column of ``links[index]``."""
    link = links[index]
    layer = link.layer
    if link.source_group is None:
        return torch.full((layer.in_units,), STABLE, dtype=torch.int8,
                          device=layer.unit_state.device)
    previous = links[index - 1].layer.unit_state
    if link.source_group == 1:
        return previous
    return previous.repeat_interleave(link.source_group)
