"""Masked ``Linear`` and ``Conv2d`` layers: the sparse building blocks of NISPA.

A *connection* is one entry of a layer's connection mask: for ``Linear`` a single
weight ``(out, in)``; for ``Conv2d`` the whole kernel between an input and an output
channel ``(out, in)`` (all ``kh x kw`` weights together), as in the official code.

Following ``torch.nn.utils.prune``, the masks are buffers beside the parameters.
Unlike ``prune``, the weight stays a plain parameter and masked entries are kept
*exactly zero in the parameter itself*: the forward pass is the dense layer's, with no
per-step multiplication, and optimizers see ordinary tensors. Whoever changes the
weights outside autograd (the optimizer) must call :meth:`enforce_masks_` afterwards;
:class:`~avalanche_nispa.plugins.MaskingPlugin` does so after every update.

Buffers (all in ``state_dict``):

- ``connection_mask`` (bool, ``out x in``): live connections.
- ``frozen_connections`` (bool, ``out x in``): connections whose weights never change
  again (a subset of ``connection_mask``).
- ``frozen_bias`` (bool, ``out``): biases that never change again.
- ``unit_state`` (int8, ``out``): ``PLASTIC``, ``CANDIDATE`` or ``STABLE`` per unit.

Derived caches (not in ``state_dict``, rebuilt by :meth:`refresh_`): the boolean
mask of untrainable (absent or frozen) weights and the values of frozen weights and
biases, which are written back after every update so frozen entries stay bit-identical whatever the
optimizer does (momentum, Adam moments, weight decay).
"""
from __future__ import annotations

from typing import List, Optional

import torch
from torch import Tensor, nn

__all__ = [
    "PLASTIC",
    "CANDIDATE",
    "STABLE",
    "MaskedLayer",
    "MaskedLinear",
    "MaskedConv2d",
    "is_masked_layer",
]

PLASTIC = 0
CANDIDATE = 1
STABLE = 2


