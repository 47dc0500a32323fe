"""Save a NISPA run at an experience boundary and resume it bit for bit.

Avalanche's own ``save_checkpoint`` pickles the whole strategy with ``dill`` and is
broken on recent torch releases; this module stores only plain data instead, so a
checkpoint loads with ``torch.load(path, weights_only=True)``:

- the model's ``state_dict`` (weights, connection masks, frozen masks, unit states,
  every task head, ``masked_logit_value``) and the class-id bookkeeping Avalanche
  keeps outside it (``max_class_label``, the known task labels);
- the optimizer's ``state_dict`` and, by name, which parameter is in which group;
- NISPA's state: ``phase_history``, the hyperparameters (checked on load), the
  capacity warnings already given, the rewiring history and generator;
- the state of user plugins that have one: an ``LRSchedulerPlugin``'s scheduler and
  any plugin with ``state_dict`` / ``load_state_dict`` methods;
- the Avalanche clock counters and the RNG states (torch, CUDA, NumPy, ``random``);
- the evaluator's metric history (names, x positions and numeric values);
- a format version and a fingerprint of the model, checked before anything is loaded.

Metrics such as forgetting keep state inside Avalanche's metric objects (the first
accuracy of every experience), which is not plain data. That state is stored as an
opaque pickled byte tensor, which a ``weights_only`` load returns untouched: it is
only unpickled by ``load_checkpoint(..., metrics="state")``, for checkpoints you trust.
Accuracies need none of it: the restored model gives the same accuracies as the
uninterrupted run when evaluated again.

Writes are atomic: the checkpoint goes to a temporary file in the same directory,
which is flushed, synced and renamed over the old one, so a crash mid-write leaves
the previous checkpoint intact. A file that is not a checkpoint of this run is never
overwritten unless ``overwrite=True``.

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
import pickle
import random
import re
import uuid
import warnings
import weakref
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, List, Literal, Optional, Union

import numpy as np
import torch
from torch import Tensor

from avalanche.core import SupervisedPlugin
from avalanche.training.plugins import LRSchedulerPlugin

from .models.network import SparseMultiTaskNet
from .rewiring import RewiringReport
from .strategy import NISPA

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_FORMAT_VERSION",
    "save_checkpoint",
    "load_checkpoint",
    "read_checkpoint",
    "model_fingerprint",
    "CheckpointPlugin",
]

CHECKPOINT_FORMAT = "avalanche-nispa/checkpoint"
CHECKPOINT_FORMAT_VERSION = 1
"""Bumped whenever the layout changes; a checkpoint of another version is refused."""

MetricRestore = Literal["history", "state", "none"]
PathLike = Union[str, "os.PathLike[str]"]

_CLOCK_COUNTERS = (
    "train_iterations",
    "train_exp_counter",
    "train_exp_epochs",
    "train_exp_iterations",
    "train_epoch_iterations",
    "total_iterations",
)
_TAU_VALUES_CHECKED = 32

# One id per training run, kept across save/load, so that a run may replace its own
# checkpoint but never another run's.
_RUN_IDS: "weakref.WeakKeyDictionary[Any, str]" = weakref.WeakKeyDictionary()


def _run_id(strategy) -> str:
    if strategy not in _RUN_IDS:
        _RUN_IDS[strategy] = uuid.uuid4().hex  # os.urandom: no RNG of the run is touched
    return _RUN_IDS[strategy]


# ---------------------------------------------------------------------- saving
def save_checkpoint(
    strategy: NISPA,
    path: PathLike,
    *,
    overwrite: bool = False,
    metric_state: bool = True,
) -> Path:
    """Write the state of ``strategy`` to ``path``, atomically.

    Call it between experiences (after ``strategy.train(experience)`` and the
    evaluations that follow it), never from a callback inside a training experience:
    the state would not be one a run can continue from. From plugins, use
    :class:`CheckpointPlugin`.

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
    if not isinstance(strategy, NISPA):
        raise TypeError(
            f"save_checkpoint needs a NISPA strategy, got {type(strategy).__name__}"
        )
    return _write(strategy, Path(path), overwrite=overwrite, metric_state=metric_state)


