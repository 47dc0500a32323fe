"""Selective unfreezing (issue 15, part 2): how many stable units a layer releases,
which ones, that exactly their incoming connections and biases thaw while every other
frozen value stays bit-identical through later training, the refusals, and the
released counts in the metrics."""
import io

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avalanche_nispa import NISPA, NISPAConfig
from avalanche_nispa.algorithm.rewiring import drop_connections_into_stable_
from avalanche_nispa.algorithm.units import freeze_stable_connections_
from avalanche_nispa.algorithm.unfreezing import (
    activation_shares,
    choose_units_to_release,
    downstream_shares,
    release_units_,
    units_to_release,
    update_importance,
)
from avalanche_nispa.models import NISPAMLP
from avalanche_nispa.plugins import SelectiveUnfreezingPlugin
from avalanche_nispa.plugins.masking import reinitialise_unfrozen_, units_feeding_stable
from avalanche_nispa.plugins.reporting import metric_name
from avalanche_nispa.sparse import CANDIDATE, PLASTIC, STABLE, MaskedLinear

PROPERTIES = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                      suppress_health_check=[HealthCheck.too_slow])


@st.composite
def layer_states(draw):
    units = draw(st.integers(1, 40))
    states = draw(st.lists(st.sampled_from([PLASTIC, STABLE]), min_size=units, max_size=units))
    return torch.tensor(states, dtype=torch.int8)


@PROPERTIES
@given(layer_states(), st.floats(0.01, 1.0), st.floats(0.0, 1.0))
def test_release_count_restores_the_plastic_share_within_the_bound(state, below, bound):
    units = state.numel()
    plastic, stable = int((state == PLASTIC).sum()), int((state == STABLE).sum())
    count = units_to_release(state, below, bound)
    assert 0 <= count <= min(stable, int(bound * units + 1e-9))
    if plastic >= below * units:
        assert count == 0
    elif count < min(stable, int(bound * units + 1e-9)):
        assert plastic + count >= below * units  # only the bound or the stable units stop it
    if count:
        assert plastic + count - 1 < below * units  # never more than brings it to the share


@PROPERTIES
@given(layer_states(), st.integers(0, 40), st.integers(0, 2**16))
def test_the_least_important_stable_units_are_chosen_ties_at_random(state, count, seed):
    gen = torch.Generator().manual_seed(seed)
    importance = torch.randint(0, 4, state.shape, generator=gen).double()  # many ties
    chosen = choose_units_to_release(state, importance, count, torch.Generator().manual_seed(seed))
    stable = state == STABLE
    assert int(chosen.sum()) == min(count, int(stable.sum()))
    assert not bool(chosen[~stable].any())
    kept = stable & ~chosen
    if bool(chosen.any()) and bool(kept.any()):
        assert float(importance[chosen].max()) <= float(importance[kept].min())
    again = choose_units_to_release(state, importance, count, torch.Generator().manual_seed(seed))
    assert torch.equal(chosen, again)


def test_ties_are_not_broken_by_position():
    state = torch.full((10,), STABLE, dtype=torch.int8)
    picks = {tuple(choose_units_to_release(state, torch.zeros(10), 3,
                                           torch.Generator().manual_seed(s)).nonzero().flatten().tolist())
             for s in range(20)}
    assert len(picks) > 10


def test_importance_is_the_largest_share_of_stable_activation_so_far():
    state = torch.tensor([STABLE, STABLE, PLASTIC, STABLE], dtype=torch.int8)
    first = update_importance(None, torch.tensor([3.0, 1.0, 9.0, 0.0]), state)
    assert first.tolist() == [0.75, 0.25, 0.0, 0.0]  # plastic units have none
    second = update_importance(first, torch.tensor([0.0, 1.0, 5.0, 1.0]), state)
    assert second.tolist() == [0.75, 0.5, 0.0, 0.5]
    assert not bool(activation_shares(torch.zeros(4), state).any())  # a silent layer


def _consumer(weight, states):
    layer = MaskedLinear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        layer.weight.copy_(weight)
    layer.set_connection_mask_(weight != 0)
    layer.unit_state.copy_(torch.tensor(states, dtype=torch.int8))
    return layer


