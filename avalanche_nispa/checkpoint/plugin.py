"""Checkpoints written from inside a training loop, as an Avalanche plugin."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from avalanche.core import SupervisedPlugin

from .api import PathLike, write_checkpoint
from .files import refuse_foreign_file, run_id

__all__ = ["CheckpointPlugin"]


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
        write_checkpoint(strategy, self.path, overwrite=False, metric_state=self.metric_state)
        self._saved_at = int(strategy.clock.train_exp_counter)
        self._due = False
        self._evaluated_since_save = False

    def before_training(self, strategy, **kwargs) -> None:
        if not self._checked:
            refuse_foreign_file(self.path, run_id(strategy))
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
