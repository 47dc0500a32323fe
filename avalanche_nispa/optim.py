"""Where a new task head's parameters go in the user's optimizer."""
from __future__ import annotations

from typing import List

from torch.optim import Optimizer

from .models.network import SparseMultiTaskNet

__all__ = ["add_new_heads_to_optimizer"]


def add_new_heads_to_optimizer(optimizer: Optimizer, model: SparseMultiTaskNet) -> List[str]:
    """Put the parameters of heads the optimizer does not hold yet into the parameter
    group of the layer that feeds the heads (group 0 if that layer is in none).

    Avalanche would add them itself, but it infers their group from their names and
    fails ("No unique group found for this node heads.0.weight") as soon as the
    user's groups split the network body, since ``heads`` then sits under a root that
    belongs to several groups. Returns the names added.
    """
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    feeding = model.hidden_layers()[-1].weight
    target = next((group for group in optimizer.param_groups
                   if any(p is feeding for p in group["params"])), optimizer.param_groups[0])
    added = []
    for name, parameter in model.named_parameters():
        if name.startswith("heads.") and id(parameter) not in held:
            target["params"].append(parameter)
            held.add(id(parameter))
            added.append(name)
    return added
