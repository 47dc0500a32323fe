"""The NISPA strategy: Avalanche's ``SupervisedTemplate`` with NISPA's phase loop.

Everything per step (masking, freezing) and per phase (selection, rewiring) lives in
plugins; the strategy only replaces the fixed epoch loop of an experience by the phase
loop, carves a validation split from the experience, and checks its input.
"""
from __future__ import annotations

import math
import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Literal, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor
from torch.nn import CrossEntropyLoss, Module
from torch.optim import Optimizer

from avalanche.training.plugins.evaluation import default_evaluator
from avalanche.training.templates import SupervisedTemplate
from avalanche.training.utils import trigger_plugins

from .data_cache import TensorBatches, materialize, ordered_batches
from .models.network import CLEAN_MASKED_LOGIT, SparseMultiTaskNet
from .optim import add_new_heads_to_optimizer
from .phases import PhaseController, PhaseDecision
from .plugins import MaskingPlugin, RewiringPlugin, StableSelectionPlugin, UnitStateReporter
from .rewiring import GROWTH_INITS, REWIRE_ALGORITHMS, GrowthInit, RewireAlgorithm
from .schedules import make_tau_schedule, validate_tau_schedule

__all__ = ["NISPA", "Mode"]

Mode = Literal["clean", "original"]
SelectionData = Literal["train", "validation"]


