"""Property tests over random small MLPs and CNNs, random densities, unit states and
frozen masks: the invariants NISPA relies on.

- absent (masked) weights are exactly zero, before and after rewiring and updates;
- after dropping, no plastic unit feeds a stable or candidate unit, and only those
  connections were removed;
- growth only adds connections into plastic units, never touches frozen entries, and
  keeps each layer's number of connections whenever the layer has room for them;
- selection never demotes a stable unit;
- frozen weights and biases are bit-identical through optimizer steps +
  ``enforce_masks_``, whatever optimizer state they built up before being frozen.

Examples are derandomised (the same ones on every run and in CI) and few.
"""
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avalanche_nispa.models import NISPACNN, NISPAMLP
from avalanche_nispa.algorithm.rewiring import drop_connections_into_stable_, rewire_
from avalanche_nispa.algorithm.selection import select_candidates_
from avalanche_nispa.sparse import CANDIDATE, PLASTIC, STABLE, is_masked_layer
from avalanche_nispa.algorithm.units import freeze_stable_connections_, source_states

PROPERTIES = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                      suppress_health_check=[HealthCheck.too_slow])


@st.composite
def networks(draw):
    """A random small NISPAMLP or NISPACNN at a random density, with one task head."""
    torch.manual_seed(draw(st.integers(0, 2**16)))
    density = draw(st.floats(0.05, 1.0))
    if draw(st.booleans()):
        inputs = draw(st.integers(1, 12))
        hidden = draw(st.lists(st.integers(1, 10), min_size=1, max_size=3))
        model = NISPAMLP(inputs, hidden, density=density)
        input_shape = (inputs,)
    else:
        in_channels, side = draw(st.integers(1, 2)), draw(st.sampled_from([4, 8]))
        model = NISPACNN(in_channels=in_channels, input_size=side, density=density,
                         channels=draw(st.lists(st.integers(1, 4), min_size=4, max_size=4)),
                         fc_size=draw(st.integers(1, 8)), dense_first_conv=draw(st.booleans()))
        input_shape = (in_channels, side, side)
    classes = draw(st.lists(st.integers(0, 9), min_size=1, max_size=4, unique=True))
    model.heads["0"] = model._new_head(sorted(classes))
    return model, input_shape


@st.composite
def unit_states(draw):
    """A seed and the share of plastic units for :func:`assign_states`."""
    return draw(st.integers(0, 2**16)), draw(st.floats(0.0, 1.0))


def assign_states(model, seed, plastic_share):
    generator = torch.Generator().manual_seed(seed)
    for layer in model.hidden_layers():
        draw = torch.rand(layer.out_units, generator=generator)
        other = torch.where(torch.rand(layer.out_units, generator=generator) < 0.5, CANDIDATE, STABLE)
        layer.unit_state.copy_(torch.where(draw < plastic_share, PLASTIC, other).to(torch.int8))


def assert_absent_weights_are_zero(model):
    for layer in model.modules():
        if is_masked_layer(layer):
            assert not bool(layer.weight[~layer.expand(layer.connection_mask)].any())


@PROPERTIES
@given(networks(), unit_states())
def test_dropping_cuts_exactly_the_plastic_inputs_of_kept_units(network, states):
    model, _ = network
    assign_states(model, *states)
    links = model.layer_links(0)
    before = [link.layer.connection_mask.clone() for link in links]
    dropped = drop_connections_into_stable_(links)
    for i, link in enumerate(links):
        kept_targets = link.layer.unit_state != PLASTIC
        plastic_sources = source_states(links, i) == PLASTIC
        cut = kept_targets[:, None] & plastic_sources[None, :]
        assert not bool((link.layer.connection_mask & cut).any())
        assert torch.equal(link.layer.connection_mask, before[i] & ~cut)
        assert dropped[i] == int((before[i] & cut).sum())
    assert_absent_weights_are_zero(model)


@PROPERTIES
@given(networks(), unit_states(), st.sampled_from(["full_random", "forwardT_random", "flow_random"]),
       st.sampled_from(["normal", "uniform", "zero"]), st.booleans())
