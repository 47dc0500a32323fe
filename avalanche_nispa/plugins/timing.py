"""Where the time of a NISPA run goes, without patching anyone's methods.

:class:`PartTimer` accumulates seconds per named part (``timings[part]``); the phase
loop times its own parts with ``with timer("validation"): ...``. The end-of-experience
work of plugins (promotion, freezing, re-initialisation) is timed by two
:class:`TimingMark` plugins placed around them in the strategy's plugin list:
Avalanche calls plugins in list order, so the time between the opening mark's
``after_training_exp`` and the closing mark's is theirs.
"""
from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Dict, Iterator, Optional, Tuple

from .base import NISPAPlugin

__all__ = ["PartTimer", "TimingMark"]


class PartTimer:
    """Seconds per part of a run, in :attr:`timings`."""

    def __init__(self) -> None:
        self.timings: Dict[str, float] = defaultdict(float)
        self._open: Dict[str, float] = {}

    @contextmanager
    def __call__(self, part: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[part] += time.perf_counter() - start

    def start(self, part: str) -> None:
        self._open[part] = time.perf_counter()

    def stop(self, part: str) -> None:
        started: Optional[float] = self._open.pop(part, None)
        if started is not None:
            self.timings[part] += time.perf_counter() - started

    def marks(self, part: str) -> Tuple["TimingMark", "TimingMark"]:
        """The opening and closing plugins that time the ``after_training_exp`` of
        the plugins placed between them, into ``part``."""
        return TimingMark(self, part, opening=True), TimingMark(self, part, opening=False)


class TimingMark(NISPAPlugin):
    """One end of a timed stretch of the plugin list (see :meth:`PartTimer.marks`)."""

    def __init__(self, timer: PartTimer, part: str, *, opening: bool) -> None:
        super().__init__()
        self._timer, self._part, self._opening = timer, part, opening

    def after_training_exp(self, strategy, **kwargs) -> None:
        if self._opening:
            self._timer.start(self._part)
        else:
            self._timer.stop(self._part)