class MaskedLayer:
    """Mixin with the mask bookkeeping shared by :class:`MaskedLinear` and
    :class:`MaskedConv2d`. Subclasses are ``nn.Module`` s with ``weight`` and
    (optionally) ``bias`` parameters whose first two weight dimensions are
    ``(out_units, in_units)``."""

    weight: nn.Parameter
    bias: Optional[nn.Parameter]
    connection_mask: Tensor
    frozen_connections: Tensor
    frozen_bias: Tensor
    unit_state: Tensor

    def _init_masks(self) -> None:
        out_units, in_units = self.weight.shape[:2]
        device = self.weight.device
        self.register_buffer(
            "connection_mask", torch.ones(out_units, in_units, dtype=torch.bool, device=device)
        )
        self.register_buffer(
            "frozen_connections",
            torch.zeros(out_units, in_units, dtype=torch.bool, device=device),
        )
        self.register_buffer(
            "frozen_bias", torch.zeros(out_units, dtype=torch.bool, device=device)
        )
        self.register_buffer(
            "unit_state", torch.full((out_units,), PLASTIC, dtype=torch.int8, device=device)
        )
        #: sizes of the blocks of output / input units the layer was grown by
        #: (:mod:`avalanche_nispa.sparse.growth`); one block each until it grows
        self.row_blocks: List[int] = [int(out_units)]
        self.col_blocks: List[int] = [int(in_units)]
        self.register_buffer("_untrainable", None, persistent=False)
        self._frozen_weight_values: Optional[Tensor] = None
        self._frozen_bias_values: Optional[Tensor] = None
        self._frozen_bias_mask: Optional[Tensor] = None
        self.refresh_()

    # ------------------------------------------------------------------ shapes
    @property
    def out_units(self) -> int:
        return int(self.weight.shape[0])

    @property
    def in_units(self) -> int:
        return int(self.weight.shape[1])

    @property
    def connection_size(self) -> int:
        """Number of weights in one connection (``kh*kw`` for a conv, 1 for linear)."""
        return int(self.weight[0, 0].numel())

    def expand(self, connection_tensor: Tensor) -> Tensor:
        """Broadcast an ``(out, in)`` tensor to the weight's shape."""
        extra = self.weight.dim() - 2
        return connection_tensor.reshape(*connection_tensor.shape, *([1] * extra)).expand_as(
            self.weight
        )

    # ------------------------------------------------------------ invariants
    @torch.no_grad()
    def refresh_(self) -> None:
        """Rebuild the caches from the masks and the current weights, and zero the
        weights of absent connections. Call after any change of the masks; the values
        of frozen entries are taken from the current weights."""
        weight = self.weight
        frozen = self.frozen_connections & self.connection_mask
        self.frozen_connections.copy_(frozen)
        trainable = self.connection_mask & ~frozen
        self._untrainable = self.expand(~trainable).contiguous()
        if bool(frozen.any()):
            self._frozen_weight_values = torch.where(self.expand(frozen), weight.detach(), 0.0)
        else:
            self._frozen_weight_values = None
        if self.bias is not None and bool(self.frozen_bias.any()):
            self._frozen_bias_values = torch.where(self.frozen_bias, self.bias.detach(), 0.0)
            self._frozen_bias_mask = self.frozen_bias.clone()
        else:
            self._frozen_bias_mask = None
            self._frozen_bias_values = None
        self.enforce_masks_()

    @torch.no_grad()
    def enforce_masks_(self) -> None:
        """Zero absent weights and write frozen weights and biases back, in place.

        Bit-exact: a trainable live weight is kept, a frozen one is overwritten by
        ``0 + v == v`` and an absent one becomes 0, even when the optimizer wrote NaN or
        inf there (a multiplication by 0 would keep a NaN, and a NaN at an absent
        position of a stable unit's row would reach an old task's output).
        """
        self.weight.masked_fill_(self._untrainable, 0.0)
        if self._frozen_weight_values is not None:
            self.weight.add_(self._frozen_weight_values)
        if self._frozen_bias_values is not None:
            self.bias.masked_fill_(self._frozen_bias_mask, 0.0).add_(self._frozen_bias_values)

    @torch.no_grad()
    def mask_gradients_(self) -> None:
        """Zero the gradients of absent and frozen entries, so optimizer states
        (momentum, Adam moments) never accumulate there."""
        if self.weight.grad is not None:
            self.weight.grad.masked_fill_(self._untrainable, 0.0)
        if (
            self.bias is not None
            and self.bias.grad is not None
            and self._frozen_bias_mask is not None
        ):
            self.bias.grad.masked_fill_(self._frozen_bias_mask, 0.0)

    # ------------------------------------------------------------ mutations
    @torch.no_grad()
    def set_connection_mask_(self, mask: Tensor) -> None:
        """Replace the live connections. Frozen connections must stay live."""
        mask = mask.to(device=self.connection_mask.device, dtype=torch.bool)
        if bool((self.frozen_connections & ~mask).any()):
            raise ValueError("a new connection mask may not remove frozen connections")
        self.connection_mask.copy_(mask)
        self.refresh_()

    @torch.no_grad()
    def freeze_(self, connections: Tensor, bias: Tensor) -> None:
        """Freeze more connections and biases (union with the ones already frozen);
        their current values are kept from now on."""
        self.frozen_connections |= connections.to(self.frozen_connections.device) & self.connection_mask
        self.frozen_bias |= bias.to(self.frozen_bias.device)
        self.refresh_()

    def _load_from_state_dict(self, *args, **kwargs):  # noqa: D401 - torch hook
        super()._load_from_state_dict(*args, **kwargs)  # type: ignore[misc]
        self.refresh_()

    def _apply(self, fn, *args, **kwargs):
        result = super()._apply(fn, *args, **kwargs)  # type: ignore[misc]
        if hasattr(self, "connection_mask"):
            self.refresh_()
        return result

    @torch.no_grad()
    def copy_parameters_from_(self, layer: nn.Module) -> None:
        """Take a dense layer's weight and bias (all connections stay live)."""
        self.weight.copy_(layer.weight)
        if layer.bias is not None:
            self.bias.copy_(layer.bias)
        self.refresh_()

    # ---------------------------------------------------------------- forward
    def grown(self) -> bool:
        return len(self.row_blocks) > 1 or len(self.col_blocks) > 1

    def _block_forward(self, x: Tensor, weight: Tensor, bias: Optional[Tensor]) -> Tensor:
        raise NotImplementedError

    def _blocked_forward(self, x: Tensor, unit_dim: int) -> Tensor:
        """The output of a grown layer, block by block: each block of output units sums
        its input blocks' terms in order, each computed at the shape it had when both
        blocks existed (the bias with the first). A block of units added later is a
        term of exact zeros for the units it does not feed (stable ones), so their
        outputs stay bit-identical to the layer's before it grew, which a single
        product over the wider input would not guarantee (its summation order depends
        on the shape)."""
        inputs = [part.contiguous() for part in x.split(self.col_blocks, dim=unit_dim)]
        biases = (self.bias.split(self.row_blocks) if self.bias is not None
                  else [None] * len(self.row_blocks))
        outputs = []
        for rows, bias in zip(self.weight.split(self.row_blocks, dim=0), biases):
            parts = rows.split(self.col_blocks, dim=1)
            out = self._block_forward(inputs[0], parts[0].contiguous(), bias)
            for part, weights in zip(inputs[1:], parts[1:]):
                out = out + self._block_forward(part, weights.contiguous(), None)
            outputs.append(out)
        return torch.cat(outputs, dim=unit_dim)

    # ------------------------------------------------------------- counters
    def live_connections(self) -> int:
        return int(self.connection_mask.sum())

    def density(self) -> float:
        return self.live_connections() / self.connection_mask.numel()

    def extra_repr(self) -> str:  # pragma: no cover - cosmetic
        return super().extra_repr() + f", density={self.density():.3f}"  # type: ignore[misc]


