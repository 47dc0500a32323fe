"""One harness at a time in a results directory.

A sweep holds an exclusive ``fcntl.flock`` on ``<results_dir>/.lock`` from its
overwrite check to its last report, so that two processes never run, count or
write the same runs at once. The lock file records who holds it (pid, host,
start time, command); a second harness is refused at once with those facts
instead of waiting. The kernel drops the lock when its process ends, however it
ends, so a killed harness never leaves the directory locked; a finished one also
removes the file.

The lock belongs to a thread: the same thread may take it again (the command
line holds it around :func:`~.comparison.run_comparison`, which takes it
too), while another thread or process is refused. Without ``fcntl`` (not
POSIX) no lock is taken, and a warning says so.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
import warnings
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_NAME", "ResultsDirBusy", "results_dir_lock"]

#: The lock file's name inside a results directory.
LOCK_NAME = ".lock"

_HELD: dict[tuple[Path, int], int] = {}  # (directory, thread) -> how many times taken
_GUARD = threading.Lock()


class ResultsDirBusy(RuntimeError):
    """Another harness is writing the results directory."""

    def __init__(self, results_dir: Path, holder: dict[str, Any]) -> None:
        self.results_dir, self.holder = results_dir, holder
        host = holder.get("host")
        where = f" on {host}" if host not in (None, socket.gethostname()) else ""
        super().__init__(
            f"another harness (pid {holder.get('pid', '?')}{where}, started "
            f"{holder.get('started', '?')}, command {holder.get('command') or '?'}) is writing "
            f"{results_dir}; wait for it or use another --results-dir"
        )


@contextlib.contextmanager
def results_dir_lock(results_dir: Path, command: str = "") -> Iterator[Path]:
    """Hold ``results_dir``'s lock for the block (the directory is created).

    Args:
        results_dir: the directory a sweep writes.
        command: what the lock file says is writing (default: this process's argv).

    Raises:
        ResultsDirBusy: another process, or another thread, holds it.
    """
    directory = Path(results_dir)
    key = (directory.resolve(), threading.get_ident())
    with _GUARD:
        again = key in _HELD
        if again:
            _HELD[key] += 1
    if again:
        try:
            yield directory
        finally:
            with _GUARD:
                _HELD[key] -= 1
        return
    descriptor = _acquire(directory, command or " ".join([sys.executable, *sys.argv]))
    with _GUARD:
        _HELD[key] = 1
    try:
        yield directory
    finally:
        with _GUARD:
            del _HELD[key]
        if descriptor is not None:
            _release(directory / LOCK_NAME, descriptor)


def _acquire(directory: Path, command: str) -> Optional[int]:
    """The descriptor of the locked lock file, its holder facts written in it."""
    if fcntl is None:  # pragma: no cover - not POSIX
        warnings.warn(f"no file locking on this platform: nothing stops a second harness "
                      f"from writing {directory} at the same time", RuntimeWarning)
        return None
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_NAME
    while True:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _holder(descriptor)
            os.close(descriptor)
            raise ResultsDirBusy(directory, holder) from None
        # the previous holder removes the file when it is done: if it did so
        # after we opened it, ours is a lock on a file nobody else will open
        try:
            if os.path.samestat(os.fstat(descriptor), os.stat(path)):
                break
        except FileNotFoundError:
            pass
        os.close(descriptor)
    facts = {"pid": os.getpid(), "host": socket.gethostname(),
             "started": datetime.now().astimezone().isoformat(timespec="seconds"),
             "command": command}
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, json.dumps(facts).encode(), 0)
    return descriptor


def _holder(descriptor: int) -> dict[str, Any]:
    """What the lock file says about its holder (empty if it has not written it yet)."""
    try:
        facts = json.loads(os.pread(descriptor, 1 << 16, 0).decode() or "{}")
    except (OSError, ValueError):
        return {}
    return facts if isinstance(facts, dict) else {}


def _release(path: Path, descriptor: int) -> None:
    """Remove the lock file, then unlock it (in that order: see :func:`_acquire`)."""
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    finally:
        os.close(descriptor)  # closing drops the flock
