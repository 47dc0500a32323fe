"""Growth rules (issue 15, part 1): the interface's contract for every registered rule,
the rules' own orderings, the registry, and how NISPA refuses or measures what a rule
needs.

Contract, checked on random small layers for every rule: exactly ``min(count, free)``
connections, all absent and into plastic units, none twice, the same answer for the
same seed.
"""
import io
import itertools

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avalanche_nispa import NISPA, NISPAConfig
from avalanche_nispa.algorithm import growth
from avalanche_nispa.algorithm.growth import GrowthRequest, free_positions, get_growth_rule
from avalanche_nispa.algorithm.growth.base import _RULES
from avalanche_nispa.algorithm.growth.topology import ch3_l3_scores
from avalanche_nispa.algorithm.rewiring import drop_connections_into_stable_, grow_connections_, rewire_
from avalanche_nispa.models import NISPAMLP
from avalanche_nispa.sparse import CANDIDATE, PLASTIC, STABLE

PROPERTIES = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                      suppress_health_check=[HealthCheck.too_slow])
RULES = sorted(growth.RULES)


@st.composite
def requests(draw):
    """A random small layer (linear, or conv with 2x2 kernels) and a growth request;
    gradients take few distinct values, so ties are common."""
    seed = draw(st.integers(0, 2**16))
    gen = torch.Generator().manual_seed(seed)
    out_units, in_units = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    density = draw(st.floats(0.0, 1.0))
    mask = torch.rand(out_units, in_units, generator=gen) < density
    plastic_share = draw(st.floats(0.0, 1.0))
    target_plastic = torch.rand(out_units, generator=gen) < plastic_share
    sources = torch.randint(0, 3, (in_units,), generator=gen).to(torch.int8)
    kernel = (2, 2) if draw(st.booleans()) else ()
    gradient = torch.randint(0, 3, (out_units, in_units, *kernel), generator=gen).float()
    count = draw(st.integers(0, out_units * in_units + 2))
    return dict(connection_mask=mask, target_plastic=target_plastic, source_states=sources,
                count=count, weight=torch.randn(out_units, in_units, *kernel, generator=gen),
                gradient=gradient)


def _ask(rule, fields, seed):
    return get_growth_rule(rule)(GrowthRequest(generator=torch.Generator().manual_seed(seed), **fields))


@PROPERTIES
@given(requests(), st.sampled_from(RULES), st.integers(0, 2**16))
def test_every_rule_grows_exactly_the_count_into_plastic_units_without_duplicates(fields, rule, seed):
    chosen = _ask(rule, fields, seed)
    free = free_positions(GrowthRequest(**fields)).flatten()
    assert chosen.dtype == torch.long and chosen.dim() == 1
    assert chosen.numel() == min(fields["count"], int(free.sum()))  # exactly the number asked for
    assert bool(free[chosen].all())  # never an existing connection, never into a kept unit
    assert torch.unique(chosen).numel() == chosen.numel()  # no duplicates
    assert torch.equal(chosen, _ask(rule, fields, seed))  # deterministic under a seed


@PROPERTIES
@given(requests(), st.sampled_from(["rigl", "ch3l3"]), st.integers(0, 2**16))
def test_score_rules_take_the_highest_scores(fields, rule, seed):
    chosen = _ask(rule, fields, seed)
    request = GrowthRequest(**fields)
    if rule == "rigl":
        scores = growth.connection_scores(fields["gradient"]).flatten()
    else:
        scores = ch3_l3_scores(fields["connection_mask"]).flatten()
    left = free_positions(request).flatten().clone()
    left[chosen] = False
    if chosen.numel() and bool(left.any()):
        assert float(scores[chosen].min()) >= float(scores[left].max())


@PROPERTIES
@given(requests(), st.sampled_from(["forwardT_random", "flow_random"]), st.integers(0, 2**16))
def test_preferring_rules_fill_their_sources_first(fields, rule, seed):
    chosen = _ask(rule, fields, seed)
    sources = fields["source_states"]
    preferred_source = sources != PLASTIC if rule == "forwardT_random" else sources == PLASTIC
    preferred = (free_positions(GrowthRequest(**fields)) & preferred_source[None, :]).flatten()
    taken = int(preferred[chosen].sum())
    assert taken == min(fields["count"], int(preferred.sum()))


