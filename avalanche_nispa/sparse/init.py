"""Random sparse connectivity and the weight initialisations of the official code."""
from __future__ import annotations

import math
from typing import Literal, Optional

import torch
from torch import Tensor, nn

from .layers import MaskedLayer

__all__ = ["MaskInit", "check_density", "draw_device", "random_connection_mask", "sparsify_",
           "kaiming_fan_out_"]

MaskInit = Literal["bernoulli", "exact"]


def check_density(density: float) -> float:
    """The connection density as a float, or a ``ValueError`` naming the valid range."""
    if not isinstance(density, (int, float)) or not 0.0 < density <= 1.0:
        raise ValueError(f"density must be in (0, 1], got {density}")
    return float(density)


def draw_device(generator: Optional[torch.Generator], device) -> torch.device:
    """Where a random draw for a tensor on ``device`` is made: on the generator's own
    device when one is given (torch refuses a CPU generator for a CUDA draw, and a
    seeded generator then decides the same draws whatever the model's device; the
    result is moved to ``device``), else on ``device`` (``None``: torch's default
    device) with its default generator."""
    if generator is not None:
        return generator.device
    return torch.device(device) if device is not None else torch.get_default_device()


def random_connection_mask(
    out_units: int,
    in_units: int,
    density: float,
    *,
    method: MaskInit = "bernoulli",
    generator: Optional[torch.Generator] = None,
    device: Optional[torch.device] = None,
) -> Tensor:
    """Draw an ``(out_units, in_units)`` boolean connection mask.

    ``"bernoulli"`` keeps every connection independently with probability
    ``density`` (the official code's draw, so the count is not exact); ``"exact"``
    keeps exactly ``round(density * out_units * in_units)`` connections.
    """
    density = check_density(density)
    device = draw_device(None, device)
    if density == 1.0:
        return torch.ones(out_units, in_units, dtype=torch.bool, device=device)
    where = draw_device(generator, device)
    if method == "bernoulli":
        draw = torch.rand(out_units, in_units, generator=generator, device=where)
        return (draw < density).to(device)
    if method == "exact":
        total = out_units * in_units
        keep = int(round(density * total))
        order = torch.randperm(total, generator=generator, device=where)[:keep].to(device)
        mask = torch.zeros(total, dtype=torch.bool, device=device)
        mask[order] = True
        return mask.view(out_units, in_units)
    raise ValueError(f"mask init must be 'bernoulli' or 'exact', got {method!r}")


@torch.no_grad()
def sparsify_(
    layer: MaskedLayer,
    density: float,
    *,
    method: MaskInit = "bernoulli",
    generator: Optional[torch.Generator] = None,
) -> None:
    """Give ``layer`` a random connection mask at ``density`` (weights are kept where
    connections stay and zeroed elsewhere, with no rescaling, as in the official code)."""
    mask = random_connection_mask(
        layer.out_units, layer.in_units, density, method=method, generator=generator,
        device=layer.weight.device,
    )
    layer.set_connection_mask_(mask)


@torch.no_grad()
def kaiming_fan_out_(weight: Tensor, fan_out: Optional[int] = None) -> Tensor:
    """``kaiming_normal_(mode='fan_out', nonlinearity='relu')``, with an optional
    explicit fan-out (a per-task head uses the width of the shared output layer it
    replaces, so that its scale matches the official single output layer)."""
    if fan_out is None:
        return nn.init.kaiming_normal_(weight, mode="fan_out", nonlinearity="relu")
    return weight.normal_(0.0, math.sqrt(2.0 / fan_out))
