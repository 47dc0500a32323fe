"""The peak memory of a run: the resident set size sampled while it trains."""

from __future__ import annotations

import threading
from typing import Any, Optional

__all__ = ["PeakMemory"]


class PeakMemory:
    """Peak resident set size (RSS) of this process while a block runs.

    A background thread samples the RSS every ``interval`` seconds. ``peak_mb``
    is the highest sample; ``delta_mb`` is that minus the RSS when the block
    started, i.e. the memory the run added on top of what the process already
    held (Python, torch, Avalanche, the data set). Short spikes between two
    samples can be missed.
    """

    def __init__(self, interval: float = 0.05) -> None:
        import psutil

        self._process = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.baseline_mb = self.peak_mb = 0.0

    def _rss_mb(self) -> float:
        return self._process.memory_info().rss / 2**20

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            self.peak_mb = max(self.peak_mb, self._rss_mb())

    def __enter__(self) -> "PeakMemory":
        self.baseline_mb = self.peak_mb = self._rss_mb()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak_mb = max(self.peak_mb, self._rss_mb())

    @property
    def delta_mb(self) -> float:
        return self.peak_mb - self.baseline_mb
