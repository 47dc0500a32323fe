"""The comparison harness (``avalanche_nispa.harness``) and the repaired baselines.

Everything runs on tiny benchmarks (a few dozen 8x8 digits per class, or
synthetic tensors shaped like CIFAR / EF-MNIST) for 1 epoch, so each test takes
seconds.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def harness() -> SimpleNamespace:
    """The harness modules and the repaired baselines."""
    names = ("baselines", "cli", "comparison", "configs", "models", "params", "planning",
             "plots", "progress", "report", "runner", "strategies", "strategies.packnet")
    modules = {n.split(".")[-1]: importlib.import_module(f"avalanche_nispa.harness.{n}")
               for n in names}
    return SimpleNamespace(**modules)


def _nc_benchmark(x: torch.Tensor, y: torch.Tensor, n_test: int, n_experiences: int):
    """Task-incremental benchmark from tensors: the last ``n_test`` of each class test."""
    from avalanche.benchmarks import nc_benchmark
    from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset

    train_idx, test_idx = [], []
    for c in torch.unique(y).tolist():
        idx = torch.nonzero(y == c).flatten().tolist()
        train_idx += idx[:-n_test]
        test_idx += idx[-n_test:]

    def subset(idx):
        idx = torch.tensor(idx)
        return _make_taskaware_tensor_classification_dataset(
            x[idx], y[idx], targets=y[idx].tolist()
        )

    classes = sorted(torch.unique(y).tolist())
    return nc_benchmark(
        subset(train_idx),
        subset(test_idx),
        n_experiences,
        task_labels=True,
        shuffle=False,
        fixed_class_order=classes,
    )


@pytest.fixture(scope="module")
def tiny_digits():
    """Digits 0-5 as 3 experiences of 2 classes: 30 training, 10 test images each."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).div(16.0).unsqueeze(1)
    y = torch.tensor(digits.target)
    keep = torch.cat([torch.nonzero(y == c).flatten()[:40] for c in range(6)])
    return _nc_benchmark(x[keep], y[keep], n_test=10, n_experiences=3)


@pytest.fixture(scope="module")
def tiny_config(harness):
    """The digits configuration shrunk to the tiny benchmark: 1 epoch, 16 units."""
    configs = harness.configs
    cfg = configs.get_config("split_digits")
    return dataclasses.replace(
        cfg,
        name="tiny_digits",
        n_experiences=3,
        n_classes=6,
        backbone=configs.Backbone("mlp", (1, 8, 8), hidden_sizes=(16,)),
        training=cfg.training.updated(epochs=1, batch_size=16),
    )


def _plans(harness, cfg, strategies, seeds):
    return harness.planning.make_plans(cfg, strategies, seeds)


def _counting_factory(benchmark):
    calls = []

    def factory(seed):
        calls.append(seed)
        return benchmark

    factory.calls = calls
    return factory


# --------------------------------------------------------------------------- #
# End to end


