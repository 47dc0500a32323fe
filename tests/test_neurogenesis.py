"""Neurogenesis (issue 15 §3): a layer short of plastic units grows new ones, and every
old task's outputs stay bit-identical; the grown network checkpoints and resumes."""

from __future__ import annotations

import io

import pytest
import torch

from avalanche_nispa import NISPA, NISPAConfig
from avalanche_nispa.algorithm.links import source_states
from avalanche_nispa.algorithm.neurogenesis import units_to_add
from avalanche_nispa.models import NISPACNN, NISPAMLP
from avalanche_nispa.models.growth import grow_hidden_units_
from avalanche_nispa.plugins import NeurogenesisPlugin
from avalanche_nispa.sparse import PLASTIC, STABLE
from avalanche_nispa.sparse.growth import add_input_units_, add_output_units_


def _states(plastic: int, stable: int) -> torch.Tensor:
    return torch.tensor([PLASTIC] * plastic + [STABLE] * stable, dtype=torch.int8)


@pytest.mark.parametrize("plastic, stable, below, bound, expected", [
    (0, 400, 0.1, 0.05, 20),    # wants 45, bound 20
    (0, 400, 0.1, 0.5, 45),     # 45 / 445 >= 0.1, 44 / 444 < 0.1
    (30, 370, 0.1, 0.5, 12),    # 42 / 412 >= 0.1
    (40, 360, 0.1, 0.5, 0),     # already at the share
    (0, 10, 0.1, 0.05, 0),      # the bound allows no unit on 10
])
def test_growth_count_restores_the_plastic_share_within_the_bound(plastic, stable, below, bound,
                                                                  expected):
    count = units_to_add(_states(plastic, stable), below, bound)
    assert count == expected
    if 0 < count < bound * (plastic + stable):
        assert (plastic + count) >= below * (plastic + stable + count)
        assert (plastic + count - 1) < below * (plastic + stable + count - 1)


