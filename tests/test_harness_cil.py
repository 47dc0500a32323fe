"""The harness on class-incremental benchmarks: scenarios, single-head baselines, NISPA-Replay.

Everything runs on ``split_digits_cil`` (scikit-learn's bundled digits, no
download) with budgets of one epoch, so the file takes seconds.
"""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from avalanche.models import MultiTaskModule

from avalanche_nispa import NISPAReplay
from avalanche_nispa.harness import cli, configs, runner
from avalanche_nispa.harness import strategies as registry

#: The strategies of the class-incremental comparison (issue 13).
CIL_STRATEGIES = ("nispa_replay", "naive", "ewc", "lwf", "replay", "er_ace", "der", "gdumb",
                  "icarl", "agem", "cumulative", "joint")
MEMORY_STRATEGIES = ("replay", "er_ace", "der", "gdumb")


def _build(cfg: configs.BenchmarkConfig, name: str, **overrides):
    return registry.build_strategy(
        name, cfg.backbone, cfg.n_classes, cfg.hparams(name, overrides),
        n_experiences=cfg.n_experiences, scenario=cfg.scenario,
    )


def test_class_incremental_benchmarks_declare_their_scenario():
    for name in ("split_digits_cil", "split_mnist_cil", "split_fmnist_cil"):
        cfg = configs.get_config(name)
        assert cfg.class_incremental and cfg.builder_kwargs == {"return_task_id": False}
        assert (cfg.n_experiences, cfg.n_classes) == (5, 10)
        assert set(CIL_STRATEGIES) <= set(cfg.supported())
        assert not {"nispa", "nispa_original", "nispa_fast", "packnet", "si", "mas", "gem"} & set(cfg.supported())
    mnist = configs.get_config("split_mnist_cil")
    assert mnist.backbone.hidden_sizes == (400, 400, 400) and mnist.builder_name == "split_mnist"
    # one memory size wherever a memory is used (A-GEM: per experience, same total)
    for strategy in (*MEMORY_STRATEGIES, "nispa_replay"):
        assert mnist.hparams(strategy)["mem_size"] == 1000, strategy
    assert mnist.hparams("icarl")["memory_size"] == 1000
    assert mnist.hparams("agem")["patterns_per_exp"] * mnist.n_experiences == 1000
    er = mnist.hparams("replay")  # replay spec §6: the CL-Replay-Methods ER on MNIST
    assert (er["optimizer"], er["lr"], er["batch_size"], er["epochs"]) == ("sgd", 0.1, 512, 10)
    # the spec's Split MNIST NISPA-Replay (nispa-replay-spec.md §4)
    nispa = mnist.hparams("nispa_replay")
    assert (nispa["optimizer"], nispa["lr"], nispa["batch_size"], nispa["density"]) == (
        "sgd", 0.1, 256, 0.1)
    assert (nispa["replay_weight"], nispa["accuracy_drop_threshold"]) == (5.0, 0.5)
    assert not configs.get_config("split_mnist").class_incremental


@pytest.mark.parametrize("name", CIL_STRATEGIES)
def test_every_cil_strategy_builds_one_output_layer_of_ten(name):
    cfg = configs.get_config("split_digits_cil")
    built = _build(cfg, name)
    if name == "nispa_replay":  # NISPA's MLP: one shared head, task labels ignored
        assert built.model.class_incremental and len(built.model.heads) == 1
    else:
        assert not isinstance(built.model, MultiTaskModule)
    logits = built.model(torch.rand(3, *cfg.backbone.input_shape))
    assert logits.shape == (3, 10)
    if name in MEMORY_STRATEGIES:
        owners = [built.strategy, *built.strategy.plugins]
        assert 100 in {getattr(owner, "mem_size", None) for owner in owners}  # the benchmark's


def test_nispa_replay_is_the_library_strategy_with_the_benchmark_memory():
    built = _build(configs.get_config("split_digits_cil"), "nispa_replay")
    assert isinstance(built.strategy, NISPAReplay)
    assert built.strategy.config.mem_size == 100 and built.strategy.config.replay_weight == 5.0
    assert isinstance(built.strategy.optimizer, torch.optim.SGD)
    assert built.epochs is None  # trains in phases


