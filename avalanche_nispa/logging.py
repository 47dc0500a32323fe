"""A CSV logger for NISPA's unit-state metrics.

Avalanche's ``CSVLogger`` writes only accuracy and loss columns, so the ``NISPA_*``
metrics published by :class:`~avalanche_nispa.plugins.UnitStateReporter` (which
``TextLogger``, ``TensorboardLogger`` and ``WandBLogger`` show as they are) need a logger
of their own to reach a CSV file. Add it next to Avalanche's loggers::

    EvaluationPlugin(..., loggers=[CSVLogger("logs"), UnitStateCSVLogger("logs")])
"""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Tuple, Union

from avalanche.logging import BaseLogger

__all__ = ["UnitStateCSVLogger", "split_metric_name"]

_FIELDS = ("metric", "experience", "layer", "value", "x")


def split_metric_name(name: str) -> Tuple[str, str]:
    """``(metric, layer)`` of a ``NISPA_*`` metric name:
    ``"NISPA_stable/train_phase/train_stream/body.1"`` gives ``("NISPA_stable", "body.1")``,
    ``"NISPA_phases/train_phase/train_stream"`` gives ``("NISPA_phases", "")``."""
    metric, *rest = name.split("/", 3)
    return metric, rest[2] if len(rest) == 3 else ""


class UnitStateCSVLogger(BaseLogger):
    """Appends every ``NISPA_*`` metric value as a row of ``<log_folder>/nispa_state.csv``.

    Columns:

    * ``metric``: the metric, e.g. ``NISPA_stable``, ``NISPA_phases``;
    * ``experience``: the experience the value was measured after, counted from 0 in
      training order (``x - 1``; Avalanche's experience id when the stream is
      trained in order);
    * ``layer``: the masked layer (``body.1``, ..., ``head`` for the head of the
      task just trained), empty for the whole-model metrics (parameter counts,
      phases, final τ);
    * ``value``;
    * ``x``: the metric's x position, the number of experiences trained so far (the
      step TensorBoard plots it at).

    An existing file is appended to, never overwritten.
    """

    def __init__(self, log_folder: Union[str, os.PathLike] = "csvlogs") -> None:
        super().__init__()
        self.path = Path(log_folder) / "nispa_state.csv"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            with self.path.open("w", newline="") as handle:
                csv.writer(handle).writerow(_FIELDS)

    def log_single_metric(self, name: str, value: object, x_plot: int) -> None:
        if not name.startswith("NISPA_"):
            return
        metric, layer = split_metric_name(name)
        with self.path.open("a", newline="") as handle:
            csv.writer(handle).writerow((metric, x_plot - 1, layer, value, x_plot))
