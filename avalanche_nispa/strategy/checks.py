"""What NISPA checks before any training step: the model, each experience of a
``train`` call, and the stream it comes from. Every refusal names the problem and the
fix. Checks that look at samples run with the random generators preserved, so a
seeded run draws exactly what it would without them.
"""
from __future__ import annotations

import random
from typing import Any, Dict, Optional, Set

import numpy as np
import torch
from torch.nn import Module

from ..experiences import (
    check_disjoint_classes,
    check_known_classes,
    classes_of,
    experience_name,
    task_label_of,
    task_labels_of,
)
from ..models.network import SparseMultiTaskNet
from ..rng import preserved_rng
from .validation import validation_size

__all__ = ["check_model", "check_experience", "check_stream"]


def check_model(model: Module, train_mb_size: Any, *, class_incremental: bool = False) -> None:
    """A NISPA network of the strategy's kind (a head per task, or one shared output
    layer) whose every layer gives a unit at least one incoming connection on average."""
    if not isinstance(model, SparseMultiTaskNet):
        raise TypeError(
            f"NISPA needs a sparse multi-task network, got {type(model).__name__}; use "
            "avalanche_nispa.models.NISPAMLP / NISPACNN or convert your model with "
            "avalanche_nispa.models.to_nispa(model, density=...)"
        )
    if class_incremental and not model.class_incremental:
        raise ValueError(
            "NISPAReplay is class-incremental and needs one shared output layer, but the "
            "model has a head per task: build it with class_incremental=True and "
            "num_classes, e.g. NISPAMLP(num_classes=10, class_incremental=True)")
    if model.class_incremental and not class_incremental:
        raise ValueError(
            "the model has one shared output layer (class_incremental=True), which the "
            "task-incremental NISPA does not train: use avalanche_nispa.NISPAReplay, or "
            "build the model without class_incremental")
    if not isinstance(train_mb_size, int) or train_mb_size < 1:
        raise ValueError(f"train_mb_size must be a positive integer, got {train_mb_size!r}")
    layers = [(name, layer.in_units, layer.live_connections() / layer.out_units)
              for name, layer in model.named_hidden_layers()]
    layers.append(("each task head", model.head_in_features,
                   model.density * model.head_in_features))
    for name, fan_in, per_unit in layers:
        if per_unit < 1.0:
            raise ValueError(
                f"at density {model.density:g} a unit of {name} gets {per_unit:.2f} incoming "
                f"connections on average ({fan_in} inputs), so most units can learn nothing; "
                f"build the model with a density of at least {1.0 / fan_in:.2g}"
            )


def check_stream(experience: Any, *, class_incremental: bool) -> None:
    """Refuse, before its first experience trains, a class-incremental stream (one task
    label for experiences that bring different classes) given to the task-incremental
    strategy, and a stream with several task labels given to the class-incremental one."""
    stream = getattr(experience, "origin_stream", None)
    if stream is None:
        return
    try:
        experiences = list(stream)
    except Exception:  # noqa: BLE001 - a stream that cannot be listed is not checked
        return
    if len(experiences) < 2:
        return
    labels = {tuple(task_labels_of(e)) for e in experiences}
    classes = {tuple(classes_of(e)) for e in experiences}
    if class_incremental:
        if len(labels) > 1:
            raise ValueError(
                f"the stream of {experience_name(experience)} is task-incremental: its "
                f"experiences carry {len(labels)} different task labels. NISPAReplay is "
                "class-incremental (one output layer, no task id): use avalanche_nispa.NISPA "
                "for task-labelled streams, or build the benchmark without task labels")
        return
    if len(labels) == 1 and len(classes) > 1:
        (label,) = labels
        raise ValueError(
            f"the stream of {experience_name(experience)} is class-incremental: all its "
            f"{len(experiences)} experiences carry task label(s) {list(label)} but bring "
            "different classes. This NISPA is task-incremental (a head per task, chosen by "
            "the task label at test time): build the benchmark with task labels (e.g. "
            "SplitMNIST(..., return_task_id=True), or "
            "avalanche.benchmarks.scenarios.task_incremental_benchmark(benchmark)), or train "
            "it with the class-incremental avalanche_nispa.NISPAReplay"
        )


