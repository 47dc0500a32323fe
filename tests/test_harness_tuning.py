"""``--tune``: configurations chosen on a validation split of the training data, other seeds reported."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from avalanche_nispa import benchmarks
from avalanche_nispa.harness import cli
from avalanche_nispa.harness.configs import BENCHMARKS, get_config
from avalanche_nispa.harness.planning import RunPlan
from avalanche_nispa.harness.tuning import choose, smaller_grids, tuning_grids, tuning_plans
from avalanche_nispa.harness.validation import stratified_split, validation_benchmark
from avalanche_nispa.harness.verify import check_results_dir


def test_stratified_split_holds_out_each_class_share_deterministically():
    targets = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    kept, held = stratified_split(targets, 0.1, seed=3)
    assert sorted(kept + held) == list(range(100)) and not set(kept) & set(held)
    assert [int((targets[held] == c).sum()) for c in range(3)] == [5, 3, 2]
    assert stratified_split(targets, 0.1, seed=3) == (kept, held)
    assert stratified_split(targets, 0.1, seed=4)[1] != held
    with pytest.raises(ValueError, match="fraction"):
        stratified_split(targets, 1.0, seed=0)


def _images(dataset) -> set[str]:
    return {hashlib.sha1(x.numpy().tobytes()).hexdigest() for x, *_ in dataset}


@pytest.mark.parametrize("task_labels", [True, False])
def test_validation_benchmark_is_the_training_data_only(task_labels):
    original = benchmarks.split_digits(seed=0, return_task_id=task_labels)
    split = validation_benchmark(original, 0.1, seed=0)
    test_images = set().union(*(_images(e.dataset) for e in original.test_stream))
    for source, train, held in zip(original.train_stream, split.train_stream, split.test_stream):
        assert len(train.dataset) + len(held.dataset) == len(source.dataset)
        assert len(held.dataset) == pytest.approx(0.1 * len(source.dataset), abs=2)
        train_images, held_images = _images(train.dataset), _images(held.dataset)
        # disjoint parts of this experience's training data, nothing from the test split
        assert not train_images & held_images
        assert (train_images | held_images) <= _images(source.dataset)
        assert not held_images & test_images
        assert list(train.task_labels) == list(source.task_labels) == list(held.task_labels)
        assert train.classes_in_this_experience == sorted(source.classes_in_this_experience)
        assert held.classes_in_this_experience == train.classes_in_this_experience
    assert split.test_stream.name == "test"
    # Avalanche's iCaRL reads the classic scenario's class order through the experience
    for experience in split.train_stream:
        assert experience.benchmark.n_classes_per_exp == list(original.n_classes_per_exp)
        assert experience.benchmark.classes_order == list(original.classes_order)


def test_every_benchmark_grid_gives_every_strategy_the_same_budget():
    for cfg in BENCHMARKS.values():
        if not cfg.tune_grids:
            continue
        strategies = [s for s in cfg.supported() if s in cfg.tune_grids]
        assert strategies == list(cfg.supported()), cfg.name
        grids = tuning_grids(cfg, strategies)  # refuses unequal budgets
        plans = tuning_plans(cfg, grids, cfg.tune_seed)  # type-checks every value
        assert len(plans) == 3 * len(strategies), cfg.name
        assert {p.evaluation for p in plans} == {"validation"}


def test_tuning_budgets_and_grids_are_checked():
    cfg = get_config("split_digits_cil")
    with pytest.raises(ValueError, match="same tuning budget"):
        tuning_grids(cfg, ["naive", "replay"], [("naive.lr", "0.001,0.01")])
    assert tuning_grids(cfg, ["naive"], [("naive.lr", "0.1,0.2,0.3")]) == {
        "naive": {"lr": "0.1,0.2,0.3"}}
    bare = get_config("split_cifar10")
    with pytest.raises(ValueError, match="no tuning grid for naive: give one with --grid"):
        tuning_grids(bare, ["naive"])


def test_a_grid_smaller_than_the_benchmarks_is_named_in_the_warning_and_the_table(
        tmp_path, monkeypatch, capsys):
    cfg = get_config("split_digits_cil")
    assert smaller_grids(cfg, tuning_grids(cfg, ["naive", "replay"])) == {}
    assert smaller_grids(cfg, tuning_grids(cfg, ["naive"], [("naive.lr", "0.1,0.2,0.3")])) == {}
    assert smaller_grids(cfg, tuning_grids(cfg, ["naive"], [("naive.lr", "default")])) == {
        "naive": (1, 3)}
    # a strategy tuned alone on a grid of one: said on stderr before training and in results.md
    monkeypatch.chdir(tmp_path)
    cli.main(["--benchmark", "split_digits_cil", "--strategies", "naive", "--tune", "--grid",
              "naive.lr=default", "--seeds", "1", "--set", "epochs=1", "--results-dir", "out",
              "--no-plots"])
    expected = "naive was tuned on 1 configuration(s) where the benchmark's grid has 3"
    assert f"warning: {expected}" in capsys.readouterr().err
    assert expected in (tmp_path / "out/results.md").read_text()


def test_validation_and_test_runs_have_different_fingerprints():
    cfg = get_config("split_digits")
    plan = RunPlan("naive", "naive", 0, cfg.hparams("naive"))
    tuned = tuning_plans(cfg, {"naive": {"lr": "default,3e-4,3e-3"}}, 0)[0]
    assert tuned.hparams == plan.hparams and tuned.fingerprint(cfg) != plan.fingerprint(cfg)


def test_choice_is_the_best_validation_score_with_ties_to_the_earlier():
    cfg = get_config("split_digits_cil")
    grids = {"naive": {"lr": "default,3e-4,3e-3"}, "replay": {"lr": "default,3e-4,3e-3"}}
    plans = tuning_plans(cfg, grids, 0)
    scores = {"naive": [0.2, 0.5, 0.4], "replay": [0.7, 0.3, 0.7]}
    records, seen = {}, {"naive": 0, "replay": 0}
    for plan in plans:
        records[plan.stem] = {"final_accuracy": scores[plan.strategy][seen[plan.strategy]]}
        seen[plan.strategy] += 1
    assert choose(cfg, plans, dict(list(records.items())[:-1]), grids) is None
    naive, replay = choose(cfg, plans, records, grids)
    assert naive.overrides == {"lr": 3e-4} and naive.score == 0.5
    assert replay.overrides == {} and replay.score == 0.7


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--tune", "--seeds", "0,1"], "seed 0 is the tuning seed and cannot be reported"),
        (["--tune-seed", "5"], "--tune-seed is the seed of --tune"),
        (["--tune", "--density-sweep", "0.1,0.2"], "cannot be combined|two commands"),
        (["--tune", "--grid", "naive.lr=0.1,0.2"], "same tuning budget"),
        (["--tune", "--benchmark", "split_cifar10"], "no tuning grid for naive"),
    ],
)
def test_tuning_protocol_refusals(argv, message, tmp_path):
    if "--benchmark" not in argv:
        argv = [*argv, "--benchmark", "split_digits_cil"]
    argv = [*argv, "--results-dir", str(tmp_path)]
    if "--strategies" not in argv:
        argv += ["--strategies", "naive,replay"]
    with pytest.raises(SystemExit, match=message):
        cli.plan_command(argv)
    assert not any(tmp_path.iterdir())


def test_tune_command_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["--benchmark", "split_digits_cil", "--strategies", "naive,icarl", "--tune",
            "--seeds", "1", "--set", "epochs=2", "--results-dir", "out", "--no-plots"]
    cli.main(argv)
    tuning_runs = sorted((tmp_path / "out/tuning/runs").glob("*.json"))
    assert len(tuning_runs) == 6  # iCaRL too: it reads the benchmark through the experience
    records = [json.loads(p.read_text()) for p in tuning_runs]
    assert {r["evaluation"] for r in records} == {"validation"} and {r["seed"] for r in records} == {0}
    table = json.loads((tmp_path / "out/results.json").read_text())
    chosen = {c["strategy"]: c for c in table["tuning"]["choices"]}
    for strategy in ("naive", "icarl"):
        best = max(r["final_accuracy"] for r in records if r["strategy"] == strategy)
        assert chosen[strategy]["validation_accuracy"] == best
        reported = json.loads((tmp_path / f"out/runs/{strategy}__seed1.json").read_text())
        assert "evaluation" not in reported and reported["seed"] == 1
        for key, value in chosen[strategy]["chosen_overrides"].items():
            assert reported["hparams"][key] == value
    markdown = (tmp_path / "out/results.md").read_text()
    assert "## Hyperparameters chosen on a validation split" in markdown
    assert "Tuning on a validation split (seed 0)" in (tmp_path / "out/tuning/results.md").read_text()
    # the same command again runs nothing, and its stored runs are what it plans
    capsys.readouterr()
    cli.main(argv)
    assert "0 run(s) done, 2 already finished" in capsys.readouterr().out
    assert check_results_dir(tmp_path / "out", tmp_path) == []


def test_multi_head_baseline_tunes_on_the_validation_split(tmp_path, monkeypatch):
    """Task-incremental baselines use Avalanche's MultiHeadClassifier, which indexes a
    tensor with the experience's classes: the validation split must give them as a list."""
    monkeypatch.chdir(tmp_path)
    cli.main(["--benchmark", "split_digits", "--strategies", "replay", "--tune",
              "--grid", "replay.lr=default", "--seeds", "1", "--set", "epochs=1",
              "--results-dir", "out", "--no-plots"])
    record = json.loads((tmp_path / "out/tuning/runs/replay__seed0.json").read_text())
    assert record["evaluation"] == "validation" and record["final_accuracy"] > 0.6  # chance: 0.5
