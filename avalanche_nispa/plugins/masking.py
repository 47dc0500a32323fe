"""Keeps a sparse network sparse and its frozen entries frozen under any optimizer."""
from __future__ import annotations

from typing import Dict, List, Optional

import torch


from ..algorithm.unfreezing import feeds_stable_units
from ..experiences import experience_name
from ..models.network import SparseMultiTaskNet
from ..sparse import MaskedLayer, is_masked_layer
from ._common import describe_learning_rate, hidden_layer_consumers
from .ordering import ExperienceEndPlugin

__all__ = ["MaskingPlugin", "reinitialise_unfrozen_"]


@torch.no_grad()
def reinitialise_unfrozen_(model: torch.nn.Module,
                           spare: Optional[Dict[int, torch.Tensor]] = None) -> None:
    """Redraw every live, non-frozen weight with ``kaiming_normal_(fan_out, relu)`` and
    zero every non-frozen bias; frozen values and the connectivity are kept (spec §2.6).

    ``spare`` maps ``id(layer)`` to a bool mask of units whose incoming weights and bias
    keep their values (every draw is still made, so the random stream is unchanged)."""
    for layer in model.modules():
        if not is_masked_layer(layer):
            continue
        rows = None if spare is None else spare.get(id(layer))
        kept = None
        if rows is not None and bool(rows.any()):
            kept = (layer.weight[rows].clone(),
                    None if layer.bias is None else layer.bias[rows].clone())
        torch.nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
        if layer.bias is not None:
            layer.bias.zero_()
        if kept is not None:
            layer.weight[rows] = kept[0]
            if kept[1] is not None:
                layer.bias[rows] = kept[1]
        layer.enforce_masks_()


def units_feeding_stable(model: torch.nn.Module) -> Optional[Dict[int, torch.Tensor]]:
    """Plastic units of a NISPA network that still feed a stable unit (only after
    selective unfreezing with ``outgoing="keep"``), by ``id(layer)``; None for other
    models."""
    if not isinstance(model, SparseMultiTaskNet):
        return None
    hidden = model.hidden_layers()
    masks = feeds_stable_units(hidden_layer_consumers(model), hidden)
    return {id(layer): mask for layer, mask in zip(hidden, masks)}


class MaskingPlugin(ExperienceEndPlugin):
    """Masking: masked weights stay exactly zero and frozen weights and biases stay
    bit-identical after every optimizer step.

    Masking only the gradient is not enough: momentum, Adam moments from earlier steps
    and (decoupled) weight decay move a weight whose gradient is zero. So the plugin
    zeroes the gradients of absent and frozen entries after ``backward`` (no optimizer
    state builds up there) *and* writes the frozen values back after every update.

    :param reinit_after_experience: at the end of each experience redraw all non-frozen
        weights and zero non-frozen biases, as the official code does, so the next task
        starts its plastic part afresh (``--reinit 1``). This runs after selection
        and rewiring whatever the order of the plugin list
        (:mod:`~avalanche_nispa.plugins.ordering`).

    It also watches for divergence: after every update one ``isfinite`` reduction per
    layer is folded into a flag on the device (no host synchronisation per step), and at
    the end of each training epoch a non-finite weight or bias raises
    ``FloatingPointError`` naming the experience and the learning rate. Frozen weights
    and old tasks' predictions are not touched by it (absent and frozen entries are
    overwritten, never multiplied, so NaN cannot stay there).

    Works with any strategy whose model contains masked layers
    (:class:`~avalanche_nispa.sparse.MaskedLinear`, :class:`~avalanche_nispa.sparse.MaskedConv2d`).
    """

    end_rank = 2

    def __init__(self, reinit_after_experience: bool = True) -> None:
        super().__init__()
        self.reinit_after_experience = reinit_after_experience
        self._layers: List[MaskedLayer] = []
        self._finite: Optional[torch.Tensor] = None

    def _collect(self, strategy) -> None:
        self._layers = [m for m in strategy.model.modules() if is_masked_layer(m)]
        if not self._layers:
            raise ValueError(
                "MaskingPlugin found no masked layer in the model; convert it with "
                "avalanche_nispa.models.to_nispa(model, density=...) or use NISPAMLP / NISPACNN"
            )

    def before_training_exp(self, strategy, **kwargs) -> None:
        super().before_training_exp(strategy, **kwargs)
        self._collect(strategy)
        for layer in self._layers:
            layer.refresh_()

    def after_backward(self, strategy, **kwargs) -> None:
        for layer in self._layers:
            layer.mask_gradients_()

    def after_update(self, strategy, **kwargs) -> None:
        finite = self._finite
        for layer in self._layers:
            layer.enforce_masks_()
            flag = torch.isfinite(layer.weight).all()
            if layer.bias is not None:
                flag = flag & torch.isfinite(layer.bias).all()
            finite = flag if finite is None else finite & flag
        self._finite = finite

    def after_training_epoch(self, strategy, **kwargs) -> None:
        finite, self._finite = self._finite, None
        if finite is not None and not bool(finite):
            raise FloatingPointError(
                f"the weights diverged in {experience_name(strategy.experience)} (a weight or "
                f"bias became NaN or inf) with {describe_learning_rate(strategy.optimizer)}; "
                "training stops. Lower the learning rate. Old tasks' frozen weights and "
                "predictions are unchanged"
            )

    def end_experience(self, strategy) -> None:
        if self.reinit_after_experience:
            reinitialise_unfrozen_(strategy.model, units_feeding_stable(strategy.model))
