"""Dropping and regrowing connections (spec §2.4, §2.5).

Dropping cuts every live connection from a plastic unit into a stable or candidate unit,
so stable units depend on stable units only. Growth then adds, per layer, as many new
connections as were dropped, all of them into plastic units, so the density stays the
same (up to connections that find no free position, which are lost, as in the official
code). Everything is tensor operations over whole layers. A ``generator`` draws on its
own device (:func:`~avalanche_nispa.sparse.init.draw_device`), so a seeded CPU
generator rewires a CUDA model as it would a CPU one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, List, Literal, Optional, Sequence, Tuple

import torch
from torch import Tensor

from ..sparse import PLASTIC
from ..sparse.init import draw_device
from .growth import GrowthRequest, check_rule_output, get_growth_rule
from .links import LayerLink, source_states

__all__ = [
    "RewireAlgorithm",
    "GrowthInit",
    "RewiringReport",
    "REWIRE_ALGORITHMS",
    "GROWTH_INITS",
    "check_rewiring_choices",
    "check_growth_init",
    "drop_connections_into_stable_",
    "connect_isolated_plastic_units_",
    "grow_connections_",
    "rewire_",
    "GradientSource",
]

RewireAlgorithm = Literal["full_random", "forwardT_random", "flow_random"]
"""The official code's random rules (``--rewire_algo``); any rule of
:mod:`.growth` may be passed where a growth rule is asked for."""
GrowthInit = Literal["normal", "zero", "uniform"]
REWIRE_ALGORITHMS = ("full_random", "forwardT_random", "flow_random")
GROWTH_INITS = ("normal", "zero", "uniform")


GradientSource = Callable[[List[LayerLink]], Sequence[Optional[Tensor]]]
"""Gives, per link, the dense gradient of the loss with respect to its weight
(absent connections included), measured on the network as it is when called."""


def check_rewiring_choices(rewire_algo: str, growth_init: str) -> None:
    """Refuse an unknown random rule or growth initialisation, naming the known ones."""
    if rewire_algo not in REWIRE_ALGORITHMS:
        raise ValueError(f"rewire_algo must be one of {REWIRE_ALGORITHMS}, got {rewire_algo!r}")
    check_growth_init(growth_init)


def check_growth_init(growth_init: str) -> None:
    """Refuse an unknown initialisation of grown weights, naming the known ones."""
    if growth_init not in GROWTH_INITS:
        raise ValueError(f"growth_init must be one of {GROWTH_INITS}, got {growth_init!r}")


@dataclass
class RewiringReport:
    """Connections per layer (names in data-flow order) of one rewiring step."""

    layers: List[str] = field(default_factory=list)
    dropped: List[int] = field(default_factory=list)
    grown: List[int] = field(default_factory=list)

    @property
    def lost(self) -> List[int]:
        return [d - g for d, g in zip(self.dropped, self.grown)]


@torch.no_grad()
def drop_connections_into_stable_(links: List[LayerLink]) -> List[int]:
    """Remove every live connection whose target is stable or candidate and whose
    source is plastic, except frozen ones. Returns the number removed per layer.

    A frozen connection has a plastic source only after selective unfreezing released
    a stable unit (:mod:`.unfreezing`): its connections into stable units stay, frozen
    and bit-identical. Without unfreezing, frozen connections join stable units only."""
    dropped = []
    for i, link in enumerate(links):
        layer = link.layer
        target_kept = layer.unit_state != PLASTIC
        source_plastic = source_states(links, i) == PLASTIC
        drop = (layer.connection_mask & ~layer.frozen_connections
                & target_kept[:, None] & source_plastic[None, :])
        count = int(drop.sum())
        if count:
            layer.set_connection_mask_(layer.connection_mask & ~drop)
        dropped.append(count)
    return dropped


def _initial_values(weight: Tensor, shape: Tuple[int, ...], init: GrowthInit,
                    generator: Optional[torch.Generator]) -> Tensor:
    if init == "zero":
        return torch.zeros(shape, dtype=weight.dtype, device=weight.device)
    live = weight[weight != 0]
    if live.numel() < 2:
        return torch.zeros(shape, dtype=weight.dtype, device=weight.device)
    where = draw_device(generator, weight.device)
    if init == "normal":
        mean, std = live.mean(), live.std()
        draw = torch.randn(shape, generator=generator, dtype=weight.dtype, device=where)
        return draw.to(weight.device) * std + mean
    low, high = live.min(), live.max()
    draw = torch.rand(shape, generator=generator, dtype=weight.dtype, device=where)
    return draw.to(weight.device) * (high - low) + low


@torch.no_grad()
def _add_connections_(link: LayerLink, flat_positions: Tensor, values: Optional[Tensor]) -> None:
    layer = link.layer
    mask = layer.connection_mask.clone()
    mask.view(-1)[flat_positions] = True
    rows = layer.weight.view(layer.out_units * layer.in_units, -1)
    rows[flat_positions] = 0.0 if values is None else values.view(flat_positions.numel(), -1)
    layer.set_connection_mask_(mask)


@torch.no_grad()
def connect_isolated_plastic_units_(
    links: List[LayerLink],
    quotas: List[int],
    *,
    generator: Optional[torch.Generator] = None,
    original_flatten_bug: bool = False,
) -> List[int]:
    """Give every plastic unit with no outgoing connection one new connection to a
    random plastic unit of the next layer (``fix_no_outgoing``, spec §2.5.2), spending
    the next layer's quota. New weights start at 0. Returns the connections added per
    layer.

    At a conv→linear flatten boundary the clean version looks at the unit's whole
    block of columns and connects one random column of it; ``original_flatten_bug``
    reproduces the official code, which checks and connects column ``c`` for channel
    ``c`` (spec §8.3).
    """
    added = [0] * len(links)
    for i in range(len(links) - 1):
        following = links[i + 1]
        quota = quotas[i + 1] - added[i + 1]
        target_plastic = (following.layer.unit_state == PLASTIC).nonzero().squeeze(1)
        if quota <= 0 or target_plastic.numel() == 0:
            continue
        source_plastic = links[i].layer.unit_state == PLASTIC
        group = following.source_group or 1
        mask = following.layer.connection_mask
        units = source_plastic.numel()
        if group == 1 or original_flatten_bug:
            outgoing = mask[:, :units].any(dim=0)
        else:
            outgoing = mask.view(mask.shape[0], units, group).any(dim=2).any(dim=0)
        isolated = (source_plastic & ~outgoing).nonzero().squeeze(1)[:quota]
        if isolated.numel() == 0:
            continue
        where = draw_device(generator, isolated.device)
        pick = torch.randint(target_plastic.numel(), (isolated.numel(),), generator=generator,
                             device=where)
        targets = target_plastic[pick.to(isolated.device)]
        if group == 1 or original_flatten_bug:
            columns = isolated
        else:
            offsets = torch.randint(group, (isolated.numel(),), generator=generator,
                                    device=where)
            columns = isolated * group + offsets.to(isolated.device)
        flat = torch.unique(targets * following.layer.in_units + columns)
        flat = flat[~mask.view(-1)[flat]]
        _add_connections_(following, flat, None)
        added[i + 1] += int(flat.numel())
    return added


@torch.no_grad()
def grow_connections_(
    links: List[LayerLink],
    quotas: List[int],
    *,
    algorithm: str = "full_random",
    init: GrowthInit = "normal",
    generator: Optional[torch.Generator] = None,
    gradients: Optional[Sequence[Optional[Tensor]]] = None,
) -> List[int]:
    """Add up to ``quotas[i]`` absent connections into plastic units of layer ``i``,
    chosen by the growth rule ``algorithm`` (see :mod:`.growth`):

    - ``full_random``: uniform, any source → plastic target (official default);
    - ``forwardT_random``: stable or candidate sources first, then as ``full_random``;
    - ``flow_random``: plastic sources first, then as ``full_random``;
    - ``rigl``: the largest dense-gradient magnitudes (needs ``gradients``);
    - ``ch3l3``: the highest Cannistraci-Hebb CH3-L3 scores of the layer's graph.

    New weights are drawn from N(mean, std) of the layer's non-zero weights
    (``"normal"``, official), U(min, max) of them (``"uniform"``) or set to 0
    (``"zero"``). ``gradients``: per layer, the dense gradient of the loss with
    respect to its weight, for rules that need it. Returns the number added per layer.
    """
    rule = get_growth_rule(algorithm)
    check_growth_init(init)
    grown = []
    for i, (link, quota) in enumerate(zip(links, quotas)):
        layer = link.layer
        target_plastic = layer.unit_state == PLASTIC
        if quota <= 0 or not bool(target_plastic.any()):
            grown.append(0)
            continue
        request = GrowthRequest(
            connection_mask=layer.connection_mask,
            target_plastic=target_plastic,
            source_states=source_states(links, i),
            count=int(quota),
            generator=generator,
            weight=layer.weight.detach(),
            gradient=None if gradients is None else gradients[i],
        )
        positions = rule(request)
        check_rule_output(positions, request)
        if positions.numel():
            values = _initial_values(
                layer.weight, (positions.numel(),) + tuple(layer.weight.shape[2:]), init, generator
            )
            _add_connections_(link, positions, values)
        grown.append(int(positions.numel()))
    return grown


@torch.no_grad()
def rewire_(
    links: List[LayerLink],
    *,
    algorithm: str = "full_random",
    init: GrowthInit = "normal",
    connect_isolated: bool = True,
    original_flatten_bug: bool = False,
    generator: Optional[torch.Generator] = None,
    gradients: Optional[GradientSource] = None,
) -> RewiringReport:
    """Drop plastic→(stable ∪ candidate) connections, then regrow as many per layer
    with the growth rule ``algorithm``.

    ``gradients`` is called once, before the drop, when the rule needs gradients, as
    RigL measures before its own drop: after NISPA's drop no plastic unit reaches the
    current task's output (every connection from a plastic unit into a stable or
    candidate unit, the head's included, is cut), so the gradient at every position
    growth may fill would be exactly zero."""
    needs_gradients = "gradient" in get_growth_rule(algorithm).needs
    check_growth_init(init)
    if needs_gradients and gradients is None:
        raise ValueError(f"growth rule {algorithm!r} needs the dense gradients of the "
                         "layers' weights; pass gradients=")
    measured = list(gradients(links)) if needs_gradients else None
    dropped = drop_connections_into_stable_(links)
    fixed = [0] * len(links)
    if connect_isolated:
        fixed = connect_isolated_plastic_units_(
            links, dropped, generator=generator, original_flatten_bug=original_flatten_bug
        )
    remaining = [d - f for d, f in zip(dropped, fixed)]
    grown = grow_connections_(links, remaining, algorithm=algorithm, init=init,
                              generator=generator, gradients=measured)
    return RewiringReport(
        layers=[link.name for link in links],
        dropped=dropped,
        grown=[f + g for f, g in zip(fixed, grown)],
    )
