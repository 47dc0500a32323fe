"""Checkpoint files: the format marker and version, a checksum, run identity, atomic
writes that keep the previous checkpoint, and checked reads.

A file holds a small header (format, version, run id, experiences done, the SHA-256
of the body) and the body: the checkpoint itself, serialised by ``torch.save``, as a
byte tensor. Both are read with ``torch.load(weights_only=True)``; a body whose
checksum does not match (a flipped bit, a truncated copy) is refused. Each write keeps
the checkpoint it replaces as ``<name>.previous``, which :func:`read_checkpoint` falls
back to, saying so, when the newest file is damaged. A file that is not a checkpoint
of this run is never overwritten unless asked.
"""
from __future__ import annotations

import hashlib
import io
import uuid
import warnings
import weakref
from pathlib import Path
from typing import Any, Dict, Optional

import torch

from ..atomic import atomic_write, previous_path
from .plain import check_plain

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_FORMAT_VERSION",
    "DamagedCheckpointError",
    "run_id",
    "adopt_run_id",
    "write_payload",
    "read_checkpoint",
    "refuse_foreign_file",
]

CHECKPOINT_FORMAT = "avalanche-nispa/checkpoint"
CHECKPOINT_FORMAT_VERSION = 2
"""Bumped whenever the layout changes; a checkpoint of another version is refused.
Version 2: a checksummed body; plugins (NISPA's own included) stored through their
``state_dict``; metric objects as plain data."""

_HEADER_KEYS = ("format", "format_version", "library_version", "run_id", "next_experience")

# One id per training run, kept across save/load, so that a run may replace its own
# checkpoint but never another run's.
_RUN_IDS: "weakref.WeakKeyDictionary[Any, str]" = weakref.WeakKeyDictionary()


class DamagedCheckpointError(ValueError):
    """A checkpoint file of this library whose body fails its checksum or cannot be read."""


def run_id(strategy: Any) -> str:
    if strategy not in _RUN_IDS:
        _RUN_IDS[strategy] = uuid.uuid4().hex  # os.urandom: no RNG of the run is touched
    return _RUN_IDS[strategy]


def adopt_run_id(strategy: Any, saved: str) -> None:
    """A strategy that loaded a checkpoint continues that run."""
    _RUN_IDS[strategy] = saved


def write_payload(payload: Dict[str, Any], path: Path) -> Path:
    """Write ``payload`` as a checksummed checkpoint, keeping the file it replaces."""
    check_plain(payload, "checkpoint")
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    body = buffer.getvalue()
    header = {key: payload[key] for key in _HEADER_KEYS}
    header["sha256"] = hashlib.sha256(body).hexdigest()
    header["body"] = torch.frombuffer(bytearray(body), dtype=torch.uint8)
    return atomic_write(path, lambda handle: torch.save(header, handle), keep_previous=True)


def refuse_foreign_file(path: Path, current_run: str) -> None:
    """Refuse to replace anything at ``path`` but a checkpoint of ``current_run``.

    A damaged file there counts as this run's when its header (or, if the header is
    unreadable too, the kept ``.previous`` checkpoint) names this run.
    """
    if path.is_dir():
        raise IsADirectoryError(f"checkpoint path {path} is a directory; give a file name")
    if not path.exists():
        return
    existing = _read_header(path)
    if existing is None:
        kept = _read_header(previous_path(path))
        if kept is not None and kept.get("run_id") == current_run:
            return
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


def read_checkpoint(path: Any, *, map_location: Any = "cpu", fallback: bool = True
                    ) -> Dict[str, Any]:
    """Read a checkpoint with ``torch.load(weights_only=True)``, check its format,
    version and checksum; returns the plain dictionary (``"next_experience"``,
    ``"phase_history"``, ``"model"``, ...).

    :param fallback: when ``path`` is damaged and ``<path>.previous`` is a sound
        checkpoint, warn and return that one instead.
    """
    path = Path(path)
    try:
        return _read_body(path, map_location)
    except DamagedCheckpointError as damage:
        previous = previous_path(path)
        if not fallback or not previous.is_file():
            raise
        try:
            payload = _read_body(previous, map_location)
        except ValueError:
            raise damage from None
        warnings.warn(
            f"{damage}; loading the previous checkpoint {previous} instead (saved after "
            f"{payload['next_experience']} experiences): the experiences after it are "
            "trained again", RuntimeWarning, stacklevel=3)
        return payload


def _read_body(path: Path, map_location: Any) -> Dict[str, Any]:
    # the header (and the body's bytes in it) always on the CPU, whatever map_location
    # says: only the checkpoint's own tensors go where the caller asks
    header = _load(path, "cpu", mmap=False)
    _check_format(header, path)
    body = header.get("body")
    if not isinstance(body, torch.Tensor) or header.get("sha256") != hashlib.sha256(
            body.numpy().tobytes()).hexdigest():
        raise DamagedCheckpointError(
            f"{path} is damaged: its contents do not match their SHA-256 checksum (a "
            "changed or truncated copy)")
    try:
        payload = torch.load(io.BytesIO(body.numpy().tobytes()), map_location=map_location,
                             weights_only=True)
    except Exception as error:  # noqa: BLE001 - a sound checksum over unreadable data
        raise DamagedCheckpointError(f"{path} is damaged: {error}") from error
    return payload


def _check_format(header: Dict[str, Any], path: Path) -> None:
    from .. import __version__

    if header.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{path} is not a NISPA checkpoint (no '{CHECKPOINT_FORMAT}' marker); give the "
            "path of a file written by avalanche_nispa.checkpoint.save_checkpoint"
        )
    version = header.get("format_version")
    if version != CHECKPOINT_FORMAT_VERSION:
        newer = isinstance(version, int) and version > CHECKPOINT_FORMAT_VERSION
        fix = ("upgrade avalanche-nispa to a release that reads it" if newer else
               "load it with the avalanche-nispa release that wrote it "
               f"(version {header.get('library_version', '?')}) or restart the run")
        raise ValueError(
            f"{path} is a NISPA checkpoint of format version {version}, but this "
            f"avalanche-nispa ({__version__}) reads format version "
            f"{CHECKPOINT_FORMAT_VERSION}: {fix}"
        )


def _read_header(path: Path) -> Optional[Dict[str, Any]]:
    """The header of a file of this format, or None if it is not one (or unreadable)."""
    if not path.is_file():
        return None
    try:
        header = _load(path, "cpu", mmap=True)
    except (ValueError, OSError):
        return None
    return header if header.get("format") == CHECKPOINT_FORMAT else None


def _load(path: Path, map_location: Any, mmap: bool) -> Dict[str, Any]:
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except FileNotFoundError:
        raise
    except Exception as error:  # noqa: BLE001 - anything unreadable is "not a checkpoint"
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        reason = next((line for line in lines if "WeightsUnpickler" in line),
                      lines[0] if lines else "")
        raise DamagedCheckpointError(
            f"{path} is not a NISPA checkpoint: torch.load(weights_only=True) cannot read "
            f"it ({type(error).__name__}: {reason})"
        ) from error
    if not isinstance(payload, dict):
        raise ValueError(f"{path} is not a NISPA checkpoint: it holds a {type(payload).__name__}")
    return payload
