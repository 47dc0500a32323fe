"""Runs that outlive their process: a sweep's NISPA run continues from its last experience.

A sweep writes a run's record only when the run finishes, so a run longer than the
machine is available (a session with a time limit, a preempted node) would start
over every time. A strategy that can be checkpointed (NISPA and its variants,
:mod:`avalanche_nispa.checkpoint`) is saved after every experience's evaluation,
under ``<results-dir>/partial/`` (``<results-dir>/tuning/partial/`` for tuning runs):

* ``<stem>.exp<k>.ckpt``: the strategy after ``k`` experiences (model, optimizer,
  unit states, RNG states, the evaluator's metric state), with the copy the
  checkpoint writer keeps (``.previous``);
* ``<stem>.json``: what the record needs from those ``k`` experiences (the rows of
  the accuracy matrix, the per-experience details, training and wall time so far,
  peak memory, warnings, the log text) and the name of the checkpoint it goes with.

The next sweep with the same settings (the same fingerprint) loads both and trains
the remaining experiences. Its accuracies, forgetting and details equal those of
an uninterrupted run bit for bit (``tests/test_harness_resume.py``); its training and
wall times are the sums over the segments (each segment's wall time includes
building the strategy), its peak memory the highest segment's, and the record
says how many segments it took (``segments``). A partial run of other settings is
ignored and replaced. The files are removed when the run finishes, as its record goes
to the sweep (a process killed in between runs it again from the start).
The JSON is written after the checkpoint it names, and older checkpoints are removed
only after that, so a process killed at any point leaves a consistent pair.

Strategies that cannot be checkpointed (the baselines: short runs) start over.
"""

from __future__ import annotations

import glob
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from avalanche_nispa.atomic import atomic_write_text

__all__ = ["PARTIAL_DIR", "PartialRun", "Progress", "resumable"]

#: The subdirectory of a results directory that holds unfinished runs.
PARTIAL_DIR = "partial"

_VERSION = 1


def resumable(strategy: Any) -> bool:
    """Whether the harness can save ``strategy`` mid-run and resume it."""
    from avalanche_nispa.strategy import NISPA

    return isinstance(strategy, NISPA)


@dataclass
class Progress:
    """What a run's record needs from the experiences it has finished.

    Attributes:
        done: experiences trained and evaluated.
        matrix: their rows of the accuracy matrix.
        details: the strategy's per-experience details (JSON-ready).
        train_time_s: training seconds so far, over all segments.
        wall_time_s: wall seconds so far, over all segments.
        peak_rss_mb: the highest peak resident set size of the segments.
        peak_rss_delta_mb: the highest peak increase of the segments.
        warnings: the warnings recorded so far.
        log_text: the run's text log so far.
        segments: processes the run has taken so far.
    """

    done: int = 0
    matrix: list[list[float]] = field(default_factory=list)
    details: list[Any] = field(default_factory=list)
    train_time_s: float = 0.0
    wall_time_s: float = 0.0
    peak_rss_mb: float = 0.0
    peak_rss_delta_mb: float = 0.0
    warnings: list[str] = field(default_factory=list)
    log_text: str = ""
    segments: int = 0


class PartialRun:
    """The unfinished state of one run (``stem``) of given settings (``fingerprint``).

    Args:
        directory: the ``partial/`` directory of the sweep's results.
        stem: the run's file stem (``RunPlan.stem``).
        fingerprint: the run's settings (``RunPlan.fingerprint``).
    """

    def __init__(self, directory: Path, stem: str, fingerprint: str) -> None:
        self.directory, self.stem, self.fingerprint = Path(directory), stem, fingerprint
        self.state_path = self.directory / f"{stem}.json"

    def _checkpoint(self, done: int) -> Path:
        return self.directory / f"{self.stem}.exp{done}.ckpt"

    def read(self) -> Optional[tuple[Progress, Path]]:
        """The saved progress and its checkpoint, if they belong to this run's settings."""
        try:
            saved = json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return None
        if saved.get("version") != _VERSION or saved.get("fingerprint") != self.fingerprint:
            return None
        checkpoint = self.directory / str(saved.get("checkpoint", ""))
        if not checkpoint.is_file():
            return None
        fields = {k: saved[k] for k in Progress.__dataclass_fields__ if k in saved}
        return Progress(**fields), checkpoint

    def restore(self, strategy: Any, progress: Progress, checkpoint: Path) -> None:
        """Load ``checkpoint`` into the freshly built ``strategy``.

        Raises:
            RuntimeError: the checkpoint does not continue this run (its next
                experience is not ``progress.done``, or it does not fit the strategy),
                naming the files to delete.
        """
        from avalanche_nispa.checkpoint import load_checkpoint

        try:
            start = load_checkpoint(strategy, checkpoint)
        except (ValueError, TypeError, KeyError) as err:
            raise RuntimeError(
                f"the unfinished run {self.stem} in {self.directory} cannot be resumed: "
                f"{err}\nDelete {self.state_path.name} and {checkpoint.name} there (or pass "
                "--rerun) to run it from the start") from err
        if start != progress.done:
            raise RuntimeError(
                f"the unfinished run {self.stem} in {self.directory} is inconsistent: its "
                f"checkpoint {checkpoint.name} continues at experience {start}, its record "
                f"at {progress.done}. Delete both (or pass --rerun) to run it from the start")

    def save(self, strategy: Any, progress: Progress) -> None:
        """Write ``strategy`` after ``progress.done`` experiences, then the progress."""
        from avalanche_nispa.checkpoint import save_checkpoint

        self.directory.mkdir(parents=True, exist_ok=True)
        checkpoint = self._checkpoint(progress.done)
        save_checkpoint(strategy, checkpoint, overwrite=True)
        state = {"version": _VERSION, "fingerprint": self.fingerprint,
                 "checkpoint": checkpoint.name, **asdict(progress)}
        atomic_write_text(self.state_path, json.dumps(state, allow_nan=False) + "\n")
        self._remove_checkpoints(keep=checkpoint.name)

    def discard(self) -> None:
        """Remove every file of this run (the run finished, or is run again)."""
        self.state_path.unlink(missing_ok=True)
        self._remove_checkpoints(keep=None)

    def _remove_checkpoints(self, keep: Optional[str]) -> None:
        if not self.directory.is_dir():
            return
        for path in self.directory.glob(f"{glob.escape(self.stem)}.exp*.ckpt*"):
            if keep is None or not path.name.startswith(keep):
                path.unlink(missing_ok=True)