def test_harness_writes_tables_json_and_plots(harness, tiny_config, tiny_digits, tmp_path):
    plans = _plans(harness, tiny_config, ["naive", "ewc"], [0, 1])
    result = harness.comparison.run_comparison(
        tiny_config,
        plans,
        results_dir=tmp_path,
        benchmark_factory=_counting_factory(tiny_digits),
        command="python -m benchmarks.compare --test",
        progress=False,
    )
    assert sorted(result.outcome.executed) == sorted(p.stem for p in plans)

    runs = sorted((tmp_path / "runs").glob("*.json"))
    assert [r.name for r in runs] == [
        "ewc__seed0.json", "ewc__seed1.json", "naive__seed0.json", "naive__seed1.json"
    ]
    for path in runs:
        run = json.loads(path.read_text())
        matrix = run["accuracy_matrix"]
        assert len(matrix) == 3 and all(len(row) == 3 for row in matrix)
        assert all(0.0 <= v <= 1.0 for row in matrix for v in row)
        assert run["final_accuracy"] == pytest.approx(sum(matrix[-1]) / 3)
        # Avalanche's stream forgetting is the mean drop of the earlier experiences
        drops = [matrix[j][j] - matrix[-1][j] for j in range(2)]
        assert run["forgetting"] == pytest.approx(sum(drops) / 2)
        assert run["bwt"] == pytest.approx(-run["forgetting"])
        # 64->16 features plus three 2-class heads over 16 features
        expected = 64 * 16 + 16 + 3 * (2 * 16 + 2)
        assert run["parameters"] == {"active": expected, "frozen": 0, "total": expected}
        assert run["epochs_per_experience"] == [1, 1, 1]
        assert run["wall_time_s"] > 0 and run["peak_rss_mb"] > 0

    summary = json.loads((tmp_path / "results.json").read_text())
    assert summary["command"] == "python -m benchmarks.compare --test"
    assert [row["label"] for row in summary["rows"]] == ["naive", "ewc"]
    for row in summary["rows"]:
        assert row["n_seeds"] == 2 and 0.0 <= row["final_accuracy_mean"] <= 1.0
        assert len(row["accuracy_matrix_mean"]) == 3

    table = (tmp_path / "results.md").read_text()
    lines = [line for line in table.splitlines() if line.startswith(("| naive", "| ewc"))]
    assert len(lines) == 2 and all("±" in line for line in lines)

    csv_lines = (tmp_path / "results.csv").read_text().splitlines()
    assert len(csv_lines) == 3 and csv_lines[0].startswith("label,strategy,n_seeds,seeds")
    assert len((tmp_path / "runs.csv").read_text().splitlines()) == 5

    for name in ("accuracy_matrix_naive", "accuracy_matrix_ewc", "accuracy_vs_parameters"):
        assert (tmp_path / "plots" / f"{name}.png").read_bytes()[:8] == PNG_MAGIC


def test_rerun_skips_finished_pairs(harness, tiny_config, tiny_digits, tmp_path):
    plans = _plans(harness, tiny_config, ["naive"], [0, 1])
    factory = _counting_factory(tiny_digits)
    run = dict(results_dir=tmp_path, benchmark_factory=factory, progress=False, plots=False)
    first = harness.comparison.run_comparison(tiny_config, plans, **run)
    assert len(first.outcome.executed) == 2 and factory.calls == [0, 1]
    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "runs").iterdir()}

    second = harness.comparison.run_comparison(tiny_config, plans, **run)
    assert second.outcome.executed == [] and len(second.outcome.skipped) == 2
    assert factory.calls == [0, 1]  # no benchmark even built the second time
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "runs").iterdir()} == stamps
    assert second.rows[0]["final_accuracy_mean"] == first.rows[0]["final_accuracy_mean"]

    # an interrupted sweep: only the missing pair runs again
    (tmp_path / "runs" / "naive__seed1.json").unlink()
    third = harness.comparison.run_comparison(tiny_config, plans, **run)
    assert third.outcome.executed == ["naive__seed1"]

    # changed settings are not "finished": the pair runs again
    changed = _plans(harness, tiny_config, ["naive"], [0])
    changed[0].hparams["lr"] = 0.01
    fourth = harness.comparison.run_comparison(tiny_config, changed, **run)
    assert fourth.outcome.executed == ["naive__seed0"]


def test_runs_are_deterministic(harness, tiny_config, tiny_digits):
    plan = _plans(harness, tiny_config, ["si"], [3])[0]
    first = harness.runner.run_single(plan, tiny_config, tiny_digits)
    second = harness.runner.run_single(plan, tiny_config, tiny_digits)
    assert first["accuracy_matrix"] == second["accuracy_matrix"]