def test_downstream_importance_is_the_largest_share_of_a_stable_consumers_input():
    """Hand-checked: a unit's |w| * a over the stable consumer's summed |w| * a."""
    state = torch.tensor([STABLE, STABLE, PLASTIC], dtype=torch.int8)
    activation = torch.tensor([1.0, 4.0, 9.0])
    # the plastic consumer row (5, 5, 5) does not count; the stable row carries 2 and 4
    nxt = _consumer(torch.tensor([[2.0, -1.0, 0.0], [5.0, 5.0, 5.0]]), [STABLE, PLASTIC])
    shares = downstream_shares(activation, state, [(nxt, 1)])
    assert torch.allclose(shares, torch.tensor([1 / 3, 2 / 3, 0.0], dtype=torch.float64))
    # a second consumer where unit 0 carries everything: the largest share wins
    head = _consumer(torch.tensor([[3.0, 0.0, 0.0]]), [STABLE])
    shares = downstream_shares(activation, state, [(nxt, 1), (head, 1)])
    assert torch.allclose(shares, torch.tensor([1.0, 2 / 3, 0.0], dtype=torch.float64))
    # a flatten: two input columns per unit, their magnitudes summed
    flat = _consumer(torch.tensor([[1.0, 1.0, 0.0, 2.0, 3.0, 0.0]]), [STABLE])
    shares = downstream_shares(torch.tensor([1.0, 2.0, 0.0]), state, [(flat, 2)])
    assert torch.allclose(shares, torch.tensor([1 / 3, 2 / 3, 0.0], dtype=torch.float64))
    # no stable consumer, or silent inputs: nothing depends on the units
    assert not bool(downstream_shares(activation, state, [(_consumer(
        torch.ones(1, 3), [PLASTIC]), 1)]).any())
    assert not bool(downstream_shares(torch.zeros(3), state, [(nxt, 1)]).any())
    # kept as the largest over experiences
    before = torch.tensor([0.5, 0.1, 0.0], dtype=torch.float64)
    after = update_importance(before, activation, state, [(nxt, 1)])
    assert torch.allclose(after, torch.tensor([0.5, 2 / 3, 0.0], dtype=torch.float64))


def _frozen_model(seed=0):
    torch.manual_seed(seed)
    model = NISPAMLP(12, (10, 8), density=0.5)
    model.heads["0"] = model._new_head([0, 1, 2])
    gen = torch.Generator().manual_seed(seed)
    for layer in model.hidden_layers():
        layer.unit_state.copy_(torch.where(torch.rand(layer.out_units, generator=gen) < 0.6,
                                           STABLE, PLASTIC).to(torch.int8))
    links = model.layer_links(0)
    drop_connections_into_stable_(links)
    freeze_stable_connections_(links)
    return model, links


def test_releasing_thaws_exactly_the_units_incoming_connections_and_biases():
    model, links = _frozen_model()
    layer = links[0].layer
    before = [(l.layer.frozen_connections.clone(), l.layer.frozen_bias.clone(),
               l.layer.weight.detach().clone(), l.layer.bias.detach().clone()) for l in links]
    chosen = torch.zeros(layer.out_units, dtype=torch.bool)
    chosen[(layer.unit_state == STABLE).nonzero()[:2, 0]] = True
    assert release_units_(layer, chosen) == 2
    assert bool((layer.unit_state[chosen] == PLASTIC).all())
    assert not bool(layer.frozen_connections[chosen].any()) and not bool(layer.frozen_bias[chosen].any())
    for i, (link, (connections, bias, weight, values)) in enumerate(zip(links, before)):
        rows = chosen if i == 0 else torch.zeros(link.layer.out_units, dtype=torch.bool)
        assert torch.equal(link.layer.frozen_connections, connections & ~rows[:, None])
        assert torch.equal(link.layer.frozen_bias, bias & ~rows)
        assert torch.equal(link.layer.weight, weight) and torch.equal(link.layer.bias, values)
    # the released units' connections into stable units stay live and frozen: a drop
    # leaves them, and they keep their values
    following = links[1].layer
    outgoing = following.frozen_connections[:, chosen].clone()
    assert bool(outgoing.any())
    drop_connections_into_stable_(links)
    assert torch.equal(following.frozen_connections[:, chosen], outgoing)
    assert bool(following.connection_mask[:, chosen][outgoing].all())


@pytest.mark.parametrize("settings, message", [
    (dict(unfreeze_below=0.1, unfreeze_bound=1.5), r"unfreeze_bound .* must be in \[0, 1\], got 1.5"),
    (dict(unfreeze_below=0.1, unfreeze_bound=-0.1), r"must be in \[0, 1\]"),
    (dict(unfreeze_below=0.0), r"unfreeze_below must be None .* in \(0, 1\]"),
    (dict(unfreeze_below=1.2), r"in \(0, 1\]"),
    (dict(unfreeze_below=0.1, unfreeze_importance="gradient"), "unfreeze_importance must be one of"),
    (dict(unfreeze_bound=0.2), "only act"),  # a bound without unfreezing does nothing
    (dict(unfreeze_below=0.1, unfreeze_outgoing="freeze"), "unfreeze_outgoing must be one of"),
    (dict(unfreeze_outgoing="keep"), "only act"),
])
def test_bad_unfreezing_settings_are_refused_before_training(settings, message):
    with pytest.raises(ValueError, match=message):
        NISPAConfig(**settings)


