"""The paper's networks (spec §3): the MLP for the MNIST family and the ConvNet for
CIFAR, as :class:`SparseMultiTaskNet` s."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from ..sparse import MaskedConv2d, MaskedLinear, MaskInit, check_density, kaiming_fan_out_, sparsify_
from .network import CLEAN_MASKED_LOGIT, SparseMultiTaskNet

__all__ = ["NISPAMLP", "NISPACNN"]


class NISPAMLP(SparseMultiTaskNet):
    """The paper's MLP: ``input -> 400 -> 400 -> 400 -> task heads``, ReLU, 20 % density
    in every layer including the first and the heads.

    Initialisation as the official code: weights ``kaiming_normal_(fan_out, relu)``,
    biases PyTorch's default uniform, then masked without rescaling.

    ``class_incremental=True`` (with ``num_classes``) gives one shared output layer for
    NISPA-Replay instead of a head per task; ``shared_head=True`` (with ``num_classes``)
    the official code's single task-masked output layer for NISPA (see :class:`SparseMultiTaskNet`).
    ``head_fan_out="head"`` draws each head over its own class count instead of the
    output width (see :class:`SparseMultiTaskNet`).
    """

    def __init__(
        self,
        input_size: int = 784,
        hidden_sizes: Sequence[int] = (400, 400, 400),
        density: float = 0.2,
        num_classes: Optional[int] = None,
        *,
        mask_init: MaskInit = "bernoulli",
        masked_logit_value: float = CLEAN_MASKED_LOGIT,
        class_incremental: bool = False,
        shared_head: bool = False,
        head_fan_out: str = "output_width",
    ) -> None:
        if not hidden_sizes:
            raise ValueError("hidden_sizes must name at least one hidden layer")
        check_density(density)
        layers: list = [nn.Flatten()]
        width = int(input_size)
        for size in hidden_sizes:
            linear = MaskedLinear(width, int(size))
            with torch.no_grad():
                kaiming_fan_out_(linear.weight)
            sparsify_(linear, density, method=mask_init)
            layers += [linear, nn.ReLU()]
            width = int(size)
        super().__init__(
            nn.Sequential(*layers), width, density=density, mask_init=mask_init,
            num_classes=num_classes, head_bias_init="default",
            masked_logit_value=masked_logit_value, class_incremental=class_incremental,
            shared_head=shared_head, head_fan_out=head_fan_out,  # type: ignore[arg-type]
        )
        self.input_size = int(input_size)


class NISPACNN(SparseMultiTaskNet):
    """The paper's ConvNet: conv3×3 64, 64, pool, 128, 128, pool, fc 1024, task heads
    (ReLU everywhere, padding 1). 10 % density, the first conv dense by default.

    Initialisation as the official code: ``kaiming_normal_`` (fan-in, gain √2) weights
    and zero biases, then masked (a conv connection is a whole 3×3 kernel).

    ``class_incremental=True`` (with ``num_classes``) gives one shared output layer for
    NISPA-Replay instead of a head per task; ``shared_head=True`` (with ``num_classes``)
    the official code's single task-masked output layer for NISPA (see :class:`SparseMultiTaskNet`).
    ``head_fan_out="head"`` draws each head over its own class count instead of the
    output width (see :class:`SparseMultiTaskNet`).
    """

    def __init__(
        self,
        in_channels: int = 3,
        input_size: int = 32,
        num_classes: Optional[int] = None,
        density: float = 0.1,
        dense_first_conv: bool = True,
        *,
        channels: Sequence[int] = (64, 64, 128, 128),
        fc_size: int = 1024,
        mask_init: MaskInit = "bernoulli",
        masked_logit_value: float = CLEAN_MASKED_LOGIT,
        class_incremental: bool = False,
        shared_head: bool = False,
        head_fan_out: str = "output_width",
    ) -> None:
        if input_size % 4 != 0:
            raise ValueError(f"input_size must be divisible by 4 (two 2x2 poolings), got {input_size}")
        if len(channels) != 4:
            raise ValueError(f"channels must list 4 conv widths, got {tuple(channels)}")
        check_density(density)
        c1, c2, c3, c4 = (int(c) for c in channels)
        convs = [
            MaskedConv2d(in_channels, c1, 3, padding=1),
            MaskedConv2d(c1, c2, 3, padding=1),
            MaskedConv2d(c2, c3, 3, padding=1),
            MaskedConv2d(c3, c4, 3, padding=1),
        ]
        side = input_size // 4
        fc = MaskedLinear(c4 * side * side, int(fc_size))
        for i, layer in enumerate(convs + [fc]):
            with torch.no_grad():
                nn.init.kaiming_normal_(layer.weight)
                layer.bias.zero_()
            if i == 0 and dense_first_conv:
                layer.refresh_()
            else:
                sparsify_(layer, density, method=mask_init)
        body = nn.Sequential(
            convs[0], nn.ReLU(), convs[1], nn.ReLU(), nn.MaxPool2d(2),
            convs[2], nn.ReLU(), convs[3], nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), fc, nn.ReLU(),
        )
        super().__init__(
            body, int(fc_size), density=density, mask_init=mask_init,
            num_classes=num_classes, head_bias_init="zero", head_weight_init="fan_in_then_fan_out",
            masked_logit_value=masked_logit_value, class_incremental=class_incremental,
            shared_head=shared_head, head_fan_out=head_fan_out,  # type: ignore[arg-type]
        )
        self.in_channels = int(in_channels)
        self.input_size = int(input_size)