def test_a_dense_baseline_trains_single_head_on_the_class_incremental_stream():
    cfg = configs.get_config("split_digits_cil")
    stream = runner.load_benchmark(cfg, 0)
    assert {int(t) for exp in stream.train_stream for t in exp.task_labels} == {0}
    built = _build(cfg, "er_ace", epochs=1)
    built.strategy.train(stream.train_stream[0])
    assert isinstance(built.model[-1], nn.Linear) and built.model[-1].out_features == 10
    assert len(built.strategy.storage_policy.buffer) == 100  # ER-ACE's memory, filled


def test_task_incremental_hparams_of_shared_baselines_are_unchanged():
    # replay now supports both scenarios; on a task-incremental benchmark it stays multi-head
    cfg = configs.get_config("split_digits")
    assert cfg.hparams("replay")["mem_size"] == 100
    assert isinstance(_build(cfg, "replay").model, MultiTaskModule)


@pytest.mark.parametrize(
    "benchmark, strategy, supported",
    [("split_digits", "nispa_replay", "nispa, nispa_original, nispa_fast, naive"),
     ("split_digits_cil", "packnet", "nispa_replay, naive, ewc, lwf, replay")],
)
def test_a_strategy_of_another_scenario_is_refused_before_running(benchmark, strategy, supported):
    with pytest.raises(SystemExit) as refused:
        cli.plan_command(["--benchmark", benchmark, "--strategies", f"naive,{strategy}"])
    message = str(refused.value)
    assert f"{strategy} cannot run on {benchmark!r}" in message
    assert supported in message
    with pytest.raises(SystemExit, match="cannot run"):  # also when named only in a grid
        cli.plan_command(["--benchmark", benchmark, "--grid", f"{strategy}.lr=0.1,0.01"])


def test_all_and_auto_keep_the_strategies_of_the_scenario():
    til = cli.plan_command(["--benchmark", "split_digits", "--strategies", "all", "--seeds", "0"])
    cil = cli.plan_command(
        ["--benchmark", "split_digits_cil", "--strategies", "all", "--seeds", "0"])
    assert "nispa_replay" not in {p.strategy for p in til.plans}
    assert {p.strategy for p in cil.plans} == set(CIL_STRATEGIES)
    auto = cli.plan_command(["--benchmark", "split_digits_cil", "--seeds", "0"])
    assert [p.strategy for p in auto.plans] == ["nispa_replay", "naive", "ewc", "replay"]


def test_tiny_class_incremental_comparison_writes_a_table(tmp_path, capsys):
    argv = ["--benchmark", "split_digits_cil", "--strategies", "nispa_replay,replay,naive",
            "--seeds", "0", "--epochs", "1", "--set", "nispa_replay.phase_epochs=1",
            "--set", "nispa_replay.max_phases=3", "--results-dir", str(tmp_path), "--no-plots"]
    threads = torch.get_num_threads()
    try:
        result = cli.main(argv)
    finally:
        torch.set_num_threads(threads)  # the digits config asks for one thread
    out = capsys.readouterr().out
    for label in ("nispa_replay", "replay", "naive"):
        assert f"| {label} | 0 |" in out
    assert [row["label"] for row in result.rows] == ["nispa_replay", "replay", "naive"]
    runs = json.loads((tmp_path / "results.json").read_text())
    assert runs["command"].startswith("python -m benchmarks.compare --benchmark split_digits_cil")
    assert (tmp_path / "results.md").read_text().count("| nispa_replay |") == 1


def test_icarl_trains_features_and_classifier_and_fills_its_exemplars():
    cfg = configs.get_config("split_digits_cil")
    built = _build(cfg, "icarl", epochs=1)
    stream = runner.load_benchmark(cfg, 0)
    built.strategy.train(stream.train_stream[0])
    built.strategy.eval(stream.test_stream[:1])  # through the nearest-mean classifier
    assert built.model.eval_classifier.class_means is not None
    icarl = next(p for p in built.strategy.plugins if hasattr(p, "x_memory"))
    assert sum(len(x) for x in icarl.x_memory) == 100  # split_digits_cil's memory
