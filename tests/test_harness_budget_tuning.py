"""``--tune --budgets ... --tune-at budget``: a grid per budget row, chosen on that row's network."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from avalanche_nispa.harness import cli
from avalanche_nispa.harness.verify import check_results_dir


def _plan(tmp_path: Path, *extra: str):
    return cli.plan_command(["--benchmark", "split_digits", "--strategies", "naive,nispa", "--tune",
                             "--budgets", "4k,full", "--tune-at", "budget", "--seeds", "1",
                             "--results-dir", str(tmp_path / "out"), *extra])


def _store(tmp_path: Path, planned, scores: dict[str, float]) -> None:
    """Fake finished tuning runs: ``scores`` by tuning label."""
    runs = tmp_path / "out" / "tuning" / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    for plan in planned.tuning.plans:
        record = {"label": plan.label, "fingerprint": plan.fingerprint(planned.cfg),
                  "final_accuracy": scores[plan.label]}
        (runs / f"{plan.stem}.json").write_text(json.dumps(record))


def test_every_grid_configuration_is_tuned_at_every_budget_network(tmp_path):
    planned = _plan(tmp_path)
    tuning = planned.tuning
    labels = [plan.label for plan in tuning.plans]
    assert labels == ["naive@4k", "naive(lr=3e-4)@4k", "naive(lr=3e-3)@4k",
                      "naive", "naive(lr=3e-4)", "naive(lr=3e-3)",
                      "nispa@4k", "nispa(lr=0.003)@4k", "nispa(lr=0.001)@4k",
                      "nispa", "nispa(lr=0.003)", "nispa(lr=0.001)"]
    assert {plan.seed for plan in tuning.plans} == {0}
    assert {plan.evaluation for plan in tuning.plans} == {"validation"}
    by_label = {plan.label: plan.hparams for plan in tuning.plans}
    # each row's grid is sized exactly as the row it is reported in
    narrow = by_label["naive@4k"]["hidden_sizes"]
    assert all(by_label[f"naive{v}@4k"]["hidden_sizes"] == narrow for v in ("", "(lr=3e-4)", "(lr=3e-3)"))
    assert "hidden_sizes" not in by_label["naive"]
    sparse = by_label["nispa@4k"]["density"]
    assert sparse != by_label["nispa"]["density"]
    assert by_label["nispa(lr=0.001)@4k"]["density"] == sparse
    assert {row: strategy for row, (strategy, _) in tuning.rows.items()} == {
        "naive@4k": "naive", "naive": "naive", "nispa@4k": "nispa", "nispa": "nispa"}
    assert tuning.choices is None and planned.plans == []  # nothing chosen before the runs
    # the default keeps one grid per strategy, on its configured network
    default = cli.plan_command(["--benchmark", "split_digits", "--strategies", "naive,nispa",
                                "--tune", "--budgets", "4k,full", "--seeds", "1",
                                "--results-dir", str(tmp_path / "other")])
    assert default.tuning.rows is None and len(default.tuning.plans) == 6
    assert default.tuning.plans == _plan(tmp_path, "--tune-at", "full").tuning.plans


def test_each_row_reports_its_own_choice(tmp_path):
    planned = _plan(tmp_path)
    scores = {
        # at 4k naive prefers the largest lr, at full size the configured one
        "naive@4k": 0.5, "naive(lr=3e-4)@4k": 0.4, "naive(lr=3e-3)@4k": 0.6,
        "naive": 0.9, "naive(lr=3e-4)": 0.8, "naive(lr=3e-3)": 0.7,
        # a tie at 4k goes to the earlier configuration in grid order
        "nispa@4k": 0.3, "nispa(lr=0.003)@4k": 0.7, "nispa(lr=0.001)@4k": 0.7,
        "nispa": 0.6, "nispa(lr=0.003)": 0.5, "nispa(lr=0.001)": 0.95,
    }
    _store(tmp_path, planned, scores)
    del scores["nispa(lr=0.001)"]
    runs = tmp_path / "out" / "tuning" / "runs"
    (runs / "nispa_lr=0.001__seed0.json").unlink()
    assert _plan(tmp_path).tuning.choices is None  # one row's grid unfinished: no choice at all
    _store(tmp_path, planned, {**scores, "nispa(lr=0.001)": 0.95})

    replanned = _plan(tmp_path)
    reported = {plan.label: plan.hparams for plan in replanned.plans}
    assert list(reported) == ["naive@4k", "naive", "nispa@4k", "nispa"]
    tuned = {plan.label: plan.hparams for plan in replanned.tuning.plans}
    assert reported["naive@4k"] == tuned["naive(lr=3e-3)@4k"]
    assert reported["naive"] == tuned["naive"]
    assert reported["nispa@4k"] == tuned["nispa(lr=0.003)@4k"]
    assert reported["nispa"] == tuned["nispa(lr=0.001)"]
    assert {plan.seed for plan in replanned.plans} == {1}
    choices = {choice.row_label: choice for choice in replanned.tuning.choices}
    assert choices["naive@4k"].score == 0.6 and choices["naive"].row == ""
    assert choices["naive@4k"].as_dict()["row"] == "naive@4k"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--tune", "--tune-at", "budget"], "--tune-at budget tunes every row of --budgets"),
        (["--tune-at", "budget", "--budgets", "4k,full"], "add --tune or drop --tune-at"),
        (["--tune-at", "full"], "add --tune or drop --tune-at"),
        (["--tune", "--tune-at", "budget", "--budgets", "4k,4000"], "are the same runs"),
    ],
)
def test_tune_at_refusals(argv, message, tmp_path):
    with pytest.raises(SystemExit, match=message):
        cli.plan_command(["--benchmark", "split_digits", "--strategies", "naive",
                          "--results-dir", str(tmp_path / "out"), *argv])
    assert not (tmp_path / "out").exists()


def test_tune_at_budget_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["--benchmark", "split_digits", "--strategies", "naive", "--tune", "--budgets",
            "2k,full", "--tune-at", "budget", "--seeds", "1", "--set", "epochs=1",
            "--results-dir", "out", "--no-plots"]
    cli.main(argv)
    records = [json.loads(p.read_text()) for p in (tmp_path / "out/tuning/runs").glob("*.json")]
    assert len(records) == 6 and {r["evaluation"] for r in records} == {"validation"}
    table = json.loads((tmp_path / "out/results.json").read_text())
    by_label = {r["label"]: r for r in records}
    assert [c.get("row", "naive") for c in table["tuning"]["choices"]] == ["naive@2k", "naive"]
    for choice in table["tuning"]["choices"]:
        row = choice.get("row", "naive")
        grid = [r for label, r in by_label.items() if label.endswith("@2k") == row.endswith("@2k")]
        assert len(grid) == 3
        assert choice["validation_accuracy"] == max(r["final_accuracy"] for r in grid)
        chosen = by_label[choice["chosen"]]
        assert chosen in grid and chosen["final_accuracy"] == choice["validation_accuracy"]
        reported = json.loads((tmp_path / f"out/runs/{row.replace('@', '_')}__seed1.json").read_text())
        assert reported["label"] == row and reported["seed"] == 1
        assert reported["hparams"] == chosen["hparams"]  # the row's network and its chosen lr
    assert "| naive@2k | lr ∈ {default,3e-4,3e-3} |" in (tmp_path / "out/results.md").read_text()
    capsys.readouterr()
    cli.main(argv)
    assert "0 run(s) done, 2 already finished" in capsys.readouterr().out
    assert check_results_dir(tmp_path / "out", tmp_path) == []