def _write(strategy: NISPA, path: Path, *, overwrite: bool, metric_state: bool) -> Path:
    if not overwrite:
        _refuse_foreign_file(path, _run_id(strategy))
    payload = _collect(strategy, metric_state)
    _check_plain(payload, "checkpoint")
    _atomic_save(payload, path)
    return path


def _collect(strategy: NISPA, metric_state: bool) -> Dict[str, Any]:
    from . import __version__

    model: SparseMultiTaskNet = strategy.model  # type: ignore[assignment]
    payload: Dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "library_version": __version__,
        "torch_version": str(torch.__version__),
        "run_id": _run_id(strategy),
        "save_id": uuid.uuid4().hex,
        "next_experience": int(strategy.clock.train_exp_counter),
        "fingerprint": model_fingerprint(model),
        "model": _to_cpu(dict(model.state_dict())),
        "model_attributes": {
            "max_class_label": int(model.max_class_label),
            "known_train_tasks_labels": sorted(int(t) for t in model.known_train_tasks_labels),
        },
        "optimizer": _optimizer_state(strategy),
        "nispa": {
            "hyperparameters": _hyperparameters(strategy),
            "phase_history": _plain_copy(strategy.phase_history),
            "warned_full_layers": sorted(int(i) for i in strategy.selection_plugin._warned_full),
            "rewiring_history": [
                {"layers": list(r.layers), "dropped": [int(d) for d in r.dropped],
                 "grown": [int(g) for g in r.grown]}
                for r in strategy.rewiring_plugin.history
            ],
            "rewiring_generator": _generator_state(strategy.rewiring_plugin.generator),
        },
        "plugins": [
            {"class": _qualname(plugin), "state": state}
            for plugin, state in ((p, _plugin_state(p)) for p in _stateful_plugins(strategy))
        ],
        "clock": {name: int(getattr(strategy.clock, name)) for name in _CLOCK_COUNTERS},
        "rng": _rng_state(),
        "evaluator": _evaluator_history(strategy.evaluator),
    }
    if metric_state:
        blob = _evaluator_pickle(strategy.evaluator)
        if blob is not None:
            payload["evaluator_pickle"] = blob
    return payload


def model_fingerprint(model: SparseMultiTaskNet) -> Dict[str, Any]:
    """What must match between the saved model and the one a checkpoint is loaded
    into: the class, every body module with its weight shape, the head input width,
    the density and how new heads are drawn."""
    body = []
    for index, module in enumerate(model.body):
        weight = getattr(module, "weight", None)
        shape = list(weight.shape) if isinstance(weight, Tensor) else []
        body.append(f"body.{index} {type(module).__name__} {tuple(shape)}")
    return {
        "class": _qualname(model),
        "body": body,
        "head_in_features": int(model.head_in_features),
        "density": float(model.density),
        "num_classes": model.num_classes,
        "mask_init": str(model.mask_init),
        "head_bias_init": str(model.head_bias_init),
    }


def _hyperparameters(strategy: NISPA) -> Dict[str, Any]:
    taus = []
    for t in range(1, _TAU_VALUES_CHECKED + 1):
        try:
            taus.append(float(strategy.tau_schedule(t)))
        except Exception:  # noqa: BLE001 - a user schedule defined for fewer phases
            break
    rewiring = strategy.rewiring_plugin
    selection = strategy.selection_plugin
    return {
        "mode": strategy.mode,
        "phase_epochs": int(strategy.phase_epochs),
        "accuracy_drop_threshold": float(strategy.accuracy_drop_threshold),
        "tau_values": taus,
        "min_tau": float(strategy.min_tau),
        "max_phases": strategy.max_phases,
        "validation_fraction": float(strategy.validation_fraction),
        "validation_seed": int(strategy.validation_seed),
        "selection_data": strategy.selection_data,
        "demote_dead_candidates": bool(selection.demote_dead_candidates),
        "activation_fraction": float(selection.activation_fraction),
        "rewire_algo": rewiring.rewire_algo,
        "growth_init": rewiring.growth_init,
        "connect_isolated_units": bool(rewiring.connect_isolated_units),
        "original_flatten_bug": bool(rewiring.original_flatten_bug),
        "reinit_after_experience": bool(strategy.masking_plugin.reinit_after_experience),
        "cache_data": bool(getattr(strategy, "cache_data", False)),
        "train_mb_size": int(strategy.train_mb_size),
        "eval_mb_size": int(strategy.eval_mb_size),
    }


