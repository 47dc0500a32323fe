"""The official code's random growth rules (spec §2.5.3, ``--rewire_algo``).

``full_random`` draws uniformly among all absent connections into plastic units,
whatever their source ("type 1 + type 2" connections in the official code); the paper
runs use it. ``forwardT_random`` prefers stable or candidate sources ("type 1",
stable→plastic) and ``flow_random`` plastic sources ("type 2", plastic→plastic);
what their preferred positions cannot hold is drawn as ``full_random`` draws, as the
official code's second pass does.

The official code draws the two passes one after the other, each followed by the
initial values of its weights; here both passes are drawn first and the values after
them, so when the preferred positions run out the random draws come in another order
than before this interface existed (when they do not, the draws are the same).
"""
from __future__ import annotations

import torch
from torch import Tensor

from ...sparse import PLASTIC
from .base import GrowthRequest, free_positions, growth_rule, sample_uniform

__all__ = ["full_random", "forward_transfer_random", "flow_random"]


@growth_rule("full_random")
def full_random(request: GrowthRequest) -> Tensor:
    """Uniform among all absent connections into plastic units (official default)."""
    return sample_uniform(free_positions(request), request.count, request.generator)


def _preferring(request: GrowthRequest, preferred_sources: Tensor) -> Tensor:
    free = free_positions(request)
    preferred = free & preferred_sources[None, :]
    first = sample_uniform(preferred, request.count, request.generator)
    remaining = request.count - first.numel()
    if remaining <= 0:
        return first
    rest = free & ~preferred
    return torch.cat([first, sample_uniform(rest, remaining, request.generator)])


@growth_rule("forwardT_random")
def forward_transfer_random(request: GrowthRequest) -> Tensor:
    """Uniform among stable/candidate → plastic connections ("type 1": reuse of old
    features), then among the other free positions."""
    return _preferring(request, request.source_states != PLASTIC)


@growth_rule("flow_random")
def flow_random(request: GrowthRequest) -> Tensor:
    """Uniform among plastic → plastic connections ("type 2"), then among the other
    free positions."""
    return _preferring(request, request.source_states == PLASTIC)