def test_ties_are_broken_at_random_not_by_position():
    mask = torch.zeros(6, 6, dtype=torch.bool)
    fields = dict(connection_mask=mask, target_plastic=torch.ones(6, dtype=torch.bool),
                  source_states=torch.zeros(6, dtype=torch.int8), count=3,
                  gradient=torch.zeros(6, 6), weight=torch.zeros(6, 6))
    for rule in ("rigl", "ch3l3"):  # every score is 0: a pure tie
        picks = {tuple(sorted(_ask(rule, fields, seed).tolist())) for seed in range(20)}
        assert len(picks) > 10, rule


def test_full_random_draws_what_the_implementation_before_the_interface_drew():
    """The default rule's random draws are pinned: a seeded run of the paper's NISPA is
    the same before and after growth rules became an interface."""
    gen = torch.Generator().manual_seed(3)
    mask = torch.rand(20, 30, generator=gen) < 0.3
    plastic = torch.rand(20, generator=gen) < 0.5
    fields = dict(connection_mask=mask, target_plastic=plastic,
                  source_states=torch.zeros(30, dtype=torch.int8), count=17)
    free = (~mask & plastic[:, None]).flatten().nonzero().squeeze(1)
    old = free[torch.randperm(free.numel(), generator=torch.Generator().manual_seed(9))[:17]]
    assert torch.equal(_ask("full_random", fields, 9), old)


# ----------------------------------------------------------------------- CH3-L3
def _ch3_l3_by_definition(mask):
    """CH3-L3 straight from its definition, pair by pair: the local community of
    (u, v) is every node on a path u–a–b–v; each path adds 1/sqrt((1+e_a)(1+e_b)),
    e_z = z's neighbours outside the community and the seeds."""
    out_units, in_units = mask.shape
    m = mask.tolist()
    scores = torch.zeros(out_units, in_units, dtype=torch.float64)
    for u, v in itertools.product(range(out_units), range(in_units)):
        if m[u][v]:
            continue  # only missing links are scored (growth never picks live ones)
        paths = [(a, b) for a in range(in_units) for b in range(out_units)
                 if m[u][a] and m[b][a] and m[b][v]]
        sources = {a for a, _ in paths} | {v}  # community sources and the seed source
        targets = {b for _, b in paths} | {u}
        total = 0.0
        for a, b in paths:
            e_a = sum(1 for t in range(out_units) if m[t][a] and t not in targets)
            e_b = sum(1 for s in range(in_units) if m[b][s] and s not in sources)
            total += 1.0 / ((1 + e_a) * (1 + e_b)) ** 0.5
        scores[u, v] = total
    return scores


@pytest.mark.parametrize("seed", range(4))
def test_ch3_l3_matrix_form_equals_the_definition_on_missing_links(seed):
    gen = torch.Generator().manual_seed(seed)
    mask = torch.rand(6, 8, generator=gen) < (0.3 + 0.1 * seed)
    rows = torch.rand(6, generator=gen) < 0.7
    expected = _ch3_l3_by_definition(mask).float()
    scores = ch3_l3_scores(mask, rows)
    missing = ~mask & rows[:, None]
    assert torch.allclose(scores[missing], expected[missing])
    assert not bool(scores[~rows].any())  # rows not asked for stay 0
    assert bool(expected[missing].gt(0).any())  # not vacuous


def test_ch3_l3_penalises_paths_through_hubs():
    """Two missing links with one 3-path each; the one whose intermediate target also
    links outside the community (a hub) scores lower."""
    mask = torch.zeros(4, 5, dtype=torch.bool)
    mask[0, 0] = mask[1, 0] = mask[1, 1] = True  # path 0–s0–t1–s1 for the pair (0, 1)
    mask[2, 2] = mask[3, 2] = mask[3, 3] = mask[3, 4] = True  # (2, 3) via t3, which also links s4
    scores = ch3_l3_scores(mask)
    assert scores[0, 1] == pytest.approx(1.0)
    assert scores[2, 3] == pytest.approx(2 ** -0.5)