def test_command_line_prints_table(harness, tiny_digits, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(harness.runner, "load_benchmark", lambda cfg, seed, root=None: tiny_digits)
    argv = ["--strategies", "naive,replay", "--seeds", "0", "--epochs", "1",
            "--set", "backbone.hidden_sizes=16", "--results-dir", str(tmp_path), "--no-plots"]
    threads = torch.get_num_threads()
    try:
        result = harness.cli.main(argv)
    finally:
        torch.set_num_threads(threads)  # the digits config asks for one thread
    out = capsys.readouterr().out
    assert "| naive | 0 |" in out and "| replay | 0 |" in out
    assert [row["label"] for row in result.rows] == ["naive", "replay"]
    recorded = json.loads((tmp_path / "results.json").read_text())["command"]
    assert recorded == "python -m benchmarks.compare " + " ".join(argv)


def test_command_line_refuses_to_overwrite_results_before_running(
    harness, tiny_digits, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(harness.runner, "load_benchmark", lambda cfg, seed, root=None: tiny_digits)
    common = ["--seeds", "0", "--set", "backbone.hidden_sizes=16", "--results-dir", str(tmp_path),
              "--no-plots"]
    threads = torch.get_num_threads()
    try:
        harness.cli.main(["--strategies", "naive,replay", "--epochs", "1", *common])
        saved = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
        # a subset would rewrite the table without replay's row
        with pytest.raises(SystemExit, match=r"lists replay, which this command does not run"):
            harness.cli.main(["--strategies", "naive", "--epochs", "1", *common])
        # other settings under the same file name would replace the stored run
        with pytest.raises(SystemExit, match=r"naive__seed0.json was made with other settings"):
            harness.cli.main(["--strategies", "naive,replay", "--epochs", "2", *common])
        assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == saved
        # the same command again reuses everything; --replace overwrites on request
        again = harness.cli.main(["--strategies", "naive,replay", "--epochs", "1", *common])
        assert again.outcome.executed == []
        replaced = harness.cli.main(["--strategies", "naive", "--epochs", "2", "--replace", *common])
        assert replaced.outcome.executed == ["naive__seed0"]
        assert [row["label"] for row in replaced.rows] == ["naive"]
    finally:
        torch.set_num_threads(threads)


# --------------------------------------------------------------------------- #
# Aggregation


def test_mean_std_on_hand_made_numbers(harness):
    mean_std = harness.report.mean_std
    mean, std, n = mean_std([1.0, 2.0, 3.0, 4.0])
    assert (mean, n) == (2.5, 4) and std == pytest.approx(math.sqrt(5 / 3))
    mean, std, n = mean_std([2.0, None, float("nan"), 4.0])
    assert (mean, n) == (3.0, 2) and std == pytest.approx(math.sqrt(2))
    mean, std, n = mean_std([0.7])
    assert mean == 0.7 and math.isnan(std) and n == 1
    assert math.isnan(mean_std([])[0])


def _record(label, seed, final, forgetting, active, matrix):
    return {
        "label": label, "strategy": label, "seed": seed, "hparams": {"lr": 0.1},
        "final_accuracy": final, "forgetting": forgetting,
        "bwt": None if forgetting is None else -forgetting,
        "parameters": {"active": active, "frozen": 0, "total": active},
        "epochs_per_experience": [5, 5], "wall_time_s": 2.0 + seed,
        "peak_rss_delta_mb": 10.0, "accuracy_matrix": matrix,
    }


def test_aggregate_and_table_on_hand_made_runs(harness):
    runs = [
        _record("a", 1, 0.6, 0.10, 100, [[1.0, 0.0], [0.5, 0.7]]),
        _record("a", 0, 0.4, 0.30, 100, [[0.8, 0.2], [0.3, 0.5]]),
        _record("joint", 0, 0.9, None, 50, [[0.9, 0.9]]),
    ]
    rows = harness.report.aggregate(runs)
    assert [r["label"] for r in rows] == ["a", "joint"]
    a, joint = rows
    assert a["seeds"] == [0, 1] and a["n_seeds"] == 2
    assert a["final_accuracy_mean"] == pytest.approx(0.5)
    assert a["final_accuracy_std"] == pytest.approx(math.sqrt(0.02))
    assert a["forgetting_mean"] == pytest.approx(0.2) and a["bwt_mean"] == pytest.approx(-0.2)
    assert a["wall_time_s_mean"] == 2.5 and a["epochs_mean"] == 5.0
    mean_matrix = [v for row in a["accuracy_matrix_mean"] for v in row]
    assert mean_matrix == pytest.approx([0.9, 0.1, 0.4, 0.6])
    assert math.isnan(joint["forgetting_mean"]) and math.isnan(joint["final_accuracy_std"])

    table = harness.report.markdown_table(rows)
    assert "| a | 0,1 | 50.00 ± 14.14 | 20.00 ± 14.14 | -20.00 ± 14.14 | 100 ± 0 |" in table
    assert "| joint | 0 | 90.00 | — | — | 50 |" in table


def test_density_sweep_outputs(harness, tmp_path):
    runs = [
        {**_record(f"nispa(density={d})", 0, acc, 0.0, int(1000 * d), [[acc]]),
         "strategy": "nispa", "hparams": {"density": d}}
        for d, acc in ((0.5, 0.8), (0.05, 0.6), (0.2, 0.9))
    ]
    rows = harness.report.aggregate(runs)
    paths = harness.report.write_density_sweep(rows, tmp_path, title="t", command="c")
    table = paths["markdown"].read_text()
    assert table.index("| 0.05 |") < table.index("| 0.2 |") < table.index("| 0.5 |")
    assert "| 0.2 | 0 | 90.00 | 0.00 | 200 |" in table
    assert len(paths["csv"].read_text().splitlines()) == 4
    png = harness.plots.plot_density_sweep(rows, tmp_path / "sweep.png")
    assert png.read_bytes()[:8] == PNG_MAGIC


# --------------------------------------------------------------------------- #
# Settings and the command line


def test_grid_overrides_and_labels(harness):
    compare = harness.planning
    cfg = compare.apply_overrides(
        harness.configs.get_config("split_digits"),
        [("epochs", 3), ("nispa.density", 0.5), ("backbone.hidden_sizes", (32, 32))],
    )
    assert cfg.backbone.hidden_sizes == (32, 32)
    plans = compare.make_plans(cfg, ["naive"], [0, 1], [("ewc.ewc_lambda", "1,1e2")])
    assert [(p.label, p.seed) for p in plans] == [
        ("naive", 0), ("naive", 1),
        ("ewc(ewc_lambda=1)", 0), ("ewc(ewc_lambda=1)", 1),
        ("ewc(ewc_lambda=1e2)", 0), ("ewc(ewc_lambda=1e2)", 1),
    ]
    assert [p.hparams["ewc_lambda"] for p in plans[2:]] == [1, 1, 100.0, 100.0]
    assert all(p.hparams["epochs"] == 3 for p in plans)
    assert cfg.hparams("nispa")["density"] == 0.5
    assert plans[2].fingerprint(cfg) != plans[4].fingerprint(cfg)
    with pytest.raises(ValueError, match="neither 'backbone' nor a strategy"):
        compare.apply_overrides(cfg, [("bogus.key", 1)])
    # a mistyped shared key is refused with the keys that exist, before any run
    with pytest.raises(ValueError, match=r"cannot set 'lrr' for every strategy.*<strategy>\.lrr"):
        compare.apply_overrides(cfg, [("lrr", 0.1)])
    assert compare.apply_overrides(cfg, [("momentum", 0.9)]).training.momentum == 0.9
    # "default" is the configured value: its row and runs are those without a grid
    plain = compare.make_plans(cfg, ["nispa"], [0])
    both = compare.make_plans(cfg, [], [0], [("nispa.lr", "default,0.003"), ("nispa.density", "default")])
    assert [p.label for p in both] == ["nispa", "nispa(lr=0.003)"]
    assert both[0].stem == plain[0].stem and both[0].fingerprint(cfg) == plain[0].fingerprint(cfg)
    assert both[1].hparams == {**plain[0].hparams, "lr": 0.003}


def test_every_benchmark_configures_every_strategy(harness):
    configs = harness.configs
    assert set(harness.cli._parser()._option_string_actions["--benchmark"].choices) == {
        "split_digits", "split_mnist", "split_fmnist", "permuted_mnist",
        "permuted_mnist_10k", "permuted_mnist_20x5k", "ef_mnist", "split_cifar10",
        "split_cifar100", "split_digits_cil", "split_mnist_cil", "split_fmnist_cil",
    }
    for cfg in configs.BENCHMARKS.values():
        for strategy in configs.STRATEGIES:
            hp = cfg.hparams(strategy)
            assert all(key in hp for key in configs.TRAINING_KEYS), (cfg.name, strategy)
        assert cfg.hparams("nispa")["density"] <= 0.2
    mnist = configs.get_config("split_mnist")
    assert mnist.backbone.hidden_sizes == (400, 400, 400)
    # The budget variant of Permuted MNIST differs from the full one only in
    # its builder's image count, and its runs never reuse the full one's.
    full, budget = configs.get_config("permuted_mnist"), configs.get_config("permuted_mnist_10k")
    assert budget.builder_name == full.builder_name == "permuted_mnist"
    assert budget.builder_kwargs == {"train_samples_per_task": 10_000}
    assert all(budget.hparams(s) == full.hparams(s) for s in configs.STRATEGIES)
    plan = harness.planning.RunPlan("nispa", "nispa", 0, full.hparams("nispa"))
    assert plan.fingerprint(full) != plan.fingerprint(budget)
    # The 20-task stream: twice the tasks, half the images, NISPA's a_f at 2.5.
    longer = configs.get_config("permuted_mnist_20x5k")
    assert longer.builder_name == "permuted_mnist"
    assert longer.builder_kwargs == {"n_experiences": 20, "train_samples_per_task": 5_000}
    assert longer.hparams("nispa")["accuracy_drop_threshold"] == 2.5
    assert plan.fingerprint(longer) not in (plan.fingerprint(full), plan.fingerprint(budget))
    assert mnist.hparams("nispa")["lr"] == 0.01 and mnist.hparams("nispa")["batch_size"] == 512


# --------------------------------------------------------------------------- #
# The repaired baselines


def _quiet_evaluator(*metrics):
    """An evaluator whose logger writes nowhere (``loggers=[]`` warns)."""
    import io

    from avalanche.logging import TextLogger
    from avalanche.training.plugins import EvaluationPlugin

    return EvaluationPlugin(*metrics, loggers=[TextLogger(io.StringIO())])


def _train_si(plugin_cls, benchmark):
    from avalanche.training import Naive

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 16), torch.nn.ReLU(),
                                torch.nn.Linear(16, 6))
    plugin = plugin_cls(si_lambda=1.0)
    strategy = Naive(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
                     train_mb_size=16, train_epochs=1, plugins=[plugin],
                     evaluator=_quiet_evaluator(), device="cpu")
    strategy.train(benchmark.train_stream[0])
    return sum(float(v.data.abs().sum()) for v in plugin.ewc_data[1].values())


