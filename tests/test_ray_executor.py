"""Harness sweeps on Ray (issue 16): the same records and tables as a sequential run,
dead workers retried then reported, a killed driver resumed, data missing on a worker.

Skipped without Ray (``pip install avalanche-nispa[ray]``). One local Ray instance
of 2 CPUs is shared by the tests of this module (the executor uses a connection it
finds open); the killed-driver test starts its own, in the driver it kills.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from avalanche_nispa.harness import cli, comparison, configs, planning  # noqa: E402
from avalanche_nispa.harness.executors.ray_executor import RayExecutor  # noqa: E402
from avalanche_nispa.harness.runner import EXECUTION_FIELDS  # noqa: E402

REPO = Path(__file__).resolve().parent.parent

#: Two strategies x two seeds of split_digits, a few seconds each.
COMMAND = ["--strategies", "naive,nispa", "--seeds", "0,1", "--set", "epochs=2", "--no-plots"]


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray instance of 2 CPUs for this module's tests."""
    import logging

    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def clean_runs(local_ray, tmp_path_factory):
    """``COMMAND`` run sequentially and on Ray, each into its own results directory."""
    import torch

    threads = torch.get_num_threads()
    root = tmp_path_factory.mktemp("clean")
    try:
        for name, extra in (("sequential", []), ("ray", ["--executor", "ray"])):
            cli.main([*COMMAND, *extra, "--results-dir", str(root / name)])
    finally:
        torch.set_num_threads(threads)
    return root / "sequential", root / "ray"


def _records(results: Path) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted((results / "runs").glob("*.json"))}


def _comparable(record: dict) -> dict:
    """The record without what depends on how it ran (``EXECUTION_FIELDS``, the host)."""
    kept = {k: v for k, v in record.items() if k not in EXECUTION_FIELDS}
    kept["environment"] = {k: v for k, v in record["environment"].items() if k != "host"}
    return kept


def _table(results: Path) -> list[dict]:
    """results.csv without the columns of ``EXECUTION_FIELDS`` (times, memory; a column
    may carry a suffix such as ``_std``)."""
    with open(results / "results.csv", newline="") as handle:
        return [{k: v for k, v in row.items() if not k.startswith(tuple(EXECUTION_FIELDS))}
                for row in csv.DictReader(handle)]


def test_a_ray_sweep_gives_the_sequential_records_logs_and_table(clean_runs):
    sequential, on_ray = clean_runs
    expected, got = _records(sequential), _records(on_ray)
    assert list(got) == list(expected) == [
        "naive__seed0.json", "naive__seed1.json", "nispa__seed0.json", "nispa__seed1.json"]
    for name in expected:
        assert _comparable(got[name]) == _comparable(expected[name]), name
        assert got[name]["environment"]["host"] == socket.gethostname()
    for log in (sequential / "logs").iterdir():
        assert (on_ray / "logs" / log.name).read_text() == log.read_text()
    assert _table(on_ray) == _table(sequential)
    rows = json.loads((on_ray / "results.json").read_text())["rows"]
    assert [(r["label"], r["seeds"]) for r in rows] == [("naive", [0, 1]), ("nispa", [0, 1])]


def _faulty_task(attempts_dir: Path):
    """A Ray task that, by seed: 0 kills its worker the first time, 1 kills it every
    time, 2 raises; otherwise (and seed 0's retry) runs the plan normally. Every
    attempt leaves a file in ``attempts_dir``. Self-contained: it is shipped to the
    workers by value."""

    def task(work):
        import os
        import signal
        import uuid

        from avalanche_nispa.harness.executors.worker import run_task

        seed = work.plan.seed
        tried = len(list(attempts_dir.glob(f"seed{seed}.*")))
        (attempts_dir / f"seed{seed}.{uuid.uuid4().hex}").touch()
        if (seed == 0 and tried == 0) or seed == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        if seed == 2:
            raise ValueError("a bad setting, raised by the run itself")
        return run_task(work)

    return task


