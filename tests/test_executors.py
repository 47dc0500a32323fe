"""The harness's executors without Ray (issue 16): the interface, failed runs in the
tables, the worker's task run in-process, and that nothing imports Ray unless asked.

The Ray executor itself is tested in ``test_ray_executor.py`` (skipped without Ray).
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from avalanche_nispa.harness import cli, comparison, configs, planning, report, runner
from avalanche_nispa.harness.executors import (
    Executor,
    FailedRun,
    RunResult,
    SequentialExecutor,
    create_executor,
)
from avalanche_nispa.harness.executors.worker import DataUnavailable, WorkerTask, run_task
from avalanche_nispa.harness.runner import EXECUTION_FIELDS

REPO = Path(__file__).resolve().parent.parent

_TINY = ["--set", "epochs=1", "--set", "backbone.hidden_sizes=8", "--no-plots"]


@pytest.fixture(scope="module")
def tiny_cfg():
    """split_digits with one epoch and 8 hidden units: a run takes a fraction of a second."""
    cfg = configs.get_config("split_digits")
    return planning.apply_overrides(cfg, [("epochs", 1), ("backbone.hidden_sizes", (8,))])


@pytest.fixture
def one_thread():
    """The digits configuration sets torch to one thread: give the others back."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _python(script: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), **env}, timeout=300,
    )


# --------------------------------------------------------------------------- #
# Ray stays out unless asked for


def test_the_library_the_harness_and_a_sequential_compare_never_import_ray(tmp_path):
    done = _python(f"""
        import sys
        import avalanche_nispa, avalanche_nispa.harness
        from avalanche_nispa.harness import cli, executors, runner
        from avalanche_nispa.harness.executors import worker
        cli.main(["--strategies", "naive", "--seeds", "0", *{_TINY!r},
                  "--results-dir", {str(tmp_path / "results")!r}])
        loaded = sorted(m for m in sys.modules if m == "ray" or m.startswith("ray."))
        print("ray modules:", loaded)
    """)
    assert done.returncode == 0, done.stderr
    assert "ray modules: []" in done.stdout
    assert (tmp_path / "results" / "runs" / "naive__seed0.json").is_file()


def test_executor_ray_without_ray_says_what_to_install(tmp_path):
    results = tmp_path / "results"
    done = _python(f"""
        import sys
        sys.modules["ray"] = None  # Ray cannot be imported
        from avalanche_nispa.harness import cli
        cli.main(["--executor", "ray", "--strategies", "naive", "--seeds", "0",
                  "--results-dir", {str(results)!r}])
    """)
    assert done.returncode != 0
    assert "pip install avalanche-nispa[ray]" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not results.exists()  # refused before anything was locked or run


@pytest.mark.parametrize("flags, message", [
    (["--cpus-per-run", "2"], "--cpus-per-run: for --executor ray only"),
    (["--ray-address", "auto", "--max-retries", "1"],
     "--ray-address, --max-retries: for --executor ray only"),
    (["--executor", "ray", "--gpus-per-run", "1"], "add --device cuda"),
])
def test_executor_options_are_checked_before_anything_runs(flags, message, tmp_path):
    results = tmp_path / "results"
    with pytest.raises(SystemExit, match=message):
        cli.main(["--strategies", "naive", "--seeds", "0", *flags, "--results-dir", str(results)])
    assert not results.exists()


# --------------------------------------------------------------------------- #
# Failed runs: marked, not written, run again


class _FailingSeeds(Executor):
    """Runs sequentially, except that the runs of ``seeds`` fail (as a dead worker would)."""

    name = "test"

    def __init__(self, seeds):
        self.seeds, self.given = set(seeds), []

    def execute(self, plans, context):
        self.given = [plan.stem for plan in plans]
        ok = [plan for plan in plans if plan.seed not in self.seeds]
        for plan in plans:
            if plan.seed in self.seeds:
                yield RunResult(plan, log_text="killed\n", error="its worker died (test)")
        yield from SequentialExecutor().execute(ok, context)


def _compare(cfg, plans, results, executor):
    from avalanche_nispa.harness.runner import load_benchmark

    return comparison.run_comparison(
        cfg, plans, results_dir=results, benchmark_factory=lambda s: load_benchmark(cfg, s),
        plots=True, progress=False, command="test", executor=executor,
    )


def test_a_failed_run_is_marked_in_the_tables_not_written_and_run_again(tiny_cfg, tmp_path):
    plans = planning.make_plans(tiny_cfg, ["naive"], [0, 1])
    results = tmp_path / "results"
    first = _compare(tiny_cfg, plans, results, _FailingSeeds({1}))
    assert first.outcome.executed == ["naive__seed0"]
    assert [(f.label, f.seed, f.error) for f in first.outcome.failed] == [
        ("naive", 1, "its worker died (test)")]
    assert sorted(p.name for p in (results / "runs").iterdir()) == ["naive__seed0.json"]
    assert (results / "logs" / "naive__seed1.log").read_text() == "killed\n"
    (row,) = first.rows
    assert (row["seeds"], row["failed_seeds"], row["n_seeds"]) == ([0], [1], 1)
    markdown = (results / "results.md").read_text()
    assert "| naive | 0; FAILED: 1 |" in markdown
    assert "- naive seed 1: its worker died (test)" in markdown
    stored = json.loads((results / "results.json").read_text())
    assert stored["failed"][0]["seed"] == 1 and stored["rows"][0]["failed_seeds"] == [1]

    again = _FailingSeeds(set())
    second = _compare(tiny_cfg, plans, results, again)
    assert again.given == ["naive__seed1"]  # only what had failed
    assert (second.outcome.executed, second.outcome.skipped) == (["naive__seed1"], ["naive__seed0"])
    assert not second.outcome.failed and "FAILED" not in (results / "results.md").read_text()
    assert "failed" not in json.loads((results / "results.json").read_text())