def test_si_fix_gives_nonzero_importances_on_cpu(harness, tiny_digits):
    from avalanche.training.plugins import SynapticIntelligencePlugin

    fixed = _train_si(harness.baselines.FixedSynapticIntelligencePlugin, tiny_digits)
    assert fixed > 0.0
    # the bug the fix is for: on CPU, avalanche-lib 0.6.0's SI learns nothing
    assert _train_si(SynapticIntelligencePlugin, tiny_digits) == 0.0


def test_packnet_calls_user_plugins_and_does_not_forget(harness, tiny_digits):
    from avalanche.evaluation.metrics import accuracy_metrics
    from avalanche.training.plugins import SupervisedPlugin

    baselines = harness.baselines

    class Counter(SupervisedPlugin):
        def __init__(self):
            super().__init__()
            self.iterations = self.experiences = 0

        def after_training_iteration(self, strategy, **kwargs):
            self.iterations += 1

        def after_training_exp(self, strategy, **kwargs):
            self.experiences += 1

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 16, bias=False),
                              torch.nn.ReLU(), torch.nn.Linear(16, 6))
    model = baselines.TaskMaskedPackNetModel(net)
    counter, plugins = Counter(), []
    plugins.append(counter)
    strategy = baselines.FixedPackNet(
        model=model, optimizer=torch.optim.AdamW(model.parameters(), lr=1e-2),
        post_prune_epochs=1, prune_proportion=baselines.equal_share_prune_proportions(3),
        train_mb_size=16, train_epochs=2, eval_mb_size=64, plugins=plugins,
        evaluator=_quiet_evaluator(accuracy_metrics(experience=True)),
    )
    rows = []
    for experience in tiny_digits.train_stream:
        strategy.train(experience)
        rows.append(harness.runner.accuracy_row(strategy.eval(tiny_digits.test_stream), 3))
    assert plugins == [counter]  # the caller's list is left alone
    assert counter.experiences == 3 and counter.iterations == 3 * 2 * 4  # 60 images, batch 16
    assert rows[0][0] == rows[1][0] == rows[2][0] and rows[1][1] == rows[2][1]
    assert model.task_classes == {0: [0, 1], 1: [2, 3], 2: [4, 5]}
    counts = harness.packnet.count_packnet_parameters(model)
    assert counts["total"] == 64 * 16 + 16 * 6 + 6
    assert counts["active"] == counts["frozen"] == counts["total"]  # equal share: all used