class MaskedLinear(MaskedLayer, nn.Linear):
    """``nn.Linear`` with a per-weight connection mask (one connection = one weight)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, **kwargs) -> None:
        nn.Linear.__init__(self, in_features, out_features, bias=bias, **kwargs)
        self._init_masks()

    def forward(self, x: Tensor) -> Tensor:
        if not self.grown():
            return super().forward(x)
        return self._blocked_forward(x, unit_dim=-1)

    def _block_forward(self, x: Tensor, weight: Tensor, bias: Optional[Tensor]) -> Tensor:
        return nn.functional.linear(x, weight, bias)

    @classmethod
    def from_dense(cls, layer: nn.Linear) -> "MaskedLinear":
        new = cls(layer.in_features, layer.out_features, bias=layer.bias is not None,
                  device=layer.weight.device, dtype=layer.weight.dtype)
        new.copy_parameters_from_(layer)
        return new


class MaskedConv2d(MaskedLayer, nn.Conv2d):
    """``nn.Conv2d`` whose connections are whole kernels between an input and an
    output channel (unit = output channel)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, **kwargs) -> None:
        nn.Conv2d.__init__(self, in_channels, out_channels, kernel_size, **kwargs)
        if self.groups != 1:
            raise ValueError(
                f"MaskedConv2d supports groups=1 only, got groups={self.groups}; "
                "use an ordinary Conv2d for grouped or depthwise convolutions"
            )
        self._init_masks()

    def forward(self, x: Tensor) -> Tensor:
        if not self.grown():
            return super().forward(x)
        return self._blocked_forward(x, unit_dim=-3)

    def _block_forward(self, x: Tensor, weight: Tensor, bias: Optional[Tensor]) -> Tensor:
        return self._conv_forward(x, weight, bias)

    @classmethod
    def from_dense(cls, layer: nn.Conv2d) -> "MaskedConv2d":
        if layer.padding_mode != "zeros":
            raise ValueError(
                f"MaskedConv2d supports padding_mode='zeros' only, got {layer.padding_mode!r}"
            )
        new = cls(
            layer.in_channels, layer.out_channels, layer.kernel_size, stride=layer.stride,
            padding=layer.padding, dilation=layer.dilation, groups=layer.groups,
            bias=layer.bias is not None, device=layer.weight.device, dtype=layer.weight.dtype,
        )
        new.copy_parameters_from_(layer)
        return new


def is_masked_layer(module: nn.Module) -> bool:
    return isinstance(module, MaskedLayer)

