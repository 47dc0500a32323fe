"""The harness's strategy registry, typed settings, progress lines and committed results.

None of these tests trains except the progress one (one tiny run); the check
of the committed results only re-plans their commands and compares fingerprints.
"""

from __future__ import annotations

import importlib
import io
import json
import pkgutil
import re
import shutil
import sys
from pathlib import Path

import pytest

from avalanche_nispa.harness import cli, configs, planning, progress, runner, verify
from avalanche_nispa.harness.bench import bench
from avalanche_nispa.harness import strategies as registry

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
COMMITTED = sorted(d for d in RESULTS.iterdir() if (d / "results.md").exists())
TABLE_ORDER = ("nispa", "nispa_replay", "nispa_original", "nispa_fast", "naive", "ewc", "si", "mas", "lwf",
               "replay", "er_ace", "der", "gdumb", "icarl", "agem", "gem", "packnet", "cumulative", "joint")


# --------------------------------------------------------------------------- #
# Registry


def test_every_module_of_the_folder_is_registered_in_table_order():
    modules = [m.name for m in pkgutil.iter_modules(registry.__path__)]
    defined = {
        entry.name
        for name in modules
        for entry in importlib.import_module(f"{registry.__name__}.{name}").ENTRIES
    }
    assert set(registry.names()) == defined
    assert registry.names() == TABLE_ORDER == configs.STRATEGIES
    assert cli.DEFAULT_STRATEGIES == ("nispa", "nispa_replay", "naive", "ewc", "si", "replay")


def test_the_registry_lists_no_strategy_by_name():
    source = Path(registry.__file__).read_text()
    assert not [name for name in TABLE_ORDER if f'"{name}"' in source]


_NEW_STRATEGY = '''
from avalanche.training import Naive

from avalanche_nispa.harness.entry import DenseEntry
from avalanche_nispa.harness.params import NoHyperparameters

ENTRIES = (DenseEntry("plain_copy", 25, NoHyperparameters(), Naive),)
'''


def test_a_new_baseline_is_one_file(tmp_path, monkeypatch):
    """A module dropped in the folder is found, ordered, configured and built."""
    (tmp_path / "plain_copy.py").write_text(_NEW_STRATEGY)
    monkeypatch.setattr(registry, "__path__", [*registry.__path__, str(tmp_path)])
    registry.entries.cache_clear()
    try:
        names = registry.names()
        assert names[names.index("naive") + 1] == "plain_copy"
        cfg = configs._benchmark(  # how every benchmark configuration is built
            name="t", description="t", n_experiences=2, n_classes=4,
            backbone=configs.Backbone("mlp", (1, 8, 8), hidden_sizes=(4,)),
            training=configs.Training(epochs=1), overrides={},
        )
        assert cfg.hparams("plain_copy") == cfg.hparams("naive")
        built = registry.build_strategy("plain_copy", cfg.backbone, 4, cfg.hparams("plain_copy"),
                                        n_experiences=2, evaluator=_quiet_evaluator())
        assert type(built.strategy).__name__ == "Naive" and built.epochs == 1
    finally:
        monkeypatch.undo()
        sys.modules.pop(f"{registry.__name__}.plain_copy", None)
        registry.entries.cache_clear()
    assert "plain_copy" not in registry.names()


def _quiet_evaluator():
    from avalanche.logging import TextLogger
    from avalanche.training.plugins import EvaluationPlugin

    return EvaluationPlugin(loggers=[TextLogger(io.StringIO())])


def test_two_modules_defining_one_name_are_refused(tmp_path, monkeypatch):
    (tmp_path / "naive_again.py").write_text(_NEW_STRATEGY.replace("plain_copy", "naive"))
    monkeypatch.setattr(registry, "__path__", [*registry.__path__, str(tmp_path)])
    try:
        with pytest.raises(RuntimeError, match="defined twice: naive"):
            registry.discover()
    finally:
        sys.modules.pop(f"{registry.__name__}.naive_again", None)


# --------------------------------------------------------------------------- #
# Typed settings