def _optimizer_state(strategy: NISPA) -> Dict[str, Any]:
    optimizer = strategy.optimizer
    names = {id(p): n for n, p in strategy.model.named_parameters()}
    groups = []
    for index, group in enumerate(optimizer.param_groups):
        unknown = [tuple(p.shape) for p in group["params"] if id(p) not in names]
        if unknown:
            raise ValueError(
                f"optimizer parameter group {index} holds parameters of shapes {unknown} that "
                "are not the model's; a checkpoint can only restore an optimizer over "
                "strategy.model's parameters"
            )
        groups.append([names[id(p)] for p in group["params"]])
    return {
        "class": _qualname(optimizer),
        "param_names": groups,
        "state_dict": _to_cpu(optimizer.state_dict()),
    }


def _stateful_plugins(strategy: NISPA) -> List[Any]:
    """User plugins whose state a checkpoint keeps, in plugin order."""
    found = []
    for plugin in strategy.plugins:
        if isinstance(plugin, LRSchedulerPlugin):
            found.append(plugin)
        elif callable(getattr(plugin, "state_dict", None)) and callable(
            getattr(plugin, "load_state_dict", None)
        ):
            found.append(plugin)
    return found


def _plugin_state(plugin) -> Any:
    if isinstance(plugin, LRSchedulerPlugin):
        return _to_cpu(plugin.scheduler.state_dict())
    return _to_cpu(plugin.state_dict())


def _load_plugin_state(plugin, state) -> None:
    if isinstance(plugin, LRSchedulerPlugin):
        plugin.scheduler.load_state_dict(state)
    else:
        plugin.load_state_dict(state)


def _generator_state(generator: Optional[torch.Generator]) -> Optional[Tensor]:
    return None if generator is None else generator.get_state()


def _rng_state() -> Dict[str, Any]:
    kind, keys, position, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    cuda: List[Tensor] = []
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        cuda = list(torch.cuda.get_rng_state_all())
    return {
        "torch": torch.get_rng_state(),
        "cuda": cuda,
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {
            "version": int(version),
            "internal": torch.tensor(internal, dtype=torch.int64),
            "gauss_next": gauss_next,
        },
    }


