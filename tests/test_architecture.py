"""The seams of the library: the phase hooks, the configuration object, the private
Avalanche API behind one adapter, the algorithm free of Avalanche, checkpoints that read
plugins through state_dict only."""
import ast
import io
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from avalanche.core import SupervisedPlugin
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.logging import TextLogger
from avalanche.training.plugins import EvaluationPlugin

import avalanche_nispa
from avalanche_nispa import NISPA, NISPAConfig, save_checkpoint
from avalanche_nispa import _avalanche
from avalanche_nispa.benchmarks import split_digits
from avalanche_nispa.checkpoint import read_checkpoint
from avalanche_nispa.models import NISPAMLP
from avalanche_nispa.plugins.base import NISPAPlugin

PACKAGE = Path(avalanche_nispa.__file__).resolve().parent


@pytest.fixture(scope="module")
def digits():
    return split_digits(seed=0)


def _evaluator():
    return EvaluationPlugin(accuracy_metrics(experience=True), loggers=[TextLogger(io.StringIO())])


def _strategy(plugins=(), omit=(), **settings):
    torch.manual_seed(0)
    model = NISPAMLP(64, (32, 32), density=0.3)
    values = dict(train_mb_size=64, eval_mb_size=512, phase_epochs=1, max_phases=4,
                  evaluator=_evaluator(), plugins=list(plugins))
    values.update(settings)
    for key in omit:
        del values[key]
    return NISPA(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=0.01), **values)


class PhaseListener(SupervisedPlugin):
    """A user's plugin (not a NISPAPlugin) with the phase hooks."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def before_phase(self, strategy, *, phase, tau, **kwargs):
        self.calls.append(("before", phase, tau))

    def after_phase(self, strategy, *, phase, tau, activations=None, decision=None, **kwargs):
        self.calls.append(("after", phase, decision.stop))


def test_phase_hooks_reach_nispa_and_user_plugins_once_per_phase_in_order(digits):
    listener = PhaseListener()
    strategy = _strategy(plugins=[PhaseListener(), listener])  # another plugin present too
    selection_calls = []
    original = strategy.selection_plugin.after_phase

    def spy(s, **kwargs):
        selection_calls.append(kwargs["phase"])
        return original(s, **kwargs)

    strategy.selection_plugin.after_phase = spy
    strategy.train(digits.train_stream[0])
    phases = strategy.phase_history[-1]["phases"]
    assert phases >= 2
    assert selection_calls == list(range(1, phases + 1))
    expected = []
    for phase in range(1, phases + 1):
        expected += [("before", phase, pytest.approx(strategy.config.schedule(phase))),
                     ("after", phase, phase == phases)]
    assert listener.calls == expected


def test_a_config_object_and_keyword_arguments_give_the_same_strategy():
    config = NISPAConfig(phase_epochs=2, accuracy_drop_threshold=2.5, max_phases=4)
    by_config = _strategy(config=config, omit=("phase_epochs", "max_phases"))
    by_keywords = _strategy(phase_epochs=2, accuracy_drop_threshold=2.5)
    assert by_config.config == by_keywords.config == config
    overridden = _strategy(config=config, phase_epochs=3)
    assert overridden.config == config.replace(phase_epochs=3)
    assert NISPAConfig.preset("original").resolved_selection_data == "train"
    assert NISPAConfig.preset("paper") == NISPAConfig()


def test_the_fast_preset_trains_at_most_nine_phases_of_two_epochs():
    """Paper: τ reaches its 5 % floor at phase 26 (≤ 130 epochs per task); fast: phase 9."""
    from avalanche_nispa.algorithm.schedules import first_floor_phase

    paper, fast = NISPAConfig.preset("paper"), NISPAConfig.preset("fast")
    assert first_floor_phase(paper.schedule, paper.min_tau) == 26
    assert first_floor_phase(fast.schedule, fast.min_tau) == 9 and fast.phase_epochs == 2
    assert fast.replace(phase_epochs=5, tau_param=30.0) == paper


def test_config_refuses_unknown_and_bad_settings_with_the_fix():
    with pytest.raises(TypeError, match=r"unknown NISPA setting\(s\) phse_epochs; NISPAConfig has "):
        NISPAConfig().replace(phse_epochs=2)
    with pytest.raises(TypeError, match="unexpected keyword argument: phse_epochs"):
        _strategy(phse_epochs=2)
    with pytest.raises(ValueError, match=r"phase_epochs \(e\) must be a positive integer"):
        NISPAConfig(phase_epochs=0)
    with pytest.raises(ValueError, match="unknown NISPA preset 'fastest'; known: paper, original, fast"):
        NISPAConfig.preset("fastest")


def test_every_private_avalanche_name_exists_in_this_release():
    assert _avalanche.check_private_api() == []


def test_a_moved_private_name_is_reported_by_name(monkeypatch):
    moved = (_avalanche.SupervisedTemplate, "_train_exp_renamed", "a hook to replace the epoch loop")
    monkeypatch.setattr(_avalanche, "PRIVATE_API", _avalanche.PRIVATE_API + (moved,))
    assert _avalanche.check_private_api() == [
        "SupervisedTemplate._train_exp_renamed (missing public hook: a hook to replace the epoch loop)"]


def _private_attribute_uses(path: Path):
    """``obj._name`` reads where ``obj`` is not ``self``, ``cls`` or ``super()``
    (dunders allowed)."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
                and not (isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name)
                         and node.value.func.id == "super")):
            yield f"{path.relative_to(PACKAGE)}:{node.lineno} .{node.attr}"


def test_no_module_reads_another_objects_private_attributes():
    """Private Avalanche API goes through _avalanche.py; checkpoints read plugins
    through state_dict; nothing reaches into another object's underscored state."""
    found = [use for path in sorted(PACKAGE.rglob("*.py")) if path.name != "_avalanche.py"
             for use in _private_attribute_uses(path)]
    assert found == []


def test_the_algorithm_and_sparse_layers_import_without_avalanche():
    code = ("import sys, avalanche_nispa.algorithm, avalanche_nispa.sparse; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'avalanche'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_checkpoints_hold_every_plugin_state_dict(digits, tmp_path):
    strategy = _strategy(max_phases=2)
    strategy.train(digits.train_stream[0])
    path = save_checkpoint(strategy, tmp_path / "run.ckpt")
    saved = {p["class"].rsplit(".", 1)[-1]: p["state"] for p in read_checkpoint(path)["plugins"]}
    rewiring = strategy.rewiring_plugin.state_dict()
    assert saved["RewiringPlugin"]["history"] == rewiring["history"] and rewiring["history"]
    assert saved["StableSelectionPlugin"] == strategy.selection_plugin.state_dict()
    assert {"MaskingPlugin", "UnitStateReporter"} <= set(saved)


def test_timings_cover_every_part_of_an_experience(digits):
    strategy = _strategy(max_phases=2)
    strategy.train(digits.train_stream[0])
    parts = ("training", "validation", "snapshots", "phase_end", "experience_end")
    assert all(strategy.timings[part] > 0 for part in parts), dict(strategy.timings)


def test_nispa_plugins_used_elsewhere_do_not_warn_about_phase_hooks(recwarn):
    from avalanche.training import Naive

    from avalanche_nispa.plugins import MaskingPlugin
    model = NISPAMLP(64, (16,), density=0.3)
    assert isinstance(MaskingPlugin(), NISPAPlugin)
    Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
          plugins=[MaskingPlugin()], evaluator=_evaluator())
    assert not [w for w in recwarn if "incompatible callbacks" in str(w.message)]
