"""avalanche-nispa: NISPA (Neuro-Inspired Stability-Plasticity Adaptation, Gurbuz &
Dovrolis, ICML 2022) as an Avalanche strategy built from plugins.

The public names below are imported on first use, so that ``avalanche_nispa.algorithm``
and ``avalanche_nispa.sparse`` (pure torch) load without importing Avalanche.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "NISPA": ".strategy",
    "NISPAReplay": ".strategy",
    "NISPAReplayConfig": ".strategy",
    "NISPAConfig": ".config",
    "PRESETS": ".config",
    "unit_state_summary": ".algorithm.units",
    "count_parameters": ".algorithm.units",
    "save_checkpoint": ".checkpoint",
    "load_checkpoint": ".checkpoint",
    "CheckpointPlugin": ".checkpoint",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'avalanche_nispa' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list:
    return sorted(__all__)
