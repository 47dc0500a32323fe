"""``save_checkpoint`` and ``load_checkpoint``: a NISPA run saved at an experience
boundary and resumed bit for bit.

Resume pattern::

    start = load_checkpoint(strategy, path) if os.path.exists(path) else 0
    for experience in benchmark.train_stream[start:]:
        strategy.train(experience)
        strategy.eval(benchmark.test_stream)
        save_checkpoint(strategy, path)

The resumed run equals the uninterrupted one bit for bit when it makes the same
calls; save after the evaluations of an experience, because evaluating draws from
the torch RNG (every ``DataLoader`` does) and records the classes it saw.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, Union

from ..strategy import NISPA
from .compat import (
    check_fingerprint,
    check_fresh_model,
    check_optimizer_groups,
    check_settings,
    grown_like,
    model_fingerprint,
)
from .evaluator import (
    restore_evaluator,
    restore_history,
    restore_metric_state,
    unpickle_evaluator,
)
from .files import adopt_run_id, read_checkpoint, refuse_foreign_file, run_id, write_payload
from ..rng import restore_rng
from .plain import to_cpu
from .state import collect, restore_model, restore_optimizer, restore_training_state

__all__ = ["save_checkpoint", "load_checkpoint", "write_checkpoint", "PathLike"]

MetricRestore = Literal["history", "state", "none"]
PathLike = Union[str, "os.PathLike[str]"]


def save_checkpoint(strategy: NISPA, path: PathLike, *, overwrite: bool = False,
                    metric_state: bool = True) -> Path:
    """Write the state of ``strategy`` to ``path``, atomically.

    Call it between experiences (after ``strategy.train(experience)`` and the
    evaluations that follow it), never from a callback inside a training experience:
    the state would not be one a run can continue from. From plugins, use
    :class:`~avalanche_nispa.checkpoint.CheckpointPlugin`.

    :param strategy: a :class:`~avalanche_nispa.NISPA` strategy.
    :param path: the checkpoint file. Missing parent directories are created. An
        existing file is replaced only if it is a checkpoint of this same run (saved
        by this strategy object, or by the run it was resumed from).
    :param overwrite: replace ``path`` even if it is another file.
    :param metric_state: also store the evaluator's metric objects (forgetting, BWT,
        accuracy matrix, ...) as an opaque pickled part; skipped with a warning if
        they cannot be pickled.
    :return: the path written.
    :raises FileExistsError: ``path`` holds something else and ``overwrite`` is False.
    """
    _require_nispa(strategy, "save_checkpoint")
    return write_checkpoint(strategy, Path(path), overwrite=overwrite, metric_state=metric_state)


def write_checkpoint(strategy: NISPA, path: Path, *, overwrite: bool, metric_state: bool) -> Path:
    if not strategy.between_experiences:
        raise RuntimeError(
            f"not saving {path}: a training experience is under way (experience "
            f"{getattr(strategy.experience, 'current_experience', '?')}), and a run cannot "
            "be resumed exactly from the middle of one. Save between experiences: after "
            "strategy.train(...) returns, or with CheckpointPlugin"
        )
    if not overwrite:
        refuse_foreign_file(path, run_id(strategy))
    return write_payload(collect(strategy, metric_state), path)


def load_checkpoint(
    strategy: NISPA,
    path: PathLike,
    *,
    strict: bool = True,
    metrics: MetricRestore = "history",
    missing_ok: bool = False,
    map_location: Any = "cpu",
) -> int:
    """Restore a run saved by :func:`save_checkpoint` into a freshly built strategy
    and return the index of the next experience to train, for
    ``for experience in benchmark.train_stream[start:]``.

    Build the model, optimizer, plugins and strategy exactly as in the saved run,
    then load (before the first ``train``). The format version and the model's
    fingerprint are checked first; nothing is changed if they do not match.

    :param strict: refuse (``ValueError``) NISPA settings, optimizer class or
        stateful plugins that differ from the saved run; ``False`` warns and loads
        anyway (the run then differs from an uninterrupted one).
    :param metrics: what to restore into ``strategy.evaluator``: ``"history"``
        (default: the numeric metric history, so ``get_all_metrics()`` continues
        where it stopped, and the metric objects' state as plain data, so forgetting,
        BWT and the accuracy matrix continue), ``"state"`` (the pickled metric
        objects instead, for custom metrics whose state is not plain data; this
        unpickles data, so only for checkpoints you trust) or ``"none"``.
    :param missing_ok: return 0 (start from the first experience) when ``path`` does
        not exist, instead of raising ``FileNotFoundError``.
    :param map_location: passed to ``torch.load``. Whatever it is, the model's and
        the optimizer's tensors are copied to the devices of ``strategy``'s model and
        optimizer, the replay memory follows ``strategy.device`` and RNG states stay on
        the CPU: a checkpoint saved on a GPU loads on a CPU-only machine and back.
    """
    _require_nispa(strategy, "load_checkpoint")
    if metrics not in ("history", "state", "none"):
        raise ValueError(f"metrics must be 'history', 'state' or 'none', got {metrics!r}")
    path = Path(path)
    if missing_ok and not path.exists():
        return 0
    payload = read_checkpoint(path, map_location=map_location)
    # what only the host reads (RNG states, metrics, pickles) stays on the CPU, where
    # it was saved, whatever map_location says
    for key in ("rng", "evaluator", "metric_state", "evaluator_pickle"):
        if key in payload:
            payload[key] = to_cpu(payload[key])
    model = strategy.model
    check_fingerprint(payload["fingerprint"], model_fingerprint(grown_like(model, payload["model"])),
                      path)
    check_fresh_model(model, payload["model"], path)
    check_settings(strategy, payload, path, strict)
    check_optimizer_groups(strategy, payload["optimizer"], path)
    evaluator_state = None
    if metrics == "state":
        evaluator_state = unpickle_evaluator(strategy.evaluator, payload, path, strict)

    restore_model(model, payload)
    restore_optimizer(strategy, payload["optimizer"], path)
    restore_training_state(strategy, payload)
    if metrics == "history":
        restore_history(strategy.evaluator, payload["evaluator"])
        restore_metric_state(strategy.evaluator, payload["metric_state"], path)
    elif metrics == "state" and evaluator_state is not None:
        restore_evaluator(strategy.evaluator, evaluator_state)
    adopt_run_id(strategy, payload["run_id"])
    restore_rng(payload["rng"])  # last: loading above may draw random numbers
    return int(payload["next_experience"])


def _require_nispa(strategy: Any, function: str) -> None:
    if not isinstance(strategy, NISPA):
        raise TypeError(f"{function} needs a NISPA strategy, got {type(strategy).__name__}")