def test_dead_workers_are_retried_then_reported_failed_and_exceptions_are_not_retried(
    local_ray, tmp_path
):
    cfg = planning.apply_overrides(configs.get_config("split_digits"),
                                   [("epochs", 1), ("backbone.hidden_sizes", (8,))])
    plans = planning.make_plans(cfg, ["naive"], [0, 1, 2])
    attempts, results = tmp_path / "attempts", tmp_path / "results"
    attempts.mkdir()

    def compare(executor):
        return comparison.run_comparison(
            cfg, plans, results_dir=results, benchmark_factory=None, plots=False,
            progress=False, command="test", executor=executor)

    first = compare(RayExecutor(max_retries=1, task=_faulty_task(attempts)))
    tries = {seed: len(list(attempts.glob(f"seed{seed}.*"))) for seed in (0, 1, 2)}
    assert tries == {0: 2, 1: 2, 2: 1}  # retried once after a death; an exception never
    assert first.outcome.executed == ["naive__seed0"]
    failed = {f.seed: f.error for f in first.outcome.failed}
    assert sorted(failed) == [1, 2]
    assert "its worker died" in failed[1] and "2 attempt(s)" in failed[1]
    assert "ValueError: a bad setting, raised by the run itself" in failed[2]
    assert "not retried" in failed[2]
    log = (results / "logs" / "naive__seed2.log").read_text()
    assert log.startswith("The run raised an exception in ray::nispa-run naive__seed2() (pid=")
    assert 'raise ValueError("a bad setting' in log and "\x1b" not in log
    assert sorted(p.name for p in (results / "runs").iterdir()) == ["naive__seed0.json"]
    markdown = (results / "results.md").read_text()
    assert "| naive | 0; FAILED: 1,2 |" in markdown
    assert "- naive seed 1: its worker died" in markdown

    second = compare(RayExecutor())  # the same command again, nothing injected
    assert second.outcome.skipped == ["naive__seed0"]
    assert sorted(second.outcome.executed) == ["naive__seed1", "naive__seed2"]
    assert not second.outcome.failed and "FAILED" not in (results / "results.md").read_text()


def test_a_worker_that_cannot_find_the_data_stops_the_sweep_naming_host_path_and_fix(
    local_ray, tmp_path
):
    missing = tmp_path / "not-mounted-here"
    with pytest.raises(SystemExit) as refused:
        cli.main(["--benchmark", "split_mnist", "--strategies", "naive", "--seeds", "0",
                  "--executor", "ray", "--data-root", str(missing),
                  "--results-dir", str(tmp_path / "results")])
    message = str(refused.value)
    assert f"the data root {missing} (--data-root) does not exist on the worker host " \
           f"{socket.gethostname()}" in message
    assert "mount the shared data directory at that path on every node" in message
    assert not (tmp_path / "results" / "runs").exists()


def _driver(results: Path) -> subprocess.Popen:
    """``COMMAND`` on Ray in a child process of its own session (its Ray with it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.compare", *COMMAND, "--executor", "ray",
         "--results-dir", str(results)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)}, start_new_session=True,
    )


def test_a_killed_driver_resumes_running_only_what_is_not_finished(clean_runs, tmp_path):
    results = tmp_path / "results"
    driver = _driver(results)
    try:
        deadline = time.monotonic() + 240
        while not list((results / "runs").glob("*.json")):
            assert driver.poll() is None, driver.communicate()
            assert time.monotonic() < deadline, "no run finished in time"
            time.sleep(0.05)
        driver.kill()  # SIGKILL: no clean-up of any kind
        driver.communicate()
        finished = {p.name: p.read_bytes() for p in (results / "runs").glob("*.json")}
        assert 1 <= len(finished) < 4, "the driver must die with runs left"
        assert not (results / "results.md").exists()

        # the same command again, while what the killed driver left of Ray lingers
        again = _driver(results)
        out, err = again.communicate(timeout=300)
        assert again.returncode == 0, err
    finally:
        try:  # what is left of the killed driver's Ray (its session's processes)
            os.killpg(driver.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert f"{4 - len(finished)} run(s) done, {len(finished)} already finished" in out
    assert err.count(" done in ") == 4 - len(finished)  # one progress line per run it ran
    for name, content in finished.items():  # not run again, not rewritten
        assert (results / "runs" / name).read_bytes() == content
    sequential, on_ray = clean_runs
    assert _table(results) == _table(on_ray)
    resumed = _records(results)
    # a NISPA run the killed driver left between experiences continues from its
    # checkpoint: its record says so (segments) and otherwise equals a clean run's
    for name, record in resumed.items():
        if "segments" in record:
            assert name not in finished and record["strategy"] == "nispa", name
            assert record["segments"] == 2, name
    assert {n: _comparable(r) for n, r in resumed.items()} == {
        n: _comparable(r) for n, r in _records(on_ray).items()}
