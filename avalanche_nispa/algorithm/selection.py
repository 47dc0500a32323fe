"""Candidate stable-unit selection by activation (spec §2.3).

After each phase, the units of every hidden layer are ranked by their mean activation on
the current task's data, and the smallest set whose activations add up to a fraction τ
of the layer's total becomes the candidate set (unioned with the units already stable).
Candidates are recomputed from scratch every phase.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, List, Optional

import torch
from torch import Tensor

from ..sparse import CANDIDATE, PLASTIC, STABLE
from .links import source_states

if TYPE_CHECKING:  # the model class is Avalanche glue; the algorithm only reads it
    from ..models.network import SparseMultiTaskNet

__all__ = ["minimal_covering_units", "mean_activations", "select_candidates_",
           "batch_is_finite", "raise_if_non_finite"]


def batch_is_finite(*tensors: Tensor) -> Tensor:
    """A 0-dim bool tensor on the tensors' device: every value of every tensor is
    finite. No host synchronisation; collect one per batch and pass the list to
    :func:`raise_if_non_finite` once per pass."""
    flag = torch.isfinite(tensors[0]).all()
    for tensor in tensors[1:]:
        flag = flag & torch.isfinite(tensor).all()
    return flag


def raise_if_non_finite(flags: List[Tensor], where: str, what: str) -> None:
    """Raise ``FloatingPointError`` naming the first batch whose flag is false (one
    host synchronisation for the whole pass)."""
    if not flags:
        return
    bad = ~torch.stack(flags)
    if not bool(bad.any()):
        return
    batch = int(bad.nonzero()[0])
    prefix = f"{where}: " if where else ""
    raise FloatingPointError(
        f"{prefix}{what} batch {batch} has non-finite values (NaN or inf) in its inputs, "
        "activations or outputs, so no unit is selected, promoted or frozen from this pass. "
        "Remove NaN/inf from the data (or normalise it); if the inputs are finite, the "
        "weights diverged: lower the learning rate"
    )


def minimal_covering_units(activation: Tensor, fraction: float) -> Tensor:
    """Boolean mask of the fewest units whose activations sum to at least
    ``fraction`` of the total (ties broken by a stable sort on the values).

    A layer with no activation at all selects nothing; a non-finite activation is
    refused (NaN would sort first and select every unit).
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    if not bool(torch.isfinite(activation).all()):
        raise ValueError(
            "the activations to rank units by are non-finite (NaN or inf); check the data "
            "and the learning rate")
    selected = torch.zeros_like(activation, dtype=torch.bool)
    values, order = torch.sort(activation.double(), descending=True, stable=True)
    cumulative = torch.cumsum(values, dim=0)
    total = cumulative[-1]
    if fraction == 0.0 or total <= 0:
        return selected
    count = int(torch.searchsorted(cumulative, fraction * total)) + 1
    selected[order[: min(count, activation.numel())]] = True
    return selected


@torch.no_grad()
def mean_activations(model: "SparseMultiTaskNet", batches: Iterable[Tensor],
                     where: str = "") -> List[Tensor]:
    """Per hidden layer, every unit's activation averaged over the samples (summed
    over H×W for conv maps, as the official code does).

    Raises ``FloatingPointError`` naming ``where`` (e.g. the experience) and the first
    batch whose inputs or activations are not finite.
    """
    sums: List[Tensor] = []
    flags: List[Tensor] = []
    count = 0
    was_training = model.training
    model.eval()
    try:
        for x in batches:
            model.features(x, sums)
            flags.append(batch_is_finite(x, *sums))
            count += x.shape[0]
    finally:
        model.train(was_training)
    raise_if_non_finite(flags, where, "selection")
    if count == 0:
        raise ValueError("no samples to measure activations on")
    return [s / count for s in sums]


@torch.no_grad()
def select_candidates_(
    model: "SparseMultiTaskNet",
    activations: List[Tensor],
    fraction: float,
    *,
    demote_dead: bool = False,
    task_label: Optional[int] = None,
) -> None:
    """Set every hidden layer's candidates to the minimal set covering ``fraction`` of
    its activation, minus the units already stable; the other non-stable units become
    plastic.

    ``demote_dead``: a candidate with no live incoming connection from a stable or
    candidate unit would lose all its inputs when plastic inputs are dropped, so it is
    returned to the plastic pool (the official code computes this and then discards
    it, spec §8.2; the clean mode applies it).
    """
    hidden = model.hidden_layers()
    if len(activations) != len(hidden):
        raise ValueError(f"expected {len(hidden)} activation vectors, got {len(activations)}")
    links = model.layer_links(task_label)
    for i, (layer, activation) in enumerate(zip(hidden, activations)):
        stable = layer.unit_state == STABLE
        selected = minimal_covering_units(activation.to(layer.unit_state.device), fraction)
        candidates = selected & ~stable
        if demote_dead:
            kept_sources = source_states(links, i) != PLASTIC
            has_input = (layer.connection_mask & kept_sources[None, :]).any(dim=1)
            candidates &= has_input
        state = torch.full_like(layer.unit_state, PLASTIC)
        state[candidates] = CANDIDATE
        state[stable] = STABLE
        layer.unit_state.copy_(state)