def test_ch3_l3_prefers_a_link_inside_a_community_to_one_between_communities():
    mask = torch.zeros(6, 6, dtype=torch.bool)
    mask[:3, :3] = True  # community 1: targets 0-2 x sources 0-2
    mask[3:, 3:] = True  # community 2
    mask[0, 0] = False  # a missing link inside community 1
    scores = ch3_l3_scores(mask)
    assert scores[0, 0] > 0
    assert scores[0, 4] == 0  # no 3-path between the communities
    fields = dict(connection_mask=mask, target_plastic=torch.tensor([True] + [False] * 5),
                  source_states=torch.zeros(6, dtype=torch.int8), count=1)
    assert _ask("ch3l3", fields, 0).tolist() == [0]  # flat index of (0, 0)


# ----------------------------------------------------------------- registry
def test_a_new_rule_is_one_registered_function_and_the_configuration_finds_it():
    @growth.growth_rule("test_first_free")
    def first_free(request):
        return free_positions(request).flatten().nonzero().squeeze(1)[:request.count]

    try:
        assert NISPAConfig(growth_rule="test_first_free").resolved_growth_rule == "test_first_free"
        model = _tiny_model()
        links = model.layer_links(0)
        model.hidden_layers()[1].unit_state.fill_(PLASTIC)
        grown = grow_connections_(links, [0, 3, 0], algorithm="test_first_free", init="zero")
        assert grown[1] == 3
    finally:
        del _RULES["test_first_free"]


def test_every_module_of_the_rules_folder_registers_a_rule():
    from pathlib import Path

    folder = Path(growth.__file__).parent
    modules = {p.stem for p in folder.glob("*.py")} - {"__init__", "base"}
    owners = {rule.function.__module__.rsplit(".", 1)[-1] for rule in growth.RULES.values()}
    assert modules == owners
    assert {"full_random", "forwardT_random", "flow_random", "rigl", "ch3l3"} <= set(growth.RULES)


def test_a_faulty_rule_is_caught_before_it_touches_the_masks():
    @growth.growth_rule("test_existing")
    def existing(request):
        return request.connection_mask.flatten().nonzero().squeeze(1)[:request.count]

    try:
        model = _tiny_model()
        layer = model.hidden_layers()[1]
        layer.unit_state.fill_(PLASTIC)
        before = layer.connection_mask.clone()
        with pytest.raises(ValueError, match="existing connection"):
            grow_connections_(model.layer_links(0), [0, 2, 0], algorithm="test_existing")
        assert torch.equal(layer.connection_mask, before)
    finally:
        del _RULES["test_existing"]


@pytest.mark.parametrize("settings, message", [
    (dict(growth_rule="magic"), "unknown growth_rule 'magic'; known: random, ch3l3, flow_random"),
    (dict(growth_rule="rigl", rewire_algo="flow_random"), "give one of the two"),
    (dict(growth_gradient_batches=0), "growth_gradient_batches must be a positive integer"),
])
def test_bad_growth_settings_are_refused_naming_the_fix(settings, message):
    with pytest.raises(ValueError, match=message):
        NISPAConfig(**settings)


def test_random_names_the_official_rule_and_other_names_pass_through():
    assert NISPAConfig().resolved_growth_rule == "full_random"
    assert NISPAConfig(rewire_algo="flow_random").resolved_growth_rule == "flow_random"
    assert NISPAConfig(growth_rule="ch3l3").resolved_growth_rule == "ch3l3"


# --------------------------------------------------------------- gradients
def _tiny_model(seed=0):
    torch.manual_seed(seed)
    model = NISPAMLP(12, (10, 8), density=0.4)
    model.heads["0"] = model._new_head([0, 1, 2])
    return model


