"""Output heads of the sparse multi-task network: the layer of one task, the class ids
of a task on a shared output layer, and how a new head's weights and biases are drawn
(the official MLP's and ConvNet's schemes, and a class-id independent one)."""
from __future__ import annotations

import math
from typing import Literal, Sequence, get_args

import torch
from torch import nn

from ..sparse import STABLE, MaskedLinear, kaiming_fan_out_

__all__ = ["TaskHead", "TaskClasses", "init_head_", "HeadBiasInit", "HeadWeightInit",
           "HeadFanOut", "check_head_init"]

HeadBiasInit = Literal["default", "zero", "default_then_zero"]
HeadWeightInit = Literal["fan_out", "fan_in_then_fan_out"]
HeadFanOut = Literal["output_width", "head"]


class TaskHead(MaskedLinear):
    """Sparse output layer of one task; ``classes`` maps its units to class ids."""

    classes: torch.Tensor

    def __init__(self, in_features: int, classes: Sequence[int], **kwargs) -> None:
        super().__init__(in_features, len(classes), **kwargs)
        self.register_buffer(
            "classes", torch.as_tensor(list(classes), dtype=torch.long, device=self.weight.device)
        )
        self.unit_state.fill_(STABLE)


class TaskClasses(nn.Module):
    """The class ids of one task on a shared output layer (a buffer: checkpoints hold it)."""

    classes: torch.Tensor

    def __init__(self, classes: Sequence[int], device=None) -> None:
        super().__init__()
        self.register_buffer("classes", torch.as_tensor(list(classes), dtype=torch.long,
                                                        device=device))


def check_head_init(bias_init: str, weight_init: str, fan_out: str) -> None:
    """Refuse an unknown head initialisation setting, naming the accepted ones."""
    for name, value, kind in (("head_bias_init", bias_init, HeadBiasInit),
                              ("head_weight_init", weight_init, HeadWeightInit),
                              ("head_fan_out", fan_out, HeadFanOut)):
        accepted = get_args(kind)
        if value not in accepted:
            shown = ", ".join(map(repr, accepted[:-1])) + f" or {accepted[-1]!r}"
            raise ValueError(f"{name} must be {shown}, got {value!r}")


@torch.no_grad()
def init_head_(head: TaskHead, *, first: bool, fan_out: int, bias_init: HeadBiasInit,
               weight_init: HeadWeightInit) -> TaskHead:
    """Draw a new head's weights and biases in place (before it is sparsified).

    ``first``: no head was made before this one (the official ConvNet draws the first
    head over its fan-in, and the official MLP keeps PyTorch's uniform biases only on
    the first task's rows). ``fan_out``: the fan-out the weights are drawn over.
    """
    if first and weight_init == "fan_in_then_fan_out":
        nn.init.kaiming_normal_(head.weight)  # fan-in, gain √2
    else:
        kaiming_fan_out_(head.weight, fan_out=fan_out)
    if bias_init == "zero" or (bias_init == "default_then_zero" and not first):
        head.bias.zero_()
    else:
        bound = 1.0 / math.sqrt(head.in_features)
        head.bias.uniform_(-bound, bound)
    return head