def test_growth_goes_into_plastic_units_only_and_keeps_density_where_there_is_room(
        network, states, algorithm, init, connect_isolated):
    model, _ = network
    assign_states(model, *states)
    links = model.layer_links(0)
    freeze_stable_connections_(links)  # stable→stable entries are frozen, as after a task
    frozen = [(link.layer.frozen_connections.clone(), link.layer.weight.detach().clone())
              for link in links]
    before = [link.layer.connection_mask.clone() for link in links]
    rooms = []
    for i, link in enumerate(links):
        plastic = link.layer.unit_state == PLASTIC
        cut = (~plastic)[:, None] & (source_states(links, i) == PLASTIC)[None, :]
        after_drop = before[i] & ~cut
        rooms.append(int((~after_drop & plastic[:, None]).sum()))

    report = rewire_(links, algorithm=algorithm, init=init, connect_isolated=connect_isolated)

    for i, link in enumerate(links):
        layer = link.layer
        grown = layer.connection_mask & ~before[i]
        assert not bool(grown[layer.unit_state != PLASTIC].any()), "growth into a kept unit"
        assert layer.live_connections() == int(before[i].sum()) - report.dropped[i] + report.grown[i]
        if rooms[i] >= report.dropped[i]:
            assert report.grown[i] == report.dropped[i]
            assert layer.live_connections() == int(before[i].sum())  # density kept
        mask, weight = frozen[i]
        assert torch.equal(layer.frozen_connections, mask)
        assert torch.equal(layer.weight[layer.expand(mask)], weight[layer.expand(mask)])
    assert_absent_weights_are_zero(model)


@PROPERTIES
@given(networks(), unit_states(), st.floats(0.0, 1.0), st.integers(0, 2**16), st.booleans())
def test_selection_never_demotes_a_stable_unit(network, states, fraction, seed, demote_dead):
    model, _ = network
    assign_states(model, *states)
    stable_before = [layer.unit_state == STABLE for layer in model.hidden_layers()]
    generator = torch.Generator().manual_seed(seed)
    activations = [torch.rand(layer.out_units, generator=generator) for layer in model.hidden_layers()]
    select_candidates_(model, activations, fraction, demote_dead=demote_dead, task_label=0)
    for layer, stable in zip(model.hidden_layers(), stable_before):
        assert torch.equal(layer.unit_state == STABLE, stable)
        assert set(layer.unit_state.tolist()) <= {PLASTIC, CANDIDATE, STABLE}


OPTIMIZERS = {
    "sgd_nesterov_wd": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    "adam_l2": lambda p: torch.optim.Adam(p, lr=0.05, weight_decay=0.01),
    "adamw": lambda p: torch.optim.AdamW(p, lr=0.05, weight_decay=0.1),
    "rmsprop": lambda p: torch.optim.RMSprop(p, lr=0.01, momentum=0.5),
}


@PROPERTIES
@given(networks(), st.sampled_from(sorted(OPTIMIZERS)), st.integers(0, 2**16), st.floats(0.0, 1.0))
def test_frozen_entries_are_unchanged_through_optimizer_steps(network, optimizer_name, seed, frozen_share):
    model, input_shape = network
    generator = torch.Generator().manual_seed(seed)
    optimizer = OPTIMIZERS[optimizer_name](model.parameters())
    layers = [m for m in model.modules() if is_masked_layer(m)]
    classes = model.heads["0"].classes

    def step():
        optimizer.zero_grad()
        x = torch.randn(4, *input_shape, generator=generator)
        model(x, 0)[:, classes].pow(2).mean().backward()
        for layer in layers:
            layer.mask_gradients_()
        optimizer.step()
        for layer in layers:
            layer.enforce_masks_()

    for _ in range(2):  # optimizer state (momentum, moments) on entries about to be frozen
        step()
    for layer in layers:
        connections = torch.rand(layer.connection_mask.shape, generator=generator) < frozen_share
        bias = torch.rand(layer.out_units, generator=generator) < frozen_share
        layer.freeze_(connections, bias)
    frozen = [(layer.weight.detach().clone(), layer.bias.detach().clone()) for layer in layers]
    for _ in range(3):
        step()
    for layer, (weight, bias) in zip(layers, frozen):
        where = layer.expand(layer.frozen_connections)
        assert torch.equal(layer.weight[where], weight[where])
        assert torch.equal(layer.bias[layer.frozen_bias], bias[layer.frozen_bias])
        assert bool(layer.frozen_connections[~layer.connection_mask].logical_not().all())
    assert_absent_weights_are_zero(model)


def test_the_networks_strategy_draws_both_kinds_of_model():
    seen = set()

    @settings(max_examples=20, deadline=None, derandomize=True, database=None)
    @given(networks())
    def record(network):
        seen.add(type(network[0]).__name__)

    record()
    assert seen == {"NISPAMLP", "NISPACNN"}


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])