def _outputs(model, x, tasks):
    model.eval()
    with torch.no_grad():
        return [model(x, t).clone() for t in tasks]


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_grown_layers_keep_every_old_output_bit_identical(kind):
    torch.manual_seed(0)
    if kind == "mlp":
        model, x = NISPAMLP(64, (24, 20), density=0.4), torch.randn(37, 64)
    else:
        model = NISPACNN(in_channels=1, input_size=8, channels=(4, 4, 6, 6), fc_size=20,
                         density=0.4)
        x = torch.randn(9, 1, 8, 8)
    model.train()
    for task in range(2):
        model.adaptation(type("E", (), {"task_labels": [task], "classes_in_this_experience":
                                         [2 * task, 2 * task + 1], "current_experience": task})())
    hidden = model.hidden_layers()
    # as after training: old tasks read stable units only. Every hidden unit is stable
    # but the second half of the last layer, which the heads do not read
    with torch.no_grad():
        for layer in hidden:
            layer.unit_state.fill_(STABLE)
        last = hidden[-1]
        last.unit_state[last.out_units // 2:] = PLASTIC
        for head in model.heads.values():
            head.connection_mask[:, last.out_units // 2:] = False
            head.refresh_()
    before = _outputs(model, x, [0, 1])
    counts = [3] * len(hidden)
    grow_hidden_units_(model, counts)
    grow_hidden_units_(model, [1] * len(hidden))
    # new units with random live connections from every input and into every plastic
    # unit of the next layer: stable units (and the heads) never read them
    for layer in hidden + list(model.heads.values()):
        with torch.no_grad():
            new_cols = layer.in_units - layer.col_blocks[0]
            if new_cols and layer in hidden:
                plastic = layer.unit_state == PLASTIC
                layer.connection_mask[plastic, -new_cols:] = True
                layer.weight[plastic, -new_cols:] = torch.randn(int(plastic.sum()), new_cols,
                                                                *layer.weight.shape[2:])
            new_rows = layer.out_units - layer.row_blocks[0]
            if new_rows:
                layer.connection_mask[-new_rows:] = True
                layer.weight[-new_rows:] = torch.randn_like(layer.weight[-new_rows:])
            layer.refresh_()
    after = _outputs(model, x, [0, 1])
    for a, b in zip(before, after):
        assert torch.equal(a, b)  # the heads are stable: outputs unchanged bit for bit
    assert [layer.out_units for layer in hidden] == [
        layer.row_blocks[0] + 4 for layer in hidden]
    assert model.unit_growth.tolist() == [counts, [1] * len(hidden)]


def test_growing_a_layer_adds_absent_plastic_units_and_refuses_bad_counts():
    layer = NISPAMLP(8, (5,)).hidden_layers()[0]
    weight = layer.weight
    add_output_units_(layer, 2)
    add_input_units_(layer, 3)
    assert layer.weight is weight and tuple(weight.shape) == (7, 11)  # same Parameter
    assert not bool(layer.connection_mask[5:].any()) and not bool(layer.connection_mask[:, 8:].any())
    assert layer.unit_state[5:].tolist() == [PLASTIC, PLASTIC]
    assert (layer.out_features, layer.in_features) == (7, 11)
    assert layer.row_blocks == [5, 2] and layer.col_blocks == [8, 3]
    with pytest.raises(ValueError, match="integer >= 0"):
        add_output_units_(layer, -1)


@pytest.mark.parametrize("settings, message", [
    ({"neurogenesis_below": 1.0}, "neurogenesis_below must be None .* in \\(0, 1\\)"),
    ({"neurogenesis_below": 0}, "neurogenesis_below must be None"),
    ({"neurogenesis_below": 0.1, "neurogenesis_bound": 0}, "neurogenesis_bound .* in \\(0, 1\\]"),
    ({"neurogenesis_bound": 0.2}, "only acts with neurogenesis on"),
])
def test_bad_neurogenesis_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        NISPAConfig(**settings)


def _evaluator():
    from avalanche.evaluation.metrics import accuracy_metrics
    from avalanche.logging import TextLogger
    from avalanche.training.plugins import EvaluationPlugin

    return EvaluationPlugin(accuracy_metrics(experience=True), loggers=[TextLogger(io.StringIO())])


def _strategy(model, **settings):
    return NISPA(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=0.01),
                 train_mb_size=64, eval_mb_size=512, phase_epochs=1, max_phases=3,
                 evaluator=_evaluator(), **settings)


def test_training_with_neurogenesis_grows_and_never_forgets(digits):
    torch.manual_seed(0)
    model = NISPAMLP(64, (16, 16), density=0.3)
    strategy = _strategy(model, neurogenesis_below=0.6, neurogenesis_bound=0.5)
    x = torch.stack([digits.test_stream[0].dataset[i][0] for i in range(64)]).flatten(1)
    outputs = []
    for experience in digits.train_stream:
        strategy.train(experience)
        task = experience.current_experience
        own = {t: model.heads[str(t)].classes for t in range(task + 1)}
        for t, old in enumerate(outputs):  # a task's own logits (the output widens)
            assert torch.equal(_outputs(model, x, [t])[0][:, own[t]], old), f"task {t} changed"
        outputs.append(_outputs(model, x, [task])[0][:, own[task]])
        links = model.layer_links(task)
        for index, link in enumerate(links[1:], start=1):  # no plastic unit feeds a stable one
            stable_rows = link.layer.unit_state == STABLE
            plastic_cols = source_states(links, index) == PLASTIC
            assert not bool(link.layer.connection_mask[stable_rows][:, plastic_cols].any())
    history = strategy.neurogenesis_plugin.history
    assert len(history) == 5 and history[0]["added"] == [0, 0]
    assert any(sum(h["added"]) for h in history), "the test must exercise a growth"
    assert strategy.neurogenesis_plugin.widths == [layer.out_units for layer in model.hidden_layers()]
    assert all(w > 16 for w in strategy.neurogenesis_plugin.widths)


def test_a_grown_network_resumes_from_a_checkpoint_bit_identically(digits, tmp_path):
    from avalanche_nispa import load_checkpoint, save_checkpoint

    def run(stop_after=None, resume=None):
        torch.manual_seed(0)
        model = NISPAMLP(64, (16, 16), density=0.3)
        strategy = _strategy(model, neurogenesis_below=0.6, neurogenesis_bound=0.5)
        start = 0
        if resume is not None:
            start = load_checkpoint(strategy, resume)
        for experience in list(digits.train_stream)[start:stop_after]:
            strategy.train(experience)
        return strategy, model

    strategy, model = run(stop_after=3)
    assert any(sum(h["added"]) for h in strategy.neurogenesis_plugin.history)
    save_checkpoint(strategy, tmp_path / "run.pt")
    _, resumed = run(resume=tmp_path / "run.pt")
    _, whole = run()
    state, again = whole.state_dict(), resumed.state_dict()
    assert state.keys() == again.keys()
    for key in state:
        assert torch.equal(state[key], again[key]), key
