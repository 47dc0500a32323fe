"""The evaluator's part of a checkpoint: the numeric metric history, the metric
objects' state as plain data (:mod:`.metric_state`) and, optionally, the metric
objects pickled.

Metrics such as forgetting keep state inside Avalanche's metric objects (the first
accuracy of every experience). For Avalanche's own metrics that state is plain data
and is restored by default, so forgetting and BWT continue after a resume. A custom
metric whose state is not plain data can still be restored from the opaque pickled
part, only unpickled by ``load_checkpoint(..., metrics="state")``, for checkpoints you
trust.
"""
from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch
from torch import Tensor

from .._avalanche import evaluator_results, replace_evaluator_results
from .metric_state import decode_metrics, encode_metrics
from .plain import is_plain_value, qualname

__all__ = ["evaluator_history", "evaluator_pickle", "unpickle_evaluator",
           "restore_evaluator", "restore_history", "metric_state", "restore_metric_state"]


def metric_state(evaluator) -> Optional[Dict[str, Any]]:
    """The evaluator's metric objects as plain data, or None if one cannot be."""
    if evaluator is None:
        return None
    states = encode_metrics(list(evaluator.metrics))
    if states is None:
        return None
    return {"classes": [qualname(m) for m in evaluator.metrics], "states": states}


def restore_metric_state(evaluator, saved: Optional[Dict[str, Any]], path: Path) -> None:
    """Continue the metric objects where the saved run left them (forgetting, BWT,
    accuracy matrix), or warn that they start afresh."""
    if evaluator is None:
        return
    current = [qualname(m) for m in evaluator.metrics]
    if saved is not None and saved["classes"] == current:
        decode_metrics(list(evaluator.metrics), saved["states"])
        return
    reason = ("its metrics hold state that is not plain data (load with metrics='state' "
              "for the pickled copy)" if saved is None else
              f"it holds the metrics {saved['classes']}, the evaluator has {current}")
    warnings.warn(
        f"{path}: the metric objects start afresh ({reason}); metrics that compare with "
        "earlier experiences, such as forgetting and BWT, restart from the resumed experience",
        RuntimeWarning, stacklevel=3)


def _plain_value(value):
    return value.detach().cpu().clone() if isinstance(value, Tensor) else value


def evaluator_history(evaluator) -> Dict[str, Any]:
    """The evaluator's metric history, numeric values only (others are listed)."""
    history: Dict[str, Any] = {}
    last: Dict[str, Any] = {}
    skipped: List[str] = []
    if evaluator is None:
        return {"history": history, "last": last, "skipped": skipped}
    all_results, last_results = evaluator_results(evaluator)
    for name, (xs, values) in all_results.items():
        if all(is_plain_value(v) for v in values):
            history[name] = [[int(x) for x in xs], [_plain_value(v) for v in values]]
        else:
            skipped.append(name)
    for name, value in last_results.items():
        if is_plain_value(value):
            last[name] = _plain_value(value)
        elif name not in skipped:
            skipped.append(name)
    return {"history": history, "last": last, "skipped": sorted(skipped)}


def evaluator_pickle(evaluator) -> Optional[Tensor]:
    if evaluator is None:
        return None
    all_results, last_results = evaluator_results(evaluator)
    try:
        blob = pickle.dumps({
            "metrics": [(qualname(m), dict(vars(m))) for m in evaluator.metrics],
            "all_metric_results": all_results,
            "last_metric_results": last_results,
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


def unpickle_evaluator(evaluator, payload, path: Path, strict: bool) -> Optional[Dict]:
    blob = payload.get("evaluator_pickle")
    if blob is None:
        message = (f"{path} holds no metric state (it was saved with metric_state=False or "
                   "its metrics could not be pickled)")
        if strict:
            raise ValueError(message + "; load it with metrics='history' instead")
        warnings.warn(message + "; restoring the numeric history only", RuntimeWarning,
                      stacklevel=3)
        return {"history_only": payload["evaluator"]}
    state = pickle.loads(blob.cpu().numpy().tobytes())  # noqa: S301 - explicit opt-in
    saved = [name for name, _ in state["metrics"]]
    current = [qualname(m) for m in (evaluator.metrics if evaluator is not None else [])]
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


def restore_evaluator(evaluator, state: Dict[str, Any]) -> None:
    if "history_only" in state:
        restore_history(evaluator, state["history_only"])
        return
    for metric, (_, attributes) in zip(evaluator.metrics, state["metrics"]):
        vars(metric).clear()
        vars(metric).update(attributes)
    replace_evaluator_results(evaluator, state["all_metric_results"], state["last_metric_results"])


def restore_history(evaluator, saved: Dict[str, Any]) -> None:
    if evaluator is None:
        return
    history = {name: (list(xs), list(values)) for name, (xs, values) in saved["history"].items()}
    replace_evaluator_results(evaluator, history, dict(saved["last"]))