def test_settings_are_type_checked_but_never_converted():
    cfg = configs.get_config("split_mnist")
    with pytest.raises(TypeError, match=r"EWCParams.ewc_lambda must be float, got 'big'"):
        planning.apply_overrides(cfg, [("ewc.ewc_lambda", "big")])
    with pytest.raises(ValueError, match=r"strategy 'ewc' has no setting 'lambda'.*ewc_lambda"):
        planning.apply_overrides(cfg, [("ewc.lambda", 1.0)])
    with pytest.raises(KeyError, match="no setting 'bogus'"):
        planning.make_plans(cfg, [], [0], [("si.bogus", "1")])
    with pytest.raises(TypeError, match="Training.batch_size must be int"):
        planning.apply_overrides(cfg, [("batch_size", 1.5)])
    # an int given for a float stays an int: the stored runs' fingerprints hash it so
    plans = planning.make_plans(cfg, [], [0], [("si.si_lambda", "100,1e2")])
    assert [type(p.hparams["si_lambda"]) for p in plans] == [int, float]
    assert plans[0].fingerprint(cfg) != plans[1].fingerprint(cfg)
    # a training key for one strategy only, and a strategy's own training key
    scoped = planning.apply_overrides(cfg, [("ewc.lr", 0.01), ("nispa.lr", 0.003)])
    assert scoped.hparams("ewc")["lr"] == 0.01 and scoped.hparams("naive")["lr"] == 1e-3
    assert scoped.hparams("nispa")["lr"] == 0.003


def test_flat_settings_are_the_dicts_runs_have_always_stored():
    mnist = configs.get_config("split_mnist")
    assert mnist.hparams("ewc") == {"optimizer": "adam", "lr": 1e-3, "batch_size": 128,
                                    "eval_batch_size": 1000, "epochs": 5,
                                    "ewc_lambda": 1e6, "mode": "separate"}
    assert "dense_first_conv" not in mnist.hparams("nispa")  # only the CNN has it
    assert configs.get_config("split_cifar10").hparams("nispa")["dense_first_conv"] is True
    assert "momentum" not in mnist.hparams("naive")
    original = mnist.hparams("nispa_original")
    assert original == {**mnist.hparams("nispa"), "mode": "original", "num_classes": 10}


@pytest.mark.parametrize("results_dir", COMMITTED, ids=lambda d: d.name)
def test_committed_commands_would_rerun_nothing(results_dir):
    """Re-planning each committed command gives its stored runs, fingerprint for fingerprint."""
    assert verify.check_results_dir(results_dir, REPO) == []


def test_the_check_sees_a_changed_setting(tmp_path):
    copy = tmp_path / "benchmarks" / "results" / "split_mnist_nispa_lr_grid"
    shutil.copytree(RESULTS / copy.name, copy)
    run = copy / "runs" / "nispa_lr=0.001__seed0.json"
    record = json.loads(run.read_text())
    run.write_text(json.dumps({**record, "fingerprint": "0" * 16}))
    (copy / "runs" / "nispa_lr=0.003__seed0.json").unlink()
    problems = verify.check_results_dir(copy, tmp_path)
    assert any("nispa_lr=0.001__seed0: stored label/fingerprint differ" in p for p in problems)
    assert any("nispa_lr=0.003__seed0 is planned but not stored" in p for p in problems)
    assert any("was made with other settings" in p for p in problems)


