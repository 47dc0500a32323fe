"""What NISPA requires of an experience, checked in one place.

The task-incremental NISPA trains one task per experience and gives each task its own
head, frozen when the task ends. The strategy checks every experience of a ``train``
call before any training step; the network checks again when it adapts to an
experience (it may be trained by another strategy), with the same functions.
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Set

__all__ = ["experience_name", "task_labels_of", "task_label_of", "classes_of",
           "check_known_classes", "check_disjoint_classes"]


def experience_name(experience: Any) -> str:
    return f"experience {getattr(experience, 'current_experience', '?')}"


def task_labels_of(experience: Any) -> list:
    """The task labels of ``experience``, or a ``ValueError`` saying how to build a
    stream that has them."""
    if not hasattr(experience, "task_labels"):
        raise ValueError(
            f"{experience_name(experience)} has no task labels; NISPA is task-incremental. "
            "Build the benchmark with task labels (e.g. SplitMNIST(..., return_task_id=True))"
        )
    return list(experience.task_labels)


def task_label_of(experience: Any) -> int:
    """The single task label of ``experience``, or a ``ValueError`` saying how to
    build a stream NISPA can train on."""
    tasks = task_labels_of(experience)
    if len(tasks) != 1:
        raise ValueError(
            f"{experience_name(experience)} carries task labels {sorted(tasks)}; NISPA trains one task per "
            "experience: give each experience a single task label"
        )
    return int(tasks[0])


def classes_of(experience: Any) -> List[int]:
    """The class ids an experience brings, sorted.

    Streams of Avalanche's classic API say so in ``classes_in_this_experience``; those
    built with the newer API (``class_incremental_benchmark``,
    ``task_incremental_benchmark``, ...) do not, and the classes are read from the
    dataset's targets instead.
    """
    listed = getattr(experience, "classes_in_this_experience", None)
    if listed is None:
        dataset = getattr(experience, "dataset", None)
        targets = getattr(dataset, "targets", None)
        uniques = getattr(targets, "uniques", None)
        if uniques is None:
            raise ValueError(
                f"{experience_name(experience)} says neither which classes it holds "
                "(classes_in_this_experience) nor has a dataset with targets; build the "
                "stream with Avalanche's benchmark generators (nc_benchmark, SplitMNIST, "
                "class_incremental_benchmark, ...)"
            )
        listed = uniques
    return sorted(int(c) for c in listed)


def check_disjoint_classes(experience: Any, task: int, classes: Iterable[int],
                           trained: Dict[int, Set[int]]) -> None:
    """On a shared output layer a new task may not bring a class another task owns: that
    class's row is frozen with the task that trained it."""
    for other, owned in sorted(trained.items()):
        shared = sorted(set(int(c) for c in classes) & owned)
        if shared and other != task:
            raise ValueError(
                f"{experience_name(experience)}: task label {task} brings classes {shared}, "
                f"which task {other} already trained on the shared output layer "
                "(shared_head=True needs disjoint class ids, e.g. not Permuted MNIST); "
                "build the model without shared_head to give every task its own head")


def check_known_classes(experience: Any, task: int, classes: Iterable[int],
                        known: Set[int]) -> None:
    """A task that comes back may not bring classes its (frozen) head lacks."""
    new = sorted(set(int(c) for c in classes) - set(known))
    if new:
        raise ValueError(
            f"{experience_name(experience)}: task label {task} comes back with new classes "
            f"{new}; a task's head is frozen when the task ends, so give this experience a "
            "new task label (a benchmark built without task labels gives every experience "
            "task label 0: build it with return_task_id=True)"
        )
