"""Dense gradients of the masked layers' weights, for gradient-based growth rules.

A masked layer keeps its absent weights at an exact zero inside a dense parameter, so
autograd gives the gradient of every position, absent ones included (the "dense
gradient" RigL grows by), before :class:`~avalanche_nispa.plugins.MaskingPlugin`
zeroes it. Rather than reading it during training (a per-step cost, and the gradient
of an epoch the phase may not keep), it is measured when growth needs it: on the
first ``batches`` minibatches of the experience's training split, in order, with the
network as it is when rewiring starts (the phase's kept epoch, before the drop, as
RigL measures before its own drop), in evaluation mode (no dropout) and with every random generator preserved, so the
measurement draws nothing a seeded run would otherwise draw. Nothing is kept between
calls, so checkpoints need no state for it.
"""
from __future__ import annotations

from typing import Any, Iterator, List, Tuple

import torch
from torch import Tensor

from .._avalanche import criterion_of
from ..algorithm.links import LayerLink
from ..data_cache import ordered_batches
from ..rng import preserved_rng
from ._common import current_task_label

__all__ = ["dense_gradients", "labelled_batches", "check_dense_gradients"]


def check_dense_gradients(model: torch.nn.Module, rule: str) -> None:
    """Refuse, before training, a model whose masked layers cannot give the dense
    gradients a gradient rule needs (a weight that does not require grad)."""
    from ..sparse import is_masked_layer

    layers = [(name, m) for name, m in model.named_modules() if is_masked_layer(m)]
    missing = [name for name, layer in layers if not layer.weight.requires_grad]
    if missing:
        raise ValueError(
            f"growth rule {rule!r} grows by the dense gradient of each masked layer's weight, "
            f"but the weights of {', '.join(missing)} do not require gradients: set "
            "requires_grad=True on them or choose a rule without gradients "
            "(growth_rule='random' or 'ch3l3')")


def labelled_batches(strategy: Any, batch_size: int, limit: int) -> Iterator[Tuple[Tensor, Tensor]]:
    """The first ``limit`` (inputs, targets) minibatches of the experience's training
    split, in order, on the strategy's device (NISPA's cached tensors when it holds
    them, else its adapted dataset: the same samples in the same order)."""
    cached = getattr(strategy, "training_tensors", None)
    if cached is not None:
        inputs, targets = cached[0], cached[1]
        stop = min(inputs.shape[0], limit * batch_size)
        for start in range(0, stop, batch_size):
            yield inputs[start:start + batch_size], targets[start:start + batch_size]
        return
    for index, batch in enumerate(ordered_batches(strategy.adapted_dataset, batch_size)):
        if index >= limit:
            return
        yield (batch[0].to(strategy.device, non_blocking=True),
               batch[1].to(strategy.device, non_blocking=True))


def dense_gradients(strategy: Any, links: List[LayerLink], batches: int) -> List[Tensor]:
    """Per link, the gradient of the strategy's loss summed over the first
    ``batches`` training minibatches with respect to the link's whole weight."""
    model = strategy.model
    criterion = criterion_of(strategy)
    task = current_task_label(strategy)
    weights = [link.layer.weight for link in links]
    totals = [torch.zeros_like(w) for w in weights]
    batch_size = int(strategy.train_mb_size)
    was_training = model.training
    with preserved_rng(), torch.enable_grad():
        model.eval()
        try:
            for inputs, targets in labelled_batches(strategy, batch_size, batches):
                loss = criterion(model(inputs, task if task is not None else 0), targets)
                grads = torch.autograd.grad(loss, weights, allow_unused=True)
                for total, grad in zip(totals, grads):
                    if grad is not None:
                        total.add_(grad)
        finally:
            model.train(was_training)
    return totals
