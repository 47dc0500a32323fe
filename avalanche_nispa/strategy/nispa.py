"""The NISPA strategy: Avalanche's ``SupervisedTemplate`` with NISPA's phase loop.

Everything per step (masking, freezing) and per phase (selection, rewiring) lives in
plugins; the strategy holds the configuration, replaces the fixed epoch loop of an
experience by the phase loop (:mod:`.phase_loop`), carves a validation split from the
experience (:mod:`.validation`) and checks its input before any training step.
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Dict, List, Optional, Sequence, Union

import torch
from torch import Tensor
from torch.nn import CrossEntropyLoss, Module
from torch.optim import Optimizer

from avalanche.training.plugins.evaluation import default_evaluator

from .._avalanche import PhaseLoopTemplate
from ..config import NISPAConfig, config_from_kwargs
from ..data_cache import TensorBatches, materialize
from ..experiences import experience_name
from ..models.network import CLEAN_MASKED_LOGIT
from ..optim import add_new_heads_to_optimizer
from ..algorithm.growth import get_growth_rule
from ..plugins import (
    MaskingPlugin,
    NeurogenesisPlugin,
    RewiringPlugin,
    SelectiveUnfreezingPlugin,
    StableSelectionPlugin,
    UnitStateReporter,
)
from ..plugins._common import describe_learning_rate
from ..plugins.base import NISPAPlugin
from ..plugins.gradients import check_dense_gradients
from ..plugins.lr_phase import RestartLRSchedulePerPhase
from ..plugins.timing import PartTimer
from ..rng import preserved_rng
from .checks import check_experience, check_model, check_stream, stream_class_count
from .phase_loop import train_in_phases
from .validation import ValidationSet, split_validation

__all__ = ["NISPA", "signature_with_config"]


def signature_with_config(init, config_class: type) -> inspect.Signature:
    """``init``'s signature with every field of ``config_class`` as a keyword-only
    parameter: Avalanche checks keyword names against the signatures of the classes'
    ``__init__``, and NISPA's hyperparameters are the configuration's fields (shown
    with their defaults, which apply when no config is given)."""
    parameters = [p for p in inspect.signature(init).parameters.values()
                  if p.kind is not inspect.Parameter.VAR_KEYWORD]
    taken = {p.name for p in parameters}
    parameters += [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default)
                   for f in dataclasses.fields(config_class) if f.name not in taken]
    parameters.append(inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD))
    return inspect.signature(init).replace(parameters=parameters)


class NISPA(PhaseLoopTemplate):
    """Neuro-Inspired Stability-Plasticity Adaptation (Gurbuz & Dovrolis, ICML 2022).

    A sparse network learns a stream of tasks; after each phase of ``phase_epochs``
    epochs the most active units (a fraction τ of each layer's activation) become
    candidates, connections from plastic units into them are dropped and as many are
    regrown into plastic units. A task stops when validation accuracy falls more than
    ``accuracy_drop_threshold`` points below its best (after phase 2) or τ reaches
    ``min_tau``; the previous phase's model is kept, its candidates become stable and
    their incoming connections are frozen for good, so old tasks are never forgotten.

    The model must be a :class:`~avalanche_nispa.models.SparseMultiTaskNet`
    (``NISPAMLP``, ``NISPACNN`` or ``to_nispa(your_model)``) and the benchmark must carry
    task labels (task-incremental learning).

    :param config: the hyperparameters, a :class:`~avalanche_nispa.NISPAConfig`
        (default: the paper's). Each of its fields may also be given as a keyword
        argument (``NISPA(..., phase_epochs=2)``), which overrides ``config``.

    Other arguments are those of ``SupervisedTemplate``; ``train_epochs`` is not one
    (phases decide the epochs). ``phase_history`` lists, per trained experience, the
    phases, the kept phase, the final τ, the stop reason and the validation accuracies;
    ``timings`` the seconds spent per part (``training``, ``validation``,
    ``snapshots``, ``phase_end``, ``experience_end``). Plugins may implement the phase
    hooks of :class:`~avalanche_nispa.plugins.NISPAPlugin`.
    """

    PLUGIN_CLASS = NISPAPlugin
    CONFIG_CLASS = NISPAConfig
    CLASS_INCREMENTAL = False

    def __init__(
        self,
        *,
        model: Module,
        optimizer: Optimizer,
        config: Optional[NISPAConfig] = None,
        criterion=None,
        train_mb_size: int = 1,
        eval_mb_size: Optional[int] = None,
        device="cpu",
        plugins: Optional[Sequence[Any]] = None,
        evaluator=default_evaluator,
        eval_every: int = -1,
        **kwargs,
    ) -> None:
        if "train_epochs" in kwargs:
            raise TypeError(
                "NISPA takes no train_epochs: each experience trains in phases of "
                "phase_epochs epochs until its stop rule fires (cap them with max_phases)"
            )
        self.config: NISPAConfig = config_from_kwargs(config, kwargs, self.CONFIG_CLASS)
        check_model(model, train_mb_size, class_incremental=self.CLASS_INCREMENTAL)
        growth_rule = self.config.resolved_growth_rule
        if "gradient" in get_growth_rule(growth_rule).needs:
            check_dense_gradients(model, growth_rule)
        model.masked_logit_value.fill_(0.0 if self.config.original else CLEAN_MASKED_LOGIT)
        if (self.config.original and self.config.reinit_after_experience
                and model.head_bias_init == "default"):
            # the official MLP's later output rows start at the zero the re-init leaves
            model.head_bias_init = "default_then_zero"
        self.selection_plugin = StableSelectionPlugin(
            demote_dead_candidates=self.config.resolved_demote_dead_candidates,
            batch_size=eval_mb_size,
            freeze_output_layer=self.config.freeze_output_layer,
        )
        self.rewiring_plugin = RewiringPlugin(
            self.config.rewire_algo, self.config.growth_init,
            original_flatten_bug=self.config.original,
            growth_rule=growth_rule,
            gradient_batches=self.config.growth_gradient_batches,
        )
        self.masking_plugin = MaskingPlugin(self.config.reinit_after_experience)
        self.unfreezing_plugin: Optional[SelectiveUnfreezingPlugin] = None
        if self.config.unfreezing:
            self.unfreezing_plugin = SelectiveUnfreezingPlugin(
                self.config.unfreeze_below, self.config.unfreeze_bound,
                self.config.unfreeze_importance, outgoing=self.config.unfreeze_outgoing,
                batch_size=eval_mb_size)
        self.neurogenesis_plugin: Optional[NeurogenesisPlugin] = None
        if self.config.neurogenesis:
            self.neurogenesis_plugin = NeurogenesisPlugin(self.config.neurogenesis_below,
                                                          self.config.neurogenesis_bound)
        self.timer = PartTimer()
        self.timings: Dict[str, float] = self.timer.timings
        opening, closing = self.timer.marks("experience_end")
        # growth first: every other plugin then sees the layers' new shapes
        nispa_plugins = [] if self.neurogenesis_plugin is None else [self.neurogenesis_plugin]
        nispa_plugins += [opening, self.selection_plugin, self.rewiring_plugin,
                          self.masking_plugin]
        if self.unfreezing_plugin is not None:
            nispa_plugins.append(self.unfreezing_plugin)
        nispa_plugins += [UnitStateReporter(), closing]
        if self.config.lr_schedule == "phase":
            nispa_plugins.append(RestartLRSchedulePerPhase())
        self.phase_history: List[Dict[str, Any]] = []
        self.experiences_started = 0
        """Training experiences begun; equal to ``clock.train_exp_counter`` exactly
        between experiences (the only moments a checkpoint may be taken)."""
        self.phase_controller = None
        self.validation_dataset = None
        self._validation: Optional[ValidationSet] = None
        self._cached_train: Optional[List[Tensor]] = None
        self._epoch_losses: List[Tensor] = []
        super().__init__(
            model=model,
            optimizer=optimizer,
            criterion=CrossEntropyLoss() if criterion is None else criterion,
            train_mb_size=train_mb_size,
            train_epochs=self.config.phase_epochs,
            eval_mb_size=eval_mb_size if eval_mb_size is not None else train_mb_size,
            device=device,
            plugins=nispa_plugins + list(plugins or []),
            evaluator=evaluator,
            eval_every=eval_every,
            **kwargs,
        )

    __init__.__signature__ = signature_with_config(__init__, NISPAConfig)  # type: ignore[attr-defined]

    # ------------------------------------------------------------ input checks
    def train(self, experiences, eval_streams=None, **kwargs):
        """Check every experience first, so bad input fails before any training."""
        listed = list(experiences) if not hasattr(experiences, "dataset") else [experiences]
        seen: Dict[int, set] = self.model.trained_classes()
        if listed:
            check_stream(listed[0], class_incremental=self.CLASS_INCREMENTAL)
            if self.config.original and self.model.num_classes is None:
                # the official output layer has a unit per class of the whole stream, so
                # its ×0-masked softmax never depends on how often the stream is evaluated
                self.model.num_classes = stream_class_count(listed[0])
        for experience in listed:
            check_experience(self, experience, seen)
        return super().train(listed if len(listed) != 1 else listed[0], eval_streams, **kwargs)

    def eval(self, exp_list, **kwargs):
        """Evaluate; an evaluation *during* training (``eval_every``) leaves every random
        stream as it found it, so how often a run is evaluated never changes what it
        trains (PyTorch's data loaders draw a seed from the global generator)."""
        if not self.is_training:
            return super().eval(exp_list, **kwargs)
        with preserved_rng():
            return super().eval(exp_list, **kwargs)

    # ------------------------------------------------------------------ data
    def train_dataset_adaptation(self, **kwargs):
        """Split the experience's training data into a training and a seeded
        validation part."""
        super().train_dataset_adaptation(**kwargs)
        self.adapted_dataset, self.validation_dataset = split_validation(
            self.adapted_dataset, self.config.validation_fraction, self.config.validation_seed)
        self._cached_train = (
            [t.to(self.device) for t in materialize(self.adapted_dataset)]
            if self.config.cache_data else None
        )

    def make_train_dataloader(self, num_workers=0, shuffle=True, pin_memory=None,
                              persistent_workers=False, drop_last=False, **kwargs):
        if self._cached_train is None:
            return super().make_train_dataloader(
                num_workers=num_workers, shuffle=shuffle, pin_memory=pin_memory,
                persistent_workers=persistent_workers, drop_last=drop_last, **kwargs)
        self.dataloader = TensorBatches(self._cached_train, self.train_mb_size, shuffle=shuffle)

    @property
    def training_tensors(self) -> Optional[List[Tensor]]:
        """The training split as tensors on the device (inputs, targets, task labels)
        while an experience trains with ``cache_data``; else ``None``."""
        return self._cached_train

    @property
    def selection_inputs(self) -> Union[Tensor, Any]:
        """What the selection's activation pass reads: the training split's cached
        inputs (already on the device) with ``cache_data``, else the adapted dataset."""
        if self._cached_train is not None:
            return self._cached_train[0]
        return self.adapted_dataset

    def validate(self, record_activations: bool = False):
        """Top-1 accuracy (%) of the current task on the validation split, with the
        task's logits only; optionally the mean hidden activations measured on the way."""
        return self._validation.evaluate(self.model, int(self.experience.task_labels[0]),
                                         record_activations, experience_name(self.experience))

    # ------------------------------------------------------------- the loop
    def make_optimizer(self, **kwargs):
        """Avalanche's, after placing new heads in the group of the layer feeding them
        (its own guess fails when the user's parameter groups split the body)."""
        add_new_heads_to_optimizer(self.optimizer, self.model)
        super().make_optimizer(**kwargs)

    @property
    def between_experiences(self) -> bool:
        """No training experience is under way (Avalanche's clock counts an experience
        as done at the very end of its ``after_training_exp``)."""
        return self.experiences_started == int(self.clock.train_exp_counter)

    def train_experience(self, experience, **kwargs) -> None:
        self.experiences_started += 1
        self._validation = ValidationSet(self.validation_dataset, self.eval_mb_size, self.device)
        try:
            self.phase_history.append(train_in_phases(self, experience, **kwargs))
        finally:
            self._validation = None
            self._cached_train = None

    def backward(self):
        # Only a reference to the loss is kept per step; whether it was finite is read
        # once per epoch (training_epoch), so that no step waits for the device.
        self._epoch_losses.append(self.loss.detach())
        super().backward()

    def training_epoch(self, **kwargs):
        """Avalanche's epoch, then one check that every step's loss was finite."""
        self._epoch_losses = []
        first_iteration = int(self.clock.train_exp_iterations)
        try:
            super().training_epoch(**kwargs)
        finally:
            losses, self._epoch_losses = self._epoch_losses, []
        if losses:
            self._raise_if_non_finite(torch.stack([loss.sum() for loss in losses]),
                                      first_iteration)

    def _raise_if_non_finite(self, losses: Tensor, first_iteration: int) -> None:
        bad = ~torch.isfinite(losses)
        if not bool(bad.any()):
            return
        step = int(bad.int().argmax())
        raise FloatingPointError(
            f"the loss became {float(losses[step])} at iteration {first_iteration + step} of "
            f"experience {getattr(self.experience, 'current_experience', '?')}; training stops. "
            "Lower the learning rate or check the inputs for NaN/inf "
            f"({describe_learning_rate(self.optimizer)})"
        )
