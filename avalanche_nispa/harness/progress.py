"""Progress of a sweep: a tqdm bar on a terminal, plain lines in a log.

A redirected stderr (a file, a CI log) cannot show a bar, so there the harness
prints one line per finished epoch with the time so far and an estimate of the
time left for the whole sweep, e.g.
``[3/12 runs] nispa seed 1: exp 2/5 epoch 4 — elapsed 1m20s, ETA 4m10s``.
Both are fed by :class:`ProgressPlugin`, an Avalanche plugin handed to each
strategy through ``plugins=`` (its epoch and experience hooks), so no strategy
is patched. The ETA assumes the remaining runs progress as fast as the finished
part did; epochs count within an experience when the strategy has an epoch
budget (NISPA's phases decide its epochs, so there only experiences count).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, Optional, TextIO

from avalanche.core import SupervisedPlugin

__all__ = ["ProgressPlugin", "SweepProgress", "format_duration"]


def format_duration(seconds: float) -> str:
    """``75`` -> ``"1m15s"``; hours as ``"1h02m"``; short and stable for logs."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


class SweepProgress:
    """Where a sweep is, shown as a bar (``"bar"``), lines (``"lines"``) or not (``"off"``).

    Args:
        runs: runs the sweep will execute.
        n_experiences: experiences per run (the bar counts experiences).
        mode: ``"bar"``, ``"lines"``, ``"off"``, or None: a bar when ``stream``
            is a terminal, lines otherwise.
        stream: where to write (stderr by default).
        clock: seconds, monotonic (injectable for tests).
    """

    def __init__(
        self,
        runs: int,
        n_experiences: int,
        *,
        mode: Optional[str] = None,
        stream: Optional[TextIO] = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if mode is None:
            mode = "bar" if getattr(self.stream, "isatty", lambda: False)() else "lines"
        self.mode, self.runs, self.n_experiences, self.clock = mode, runs, n_experiences, clock
        self.started = clock()
        self.run_index = 0
        self._label = ""
        self._calls, self._epochs = 1, None
        self._exp_done = self._epoch = 0
        self._skipped = 0.0  # share of the sweep finished by earlier processes
        self._bar = None
        if mode == "bar":
            from tqdm.auto import tqdm

            self._bar = tqdm(total=runs * n_experiences, unit="exp", file=self.stream)

    def start_run(self, label: str, seed: int, *, calls: int, epochs: Optional[int],
                  done: int = 0) -> None:
        """A run begins: ``calls`` training calls of ``epochs`` epochs (None: unknown),
        of which ``done`` were finished by an earlier process (a resumed run)."""
        self.run_index += 1
        self._label = f"{label} seed {seed}"
        self._calls, self._epochs = max(calls, 1), epochs
        self._exp_done, self._epoch = done, 0
        self._skipped += done / self._calls / max(self.runs, 1)  # not this process's work
        if self._bar is not None:
            self._bar.set_description(self._label)
            self._bar.update(done * (self.n_experiences // self._calls))
        elif done and self.mode == "lines":
            print(f"[{self.run_index}/{self.runs} runs] {self._label}: resumed after exp "
                  f"{done}/{self._calls}", file=self.stream, flush=True)

    def fraction(self) -> float:
        """Share of the sweep done, counting finished epochs of the current experience."""
        within = self._exp_done
        if self._epochs and self._exp_done < self._calls:
            within += min(self._epoch, self._epochs) / self._epochs
        return (self.run_index - 1 + within / self._calls) / max(self.runs, 1)

    def epoch_done(self) -> None:
        """An epoch of the current experience finished."""
        self._epoch += 1
        if self.mode == "lines":
            elapsed = self.clock() - self.started
            done = self.fraction()
            worked = done - self._skipped
            eta = format_duration(elapsed * (1 - done) / worked) if worked > 0 else "?"
            print(
                f"[{self.run_index}/{self.runs} runs] {self._label}: exp "
                f"{self._exp_done + 1}/{self._calls} epoch {self._epoch} — elapsed "
                f"{format_duration(elapsed)}, ETA {eta}",
                file=self.stream,
                flush=True,
            )

    def experience_done(self) -> None:
        """A training call (an experience, or the whole stream for joint training) ended."""
        self._exp_done += 1
        self._epoch = 0
        if self._bar is not None:
            self._bar.update(self.n_experiences // self._calls)

    def plugin(self) -> "ProgressPlugin":
        """A fresh Avalanche plugin reporting to this progress."""
        return ProgressPlugin(self)

    def close(self) -> None:
        """Close the bar, if any."""
        if self._bar is not None:
            self._bar.close()


class ProgressPlugin(SupervisedPlugin):
    """Tells a :class:`SweepProgress` when an epoch and an experience end."""

    def __init__(self, progress: SweepProgress) -> None:
        super().__init__()
        self.progress = progress

    def after_training_epoch(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        self.progress.epoch_done()

    def after_training_exp(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        self.progress.experience_done()