def _set_rng_state(state: Dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        if torch.cuda.is_available() and torch.cuda.device_count() == len(state["cuda"]):
            torch.cuda.set_rng_state_all(state["cuda"])
        else:
            warnings.warn(
                f"the checkpoint holds the RNG state of {len(state['cuda'])} CUDA device(s) "
                "that this machine does not have; CUDA random numbers will differ from "
                "the uninterrupted run",
                RuntimeWarning,
                stacklevel=3,
            )
    numpy_state = state["numpy"]
    np.random.set_state((
        numpy_state["kind"],
        numpy_state["keys"].numpy().astype(np.uint32),
        numpy_state["position"],
        numpy_state["has_gauss"],
        numpy_state["cached_gaussian"],
    ))
    python = state["python"]
    random.setstate((python["version"], tuple(int(v) for v in python["internal"].tolist()),
                     python["gauss_next"]))


def _evaluator_history(evaluator) -> Dict[str, Any]:
    """The evaluator's metric history, numeric values only (others are listed)."""
    history: Dict[str, Any] = {}
    last: Dict[str, Any] = {}
    skipped: List[str] = []
    if evaluator is None:
        return {"history": history, "last": last, "skipped": skipped}
    for name, (xs, values) in dict(getattr(evaluator, "all_metric_results", {})).items():
        if all(_is_plain_value(v) for v in values):
            history[name] = [[int(x) for x in xs], [_plain_value(v) for v in values]]
        else:
            skipped.append(name)
    for name, value in dict(getattr(evaluator, "last_metric_results", {})).items():
        if _is_plain_value(value):
            last[name] = _plain_value(value)
        elif name not in skipped:
            skipped.append(name)
    return {"history": history, "last": last, "skipped": sorted(skipped)}


def _evaluator_pickle(evaluator) -> Optional[Tensor]:
    if evaluator is None:
        return None
    try:
        blob = pickle.dumps({
            "metrics": [(_qualname(m), dict(vars(m))) for m in evaluator.metrics],
            "all_metric_results": dict(getattr(evaluator, "all_metric_results", {})),
            "last_metric_results": dict(getattr(evaluator, "last_metric_results", {})),
        })
    except Exception as error:  # noqa: BLE001 - any pickling failure just skips the part
        warnings.warn(
            f"the evaluator's metric state cannot be pickled ({error}); the checkpoint keeps "
            "its numeric history only. Pass metric_state=False to silence this warning",
            RuntimeWarning,
            stacklevel=4,
        )
        return None
    return torch.frombuffer(bytearray(blob), dtype=torch.uint8)


# ------------------------------------------------------------- atomic writes
def _atomic_save(payload: Dict[str, Any], path: Path) -> None:
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    temporary = directory / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        with open(temporary, "xb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            temporary.unlink()
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)
    _remove_stale_temporaries(path)


def _remove_stale_temporaries(path: Path) -> None:
    """Temporary files of ``path`` that a killed process could not remove."""
    pattern = re.compile(re.escape(f".{path.name}.") + r"[0-9a-f]{32}\.tmp")
    for candidate in path.parent.iterdir():
        if pattern.fullmatch(candidate.name):
            try:
                candidate.unlink()
            except OSError:
                pass


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    flags = getattr(os, "O_DIRECTORY", None)
    if flags is None:
        return
    try:
        descriptor = os.open(directory, os.O_RDONLY | flags)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _refuse_foreign_file(path: Path, run_id: str) -> None:
    if path.is_dir():
        raise IsADirectoryError(f"checkpoint path {path} is a directory; give a file name")
    if not path.exists():
        return
    try:
        existing = _load_raw(path, mmap=True)
    except ValueError:
        existing = None
    if existing is None or existing.get("format") != CHECKPOINT_FORMAT:
        raise FileExistsError(
            f"{path} exists and is not a NISPA checkpoint; refusing to overwrite it. "
            "Choose another path, or pass overwrite=True to replace the file"
        )
    if existing.get("run_id") != run_id:
        raise FileExistsError(
            f"{path} holds the checkpoint of another NISPA run (saved after "
            f"{existing.get('next_experience', '?')} experiences). Load it first with "
            "load_checkpoint(strategy, path) to continue that run, choose another path, "
            "or pass overwrite=True to replace it"
        )


# --------------------------------------------------------------------- loading
def read_checkpoint(path: PathLike, *, map_location: Any = "cpu") -> Dict[str, Any]:
    """Read a checkpoint with ``torch.load(weights_only=True)`` and check its format
    and version; returns the plain dictionary (``"next_experience"``,
    ``"phase_history"`` under ``"nispa"``, ``"model"``, ...)."""
    from . import __version__

    path = Path(path)
    payload = _load_raw(path, map_location=map_location)
    if payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{path} is not a NISPA checkpoint (no '{CHECKPOINT_FORMAT}' marker); give the "
            "path of a file written by avalanche_nispa.checkpoint.save_checkpoint"
        )
    version = payload.get("format_version")
    if version != CHECKPOINT_FORMAT_VERSION:
        newer = isinstance(version, int) and version > CHECKPOINT_FORMAT_VERSION
        fix = ("upgrade avalanche-nispa to a release that reads it" if newer else
               "load it with the avalanche-nispa release that wrote it "
               f"(version {payload.get('library_version', '?')}) or restart the run")
        raise ValueError(
            f"{path} is a NISPA checkpoint of format version {version}, but this "
            f"avalanche-nispa ({__version__}) reads format version "
            f"{CHECKPOINT_FORMAT_VERSION}: {fix}"
        )
    return payload


