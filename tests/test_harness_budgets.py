"""``--budgets``: every strategy at matched active-parameter counts."""

from __future__ import annotations

import json

import pytest

from avalanche_nispa.harness import cli
from avalanche_nispa.harness.budgets import (
    Budget,
    budget_overrides,
    dense_mlp_parameters,
    head_rows,
    parse_budgets,
)
from avalanche_nispa.harness.configs import get_config


def test_parse_budgets():
    assert parse_budgets("16k, 1.5M,2000,full") == [
        Budget("16k", 16_000), Budget("1.5M", 1_500_000), Budget("2000", 2000), Budget("full", None)]
    with pytest.raises(ValueError, match="16000, 16k or 1.5M"):
        parse_budgets("16kb")
    with pytest.raises(ValueError, match="given twice: 16k"):
        parse_budgets("16k,16k")


def test_counts_follow_the_tables_convention():
    split = get_config("split_mnist")
    # 784-400-400-400 and one output row per class over the stream (multi-head: 5 x 2)
    assert dense_mlp_parameters(split, (400, 400, 400)) == 784 * 400 + 2 * 400 * 400 + 400 * 10 + 1210
    assert head_rows(get_config("permuted_mnist_10k")) == 100  # each task its own 10 rows
    assert head_rows(get_config("split_mnist_cil")) == 10
    width = budget_overrides(split, "ewc", Budget("64k", 64_000))["hidden_sizes"]
    assert len(width) == 3 and len(set(width)) == 1
    below = dense_mlp_parameters(split, (width[0] - 1,) * 3)
    above = dense_mlp_parameters(split, (width[0] + 1,) * 3)
    assert below < 64_000 < above  # the closest equal width
    assert budget_overrides(split, "nispa", Budget("full", None)) == {}


def test_a_wider_sparse_network_gets_the_density_of_its_own_widths():
    """The width sweep: NISPA at 800 or 1600 units keeps the budget by a lower density."""
    permuted = get_config("permuted_mnist_10k")
    budget = Budget("136k", 136_000)
    densities = {}
    for width in (400, 800, 1600):
        hidden = (width,) * 3
        density = budget_overrides(permuted, "nispa", budget, {"hidden_sizes": hidden})["density"]
        weights = 784 * width + 2 * width * width + width * 100
        assert abs(density * weights + 3 * width + 100 - 136_000) < 1  # expected live + biases
        densities[width] = density
    assert densities[400] == budget_overrides(permuted, "nispa", budget)["density"]
    assert densities[400] > densities[800] > densities[1600]
    argv = ["--benchmark", "permuted_mnist_10k", "--strategies", "nispa", "--budgets", "136k",
            "--set", "nispa.hidden_sizes=800,800,800", "--seeds", "1"]
    (plan,) = cli.plan_command(argv).plans
    assert plan.label == "nispa@136k" and plan.hparams["density"] == densities[800]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--benchmark", "split_mnist", "--strategies", "nispa", "--budgets", "1k"],
         "needs density -?0.00"),
        (["--benchmark", "split_cifar10", "--strategies", "naive", "--budgets", "16k"],
         "sizes MLP backbones"),
        (["--benchmark", "split_mnist", "--strategies", "naive", "--budgets", "638810,full"],
         "configured network.*use 'full'"),
    ],
)
def test_budget_refusals(argv, message):
    with pytest.raises(SystemExit, match=message):
        cli.plan_command(argv)


def test_measured_active_parameters_match_the_budget(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli.main(["--strategies", "naive,nispa", "--budgets", "4k,full", "--seeds", "0",
              "--set", "epochs=1", "--set", "nispa.max_phases=2", "--results-dir", "out",
              "--no-plots"])
    cfg = get_config("split_digits")
    runs = {p.stem: json.loads(p.read_text()) for p in (tmp_path / "out/runs").glob("*.json")}
    assert set(runs) == {"naive_4k__seed0", "naive__seed0", "nispa_4k__seed0", "nispa__seed0"}
    dense = runs["naive_4k__seed0"]
    assert dense["label"] == "naive@4k"
    hidden = dense["hparams"]["hidden_sizes"]
    assert dense["parameters"]["active"] == dense_mlp_parameters(cfg, hidden)
    assert abs(dense["parameters"]["active"] - 4000) < 300
    sparse = runs["nispa_4k__seed0"]["parameters"]["active"]
    assert abs(sparse - 4000) / 4000 < 0.03  # Bernoulli masks: close to, not exactly, the budget
    assert "hidden_sizes" not in runs["nispa__seed0"]["hparams"]
    assert runs["naive__seed0"]["parameters"]["active"] == dense_mlp_parameters(
        cfg, cfg.backbone.hidden_sizes)


def test_a_reference_budget_is_the_sparse_networks_active_count():
    planned = cli.plan_command(["--benchmark", "split_mnist_cil", "--strategies",
                                "nispa_replay,replay", "--budgets", "as:nispa_replay,full",
                                "--seeds", "1"])
    labels = [plan.label for plan in planned.plans]
    assert labels == ["nispa_replay", "replay@nispa_replay", "replay"]  # no duplicate row
    cfg = planned.cfg
    width = planned.plans[1].hparams["hidden_sizes"]
    sparse = round(0.1 * (784 * 400 + 2 * 400 * 400 + 400 * 10) + 1210)
    assert abs(dense_mlp_parameters(cfg, width) - sparse) < dense_mlp_parameters(
        cfg, (width[0] + 1,) * 3) - dense_mlp_parameters(cfg, width)
    alone = cli.plan_command(["--benchmark", "split_mnist_cil", "--strategies",
                              "nispa_replay,replay", "--budgets", "as:nispa_replay",
                              "--seeds", "1"])
    assert [plan.label for plan in alone.plans] == ["nispa_replay", "replay@nispa_replay"]
    with pytest.raises(SystemExit, match="names a dense strategy"):
        cli.plan_command(["--benchmark", "split_mnist_cil", "--strategies", "replay",
                          "--budgets", "as:replay"])
