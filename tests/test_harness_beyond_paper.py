"""The harness side of issue 15: NISPA's growth-rule and unfreezing settings can be
gridded without changing any existing run's fingerprint, reach the strategy, and
runs report released units and each experience's forgetting."""
import io
import math

import pytest

from avalanche_nispa.harness import configs, per_experience, plots, report
from avalanche_nispa.harness import strategies as registry
from avalanche_nispa.harness.strategies.nispa import NISPAParams

NEW_FIELDS = ("growth_rule", "growth_gradient_batches", "unfreeze_below", "unfreeze_bound",
              "unfreeze_importance")


def test_the_new_settings_are_stored_only_when_set():
    stored = NISPAParams().as_dict()
    assert not set(NEW_FIELDS) & set(stored)  # every committed NISPA fingerprint holds
    assert NISPAParams(growth_rule="rigl").as_dict()["growth_rule"] == "rigl"
    with pytest.raises(TypeError, match="unfreeze_bound must be"):
        NISPAParams.check("unfreeze_bound", "high")


def _evaluator():
    from avalanche.evaluation.metrics import accuracy_metrics
    from avalanche.logging import TextLogger
    from avalanche.training.plugins import EvaluationPlugin

    return EvaluationPlugin(accuracy_metrics(experience=True), loggers=[TextLogger(io.StringIO())])


def test_gridded_settings_reach_the_strategy_and_bad_ones_fail_at_build():
    cfg = configs.get_config("split_digits")
    hp = {**cfg.hparams("nispa"), "growth_rule": "ch3l3", "unfreeze_below": 0.2,
          "unfreeze_bound": 0.1}
    built = registry.build_strategy("nispa", cfg.backbone, cfg.n_classes, hp, n_experiences=5,
                                    evaluator=_evaluator())
    config = built.strategy.config
    assert (config.resolved_growth_rule, config.unfreeze_below, config.unfreeze_bound) == \
        ("ch3l3", 0.2, 0.1)
    assert built.strategy.unfreezing_plugin is not None
    assert "released_units" in built.entry.run_details(built, [])
    default = registry.build_strategy("nispa", cfg.backbone, cfg.n_classes, cfg.hparams("nispa"),
                                      n_experiences=5, evaluator=_evaluator())
    assert default.strategy.config.resolved_growth_rule == "full_random"
    assert "released_units" not in default.entry.run_details(default, [])
    with pytest.raises(ValueError, match="unknown growth_rule 'rigel'; known: random, ch3l3"):
        registry.build_strategy("nispa", cfg.backbone, cfg.n_classes,
                                {**cfg.hparams("nispa"), "growth_rule": "rigel"},
                                n_experiences=5, evaluator=_evaluator())


def test_forgetting_per_experience_is_the_drop_from_just_after_training():
    matrix = [[0.9, 0.1, 0.1], [0.8, 0.95, 0.1], [0.7, 0.95, 0.99]]
    lost = per_experience.forgetting_per_experience(matrix)
    assert lost[0] == pytest.approx(0.2) and lost[1] == pytest.approx(0.0) and lost[2] is None
    assert per_experience.forgetting_per_experience([[0.5, 0.6]]) == [None, None]  # Joint
    assert per_experience.final_accuracies(matrix) == [0.7, 0.95, 0.99]


def _record(label, seed, matrix):
    final = matrix[-1]
    return {"label": label, "strategy": "nispa", "seed": seed, "hparams": {},
            "accuracy_matrix": matrix, "final_accuracy": sum(final) / len(final),
            "forgetting": 0.0, "bwt": 0.0, "parameters": {"active": 10, "frozen": 0, "total": 10},
            "epochs_per_experience": [1, 1], "wall_time_s": 1.0, "peak_rss_delta_mb": 0.0}


def test_reports_show_each_experiences_accuracy_and_forgetting(tmp_path):
    runs = [_record("nispa", 0, [[0.9, 0.0], [0.8, 0.9]]),
            _record("nispa", 1, [[0.9, 0.0], [0.7, 0.9]]),
            _record("nispa(unfreeze_bound=0.1)", 0, [[0.9, 0.0], [0.9, 0.8]])]
    rows = report.aggregate(runs)
    paths = report.write_reports(rows, runs, tmp_path, title="t", command="c", context={})
    text = paths["per_experience"].read_text()
    assert "| Experience | nispa | nispa(unfreeze_bound=0.1) |" in text
    assert "| E0 | 75.00 | 90.00 |" in text  # final accuracy, mean over seeds
    assert "| E0 | 15.00 | 0.00 |" in text  # forgetting: 90 just after, 75 at the end
    assert "| E1 | – | – |" in text  # the last experience has no forgetting
    assert "`per_experience.md`" in paths["markdown"].read_text()
    png = plots.plot_final_accuracy_per_experience(rows, tmp_path / "final.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not math.isnan(rows[0]["final_accuracy_mean"])
