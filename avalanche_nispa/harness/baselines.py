"""Avalanche baselines, repaired where avalanche-lib 0.6.0 gets them wrong.

The comparison harness (``benchmarks/``) runs NISPA against Avalanche's own
strategies. Two of them do not work as published in avalanche-lib 0.6.0, and a
comparison against a silently broken baseline would flatter NISPA. The fixes
are kept here, small and marked, so that anyone can run the same baselines:

* **Synaptic Intelligence on CPU** (:class:`FixedSynapticIntelligencePlugin`).
  ``SynapticIntelligencePlugin.extract_weights`` stores
  ``param.detach().cpu().flatten()``. On a CPU tensor ``.cpu()`` is a no-op, so
  the stored "snapshot" is a *view of the live weights*. The snapshot taken
  before an optimizer step therefore moves with the step: the path integral
  ``grad * (new - old)`` is always 0, the importances are 0, the anchor of the
  penalty is the current weight, and SI silently becomes Naive. On CUDA
  ``.cpu()`` copies and the bug does not show.
* **PackNet** (:class:`FixedPackNet`, :class:`FixedPackNetPlugin`,
  :class:`TaskMaskedPackNetModel`). ``avalanche.training.PackNet`` passes
  ``plugins=[plugins, PackNetPlugin(...)]``, nesting the caller's list, so user
  plugins are never called; ``WeightAndBiasPackNetModule.has_bias`` tests the
  weight instead of the bias, so a ``bias=False`` layer crashes when it is
  frozen; ``PackNetPlugin`` re-creates the optimizer with
  ``cls(params, **optimizer.defaults)``, which ``torch.optim.AdamW`` rejects
  (its defaults hold ``decoupled_weight_decay``, not an ``__init__`` argument).
  Avalanche's PackNet also has a single output layer over all classes; for a
  task-incremental comparison :class:`TaskMaskedPackNetModel` restricts each
  task's logits to that task's classes, as the multi-head baselines do.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence
from typing import Any, Optional, Union

import torch
from torch import Tensor, nn
from torch.nn import CrossEntropyLoss
from torch.optim import Optimizer

from avalanche.models.packnet import (
    PackNetModel,
    PackNetModule,
    PackNetPlugin,
    WeightAndBiasPackNetModule,
)
from avalanche.training.plugins import SynapticIntelligencePlugin
from avalanche.training.plugins.evaluation import default_evaluator
from avalanche.training.templates import SupervisedTemplate

__all__ = [
    "FixedPackNet",
    "FixedPackNetPlugin",
    "FixedSynapticIntelligencePlugin",
    "TaskMaskedPackNetModel",
    "equal_share_prune_proportions",
    "fix_packnet_bias_flags",
    "rebuild_optimizer",
]


class FixedSynapticIntelligencePlugin(SynapticIntelligencePlugin):
    """Synaptic Intelligence (Zenke et al., 2017) that also works on CPU.

    FIX for avalanche-lib 0.6.0 (``training/plugins/synaptic_intelligence.py``,
    ``SynapticIntelligencePlugin.extract_weights``): the parent stores
    ``param.detach().cpu().flatten()``, a view of the live CPU weights, as the
    weights at the start of the experience (``ewc_data[0]``) and before every
    step (``syn_data["old_theta"]``). Both then follow the weights, so the path
    integral and the importances stay 0 and the penalty anchor is the current
    weight. This subclass gives both snapshots their own storage right after
    the parent takes them. The other snapshots the parent takes are used at
    once, before the weights change, and need no copy. On CUDA the parent's
    ``.cpu()`` already copies, so the fix changes nothing there.

    Arguments are those of :class:`SynapticIntelligencePlugin`.
    """

    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        super().before_training_exp(strategy, **kwargs)
        _own_storage(self.ewc_data[0])

    def before_training_iteration(self, strategy: Any, **kwargs: Any) -> None:
        super().before_training_iteration(strategy, **kwargs)
        _own_storage(self.syn_data["old_theta"])


def _own_storage(snapshots: dict) -> None:
    """Replace every stored tensor by a copy, cutting any link to live weights."""
    for param_data in snapshots.values():
        param_data.data = param_data.data.clone()


def fix_packnet_bias_flags(model: nn.Module) -> nn.Module:
    """Set ``has_bias`` of every PackNet layer from its bias, not its weight.

    FIX for avalanche-lib 0.6.0 (``models/packnet.py``,
    ``WeightAndBiasPackNetModule.__init__``): ``has_bias`` checks
    ``isinstance(wrappee.weight, nn.Parameter)``, so it is always True and
    freezing a ``bias=False`` layer fails on ``None.requires_grad``.

    Returns:
        ``model``, changed in place.
    """
    for module in model.modules():
        if isinstance(module, WeightAndBiasPackNetModule):
            module.has_bias = isinstance(getattr(module.wrappee, "bias", None), nn.Parameter)
    return model


def rebuild_optimizer(optimizer: Optimizer, params: Iterable[Tensor]) -> Optimizer:
    """A fresh optimizer of the same class and settings over ``params``.

    Only the settings the class's ``__init__`` accepts are passed on: AdamW's
    ``defaults`` include ``decoupled_weight_decay``, which it fixes itself and
    does not take as an argument.
    """
    cls = type(optimizer)
    accepted = inspect.signature(cls.__init__).parameters
    settings = {k: v for k, v in optimizer.defaults.items() if k in accepted}
    return cls(params, **settings)


class FixedPackNetPlugin(PackNetPlugin):
    """:class:`PackNetPlugin` whose per-experience optimizer reset works for AdamW.

    FIX for avalanche-lib 0.6.0 (``models/packnet.py``,
    ``PackNetPlugin.before_training_exp``): the parent calls
    ``optimizer.__class__(params, **optimizer.defaults)``, a TypeError for
    ``torch.optim.AdamW``; this uses :func:`rebuild_optimizer`.
    """

    def before_training_exp(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        strategy.optimizer = rebuild_optimizer(strategy.optimizer, strategy.model.parameters())


def equal_share_prune_proportions(n_experiences: int) -> list[float]:
    """Prune proportions that leave every experience the same share of weights.

    Experience ``t`` keeps ``1 / (n_experiences - t)`` of the weights still
    free, so each of the ``n`` experiences owns about ``1/n`` of every layer and
    the last one keeps all that is left (proportion 0).
    """
    if n_experiences < 1:
        raise ValueError(f"n_experiences must be at least 1, got {n_experiences}")
    return [1.0 - 1.0 / (n_experiences - t) for t in range(n_experiences)]


class TaskMaskedPackNetModel(PackNetModel):
    """A :class:`PackNetModel` whose logits are restricted to the task's classes.

    Avalanche's PackNet keeps one output layer over all classes of the stream.
    In a task-incremental comparison the other baselines predict with one head
    per task, i.e. only among the classes of the given task; this wrapper does
    the same for PackNet by setting every other logit to ``mask_value`` during
    training and evaluation. The classes of each task label are read from
    ``experience.classes_in_this_experience`` when the model is adapted (at
    the start of every training and evaluation experience); a task whose
    classes are unknown is not masked.

    Args:
        wrappee: the network to wrap; see :meth:`PackNetModel.wrap`.
        mask_value: the logit given to classes outside the task (Avalanche's
            multi-head classifier uses -1000).
    """

    def __init__(self, wrappee: nn.Module, mask_value: float = -1000.0) -> None:
        super().__init__(wrappee)
        fix_packnet_bias_flags(self)
        self.mask_value = mask_value
        self.task_classes: dict[int, list[int]] = {}

    def adaptation(self, experience: Any) -> None:
        super().adaptation(experience)
        classes = getattr(experience, "classes_in_this_experience", None)
        if classes is None:
            return
        for task in getattr(experience, "task_labels", ()):
            known = set(self.task_classes.get(int(task), ()))
            self.task_classes[int(task)] = sorted(known | {int(c) for c in classes})

    def forward(self, input: Tensor, task_id: Tensor) -> Tensor:
        out = super().forward(input, task_id)
        classes = self.task_classes.get(int(task_id[0]))
        if not classes:
            return out
        keep = torch.zeros(out.shape[-1], dtype=torch.bool, device=out.device)
        keep[classes] = True
        return out.masked_fill(~keep, self.mask_value)


class FixedPackNet(SupervisedTemplate):
    """PackNet (Mallya & Lazebnik, 2018) that calls the caller's plugins.

    FIX for avalanche-lib 0.6.0 (``training/supervised/strategy_wrappers.py``,
    ``PackNet.__init__``): the parent builds ``plugins=[plugins, PackNetPlugin]``,
    so the caller's plugin list sits inside the list and none of its plugins is
    ever called. Here the caller's plugins come first, then a
    :class:`FixedPackNetPlugin`; the caller's list is not modified. The PackNet
    layers' bias flags are repaired with :func:`fix_packnet_bias_flags`.

    Args:
        model: a :class:`PackNetModule`, e.g. a :class:`TaskMaskedPackNetModel`.
        optimizer: the optimizer; it is re-created at every experience.
        post_prune_epochs: epochs of fine-tuning after pruning, fewer than
            ``train_epochs``.
        prune_proportion: fraction of the free weights pruned after each
            experience: a float, one value per experience, or a callable of the
            experience index.
        Other arguments: those of :class:`SupervisedTemplate`.
    """

    def __init__(
        self,
        *,
        model: PackNetModule,
        optimizer: Optimizer,
        post_prune_epochs: int,
        prune_proportion: Union[float, Sequence[float], Any],
        criterion: nn.Module = CrossEntropyLoss(),
        train_mb_size: int = 1,
        train_epochs: int = 1,
        eval_mb_size: Optional[int] = None,
        device: Union[str, torch.device] = "cpu",
        plugins: Optional[Sequence[Any]] = None,
        evaluator: Any = default_evaluator,
        eval_every: int = -1,
        **base_kwargs: Any,
    ) -> None:
        if not isinstance(model, PackNetModule):
            raise ValueError(
                f"PackNet needs a PackNetModule, got {type(model).__name__}; "
                "wrap the network in TaskMaskedPackNetModel(...) or PackNetModel(...)"
            )
        fix_packnet_bias_flags(model)
        if isinstance(prune_proportion, Sequence):
            prune_proportion = list(prune_proportion)
        packnet = FixedPackNetPlugin(post_prune_epochs, prune_proportion)
        super().__init__(
            model=model,
            optimizer=optimizer,
            criterion=criterion,
            train_mb_size=train_mb_size,
            train_epochs=train_epochs,
            eval_mb_size=eval_mb_size,
            device=device,
            plugins=[*(plugins or ()), packnet],
            evaluator=evaluator,
            eval_every=eval_every,
            **base_kwargs,
        )