class NISPA(SupervisedTemplate):
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

    :param phase_epochs: e, epochs per phase (paper: 5).
    :param accuracy_drop_threshold: a_f, in percentage points of validation accuracy
        (paper: 0.75 for EF-MNIST and CIFAR-10, 2.5 for CIFAR-100).
    :param tau_schedule: ``"cosine"`` (paper), ``"linear"``, ``"exp_decay"`` or a
        callable ``t -> τ``.
    :param tau_param: k, the schedule's parameter (paper: 30).
    :param min_tau: stop once τ_t is at most this (official: 5 %).
    :param max_phases: optional cap on phases per experience (≥ 2); when reached the
        last phase's model is kept.
    :param validation_fraction: share of each experience's training data held out to
        pick the best epoch and to stop (official: 10 %).
    :param validation_seed: seed of that split; the official code uses the same split
        whatever the experiment seed (continuum's fixed seed 1).
    :param growth_init: initial value of grown weights (see :class:`RewiringPlugin`).
    :param rewire_algo: which connections may grow (see :class:`RewiringPlugin`).
    :param reinit_after_experience: redraw non-frozen weights at the end of each
        experience (official ``--reinit 1``).
    :param mode: ``"original"`` reproduces the official code's choices: non-task logits
        multiplied by 0 (so they stay in the softmax and can win the argmax), dead
        candidates promoted anyway, the conv→linear index bug of ``fix_no_outgoing``.
        ``"clean"`` (default): non-task logits at −∞ (numerically −1e9), dead
        candidates returned to the plastic pool, the flatten boundary handled per block.
        The mode sets ``model.masked_logit_value``.
    :param selection_data: data whose activations rank units: ``"train"`` (official:
        the experience's training split, one extra forward pass per phase; the
        default of the original mode) or ``"validation"`` (the held-out split,
        measured during the best epoch's validation pass at no extra cost; the
        default of the clean mode).
    :param demote_dead_candidates: override the mode's choice.
    :param cache_data: hold each experience's training split as tensors and draw
        minibatches from them, as the official code does (about 2.5x faster epochs on
        the paper MLP). Only for deterministic training transforms: a random
        augmentation would be drawn once and frozen. Default ``False``.

    Other arguments are those of ``SupervisedTemplate``; ``train_epochs`` is not one
    (phases decide the epochs). ``phase_history`` lists, per trained experience, the
    phases, the kept phase, the final τ, the stop reason and the validation accuracies.
    """

    def __init__(
        self,
        *,
        model: Module,
        optimizer: Optimizer,
        criterion=None,
        train_mb_size: int = 1,
        eval_mb_size: Optional[int] = None,
        device="cpu",
        plugins: Optional[Sequence[Any]] = None,
        evaluator=default_evaluator,
        eval_every: int = -1,
        phase_epochs: int = 5,
        accuracy_drop_threshold: float = 0.75,
        tau_schedule="cosine",
        tau_param: float = 30.0,
        min_tau: float = 0.05,
        max_phases: Optional[int] = None,
        validation_fraction: float = 0.1,
        validation_seed: int = 1,
        growth_init: GrowthInit = "normal",
        rewire_algo: RewireAlgorithm = "full_random",
        reinit_after_experience: bool = True,
        mode: Mode = "clean",
        selection_data: Optional[SelectionData] = None,
        demote_dead_candidates: Optional[bool] = None,
        cache_data: bool = False,
        **base_kwargs,
    ) -> None:
        _check_arguments(
            model=model, phase_epochs=phase_epochs,
            accuracy_drop_threshold=accuracy_drop_threshold, max_phases=max_phases,
            validation_fraction=validation_fraction, validation_seed=validation_seed,
            growth_init=growth_init,
            rewire_algo=rewire_algo, mode=mode, selection_data=selection_data,
            train_mb_size=train_mb_size,
        )
        self.tau_schedule = make_tau_schedule(tau_schedule, tau_param)
        validate_tau_schedule(self.tau_schedule, min_tau)
        if "train_epochs" in base_kwargs:
            raise TypeError(
                "NISPA takes no train_epochs: each experience trains in phases of "
                "phase_epochs epochs until its stop rule fires (cap them with max_phases)"
            )
        original = mode == "original"
        model.masked_logit_value.fill_(0.0 if original else CLEAN_MASKED_LOGIT)
        self.mode: Mode = mode
        self.phase_epochs = int(phase_epochs)
        self.accuracy_drop_threshold = float(accuracy_drop_threshold)
        self.min_tau = float(min_tau)
        self.max_phases = max_phases
        self.validation_fraction = float(validation_fraction)
        self.validation_seed = int(validation_seed)
        if selection_data is None:
            selection_data = "train" if original else "validation"
        self.selection_data: SelectionData = selection_data
        self.cache_data = bool(cache_data)
        self._cached_train: Optional[List[Tensor]] = None
        self.selection_plugin = StableSelectionPlugin(
            demote_dead_candidates=(not original) if demote_dead_candidates is None
            else demote_dead_candidates,
            batch_size=eval_mb_size,
        )
        self.rewiring_plugin = RewiringPlugin(
            rewire_algo, growth_init, original_flatten_bug=original
        )
        self.masking_plugin = MaskingPlugin(reinit_after_experience)
        nispa_plugins = [self.selection_plugin, self.rewiring_plugin, self.masking_plugin,
                         UnitStateReporter()]
        for plugin in nispa_plugins:
            self._time_callback(plugin, "after_training_exp", "experience_end")
        self.phase_history: List[Dict[str, Any]] = []
        self.timings: Dict[str, float] = defaultdict(float)
        """Seconds spent per part of NISPA's training: ``training`` (the epochs),
        ``validation``, ``snapshots`` (best-epoch and revert copies), ``phase_end``
        (selection and rewiring), ``experience_end`` (promotion, freezing, re-init)."""
        self.validation_dataset = None
        self._validation_batches: List[tuple] = []
        super().__init__(
            model=model,
            optimizer=optimizer,
            criterion=CrossEntropyLoss() if criterion is None else criterion,
            train_mb_size=train_mb_size,
            train_epochs=self.phase_epochs,
            eval_mb_size=eval_mb_size if eval_mb_size is not None else train_mb_size,
            device=device,
            plugins=nispa_plugins + list(plugins or []),
            evaluator=evaluator,
            eval_every=eval_every,
            **base_kwargs,
        )

    # ------------------------------------------------------------ input checks
    def train(self, experiences, eval_streams=None, **kwargs):
        """Check every experience first, so bad input fails before any training."""
        listed = list(experiences) if not hasattr(experiences, "dataset") else [experiences]
        seen: Dict[int, set] = {
            int(t): set(h.classes.tolist()) for t, h in self.model.heads.items()
        }
        for experience in listed:
            self._check_experience(experience, seen)
        return super().train(listed if len(listed) != 1 else listed[0], eval_streams, **kwargs)

    def _check_experience(self, experience, seen: Dict[int, set]) -> None:
        index = getattr(experience, "current_experience", "?")
        where = f"experience {index}"
        if not hasattr(experience, "task_labels"):
            raise ValueError(
                f"{where} has no task labels; NISPA is task-incremental. Build the benchmark "
                "with task labels (e.g. SplitMNIST(..., return_task_id=True))"
            )
        size = len(experience.dataset)
        if size == 0:
            raise ValueError(f"{where} is empty: it has no training samples; drop it from the stream")
        tasks = list(experience.task_labels)
        if len(tasks) != 1:
            raise ValueError(
                f"{where} carries task labels {sorted(tasks)}; NISPA trains one task per "
                "experience: give each experience a single task label"
            )
        n_val = _validation_size(size, self.validation_fraction)
        if n_val < 1 or size - n_val < 1:
            raise ValueError(
                f"{where} has {size} training samples: validation_fraction="
                f"{self.validation_fraction} leaves {size - n_val} for training and {n_val} for "
                "validation; both need at least one. Use more data or another validation_fraction"
            )
        task = int(tasks[0])
        classes = set(int(c) for c in experience.classes_in_this_experience)
        if task in seen and not classes <= seen[task]:
            raise ValueError(
                f"{where}: task label {task} comes back with new classes "
                f"{sorted(classes - seen[task])}; a task's head is frozen when the task ends, so "
                "give this experience a new task label (a benchmark built without task labels "
                "gives every experience task label 0: build it with return_task_id=True)"
            )
        seen.setdefault(task, set()).update(classes)

    # ------------------------------------------------------------------ data
    def train_dataset_adaptation(self, **kwargs):
        """Split the experience's training data into a training and a seeded
        validation part."""
        super().train_dataset_adaptation(**kwargs)
        full = self.adapted_dataset
        n_val = _validation_size(len(full), self.validation_fraction)
        order = np.random.RandomState(self.validation_seed).permutation(len(full))
        self.validation_dataset = full.subset(order[:n_val].tolist()).eval()
        self.adapted_dataset = full.subset(order[n_val:].tolist())
        self._cached_train = (
            [t.to(self.device) for t in materialize(self.adapted_dataset)] if self.cache_data else None
        )

    def make_train_dataloader(self, num_workers=0, shuffle=True, pin_memory=None,
                              persistent_workers=False, drop_last=False, **kwargs):
        if self._cached_train is None:
            return super().make_train_dataloader(
                num_workers=num_workers, shuffle=shuffle, pin_memory=pin_memory,
                persistent_workers=persistent_workers, drop_last=drop_last, **kwargs)
        self.dataloader = TensorBatches(self._cached_train, self.train_mb_size, shuffle=shuffle)

    @property
    def selection_inputs(self) -> Union[Tensor, Any]:
        """What the selection's activation pass reads: the training split's cached
        inputs (already on the device) with ``cache_data``, else the adapted dataset."""
        if self._cached_train is not None:
            return self._cached_train[0]
        return self.adapted_dataset

    def _load_validation_batches(self) -> None:
        self._validation_batches = [
            (batch[0].to(self.device), batch[1].to(self.device))
            for batch in ordered_batches(self.validation_dataset, self.eval_mb_size)
        ]

    @torch.no_grad()
    def validate(self, record_activations: bool = False):
        """Top-1 accuracy (%) of the current task on the validation split, with the
        task's logits only; optionally the mean hidden activations measured on the way."""
        model: SparseMultiTaskNet = self.model  # type: ignore[assignment]
        task = int(self.experience.task_labels[0])
        was_training = model.training
        model.eval()
        correct = total = 0
        sums: Optional[List[Tensor]] = [] if record_activations else None
        try:
            for x, y in self._validation_batches:
                logits = model._head_logits(model.features(x, sums), task)
                correct += int((logits.argmax(dim=1) == y).sum())
                total += int(y.numel())
        finally:
            model.train(was_training)
        activations = [s / total for s in sums] if sums is not None else None
        return 100.0 * correct / max(total, 1), activations

    # ------------------------------------------------------------- the loop
    @contextmanager
    def _timed(self, part: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[part] += time.perf_counter() - start

    def _time_callback(self, plugin, callback: str, part: str) -> None:
        """Account the time of one of NISPA's own plugin callbacks to ``part``."""
        original = getattr(plugin, callback)

        def timed(strategy, **kwargs):
            with self._timed(part):
                return original(strategy, **kwargs)

        setattr(plugin, callback, timed)

    def _snapshot(self) -> Dict[str, Tensor]:
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def _restore(self, snapshot: Dict[str, Tensor]) -> None:
        self.model.load_state_dict(snapshot)

    def make_optimizer(self, **kwargs):
        """Avalanche's, after placing new heads in the group of the layer feeding them
        (its own guess fails when the user's parameter groups split the body)."""
        add_new_heads_to_optimizer(self.optimizer, self.model)
        super().make_optimizer(**kwargs)

    def _reset_optimizer_state(self) -> None:
        """A fresh optimizer every phase (official), keeping the user's optimizer
        object, its parameter groups and any LR scheduler attached to it."""
        self.optimizer.state.clear()

    def _train_exp(self, experience, eval_streams=None, **kwargs):
        controller = PhaseController(
            self.tau_schedule, self.accuracy_drop_threshold, self.min_tau, self.max_phases
        )
        self._load_validation_batches()
        record = self.selection_data == "validation"
        previous: Optional[Dict[str, Tensor]] = None
        epochs = 0
        stop_requested = False
        while True:
            tau = controller.start_phase()
            self._reset_optimizer_state()
            trigger_plugins(self, "on_phase_start", phase=controller.phase, tau=tau)
            best_accuracy, best_state, best_activations = -math.inf, None, None
            for epoch in range(self.phase_epochs):
                self._before_training_epoch(**kwargs)
                if self._stop_training:
                    self._stop_training = False
                    stop_requested = True
                    break
                with self._timed("training"):
                    self.training_epoch(**kwargs)
                self._after_training_epoch(**kwargs)
                epochs += 1
                with self._timed("validation"):
                    accuracy, activations = self.validate(record)
                if accuracy > best_accuracy:
                    best_accuracy, best_activations = accuracy, activations
                    last = epoch == self.phase_epochs - 1
                    with self._timed("snapshots"):
                        best_state = None if last else self._snapshot()
            if best_state is not None:
                with self._timed("snapshots"):
                    self._restore(best_state)
            if best_accuracy == -math.inf:
                best_accuracy, best_activations = self.validate(record)
            decision = controller.end_phase(best_accuracy)
            if stop_requested and not decision.stop and controller.phase >= 2:
                decision = PhaseDecision(stop=True, revert=False, reason="stop_training")
            if decision.stop:
                if decision.revert:
                    assert previous is not None  # guaranteed by validate_tau_schedule
                    with self._timed("snapshots"):
                        self._restore(previous)
                break
            with self._timed("snapshots"):
                previous = self._snapshot()
            with self._timed("phase_end"):
                trigger_plugins(self, "on_phase_end", phase=controller.phase, tau=tau,
                                activations=best_activations)
        self.phase_history.append({
            "experience": int(getattr(experience, "current_experience", len(self.phase_history))),
            "task": int(experience.task_labels[0]),
            "epochs": epochs,
            **controller.as_dict(decision),
        })
        self._validation_batches = []
        self._cached_train = None

    def backward(self):
        if not bool(torch.isfinite(self.loss).all()):
            raise FloatingPointError(
                f"the loss became {self.loss.detach().item()} at iteration "
                f"{self.clock.train_exp_iterations} of experience "
                f"{getattr(self.experience, 'current_experience', '?')}; training stops. "
                "Lower the learning rate or check the inputs for NaN/inf"
            )
        super().backward()


def _validation_size(size: int, fraction: float) -> int:
    return int(size * fraction)


def _check_arguments(*, model, phase_epochs, accuracy_drop_threshold, max_phases,
                     validation_fraction, validation_seed, growth_init, rewire_algo, mode, selection_data,
                     train_mb_size) -> None:
    if not isinstance(model, SparseMultiTaskNet):
        raise TypeError(
            f"NISPA needs a sparse multi-task network, got {type(model).__name__}; use "
            "avalanche_nispa.models.NISPAMLP / NISPACNN or convert your model with "
            "avalanche_nispa.models.to_nispa(model, density=...)"
        )
    if not isinstance(phase_epochs, int) or phase_epochs < 1:
        raise ValueError(f"phase_epochs (e) must be a positive integer, got {phase_epochs!r}")
    if not isinstance(accuracy_drop_threshold, (int, float)) or not math.isfinite(
        accuracy_drop_threshold
    ) or accuracy_drop_threshold < 0:
        raise ValueError(
            "accuracy_drop_threshold (a_f, in percentage points) must be a finite number "
            f">= 0, got {accuracy_drop_threshold!r}"
        )
    if max_phases is not None and (not isinstance(max_phases, int) or max_phases < 2):
        raise ValueError(
            f"max_phases must be None or an integer >= 2 (the kept model must have been "
            f"trained after one selection), got {max_phases!r}"
        )
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    if not isinstance(validation_seed, int) or not 0 <= validation_seed < 2**32:
        raise ValueError(f"validation_seed must be an integer in [0, 2**32), got {validation_seed!r}")
    if growth_init not in GROWTH_INITS:
        raise ValueError(f"growth_init must be one of {GROWTH_INITS}, got {growth_init!r}")
    if rewire_algo not in REWIRE_ALGORITHMS:
        raise ValueError(f"rewire_algo must be one of {REWIRE_ALGORITHMS}, got {rewire_algo!r}")
    if mode not in ("clean", "original"):
        raise ValueError(f"mode must be 'clean' or 'original', got {mode!r}")
    if selection_data not in (None, "train", "validation"):
        raise ValueError(f"selection_data must be 'train' or 'validation', got {selection_data!r}")
    if not isinstance(train_mb_size, int) or train_mb_size < 1:
        raise ValueError(f"train_mb_size must be a positive integer, got {train_mb_size!r}")
