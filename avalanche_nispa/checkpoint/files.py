"""Checkpoint files: the format marker and version, run identity, atomic writes and
checked reads.

A file is written with :func:`avalanche_nispa.atomic.atomic_write`, so a crash
mid-write leaves the previous checkpoint intact, and read with
``torch.load(weights_only=True)``. A file that is not a checkpoint of this run is
never overwritten unless asked.
"""
from __future__ import annotations

import uuid
import weakref
from pathlib import Path
from typing import Any, Dict

import torch

from ..atomic import atomic_write
from .plain import check_plain

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_FORMAT_VERSION",
    "run_id",
    "adopt_run_id",
    "write_payload",
    "read_checkpoint",
    "refuse_foreign_file",
]

CHECKPOINT_FORMAT = "avalanche-nispa/checkpoint"
CHECKPOINT_FORMAT_VERSION = 2
"""Bumped whenever the layout changes; a checkpoint of another version is refused.
Version 2: plugins (NISPA's own included) are stored through their ``state_dict``."""

# One id per training run, kept across save/load, so that a run may replace its own
# checkpoint but never another run's.
_RUN_IDS: "weakref.WeakKeyDictionary[Any, str]" = weakref.WeakKeyDictionary()


def run_id(strategy: Any) -> str:
    if strategy not in _RUN_IDS:
        _RUN_IDS[strategy] = uuid.uuid4().hex  # os.urandom: no RNG of the run is touched
    return _RUN_IDS[strategy]


def adopt_run_id(strategy: Any, saved: str) -> None:
    """A strategy that loaded a checkpoint continues that run."""
    _RUN_IDS[strategy] = saved


def write_payload(payload: Dict[str, Any], path: Path) -> Path:
    check_plain(payload, "checkpoint")
    return atomic_write(path, lambda handle: torch.save(payload, handle))


def refuse_foreign_file(path: Path, current_run: str) -> None:
    """Refuse to replace anything at ``path`` but a checkpoint of ``current_run``."""
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
    if existing.get("run_id") != current_run:
        raise FileExistsError(
            f"{path} holds the checkpoint of another NISPA run (saved after "
            f"{existing.get('next_experience', '?')} experiences). Load it first with "
            "load_checkpoint(strategy, path) to continue that run, choose another path, "
            "or pass overwrite=True to replace it"
        )


def read_checkpoint(path: Any, *, map_location: Any = "cpu") -> Dict[str, Any]:
    """Read a checkpoint with ``torch.load(weights_only=True)`` and check its format
    and version; returns the plain dictionary (``"next_experience"``,
    ``"phase_history"``, ``"model"``, ...)."""
    from .. import __version__

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