def test_the_paper_default_has_no_unfreezing_plugin():
    model = NISPAMLP(64, (32, 32), density=0.3)
    strategy = NISPA(model=model, optimizer=torch.optim.Adam(model.parameters()),
                     evaluator=_evaluator())
    assert strategy.unfreezing_plugin is None
    assert not any(isinstance(p, SelectiveUnfreezingPlugin) for p in strategy.plugins)


def _evaluator():
    from avalanche.evaluation.metrics import accuracy_metrics, forgetting_metrics
    from avalanche.logging import TextLogger
    from avalanche.training.plugins import EvaluationPlugin

    return EvaluationPlugin(accuracy_metrics(experience=True), forgetting_metrics(experience=True),
                            loggers=[TextLogger(io.StringIO())])


def _snapshot(model):
    return {name: (layer.frozen_connections.clone(), layer.frozen_bias.clone(),
                   layer.weight.detach().clone(), layer.bias.detach().clone())
            for name, layer in model.named_modules() if hasattr(layer, "frozen_connections")}


def _sources(model, name, thawed):
    """Bool mask of the input columns of layer ``name`` fed by a released unit."""
    names = [n for n, _ in model.named_hidden_layers()]
    layer = dict(model.named_modules())[name]
    columns = torch.zeros(layer.in_units, dtype=torch.bool)
    previous = names[names.index(name) - 1] if name in names and names.index(name) > 0 else (
        names[-1] if name.startswith("heads.") else None)
    if previous is not None:
        columns[thawed.get(previous, [])] = True
    return columns


def _task_outputs(model, x, tasks):
    model.eval()
    with torch.no_grad():
        return [model(x, torch.full((len(x),), t)) for t in tasks]


@pytest.mark.parametrize("outgoing,importance", [("drop", "activation"), ("keep", "activation"),
                                                 ("drop", "downstream")])
def test_after_a_release_every_other_frozen_value_survives_the_next_experience(
        digits, outgoing, importance):
    torch.manual_seed(0)
    model = NISPAMLP(64, (32, 32), density=0.3)
    strategy = NISPA(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=0.01),
                     train_mb_size=64, eval_mb_size=512, phase_epochs=1, max_phases=3,
                     unfreeze_below=0.5, unfreeze_bound=0.25, unfreeze_outgoing=outgoing,
                     unfreeze_importance=importance, evaluator=_evaluator())
    plugin = strategy.unfreezing_plugin
    released_any = dropped_any = False
    x = torch.stack([digits.test_stream[0].dataset[i][0] for i in range(64)]).flatten(1)
    for experience in digits.train_stream:
        before = _snapshot(model)
        strategy.train(experience)
        last = plugin.history[-1]
        assert last["experience"] == experience.current_experience
        released = dict(zip(last["layers"], last["released"]))
        released_any |= any(released.values())
        dropped_any |= any(last["dropped_outgoing"])
        assert outgoing == "drop" or not any(last["dropped_outgoing"])
        modules = dict(model.named_modules())
        thawed = dict(zip(last["layers"], last["units"]))  # rows whose frozen values may change
        for name, (connections, bias, weight, values) in before.items():
            layer = modules[name]
            rows = torch.zeros_like(bias)
            rows[thawed.get(name, [])] = True
            keep = connections & ~rows[:, None]
            if outgoing == "drop":  # a released unit's connections into stable units go
                gone = keep & _sources(model, name, thawed)[None, :]
                assert not bool(layer.connection_mask[gone].any()), name
                keep &= ~gone
            assert bool(layer.frozen_connections[keep].all()), name
            assert torch.equal(layer.weight[keep], weight[keep]), name
            assert torch.equal(layer.bias[bias & ~rows], values[bias & ~rows]), name
            assert bool(before[name][1][rows].all())  # only stable units were released
        results = strategy.eval(digits.test_stream)
        for name, count in released.items():  # the metric of this experience
            assert results[metric_name("released", name)] == count
        # re-initialising the plastic part (as at every experience's end) never changes
        # a trained task's outputs: with "drop" no plastic unit feeds a stable one, with
        # "keep" the units that still do are spared
        tasks = range(experience.current_experience + 1)
        outputs = _task_outputs(model, x, tasks)
        spare = units_feeding_stable(model)
        assert (outgoing == "keep") or not any(bool(m.any()) for m in spare.values())
        reinitialise_unfrozen_(model, spare)
        for a, b in zip(outputs, _task_outputs(model, x, tasks)):
            assert torch.equal(a, b)
    assert released_any, "the test must exercise a release"
    assert dropped_any == (outgoing == "drop")
    assert all(r >= 0 for h in plugin.history for r in h["released"])
    importance = [t for t in plugin.importance if t is not None]
    assert importance and all(bool((t >= 0).all()) for t in importance)