def stream_class_count(experience: Any) -> Optional[int]:
    """The largest class id of any experience of ``experience``'s stream, plus one (None
    when the stream cannot be listed): the width of the official single output layer."""
    stream = getattr(experience, "origin_stream", None)
    try:
        experiences = list(stream) if stream is not None else [experience]
    except Exception:  # noqa: BLE001 - a stream that cannot be listed: this experience only
        experiences = [experience]
    ids = [c for e in experiences for c in classes_of(e)]
    return max(ids) + 1 if ids else None


def check_experience(strategy: Any, experience: Any, seen: Dict[int, Set[int]]) -> None:
    """One experience of a ``train`` call; ``seen`` holds the classes of each task
    trained so far and of the experiences checked before this one."""
    where = experience_name(experience)
    task_labels_of(experience)
    size = len(experience.dataset)
    if size == 0:
        raise ValueError(f"{where} is empty: it has no training samples; drop it from the stream")
    task = task_label_of(experience)
    fraction = strategy.config.validation_fraction
    n_val = validation_size(size, fraction)
    if n_val < 1 or size - n_val < 1:
        raise ValueError(
            f"{where} has {size} training samples: validation_fraction="
            f"{fraction} leaves {size - n_val} for training and {n_val} for "
            "validation; both need at least one. Use more data or another validation_fraction"
        )
    classes = classes_of(experience)
    _check_class_ids(strategy.model, experience, classes)
    if strategy.model.class_incremental:
        _check_memory_size(strategy, experience, set(classes) | seen.get(task, set()))
    elif task in seen:
        check_known_classes(experience, task, classes, seen[task])
    elif strategy.model.shared_head:
        check_disjoint_classes(experience, task, classes, seen)
    seen.setdefault(task, set()).update(classes)
    with preserved_rng():
        _check_input_shape(strategy.model, experience, strategy.device)
        if strategy.config.cache_data:
            _check_deterministic_transforms(experience)


def _check_memory_size(strategy: Any, experience: Any, classes_seen: Set[int]) -> None:
    size = strategy.config.mem_size
    if size < len(classes_seen):
        raise ValueError(
            f"{experience_name(experience)}: mem_size={size} cannot hold one sample of each "
            f"of the {len(classes_seen)} classes seen by then; use mem_size >= "
            f"{len(classes_seen)} (the spec's runs keep 1000)")


def _check_class_ids(model: SparseMultiTaskNet, experience: Any, classes) -> None:
    where = experience_name(experience)
    if classes and classes[0] < 0:
        raise ValueError(f"{where} holds class id {classes[0]}; class ids must be >= 0")
    if model.num_classes is not None and classes and classes[-1] >= model.num_classes:
        raise ValueError(
            f"{where} holds class id {classes[-1]}, beyond the model's output width "
            f"num_classes={model.num_classes}: build the model with num_classes="
            f"{classes[-1] + 1} or more (or None, to size it from the classes seen)"
        )


def _first_input(experience: Any) -> torch.Tensor:
    return torch.as_tensor(experience.dataset.train()[0][0], device="cpu")


def _check_input_shape(model: SparseMultiTaskNet, experience: Any, device: Any) -> None:
    x = _first_input(experience)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            features = model.features(x.unsqueeze(0).to(device))
    except RuntimeError as error:
        raise ValueError(
            f"{experience_name(experience)}: an input of shape {tuple(x.shape)} does not fit "
            f"the model ({str(error).splitlines()[0]}); build the model for this input "
            "(e.g. NISPAMLP(input_size=...), NISPACNN(in_channels=..., input_size=...))"
        ) from None
    finally:
        model.train(was_training)
    if features.shape[-1] != model.head_in_features:
        raise ValueError(
            f"{experience_name(experience)}: the model's body gives {features.shape[-1]} "
            f"features for an input of shape {tuple(x.shape)}, but its heads read "
            f"{model.head_in_features}; build the model for this input"
        )


def _check_deterministic_transforms(experience: Any) -> None:
    """``cache_data`` holds one draw of every sample: refuse random augmentations,
    seen as two draws of the same sample that differ."""
    draws = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)
        draws.append(_first_input(experience))
    if not torch.equal(draws[0], draws[1]):
        raise ValueError(
            f"{experience_name(experience)}: its training transforms are random (the same "
            "sample differs between two reads), and cache_data=True would freeze one draw "
            "of them for every epoch. Use cache_data=False with random augmentations"
        )