def test_gem_runs(harness, tiny_config, tiny_digits):
    pytest.importorskip("quadprog")
    plan = _plans(harness, tiny_config, ["gem"], [0])[0]
    run = harness.runner.run_single(plan, tiny_config, tiny_digits)
    assert len(run["accuracy_matrix"]) == 3
    assert all(0.0 <= v <= 1.0 for row in run["accuracy_matrix"] for v in row)
    assert not any("SolverNotFound" in w for w in run["warnings"])


def test_packnet_and_joint_through_the_harness(harness, tiny_config, tiny_digits):
    plans = _plans(harness, tiny_config, ["packnet", "joint"], [0])
    packnet = harness.runner.run_single(plans[0], tiny_config, tiny_digits)
    assert packnet["epochs_per_experience"] == [2, 2, 2]  # 1 epoch is too few for PackNet
    assert any("epochs 1 -> 2" in note for note in packnet["notes"])
    assert packnet["forgetting"] == 0.0
    joint = harness.runner.run_single(plans[1], tiny_config, tiny_digits)
    assert len(joint["accuracy_matrix"]) == 1 and joint["forgetting"] is None


# --------------------------------------------------------------------------- #
# Benchmarks without data here: the paper CNN and EF-MNIST's uneven tasks


@pytest.mark.parametrize(
    "name, classes_per_experience",
    [("split_cifar10", (2, 2)), ("split_cifar100", (5, 5)), ("ef_mnist", (10, 13))],
)
def test_configs_without_data_run_on_synthetic_tensors(harness, name, classes_per_experience):
    from avalanche.benchmarks import nc_benchmark
    from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset

    cfg = harness.configs.get_config(name)
    cfg = dataclasses.replace(cfg, training=cfg.training.updated(epochs=1, batch_size=8))
    generator = torch.Generator().manual_seed(0)
    n_classes = sum(classes_per_experience)
    y = torch.arange(n_classes).repeat_interleave(3)
    x = torch.rand((len(y), *cfg.backbone.input_shape), generator=generator)
    data = _make_taskaware_tensor_classification_dataset(x, y, targets=y.tolist())
    benchmark = nc_benchmark(data, data, 2, task_labels=True, shuffle=False,
                             fixed_class_order=list(range(n_classes)),
                             per_exp_classes={0: classes_per_experience[0]})
    plans = _plans(harness, cfg, ["naive", "packnet"], [0])
    runs = [harness.runner.run_single(plan, cfg, benchmark) for plan in plans]
    assert all(len(run["accuracy_matrix"]) == 2 for run in runs)
    dense = runs[0]["parameters"]["active"]
    features, width = harness.models.build_features(cfg.backbone)
    heads = sum(c * width + c for c in classes_per_experience)
    assert dense == sum(p.numel() for p in features.parameters()) + heads
    if cfg.backbone.kind == "cnn":
        assert width == 1024 and dense > 8_000_000  # the paper's ConvNet (spec §3)


# --------------------------------------------------------------------------- #
# NISPA through the harness


def test_nispa_runs_through_the_harness(harness, tiny_config, tiny_digits, tmp_path):
    cfg = harness.planning.apply_overrides(
        tiny_config, [("nispa.phase_epochs", 1), ("nispa.max_phases", 3), ("nispa.batch_size", 16)]
    )
    plans = _plans(harness, cfg, ["nispa"], [0])
    result = harness.comparison.run_comparison(
        cfg,
        plans,
        results_dir=tmp_path,
        benchmark_factory=lambda seed: tiny_digits,
        progress=False,
    )
    run = result.outcome.results[0]
    matrix = run["accuracy_matrix"]
    assert run["forgetting"] == 0.0
    assert [matrix[i][0] for i in range(3)] == [matrix[0][0]] * 3
    assert len(run["nispa"]["phase_history"]) == 3 and len(run["nispa"]["unit_states"]) == 3
    assert all(1 <= e <= 3 for e in run["epochs_per_experience"])
    params = run["parameters"]
    assert 0 < params["frozen"] <= params["active"] < params["total"]
    assert (tmp_path / "plots" / "unit_states_nispa.png").read_bytes()[:8] == PNG_MAGIC
