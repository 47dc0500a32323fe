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
from typing import Union

from avalanche.logging import BaseLogger

__all__ = ["UnitStateCSVLogger"]

_FIELDS = ("metric", "experience", "layer", "value", "x")


class UnitStateCSVLogger(BaseLogger):
    """Appends every ``NISPA_*`` metric value as a row of ``<log_folder>/nispa_state.csv``
    (``metric, experience, layer, value, x``). An existing file is appended to, never
    overwritten."""

    def __init__(self, log_folder: Union[str, os.PathLike] = "csvlogs") -> None:
        super().__init__()
        self.path = Path(log_folder) / "nispa_state.csv"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            with self.path.open("w", newline="") as handle:
                csv.writer(handle).writerow(_FIELDS)

    def log_single_metric(self, name, value, x_plot) -> None:
        if not name.startswith("NISPA_"):
            return
        metric, *rest = name.split("/")
        experience = next((part for part in rest if part.startswith("Exp")), "")
        layer = rest[-1] if rest and not rest[-1].startswith("Exp") else ""
        with self.path.open("a", newline="") as handle:
            csv.writer(handle).writerow((metric, experience, layer, value, x_plot))