def test_a_row_whose_every_run_failed_stays_in_the_table():
    run = {"label": "naive", "strategy": "naive", "seed": 0, "hparams": {}, "final_accuracy": 0.5,
           "forgetting": 0.1, "bwt": -0.1, "parameters": {"active": 3, "frozen": 0, "total": 3},
           "epochs_per_experience": [1], "wall_time_s": 1.0, "accuracy_matrix": [[0.5]]}
    lost = [FailedRun("ewc", "ewc", seed, {"ewc_lambda": 1.0}, "boom") for seed in (0, 1)]
    rows = report.aggregate([run], lost)
    assert [r["label"] for r in rows] == ["naive", "ewc"]
    assert "failed_seeds" not in rows[0]
    assert (rows[1]["seeds"], rows[1]["failed_seeds"], rows[1]["accuracy_matrix_mean"]) == ([], [0, 1], None)
    assert "| ewc | FAILED: 0,1 | — |" in report.markdown_table(rows)
    with pytest.raises(ValueError, match="finished and as failed"):
        report.aggregate([run], [FailedRun("naive", "naive", 0, {}, "boom")])


class _Losing(Executor):
    name = "test"

    def execute(self, plans, context):
        return iter(())


def test_an_executor_that_loses_a_run_is_an_error_not_a_shorter_table(tiny_cfg, tmp_path):
    plans = planning.make_plans(tiny_cfg, ["naive"], [0])
    with pytest.raises(RuntimeError, match="no result for naive__seed0"):
        _compare(tiny_cfg, plans, tmp_path / "results", _Losing())


# --------------------------------------------------------------------------- #
# The worker's task, run here


def test_the_worker_task_gives_the_sequential_record_and_log(tiny_cfg, one_thread, tmp_path):
    import torch

    torch.set_num_threads(1)  # as the worker will (and the sequential sweep does here)
    (plan,) = planning.make_plans(tiny_cfg, ["naive"], [3])
    benchmark = runner.load_benchmark(tiny_cfg, 3)
    log = tmp_path / "naive.log"
    expected = runner.run_single(plan, tiny_cfg, benchmark, log_path=log)
    reply = run_task(WorkerTask(plan, tiny_cfg, threads=1))
    assert (reply.host, reply.pid) == (socket.gethostname(), os.getpid())
    assert reply.log_text == log.read_text() and reply.log_text
    assert {k: v for k, v in reply.record.items() if k not in EXECUTION_FIELDS} == {
        k: v for k, v in expected.items() if k not in EXECUTION_FIELDS}


def test_the_worker_task_of_a_tuning_run_trains_on_the_validation_split(one_thread, tmp_path):
    import torch

    from avalanche_nispa.harness.validation import validation_benchmark

    torch.set_num_threads(1)
    cfg = planning.apply_overrides(configs.get_config("split_digits_cil"),
                                   [("epochs", 1), ("backbone.hidden_sizes", (8,))])
    (plan,) = planning.make_plans(cfg, ["naive"], [4])
    plan = dataclasses.replace(plan, evaluation="validation")  # as --tune plans it
    split = validation_benchmark(runner.load_benchmark(cfg, 4), cfg.validation_fraction, 4)
    expected = runner.run_single(plan, cfg, split, log_path=tmp_path / "naive.log")
    reply = run_task(WorkerTask(plan, cfg, threads=1))
    assert reply.record["evaluation"] == "validation"
    assert {k: v for k, v in reply.record.items() if k not in EXECUTION_FIELDS} == {
        k: v for k, v in expected.items() if k not in EXECUTION_FIELDS}


def test_a_worker_without_the_data_names_its_host_the_path_and_the_fix(isolated_data_env):
    cfg = configs.get_config("split_mnist")
    (plan,) = planning.make_plans(cfg, ["naive"], [0])
    missing = isolated_data_env / "not-mounted-here"
    with pytest.raises(DataUnavailable) as refused:
        run_task(WorkerTask(plan, cfg, data_root=str(missing)))
    message = str(refused.value)
    assert socket.gethostname() in message and str(missing) in message
    assert "mount the shared data directory at that path on every node" in message
    assert "--data-root" in message
    # no data anywhere this worker looks: the data module's list, with the host and fix
    with pytest.raises(DataUnavailable, match=f"the worker host {socket.gethostname()} cannot "
                       "find the data of split_mnist"):
        run_task(WorkerTask(plan, cfg))


def test_the_default_executor_is_sequential():
    assert isinstance(create_executor(), SequentialExecutor)
