"""Growing a NISPA network's hidden layers by whole units (the shapes only).

:func:`grow_hidden_units_` appends units to hidden layers and the matching input
columns to the layers reading them (the next hidden layer, or every head after the
last), all absent and plastic, and records the step in the network's ``unit_growth``
buffer (one row per step, one column per hidden layer), which checkpoints hold:
:func:`replay_growth_` gives a freshly built network the saved shapes before a state
is loaded into it. Which connections the new units get is the algorithm's choice
(:mod:`avalanche_nispa.algorithm.neurogenesis`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, List, Mapping, Sequence

import torch
from torch import Tensor

from ..sparse.growth import add_input_units_, add_output_units_

if TYPE_CHECKING:  # pragma: no cover
    from .network import SparseMultiTaskNet

__all__ = ["grow_hidden_units_", "replay_growth_", "consumer_groups", "built_widths"]

GROWTH_KEY = "unit_growth"


def consumer_groups(model: "SparseMultiTaskNet") -> List[int]:
    """Per hidden layer, the input columns each of its units owns in the layer that
    reads it (1, or H*W after a flatten; for the last, in the heads)."""
    hidden = model.hidden_layers()
    groups = [nxt.in_units // layer.out_units for layer, nxt in zip(hidden, hidden[1:])]
    groups.append(model.head_in_features // hidden[-1].out_units)
    return groups


def grow_hidden_units_(model: "SparseMultiTaskNet", counts: Sequence[int]) -> None:
    """Append ``counts[i]`` plastic units to hidden layer ``i`` (no connections)."""
    hidden = model.hidden_layers()
    counts = [int(c) for c in counts]
    if len(counts) != len(hidden) or any(c < 0 for c in counts):
        raise ValueError(f"give a count >= 0 for each of the {len(hidden)} hidden layers, "
                         f"got {list(counts)}")
    if not any(counts):
        return
    groups = consumer_groups(model)  # before any shape changes
    for i, (layer, count) in enumerate(zip(hidden, counts)):
        add_output_units_(layer, count)
        if i + 1 < len(hidden):
            add_input_units_(hidden[i + 1], count * groups[i])
    added = counts[-1] * groups[-1]
    for head in model.heads.values():
        add_input_units_(head, added)
    if added:
        model.head_in_features += added
        model.head_col_blocks = [*model.head_col_blocks, added]
    row = torch.tensor([counts], dtype=torch.long, device=model.masked_logit_value.device)
    previous = getattr(model, GROWTH_KEY, None)
    model.register_buffer(GROWTH_KEY, row if previous is None else torch.cat([previous, row]))


def replay_growth_(model: "SparseMultiTaskNet", state: Mapping[str, Tensor]) -> None:
    """Grow a network that has not grown yet to the shapes of ``state`` (a saved
    ``state_dict``), step by step as it grew; nothing when ``state`` never grew."""
    steps = state.get(GROWTH_KEY)
    if steps is None:
        return
    if getattr(model, GROWTH_KEY, None) is not None:
        if not torch.equal(model.unit_growth.cpu(), steps.cpu()):
            raise ValueError(
                f"the saved network grew by units {steps.tolist()} (per step and hidden "
                f"layer), this one by {model.unit_growth.tolist()}: load into a freshly built "
                "network")
        return
    for row in steps.tolist():
        grow_hidden_units_(model, row)


def built_widths(model: "SparseMultiTaskNet") -> List[int]:
    """Each hidden layer's units as built, before any growth."""
    return [layer.row_blocks[0] for layer in model.hidden_layers()]
