"""Two processes writing one results directory (issue 12, item 15).

Every test here uses real processes: a child Python started with ``subprocess``
that holds a temporary file open, or the results directory's lock, until the
test tells it to go on (a line on its stdin). Nothing trains.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from avalanche_nispa import atomic

REPO = Path(__file__).resolve().parent.parent


def _child(script: str) -> subprocess.Popen:
    """A Python child running ``script``; it prints ``ready`` once it holds what it holds."""
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    line = process.stdout.readline()
    if line.strip() != "ready":
        process.kill()
        raise AssertionError(f"the child did not start: {line!r} {process.stderr.read()}")
    return process


def _finish(process: subprocess.Popen) -> tuple[int, str]:
    """Let the child go on; its exit code and stderr."""
    _out, err = process.communicate("go\n", timeout=60)
    return process.returncode, err


_SLOW_WRITER = """
    import sys
    from avalanche_nispa.atomic import atomic_write

    def write(handle):
        handle.write(b"from the child")
        handle.flush()
        print("ready", flush=True)
        sys.stdin.readline()  # the parent writes the same file meanwhile

    atomic_write({target!r}, write)
"""


def test_a_second_writer_does_not_delete_a_live_writers_temporary(tmp_path):
    target = tmp_path / "results.json"
    child = _child(_SLOW_WRITER.format(target=str(target)))
    try:
        temporaries = [p.name for p in tmp_path.iterdir()]
        assert len(temporaries) == 1 and f".{child.pid}." in temporaries[0]
        atomic.atomic_write_text(target, "from the parent")  # cleans up stale temporaries
        assert (tmp_path / temporaries[0]).exists()
    finally:
        code, err = _finish(child)
    assert code == 0, err
    assert target.read_text() == "from the child"  # the last rename wins, nothing torn
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_temporaries_of_dead_writers_are_removed(tmp_path):
    target = tmp_path / "runs.csv"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    hexa = "0123456789abcdef" * 2
    left = tmp_path / f".runs.csv.{int(dead.stdout)}.{hexa}.tmp"
    legacy = tmp_path / f".runs.csv.{hexa}.tmp"  # named before the pid was part of it
    mine = tmp_path / f".runs.csv.{os.getpid()}.{hexa}.tmp"  # another thread of ours
    for path in (left, legacy, mine):
        path.write_text("torn")
    atomic.atomic_write_text(target, "a,b\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == [mine.name, "runs.csv"]
