"""The tuning benchmark: each training experience split into a training and a validation part.

``--tune`` scores hyperparameters on data the reported numbers never see: every
training experience of the tuning seed's benchmark loses ``fraction`` of its
samples, taken class by class with a generator seeded by the seed and the
experience, and those samples form the experience's validation set. The tuning
runs train on what is left and are evaluated on the validation sets, so the
test split is not read at all. The stream is rebuilt with Avalanche's public
generators (``benchmark_from_datasets``, ``with_task_labels``,
``with_classes_timeline``): experiences keep their task labels and classes, and
the validation stream is called ``test`` so that the harness's evaluation
and metric names stay those of every other run.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["stratified_split", "validation_benchmark"]


def stratified_split(targets: torch.Tensor, fraction: float, seed: int) -> tuple[list, list]:
    """Indices ``(kept, held_out)`` of ``targets``: ``fraction`` of each class held out.

    Each class with ``n`` samples gives ``round(fraction * n)`` of them (at least
    one, and never all when it has two or more), chosen by a generator seeded
    with ``seed``. Both lists are in increasing order, so the kept part keeps
    the experience's own sample order.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"the validation fraction must be in (0, 1), got {fraction}")
    generator = torch.Generator().manual_seed(seed)
    held: list[int] = []
    for cls in torch.unique(targets).tolist():
        members = torch.nonzero(targets == cls).flatten()
        n_held = min(max(1, round(fraction * len(members))), max(len(members) - 1, 1))
        order = torch.randperm(len(members), generator=generator)
        held += members[order[:n_held]].tolist()
    held_set = set(held)
    kept = [i for i in range(len(targets)) if i not in held_set]
    return kept, sorted(held)


def validation_benchmark(benchmark: Any, fraction: float, seed: int) -> Any:
    """``benchmark`` for tuning: train on each experience's rest, evaluate on its held-out part.

    Args:
        benchmark: an Avalanche benchmark (``train_stream``; the test stream is
            not used).
        fraction: the share of each class of each experience held out.
        seed: the tuning seed; experience ``i`` is split with seed
            ``seed * 1000 + i``.

    Returns:
        A benchmark whose ``train_stream`` holds the kept parts and whose
        ``test_stream`` holds the held-out parts, in the same order.
    """
    from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
    from avalanche.benchmarks.scenarios.supervised import with_classes_timeline
    from avalanche.benchmarks.scenarios.task_aware import with_task_labels

    train_parts, validation_parts = [], []
    for index, experience in enumerate(benchmark.train_stream):
        dataset = experience.dataset
        targets = torch.as_tensor(list(dataset.targets))
        kept, held = stratified_split(targets, fraction, seed * 1000 + index)
        train_parts.append(dataset.subset(kept))
        validation_parts.append(dataset.subset(held))
    split = with_classes_timeline(with_task_labels(
        benchmark_from_datasets(train=train_parts, test=validation_parts)))
    _keep_class_order(benchmark, split)
    return split


def _keep_class_order(original: Any, split: Any) -> None:
    """Give ``split`` the class order of ``original``'s classic scenario, and its experiences
    a ``benchmark`` and a class list: Avalanche's iCaRL reads
    ``experience.benchmark.n_classes_per_exp`` and ``classes_order``, which the newer
    stream API does not carry, and its multi-head classifier needs a list of classes."""
    for name in ("n_classes_per_exp", "classes_order"):
        if hasattr(original, name):
            setattr(split, name, list(getattr(original, name)))
    for stream in (split.train_stream, split.test_stream):
        for experience in stream:
            experience.benchmark = split
            # with_classes_timeline stores a set; Avalanche's MultiHeadClassifier indexes
            # a tensor with it (IndexError), the classic scenarios give a sorted list
            experience.classes_in_this_experience = sorted(experience.classes_in_this_experience)