def _load_raw(path: Path, map_location: Any = "cpu", mmap: bool = False) -> Dict[str, Any]:
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except FileNotFoundError:
        raise
    except Exception as error:  # noqa: BLE001 - anything unreadable is "not a checkpoint"
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        reason = next((line for line in lines if "WeightsUnpickler" in line),
                      lines[0] if lines else "")
        raise ValueError(
            f"{path} is not a NISPA checkpoint: torch.load(weights_only=True) cannot read "
            f"it ({type(error).__name__}: {reason})"
        ) from error
    if not isinstance(payload, dict):
        raise ValueError(f"{path} is not a NISPA checkpoint: it holds a {type(payload).__name__}")
    return payload


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

    :param strict: refuse (``ValueError``) NISPA hyperparameters, optimizer class or
        stateful plugins that differ from the saved run; ``False`` warns and loads
        anyway (the run then differs from an uninterrupted one).
    :param metrics: what to restore into ``strategy.evaluator``: ``"history"``
        (default: the numeric metric history, so ``get_all_metrics()`` continues
        where it stopped), ``"state"`` (the pickled metric objects too, so forgetting,
        BWT and the accuracy matrix continue; this unpickles data, so only for
        checkpoints you trust) or ``"none"``.
    :param missing_ok: return 0 (start from the first experience) when ``path`` does
        not exist, instead of raising ``FileNotFoundError``.
    :param map_location: passed to ``torch.load``; tensors are then copied to the
        model's and optimizer's devices.
    """
    if not isinstance(strategy, NISPA):
        raise TypeError(f"load_checkpoint needs a NISPA strategy, got {type(strategy).__name__}")
    if metrics not in ("history", "state", "none"):
        raise ValueError(f"metrics must be 'history', 'state' or 'none', got {metrics!r}")
    path = Path(path)
    if missing_ok and not path.exists():
        return 0
    payload = read_checkpoint(path, map_location=map_location)
    model: SparseMultiTaskNet = strategy.model  # type: ignore[assignment]
    _check_fingerprint(payload["fingerprint"], model_fingerprint(model), path)
    _check_fresh_model(model, payload["model"], path)
    _check_settings(strategy, payload, path, strict)
    _check_optimizer_groups(strategy, payload["optimizer"], path)
    evaluator_state = None
    if metrics == "state":
        evaluator_state = _unpickle_evaluator(strategy.evaluator, payload, path, strict)

    model.load_state_dict(payload["model"])  # creates the saved heads (uses the RNG)
    model.max_class_label = payload["model_attributes"]["max_class_label"]
    model.known_train_tasks_labels = set(payload["model_attributes"]["known_train_tasks_labels"])
    _load_optimizer(strategy, payload["optimizer"], path)

    nispa = payload["nispa"]
    strategy.phase_history = _plain_copy(nispa["phase_history"])
    strategy.selection_plugin._warned_full = set(nispa["warned_full_layers"])
    rewiring = strategy.rewiring_plugin
    rewiring.history = [RewiringReport(r["layers"], r["dropped"], r["grown"])
                        for r in nispa["rewiring_history"]]
    if nispa["rewiring_generator"] is not None and rewiring.generator is not None:
        rewiring.generator.set_state(nispa["rewiring_generator"])
    for plugin, saved in zip(_stateful_plugins(strategy), payload["plugins"]):
        if _qualname(plugin) == saved["class"]:
            _load_plugin_state(plugin, saved["state"])
    for name, value in payload["clock"].items():
        setattr(strategy.clock, name, int(value))
    if metrics == "history":
        _restore_history(strategy.evaluator, payload["evaluator"])
    elif metrics == "state" and evaluator_state is not None:
        _restore_evaluator(strategy.evaluator, evaluator_state)
    _RUN_IDS[strategy] = payload["run_id"]
    _set_rng_state(payload["rng"])  # last: loading above may draw random numbers
    return int(payload["next_experience"])


def _check_fingerprint(saved: Dict[str, Any], current: Dict[str, Any], path: Path) -> None:
    fix = ("build the model exactly as in the saved run (same class, layer sizes, "
           "density and head settings) before loading")
    if saved["class"] != current["class"]:
        raise ValueError(
            f"{path} was saved from a {saved['class']}, but the strategy's model is a "
            f"{current['class']}: {fix}"
        )
    if saved["body"] != current["body"]:
        for index in range(max(len(saved["body"]), len(current["body"]))):
            old = saved["body"][index] if index < len(saved["body"]) else "nothing"
            new = current["body"][index] if index < len(current["body"]) else "nothing"
            if old != new:
                raise ValueError(
                    f"{path} was saved from another model: the saved body has {old} where "
                    f"this model has {new}: {fix}"
                )
    for key in ("head_in_features", "density", "num_classes", "mask_init", "head_bias_init"):
        if saved[key] != current[key]:
            raise ValueError(
                f"{path} was saved from another model: {key} was {saved[key]!r}, this model "
                f"has {current[key]!r}: {fix}"
            )


def _check_fresh_model(model: SparseMultiTaskNet, state: Dict[str, Tensor], path: Path) -> None:
    saved_heads = {k.split(".")[1] for k in state if k.startswith("heads.")}
    extra = sorted(set(model.heads) - saved_heads)
    if extra:
        raise ValueError(
            f"the model already has heads for tasks {extra} that {path} does not have; "
            "load a checkpoint into a freshly built model and strategy, before training"
        )


def _check_settings(strategy: NISPA, payload: Dict[str, Any], path: Path, strict: bool) -> None:
    problems = []
    saved = payload["nispa"]["hyperparameters"]
    current = _hyperparameters(strategy)
    for key in saved:
        if key not in current or saved[key] != current[key]:
            shown = "a different schedule" if key == "tau_values" else repr(saved[key])
            now = "another one" if key == "tau_values" else repr(current.get(key))
            problems.append(f"{key} was {shown}, this strategy has {now}")
    optimizer = payload["optimizer"]
    if optimizer["class"] != _qualname(strategy.optimizer):
        problems.append(f"the optimizer was a {optimizer['class']}, this one is a "
                        f"{_qualname(strategy.optimizer)}")
    saved_plugins = [p["class"] for p in payload["plugins"]]
    current_plugins = [_qualname(p) for p in _stateful_plugins(strategy)]
    if saved_plugins != current_plugins:
        problems.append(f"the stateful plugins were {saved_plugins}, this strategy has "
                        f"{current_plugins}")
    if not problems:
        return
    message = (f"{path} was saved with other settings: " + "; ".join(problems) + ". ")
    if strict:
        raise ValueError(
            message + "Build the strategy with the saved settings, or pass strict=False to "
            "load anyway (the run will then differ from an uninterrupted one)"
        )
    warnings.warn(message + "Loading anyway (strict=False).", RuntimeWarning, stacklevel=3)


def _check_optimizer_groups(strategy: NISPA, saved: Dict[str, Any], path: Path) -> None:
    groups = saved["param_names"]
    if len(groups) != len(strategy.optimizer.param_groups):
        raise ValueError(
            f"{path} holds an optimizer with {len(groups)} parameter group(s), the strategy's "
            f"optimizer has {len(strategy.optimizer.param_groups)}: build the optimizer with "
            "the same parameter groups as in the saved run"
        )


def _load_optimizer(strategy: NISPA, saved: Dict[str, Any], path: Path) -> None:
    optimizer = strategy.optimizer
    named = dict(strategy.model.named_parameters())
    groups: List[List[str]] = saved["param_names"]
    missing = [name for names in groups for name in names if name not in named]
    if missing:
        raise ValueError(
            f"{path} holds optimizer state for parameters {missing[:5]} that the model does "
            "not have: build the model as in the saved run"
        )
    if saved["class"] != _qualname(optimizer):
        return  # refused or warned about by _check_settings; keep the new optimizer
    for group, names in zip(optimizer.param_groups, groups):
        group["params"] = [named[name] for name in names]
    optimizer.load_state_dict(saved["state_dict"])
    # Tell Avalanche the optimizer already maps every parameter, as after any
    # experience of the uninterrupted run; otherwise its first make_optimizer() call
    # would reset the state just loaded.
    strategy.optimized_param_id = dict(strategy.model.named_parameters())


def _unpickle_evaluator(evaluator, payload, path: Path, strict: bool) -> Optional[Dict]:
    blob = payload.get("evaluator_pickle")
    if blob is None:
        message = (f"{path} holds no metric state (it was saved with metric_state=False or "
                   "its metrics could not be pickled)")
        if strict:
            raise ValueError(message + "; load it with metrics='history' instead")
        warnings.warn(message + "; restoring the numeric history only", RuntimeWarning,
                      stacklevel=3)
        return {"history_only": payload["evaluator"]}
    state = pickle.loads(blob.numpy().tobytes())  # noqa: S301 - explicit opt-in
    saved = [name for name, _ in state["metrics"]]
    current = [_qualname(m) for m in (evaluator.metrics if evaluator is not None else [])]
    if saved != current:
        message = (f"{path} holds the state of metrics {saved}, the strategy's evaluator "
                   f"has {current}")
        if strict:
            raise ValueError(message + ": build the evaluator with the same metrics, or load "
                             "with metrics='history'")
        warnings.warn(message + "; restoring the numeric history only", RuntimeWarning,
                      stacklevel=3)
        return {"history_only": payload["evaluator"]}
    return state


def _restore_evaluator(evaluator, state: Dict[str, Any]) -> None:
    if "history_only" in state:
        _restore_history(evaluator, state["history_only"])
        return
    for metric, (_, attributes) in zip(evaluator.metrics, state["metrics"]):
        vars(metric).clear()
        vars(metric).update(attributes)
    _replace_results(evaluator, state["all_metric_results"], state["last_metric_results"])


def _restore_history(evaluator, saved: Dict[str, Any]) -> None:
    if evaluator is None:
        return
    history = {name: (list(xs), list(values)) for name, (xs, values) in saved["history"].items()}
    _replace_results(evaluator, history, dict(saved["last"]))


def _replace_results(evaluator, history: Dict, last: Dict) -> None:
    if getattr(evaluator, "collect_all", False):
        evaluator.all_metric_results.clear()
        evaluator.all_metric_results.update(history)
    evaluator.last_metric_results = dict(last)


# ---------------------------------------------------------------- plain data
_PLAIN_SCALARS = (bool, int, float, str, type(None))


def _is_plain_value(value) -> bool:
    return isinstance(value, _PLAIN_SCALARS + (Tensor,))


def _plain_value(value):
    return value.detach().cpu().clone() if isinstance(value, Tensor) else value


def _to_cpu(obj):
    """Tensors moved to the CPU (detached, plain ``Tensor``), containers rebuilt."""
    if isinstance(obj, Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {key: _to_cpu(value) for key, value in obj.items()}
    if isinstance(obj, list):
        return [_to_cpu(value) for value in obj]
    if isinstance(obj, tuple):
        return tuple(_to_cpu(value) for value in obj)
    return obj


def _plain_copy(obj):
    if isinstance(obj, dict):
        return {key: _plain_copy(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain_copy(value) for value in obj]
    if isinstance(obj, Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, (bool, int, float, str, type(None))):
        return obj
    if isinstance(obj, (np.integer, np.floating, np.bool_)):
        return obj.item()
    raise TypeError(f"cannot store a {type(obj).__name__} in a checkpoint")


def _check_plain(obj, where: str) -> None:
    """Everything must load with ``torch.load(weights_only=True)``: tensors, numbers,
    strings, None and lists/tuples/dicts of them."""
    if isinstance(obj, Tensor):
        if type(obj) is not Tensor:
            raise TypeError(f"{where} is a {type(obj).__name__}, not a plain tensor")
        return
    if type(obj) in _PLAIN_SCALARS:  # exact types: subclasses (TorchVersion, enums) fail
        return
    if type(obj) in (dict, OrderedDict):
        for key, value in obj.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"{where} has a key of type {type(key).__name__}")
            _check_plain(value, f"{where}[{key!r}]")
        return
    if type(obj) in (list, tuple):
        for index, value in enumerate(obj):
            _check_plain(value, f"{where}[{index}]")
        return
    raise TypeError(
        f"{where} is a {type(obj).__name__}, which torch.load(weights_only=True) cannot "
        "read; a plugin's state_dict() must hold tensors, numbers, strings and "
        "lists/dicts of them"
    )


def _qualname(obj) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


# --------------------------------------------------------------------- plugin
class CheckpointPlugin(SupervisedPlugin):
    """Saves the run with :func:`save_checkpoint` every ``every`` experiences.

    The checkpoint is written as soon as a ``train()`` call ends at a boundary that is
    due, and written again when the next ``train()`` call starts if ``eval()`` ran in
    between, so that it holds the evaluations and the RNG draws they made (the state
    the next experience starts from). In a ``train()`` call over several experiences
    it is written when the next experience starts. If the process dies during an
    evaluation, the checkpoint from the end of training is still complete, but a run
    resumed from it skips that evaluation's RNG draws and so is not bit-identical.

    Resume with ``start = load_checkpoint(strategy, path, missing_ok=True)`` and
    ``for experience in train_stream[start:]``; a strategy that did not load the
    checkpoint refuses (before training) to replace one of another run at ``path``.

    :param path: checkpoint file.
    :param every: save after every ``every``-th finished experience.
    :param metric_state: passed to :func:`save_checkpoint`.
    """

    def __init__(self, path: PathLike, every: int = 1, *, metric_state: bool = True) -> None:
        super().__init__()
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        self.path = Path(path)
        self.every = every
        self.metric_state = metric_state
        self._due = False  # a boundary to save is pending
        self._saved_at: Optional[int] = None  # train_exp_counter of the last save
        self._evaluated_since_save = False
        self._checked = False

    def _save(self, strategy) -> None:
        _write(strategy, self.path, overwrite=False, metric_state=self.metric_state)
        self._saved_at = int(strategy.clock.train_exp_counter)
        self._due = False
        self._evaluated_since_save = False

    def before_training(self, strategy, **kwargs) -> None:
        if not self._checked:
            _refuse_foreign_file(self.path, _run_id(strategy))
            self._checked = True
        if (self._evaluated_since_save
                and self._saved_at == int(strategy.clock.train_exp_counter)):
            self._save(strategy)

    def after_training_exp(self, strategy, **kwargs) -> None:
        # The Clock (always the last plugin) has not counted this experience yet.
        self._due = (int(strategy.clock.train_exp_counter) + 1) % self.every == 0

    def before_train_dataset_adaptation(self, strategy, **kwargs) -> None:
        if self._due:
            self._save(strategy)

    def after_training(self, strategy, **kwargs) -> None:
        if self._due:
            self._save(strategy)

    def after_eval(self, strategy, **kwargs) -> None:
        self._evaluated_since_save = True
