"""The growth-rule interface: what a rule is given, what it must return, and the
shared helpers that keep every rule within its contract.

A rule is a function ``rule(request: GrowthRequest) -> Tensor`` registered by name
with :func:`growth_rule`. For one layer it returns the flat indices (into the
``out x in`` connection mask) of the connections to grow:

- only absent connections (``~request.connection_mask``), never one that exists;
- only into units growth may target (``request.target_plastic``: plastic units),
  never into stable or candidate ones;
- no index twice;
- exactly ``request.count`` of them, or every allowed position when fewer exist;
- the same indices for the same request and generator state: randomness (including
  the breaking of ties between equal scores) is drawn from ``request.generator``
  (``None``: the global torch generator), on the device of the masks.

:func:`free_positions`, :func:`sample_uniform` and :func:`top_scoring` implement
these once, so a rule only says which positions it prefers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, FrozenSet, Iterable, Optional

import torch
from torch import Tensor

from ...sparse.init import draw_device

__all__ = [
    "GrowthRequest",
    "GrowthRule",
    "NEEDS",
    "growth_rule",
    "registered_rules",
    "free_positions",
    "sample_uniform",
    "top_scoring",
    "connection_scores",
    "check_rule_output",
]

NEEDS = ("weight", "gradient")
"""Inputs a rule may need beyond the masks and unit states: the layer's weight, and
the dense gradient of the loss with respect to it (absent connections included)."""


@dataclass(frozen=True)
class GrowthRequest:
    """One layer's growth step.

    :param connection_mask: ``(out, in)`` bool, the live connections.
    :param target_plastic: ``(out,)`` bool, the units growth may target.
    :param source_states: ``(in,)`` int8, the state of the unit feeding each input
        column (``STABLE`` for a first layer's inputs).
    :param count: how many connections to grow.
    :param generator: the random generator (``None``: the global one).
    :param weight: the layer's weight (``out x in x ...``), for rules that need it.
    :param gradient: the dense gradient of the loss with respect to the weight, of
        the weight's shape, absent connections included; for rules that need it.
    """

    connection_mask: Tensor
    target_plastic: Tensor
    source_states: Tensor
    count: int
    generator: Optional[torch.Generator] = None
    weight: Optional[Tensor] = None
    gradient: Optional[Tensor] = None


GrowthFunction = Callable[[GrowthRequest], Tensor]


@dataclass(frozen=True)
class GrowthRule:
    """A registered rule: its name, its function and the inputs it needs."""

    name: str
    function: GrowthFunction
    needs: FrozenSet[str] = frozenset()

    def __call__(self, request: GrowthRequest) -> Tensor:
        for need in self.needs:
            if getattr(request, need) is None:
                raise ValueError(f"growth rule {self.name!r} needs the layer's {need}, "
                                 "which the caller did not provide")
        return self.function(request)


_RULES: Dict[str, GrowthRule] = {}


def growth_rule(name: str, *, needs: Iterable[str] = ()) -> Callable[[GrowthFunction], GrowthFunction]:
    """Register the decorated function as the growth rule ``name``."""
    needs = frozenset(needs)
    unknown = sorted(needs - set(NEEDS))
    if unknown:
        raise ValueError(f"a growth rule may need {NEEDS}, not {unknown}")

    def register(function: GrowthFunction) -> GrowthFunction:
        if name in _RULES and _RULES[name].function is not function:
            raise ValueError(f"two growth rules are named {name!r}")
        _RULES[name] = GrowthRule(name, function, needs)
        return function

    return register


def registered_rules() -> Dict[str, GrowthRule]:
    """Every registered rule by name (registration order)."""
    return dict(_RULES)


def free_positions(request: GrowthRequest) -> Tensor:
    """``(out, in)`` bool: absent connections into units growth may target."""
    return ~request.connection_mask & request.target_plastic[:, None]


def sample_uniform(candidates: Tensor, count: int, generator: Optional[torch.Generator]) -> Tensor:
    """``count`` distinct flat indices drawn uniformly among the True entries of
    ``candidates`` (all of them, in index order and without a draw, when there are
    not more than ``count``)."""
    flat = candidates.flatten().nonzero().squeeze(1)
    if count >= flat.numel():
        return flat
    order = torch.randperm(flat.numel(), generator=generator,
                           device=draw_device(generator, flat.device))[:count].to(flat.device)
    return flat[order]


def top_scoring(candidates: Tensor, scores: Tensor, count: int,
                generator: Optional[torch.Generator]) -> Tensor:
    """The flat indices of the ``count`` True entries of ``candidates`` with the
    highest ``scores`` (same shape), ties broken uniformly at random: the candidates
    are shuffled with ``generator`` and then stably sorted by score."""
    flat = candidates.flatten().nonzero().squeeze(1)
    if count >= flat.numel():
        return flat
    values = scores.flatten()[flat]
    if not bool(torch.isfinite(values).all()):
        raise FloatingPointError(
            "the growth scores are non-finite (NaN or inf); the gradients or weights they "
            "come from diverged: lower the learning rate")
    shuffle = torch.randperm(flat.numel(), generator=generator,
                             device=draw_device(generator, flat.device)).to(flat.device)
    order = torch.sort(values[shuffle], descending=True, stable=True).indices[:count]
    return flat[shuffle[order]]


def connection_scores(tensor: Tensor) -> Tensor:
    """Per connection ``(out, in)``, the sum of ``|tensor|`` over its weights (a conv
    connection is a whole kernel)."""
    magnitude = tensor.abs()
    return magnitude.sum(dim=tuple(range(2, magnitude.dim()))) if magnitude.dim() > 2 else magnitude


def check_rule_output(flat: Tensor, request: GrowthRequest) -> None:
    """Raise if a rule's answer breaks the contract of this module (the driver checks
    every answer, so a faulty new rule fails loudly instead of corrupting masks)."""
    allowed = free_positions(request).flatten()
    if flat.dim() != 1 or flat.dtype != torch.long:
        raise TypeError(f"a growth rule must return a 1-D long tensor, got {flat.dtype} "
                        f"of shape {tuple(flat.shape)}")
    if flat.numel() and not bool(allowed[flat].all()):
        raise ValueError("the growth rule chose an existing connection or a connection into "
                         "a stable or candidate unit")
    if torch.unique(flat).numel() != flat.numel():
        raise ValueError("the growth rule chose a connection twice")
    expected = min(int(request.count), int(allowed.sum()))
    if flat.numel() != expected:
        raise ValueError(f"the growth rule returned {flat.numel()} connections, "
                         f"{expected} were asked for")
