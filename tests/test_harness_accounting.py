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
# (a) fewer seeds than the table averages


def test_fewer_seeds_are_refused_naming_the_seeds_the_table_would_lose(tmp_path, no_training):
    _store(tmp_path, ["--strategies", "naive,ewc", "--seeds", "0,1,2"])
    saved = _snapshot(tmp_path)
    with pytest.raises(SystemExit) as refused:
        cli.main(["--strategies", "naive,ewc", "--seeds", "0", *_COMMON,
                  "--results-dir", str(tmp_path)])
    assert (f"{tmp_path}/results.md averages naive, ewc over seeds 0,1,2; this command "
            "runs seed 0 of them, so those rows would lose seeds 1,2") in str(refused.value)
    assert "add the missing strategies, seeds or grid values" in str(refused.value)
    assert _snapshot(tmp_path) == saved
    # more seeds are fine (not trained here: only the conflict check is asked)
    planned = cli.plan_command(["--strategies", "naive,ewc", "--seeds", "0,1,2,3", *_COMMON])
    from avalanche_nispa.harness.planning import results_dir_conflicts

    assert results_dir_conflicts(planned.cfg, planned.plans, tmp_path) == []
    # --replace shrinks the table on request; the other seeds' runs stay stored
    replaced = cli.main(["--strategies", "naive,ewc", "--seeds", "0", "--replace", *_COMMON,
                         "--results-dir", str(tmp_path)])
    assert [row["seeds"] for row in replaced.rows] == [[0], [0]]
    assert len(list((tmp_path / "runs").glob("*.json"))) == 6


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


# --------------------------------------------------------------------------- #
# (c) results.json missing: the stored runs are the table


def test_stored_runs_count_as_the_table_when_results_json_is_missing(tmp_path, no_training):
    _store(tmp_path, ["--strategies", "naive,replay", "--seeds", "0,1"], table=False)
    with pytest.raises(SystemExit) as refused:
        cli.main(["--strategies", "naive", "--seeds", "0", *_COMMON,
                  "--results-dir", str(tmp_path)])
    message = str(refused.value)
    assert f"{tmp_path}/runs/ holds runs of replay, which this command does not run" in message
    assert "results.json is missing, so the stored runs count as the table" in message
    assert f"{tmp_path}/runs/ holds runs of naive over seeds 0,1; this command runs seed 0 of " \
           "them, so that row would lose seed 1" in message
    assert not (tmp_path / "results.json").exists()
    # the command that covers them rebuilds the table without training
    rebuilt = cli.main(["--strategies", "naive,replay", "--seeds", "0,1", *_COMMON,
                        "--results-dir", str(tmp_path)])
    assert rebuilt.outcome.executed == [] and len(rebuilt.outcome.skipped) == 4


# --------------------------------------------------------------------------- #
# Every row says which runs it averages


def test_rows_list_their_seeds_and_run_files(tmp_path):
    planned = cli.plan_command(["--strategies", "naive", "--seeds", "2,0", "--density-sweep",
                                "0.5"])
    records = [_record(plan, planned.cfg, 0.5) for plan in planned.plans]
    rows = report.aggregate(records)
    report.write_reports(rows, records, tmp_path, title="t", command="c", context={})
    table = (tmp_path / "results.md").read_text()
    assert "| naive | 0,2 | 50.00 ± 0.00 |" in table
    stored = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert [(row["label"], row["seeds"], row["runs"]) for row in stored] == [
        ("naive", [0, 2], ["runs/naive__seed0.json", "runs/naive__seed2.json"]),
        ("nispa(density=0.5)", [0, 2],
         ["runs/nispa_density=0.5__seed0.json", "runs/nispa_density=0.5__seed2.json"]),
    ]
    assert "| 0.5 | 0,2 | 50.00 ± 0.00 |" in report.markdown_density_table(rows)
