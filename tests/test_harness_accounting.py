"""Nothing lost, nothing counted twice (issue 12, item 16).

A results table is rewritten from the runs of the command that writes it, so
the harness refuses, before anything runs, a command whose table would lose a
row or a seed of the current one (the current one: ``results.json``, or the
stored runs when it is missing), and a command naming a seed, a strategy or a
grid value twice. No test trains: the stored runs are hand-made records with
the fingerprints of the plans, which a sweep reuses.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from avalanche_nispa.harness import cli, report
from avalanche_nispa.harness.planning import make_plans
from avalanche_nispa.harness.runner import write_json

_COMMON = ["--set", "epochs=1", "--no-plots"]


def _record(plan, cfg, final: float) -> dict:
    return {
        "fingerprint": plan.fingerprint(cfg), "label": plan.label, "strategy": plan.strategy,
        "seed": plan.seed, "hparams": plan.hparams, "final_accuracy": final,
        "forgetting": 0.1, "bwt": -0.1, "parameters": {"active": 10, "frozen": 0, "total": 10},
        "epochs_per_experience": [1], "wall_time_s": 1.0, "peak_rss_delta_mb": 1.0,
        "accuracy_matrix": [[final]], "notes": [],
    }


def _store(results_dir: Path, argv: list[str], *, table: bool = True) -> list[dict]:
    """The runs of ``argv`` in ``results_dir/runs/`` and, with ``table``, its tables."""
    planned = cli.plan_command([*argv, *_COMMON, "--results-dir", str(results_dir)])
    records = [_record(plan, planned.cfg, 0.5 + 0.1 * plan.seed) for plan in planned.plans]
    for record in records:
        write_json(results_dir / "runs" / f"{record['label']}__seed{record['seed']}.json", record)
    if table:
        report.write_reports(report.aggregate(records), records, results_dir, title="t",
                             command="c", context={})
    return records


@pytest.fixture
def no_training(monkeypatch):
    """Any attempt to load data (i.e. to train) fails the test."""
    from avalanche_nispa.harness import runner

    def refuse(*args, **kwargs):
        raise AssertionError("nothing should run")

    monkeypatch.setattr(runner, "load_benchmark", refuse)
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _snapshot(directory: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in directory.rglob("*") if p.is_file()}


# --------------------------------------------------------------------------- #
# (b) duplicates


@pytest.mark.parametrize("argv, message", [
    (["--seeds", "0,1,0"], "seed 0 is given twice"),
    (["--strategies", "ewc,naive,ewc"], "strategy ewc is given twice"),
    (["--strategies", "ewc", "--grid", "ewc.ewc_lambda=1e4,1e5,1e4"],
     "ewc.ewc_lambda=1e4 is given twice"),
    (["--strategies", "ewc", "--grid", "ewc.ewc_lambda=1e4", "--grid", "ewc.ewc_lambda=1e5"],
     "the grid of ewc.ewc_lambda is given twice"),
    (["--strategies", "nispa", "--density-sweep", "0.1,0.2", "--grid", "nispa.density=0.5"],
     "the grid of nispa.density is given twice"),
    (["--strategies", "ewc", "--grid", "ewc.ewc_lambda=1e4,10000.0"],
     "ewc(ewc_lambda=1e4) and ewc(ewc_lambda=10000.0) are the same runs"),
])
def test_duplicates_are_refused_before_anything_runs(argv, message):
    with pytest.raises(SystemExit, match=message.replace("(", r"\(").replace(")", r"\)")):
        cli.plan_command(argv)


def test_a_grid_value_equal_to_the_configured_one_is_the_default_row_twice():
    planned = cli.plan_command(["--strategies", "naive"])
    configured = planned.cfg.hparams("ewc")["ewc_lambda"]
    with pytest.raises(ValueError, match=rf"ewc and ewc\(ewc_lambda={configured!r}\) are the "
                                         "same runs"):
        make_plans(planned.cfg, [], [0], [("ewc.ewc_lambda", f"default,{configured!r}")])


def test_the_table_refuses_a_run_counted_twice():
    planned = cli.plan_command(["--strategies", "naive", "--seeds", "0"])
    record = _record(planned.plans[0], planned.cfg, 0.5)
    with pytest.raises(ValueError, match=r"naive seed 0 is given twice"):
        report.aggregate([record, dict(record)])
