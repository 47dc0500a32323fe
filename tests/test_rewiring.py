"""Dropping and regrowing connections: the invariants of spec §2.4-§2.5."""
import pytest
import torch

from avalanche_nispa.models import NISPACNN, NISPAMLP
from avalanche_nispa.algorithm.rewiring import (
    connect_isolated_plastic_units_,
    drop_connections_into_stable_,
    grow_connections_,
    rewire_,
)
from avalanche_nispa.sparse import CANDIDATE, PLASTIC, STABLE
from avalanche_nispa.algorithm.units import source_states


def _random_states(model, seed, plastic_share=1 / 3):
    """Random unit states: plastic with probability ``plastic_share``, else candidate or
    stable with equal odds."""
    gen = torch.Generator().manual_seed(seed)
    for layer in model.hidden_layers():
        draw = torch.rand(layer.out_units, generator=gen)
        state = torch.where(draw < plastic_share, PLASTIC, torch.where(draw < (1 + plastic_share) / 2, CANDIDATE, STABLE))
        layer.unit_state.copy_(state.to(torch.int8))


def _mlp_with_head(seed=0, density=0.3):
    torch.manual_seed(seed)
    model = NISPAMLP(20, (16, 12, 10), density=density)
    model.heads["0"] = model._new_head([0, 1, 2])
    return model


@pytest.mark.parametrize("seed", range(5))
def test_after_dropping_no_plastic_unit_feeds_a_stable_or_candidate_unit(seed):
    model = _mlp_with_head(seed)
    _random_states(model, seed)
    links = model.layer_links(0)
    before = [link.layer.live_connections() for link in links]
    dropped = drop_connections_into_stable_(links)
    for i, link in enumerate(links):
        kept_targets = link.layer.unit_state != PLASTIC
        plastic_sources = source_states(links, i) == PLASTIC
        assert not (link.layer.connection_mask & kept_targets[:, None] & plastic_sources[None, :]).any()
        assert before[i] - link.layer.live_connections() == dropped[i]
    assert dropped[0] == 0  # the inputs are stable: the first layer never loses a connection
    assert dropped[-1] > 0  # plastic units fed the head


@pytest.mark.parametrize("algorithm", ["full_random", "forwardT_random", "flow_random"])
def test_growth_targets_only_plastic_units_and_keeps_density(algorithm):
    model = _mlp_with_head(3)
    _random_states(model, 3)
    links = model.layer_links(0)
    masks_before = [link.layer.connection_mask.clone() for link in links]
    report = rewire_(links, algorithm=algorithm, init="normal")
    for i, link in enumerate(links):
        layer = link.layer
        new = layer.connection_mask & ~masks_before[i]
        assert not new[layer.unit_state != PLASTIC].any(), "growth into a stable/candidate unit"
        assert torch.all(layer.weight[~layer.connection_mask] == 0)
    hidden = slice(0, len(links) - 1)
    # hidden layers have room: every dropped connection is regrown, so density is kept
    for i in range(len(links))[hidden]:
        assert report.grown[i] == report.dropped[i]
        assert links[i].layer.live_connections() == int(masks_before[i].sum())
    # a head has no plastic unit: what it loses cannot be regrown (documented)
    assert report.grown[-1] == 0


def test_forward_and_flow_growth_respect_their_sources_before_the_fallback():
    model = _mlp_with_head(4, density=0.2)
    links = model.layer_links(0)
    links[0].layer.unit_state.copy_(torch.tensor([PLASTIC, STABLE] * 8, dtype=torch.int8))
    layer = links[1].layer
    layer.unit_state.fill_(PLASTIC)  # 12 x 8 free positions of each source kind: room for 5
    before = layer.connection_mask.clone()
    sources = source_states(links, 1)
    grown = grow_connections_(links[:2], [0, 5], algorithm="flow_random", init="zero")
    new = layer.connection_mask & ~before
    assert grown[1] == 5 == int(new.sum())
    assert (sources[new.nonzero()[:, 1]] == PLASTIC).all()
    before = layer.connection_mask.clone()
    grow_connections_(links[:2], [0, 5], algorithm="forwardT_random", init="zero")
    new = layer.connection_mask & ~before
    assert (sources[new.nonzero()[:, 1]] != PLASTIC).all()


def test_normal_growth_init_draws_from_the_live_weights():
    torch.manual_seed(0)
    model = NISPAMLP(200, (300,), density=0.5)
    model.heads["0"] = model._new_head([0, 1])
    layer = model.hidden_layers()[0]
    live = layer.weight[layer.connection_mask]
    mean, std = live.mean().item(), live.std().item()
    before = layer.connection_mask.clone()
    grow_connections_(model.layer_links(0)[:1], [20000], init="normal")
    grown = layer.weight[layer.connection_mask & ~before]
    assert grown.numel() == 20000
    assert grown.mean().item() == pytest.approx(mean, abs=4 * std / 100)
    assert grown.std().item() == pytest.approx(std, rel=0.05)


def test_isolated_plastic_units_get_one_outgoing_connection():
    torch.manual_seed(0)
    model = NISPAMLP(8, (6, 6), density=1.0)
    model.heads["0"] = model._new_head([0, 1])
    first, second = model.hidden_layers()
    mask = second.connection_mask.clone()
    mask[:, 2] = False  # unit 2 of the first layer has no outgoing connection
    second.set_connection_mask_(mask)
    links = model.layer_links(0)
    added = connect_isolated_plastic_units_(links, [0, 3, 0])
    assert added[1] == 1 and second.connection_mask[:, 2].sum() == 1
    assert second.weight[second.connection_mask[:, 2].nonzero()[0, 0], 2] == 0


def test_conv_to_linear_boundary_maps_channels_to_their_column_blocks():
    torch.manual_seed(0)
    model = NISPACNN(in_channels=1, input_size=8, channels=(2, 2, 3, 3), fc_size=5, density=0.6)
    model.heads["0"] = model._new_head([0, 1])
    links = model.layer_links(0)
    fc = links[4]
    assert fc.source_group == 2 * 2  # 8x8 input, two poolings: 2x2 map per channel
    conv4 = links[3].layer
    conv4.unit_state.copy_(torch.tensor([PLASTIC, STABLE, PLASTIC], dtype=torch.int8))
    fc.layer.unit_state.fill_(CANDIDATE)
    drop_connections_into_stable_(links)
    mask = fc.layer.connection_mask
    assert not mask[:, 0:4].any() and not mask[:, 8:12].any()  # blocks of plastic channels 0 and 2
    assert mask[:, 4:8].any()  # channel 1's block kept


def test_full_rewire_preserves_hidden_density_over_many_rounds():
    model = _mlp_with_head(7, density=0.25)
    links = model.layer_links(0)
    counts = [link.layer.live_connections() for link in links[:-1]]
    for seed in range(10):
        _random_states(model, 100 + seed, plastic_share=0.7)
        report = rewire_(links)
        assert sum(report.lost[:-1]) == 0
    assert [link.layer.live_connections() for link in links[:-1]] == counts