def test_nispa_bench_compare_is_the_clone_command(capsys):
    argv = ["--benchmark", "split_digits", "--strategies", "naive", "--seeds", "0",
            "--show-config"]
    assert bench(["compare", *argv]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["strategies"]["naive"] == configs.get_config("split_digits").hparams("naive")
    assert bench([]) == 2 and "usage: nispa-bench {compare,speed,collect}" in capsys.readouterr().err


# --------------------------------------------------------------------------- #
# Progress without a terminal


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_lines_give_elapsed_time_and_eta():
    stream, clock = io.StringIO(), _Clock()
    tracker = progress.SweepProgress(2, 2, stream=stream, clock=clock)
    assert tracker.mode == "lines"  # a StringIO is no terminal
    tracker.start_run("ewc", 1, calls=2, epochs=2)
    for _ in range(2):  # 4 epochs of 10 s: a quarter of the sweep each... of one run
        for _ in range(2):
            clock.now += 10.0
            tracker.epoch_done()
        tracker.experience_done()
    tracker.start_run("nispa", 0, calls=2, epochs=None)  # phases: only experiences count
    clock.now += 40.0
    tracker.epoch_done()
    lines = stream.getvalue().splitlines()
    assert lines[0] == "[1/2 runs] ewc seed 1: exp 1/2 epoch 1 — elapsed 10s, ETA 1m10s"
    assert lines[3] == "[1/2 runs] ewc seed 1: exp 2/2 epoch 2 — elapsed 40s, ETA 40s"
    assert lines[4] == "[2/2 runs] nispa seed 0: exp 1/2 epoch 1 — elapsed 1m20s, ETA 1m20s"
    assert progress.format_duration(3725) == "1h02m"


def test_a_resumed_run_says_so_and_counts_its_finished_experiences():
    stream, clock = io.StringIO(), _Clock()
    tracker = progress.SweepProgress(1, 4, stream=stream, clock=clock)
    tracker.start_run("nispa", 1, calls=4, epochs=2, done=3)  # 3 done by an earlier process
    clock.now += 10.0
    tracker.epoch_done()
    assert stream.getvalue().splitlines() == [
        "[1/1 runs] nispa seed 1: resumed after exp 3/4",
        "[1/1 runs] nispa seed 1: exp 4/4 epoch 1 — elapsed 10s, ETA 10s",  # this process's pace
    ]


def test_a_redirected_sweep_prints_a_line_per_epoch(tiny_sweep, tmp_path):
    cfg, plans, benchmark = tiny_sweep
    stream = io.StringIO()
    runner.run_sweep(cfg, plans, results_dir=tmp_path, benchmark_factory=lambda seed: benchmark,
                     progress_stream=stream)
    lines = stream.getvalue().splitlines()
    pattern = re.compile(r"^\[(\d)/2 runs\] naive seed (\d): exp (\d)/2 epoch (\d) — "
                         r"elapsed \d+s, ETA \d+s$")
    parsed = [pattern.match(line).groups() for line in lines]
    assert parsed == [(str(r + 1), str(r), str(e), str(k))
                      for r in range(2) for e in (1, 2) for k in (1, 2)]
    assert lines[-1].endswith("ETA 0s")


@pytest.fixture
def tiny_sweep():
    """Naive on 2 experiences of 8x8 digits, 2 epochs, 2 seeds."""
    import dataclasses

    from avalanche.benchmarks import nc_benchmark
    from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset
    import torch

    generator = torch.Generator().manual_seed(0)
    y = torch.arange(4).repeat_interleave(6)
    x = torch.rand((len(y), 1, 8, 8), generator=generator)
    data = _make_taskaware_tensor_classification_dataset(x, y, targets=y.tolist())
    benchmark = nc_benchmark(data, data, 2, task_labels=True, shuffle=False,
                             fixed_class_order=[0, 1, 2, 3])
    cfg = configs.get_config("split_digits")
    cfg = dataclasses.replace(cfg, n_experiences=2, n_classes=4,
                              backbone=configs.Backbone("mlp", (1, 8, 8), hidden_sizes=(4,)),
                              training=cfg.training.updated(epochs=2, batch_size=8))
    return cfg, planning.make_plans(cfg, ["naive"], [0, 1]), benchmark


def test_speed_reads_the_paper_settings_from_the_configurations():
    from avalanche_nispa.harness import speed

    cfg, nispa = speed.paper_settings("cnn", "nispa")
    assert nispa == configs.get_config("split_cifar10").hparams("nispa")
    _, naive = speed.paper_settings("mlp", "naive", epochs=3)
    mnist = configs.get_config("split_mnist").hparams("nispa")
    assert (naive["lr"], naive["batch_size"], naive["epochs"]) == (mnist["lr"], mnist["batch_size"], 3)
    assert speed._describe_paper_mlp().startswith("Paper MLP at 20 %, Adam lr 0.01, batch 512, e = 5")