def _quiet():
    from avalanche.evaluation.metrics import accuracy_metrics
    from avalanche.logging import TextLogger
    from avalanche.training.plugins import EvaluationPlugin

    return EvaluationPlugin(accuracy_metrics(experience=True), loggers=[TextLogger(io.StringIO())])


def test_a_gradient_rule_on_weights_without_gradients_is_refused_before_training():
    model = NISPAMLP(64, (32, 32), density=0.3)
    model.hidden_layers()[0].weight.requires_grad_(False)
    with pytest.raises(ValueError, match="body.1 do not require gradients"):
        NISPA(model=model, optimizer=torch.optim.Adam(model.parameters()), growth_rule="rigl",
              evaluator=_quiet())
    NISPA(model=model, optimizer=torch.optim.Adam(model.parameters()), growth_rule="ch3l3",
          evaluator=_quiet())  # a rule without gradients does not care


def test_after_the_drop_no_growth_position_has_a_gradient_so_it_is_measured_before():
    """The premise of measuring before the drop: once plastic units' connections into
    stable or candidate units (the head's included) are cut, the current task's loss
    no longer depends on any connection growth may add."""
    model = _tiny_model(1)
    for layer, states in zip(model.hidden_layers(), ([PLASTIC, CANDIDATE, STABLE] * 4,
                                                     [PLASTIC, STABLE] * 4)):
        layer.unit_state.copy_(torch.tensor(states[:layer.out_units], dtype=torch.int8))
    links = model.layer_links(0)
    x = torch.randn(16, 12)

    def gradients_at_growth_positions():
        weights = [link.layer.weight for link in links]
        loss = model(x, 0)[:, :3].logsumexp(dim=1).mean()
        grads = torch.autograd.grad(loss, weights, allow_unused=True)
        return [g[~l.layer.connection_mask & (l.layer.unit_state == PLASTIC)[:, None]]
                for g, l in zip(grads, links)]

    assert any(bool(g.abs().sum() > 0) for g in gradients_at_growth_positions())
    drop_connections_into_stable_(links)
    assert all(bool((g == 0).all()) for g in gradients_at_growth_positions())

    seen = []
    model = _tiny_model(1)
    links = model.layer_links(0)
    links[1].layer.unit_state[: links[1].layer.out_units // 2] = STABLE
    masks_before = [link.layer.connection_mask.clone() for link in links]
    rewire_(links, algorithm="rigl", gradients=lambda ls: seen.append(
        [l.layer.connection_mask.clone() for l in ls]) or [torch.zeros_like(l.layer.weight) for l in ls])
    assert len(seen) == 1 and all(torch.equal(a, b) for a, b in zip(seen[0], masks_before))


def test_rigl_trains_draws_nothing_from_the_global_generator_to_measure_and_differs_from_random(
        digits, monkeypatch):
    import avalanche_nispa.plugins.rewiring as rewiring_plugin
    from avalanche_nispa.plugins import gradients as measuring

    def run(rule):
        torch.manual_seed(0)
        model = NISPAMLP(64, (32, 32), density=0.3)
        strategy = NISPA(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=0.01),
                         train_mb_size=64, eval_mb_size=512, phase_epochs=1, max_phases=3,
                         growth_rule=rule, evaluator=_quiet())
        for experience in digits.train_stream[:2]:
            strategy.train(experience)
        return strategy

    states = []
    original = measuring.dense_gradients

    def spy(strategy, links, batches):
        before = torch.get_rng_state()
        result = original(strategy, links, batches)
        states.append(torch.equal(before, torch.get_rng_state()))
        assert all(g.device == l.layer.weight.device for g, l in zip(result, links))
        return result

    monkeypatch.setattr(rewiring_plugin, "dense_gradients", spy)
    rigl = run("rigl")
    monkeypatch.undo()
    assert states and all(states)
    random = run("random")
    masks = [k for k in random.model.state_dict() if k.endswith("connection_mask")]
    assert any(not torch.equal(rigl.model.state_dict()[k], random.model.state_dict()[k])
               for k in masks)
