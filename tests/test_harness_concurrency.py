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


# --------------------------------------------------------------------------- #
# The results directory's lock

_HOLDER = """
    import sys
    from avalanche_nispa.harness.lock import results_dir_lock

    with results_dir_lock({directory!r}, "python -m benchmarks.compare --child"):
        print("ready", flush=True)
        sys.stdin.readline()
"""

_TINY = ["--strategies", "naive", "--seeds", "0", "--set", "epochs=1",
         "--set", "backbone.hidden_sizes=8", "--no-plots"]


@pytest.fixture
def one_thread():
    """The digits configuration asks torch for one thread: give the others back."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_a_second_harness_is_refused_naming_the_first(tmp_path, one_thread):
    from avalanche_nispa.harness import cli

    results = tmp_path / "results"
    child = _child(_HOLDER.format(directory=str(results)))
    try:
        with pytest.raises(SystemExit) as refused:
            cli.main([*_TINY, "--results-dir", str(results)])
        message = str(refused.value)
        assert f"another harness (pid {child.pid}, started " in message
        assert f"command python -m benchmarks.compare --child) is writing {results}; " \
               "wait for it or use another --results-dir" in message
        assert [p.name for p in results.iterdir()] == [".lock"]  # nothing ran
    finally:
        code, err = _finish(child)
    assert code == 0, err
    assert not (results / ".lock").exists()  # the holder removed it when done
    result = cli.main([*_TINY, "--results-dir", str(results)])
    assert result.outcome.executed == ["naive__seed0"]
    assert not (results / ".lock").exists()


def test_a_killed_harness_leaves_the_directory_unlocked(tmp_path):
    from avalanche_nispa.harness.lock import ResultsDirBusy, results_dir_lock

    child = _child(_HOLDER.format(directory=str(tmp_path)))
    with pytest.raises(ResultsDirBusy, match=f"pid {child.pid},"):
        with results_dir_lock(tmp_path):
            pass
    child.kill()
    child.communicate(timeout=60)
    assert (tmp_path / ".lock").exists()  # left behind, but no longer locked
    with results_dir_lock(tmp_path, "second"):
        assert '"command": "second"' in (tmp_path / ".lock").read_text()
    assert not (tmp_path / ".lock").exists()


def test_the_lock_is_taken_again_by_its_thread_but_not_by_another(tmp_path):
    import threading

    from avalanche_nispa.harness.lock import ResultsDirBusy, results_dir_lock

    errors: list[BaseException] = []

    def other_thread() -> None:
        try:
            with results_dir_lock(tmp_path):
                pass
        except ResultsDirBusy as error:
            errors.append(error)

    with results_dir_lock(tmp_path, "outer"):
        with results_dir_lock(tmp_path, "inner"):  # run_comparison inside the command line
            pass
        assert (tmp_path / ".lock").exists()  # the inner block did not release it
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    assert len(errors) == 1 and f"pid {os.getpid()}," in str(errors[0])
    assert not (tmp_path / ".lock").exists()
