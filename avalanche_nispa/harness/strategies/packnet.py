"""PackNet: prune after each task, freeze what the task kept, on a task-masked network.

avalanche-lib 0.6.0's PackNet is repaired in
:class:`~avalanche_nispa.harness.baselines.FixedPackNet` (nested plugin list,
``bias=False`` crash, AdamW re-creation). It trains one output layer over all
classes, masked per task (:class:`~avalanche_nispa.harness.baselines.TaskMaskedPackNetModel`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Union

import torch
from torch import nn

from avalanche.models.packnet import WeightAndBiasPackNetModule

from ..baselines import FixedPackNet, TaskMaskedPackNetModel, equal_share_prune_proportions
from ..entry import BuiltStrategy, StrategyEntry, make_optimizer
from ..models import single_head_net
from ..params import Backbone, Hyperparameters, Training

__all__ = ["ENTRIES", "PackNetParams", "count_packnet_parameters"]


@dataclass(frozen=True)
class PackNetParams(Hyperparameters):
    # issue 4: 3 + 2 post-prune epochs; equal-share pruning gives every task ~1/T
    post_prune_epochs: int = 2
    prune_proportion: Union[str, float] = "equal_share"


@torch.no_grad()
def count_packnet_parameters(model: nn.Module) -> dict[str, int]:
    """Active, frozen and total parameters of a PackNet network.

    Active weights are those owned by a trained task (not pruned away for
    later tasks); they are also frozen once their task ends. Biases are shared
    by all tasks, trained on the first one and then frozen.
    """
    active = frozen = total = 0
    for module in model.modules():
        if not isinstance(module, WeightAndBiasPackNetModule):
            continue
        owned = int((module.task_index < module.task_count).sum())
        active += owned
        frozen += owned
        total += module.wrappee.weight.numel()
        bias = getattr(module.wrappee, "bias", None)
        if isinstance(bias, nn.Parameter):
            active += bias.numel()
            total += bias.numel()
            frozen += 0 if bias.requires_grad else bias.numel()
    return {"active": active, "frozen": frozen, "total": total}


class PackNetEntry(StrategyEntry):
    name = "packnet"
    order = 100
    defaults = PackNetParams()

    def build(
        self, backbone: Backbone, n_classes: int, hp: Mapping[str, Any], n_experiences: int,
        kwargs: dict[str, Any], *, scenario: str = "task",
    ) -> BuiltStrategy:
        training, params = Training.from_dict(hp), PackNetParams.from_dict(hp)
        notes = []
        epochs, post_prune = int(training.epochs), int(params.post_prune_epochs)
        if epochs < 2:
            notes.append(f"PackNet needs an epoch before and after pruning: epochs {epochs} -> 2")
            epochs = 2
        if post_prune >= epochs or post_prune < 1:
            clamped = min(max(post_prune, 1), epochs - 1)
            notes.append(f"post_prune_epochs {post_prune} -> {clamped} (of {epochs} epochs)")
            post_prune = clamped
        proportion = params.prune_proportion
        if proportion == "equal_share":
            proportion = equal_share_prune_proportions(n_experiences)
        kwargs["train_epochs"] = epochs
        model = TaskMaskedPackNetModel(single_head_net(backbone, n_classes))
        strategy = FixedPackNet(
            model=model,
            optimizer=make_optimizer(training, model.parameters()),
            post_prune_epochs=post_prune,
            prune_proportion=proportion,
            **kwargs,
        )
        return BuiltStrategy(self, strategy, model, epochs, notes=notes)

    def count_parameters(self, model: nn.Module) -> dict[str, int]:
        return count_packnet_parameters(model)


ENTRIES = (PackNetEntry(),)
