"""Activation-based candidate selection, τ schedules and the phase stop rule."""
import itertools
import math

import pytest
import torch

from avalanche_nispa.models import NISPACNN, NISPAMLP
from avalanche_nispa.algorithm.phases import PhaseController
from avalanche_nispa.algorithm.schedules import make_tau_schedule, validate_tau_schedule
from avalanche_nispa.algorithm.selection import mean_activations, minimal_covering_units, select_candidates_
from avalanche_nispa.sparse import CANDIDATE, PLASTIC, STABLE


def _brute_force_minimum(values, fraction):
    total = sum(values)
    for size in range(len(values) + 1):
        for subset in itertools.combinations(range(len(values)), size):
            if sum(values[i] for i in subset) >= fraction * total - 1e-12:
                return size
    return len(values)


@pytest.mark.parametrize("seed", range(20))
def test_selection_is_the_minimal_set_covering_tau(seed):
    gen = torch.Generator().manual_seed(seed)
    activation = torch.rand(7, generator=gen) * (torch.rand(7, generator=gen) > 0.3)
    fraction = float(torch.rand(1, generator=gen))
    selected = minimal_covering_units(activation, fraction)
    covered = activation[selected].sum()
    assert covered >= fraction * activation.sum() - 1e-6
    assert int(selected.sum()) == _brute_force_minimum(activation.tolist(), fraction)
    # and it takes the most active units
    if selected.any() and (~selected).any():
        assert activation[selected].min() >= activation[~selected].max()


def test_selection_edge_cases():
    assert not minimal_covering_units(torch.zeros(5), 0.9).any()
    assert minimal_covering_units(torch.ones(5), 1.0).all()
    assert not minimal_covering_units(torch.ones(5), 0.0).any()


def test_cosine_schedule_matches_the_official_values():
    tau = make_tau_schedule("cosine", 30)
    expected = {1: 99.73, 2: 98.91, 5: 93.30, 8: 83.46, 10: 75.0, 13: 60.40, 15: 50.0, 20: 25.0, 25: 6.70, 26: 4.32}
    for t, value in expected.items():
        assert 100 * tau(t) == pytest.approx(value, abs=0.01)
    assert make_tau_schedule("linear", 0.1)(3) == pytest.approx(0.7)
    assert make_tau_schedule("exp_decay", 1.0)(1) == pytest.approx(0.5)


@pytest.mark.parametrize("name,k,match", [
    ("cosine", 1, "stop before its second phase"),
    ("linear", 0.6, "tau_2"),
    ("quadratic", 30, "tau_schedule must be one of"),
    ("cosine", -3, "positive"),
])
def test_bad_schedules_are_rejected(name, k, match):
    with pytest.raises(ValueError, match=match):
        validate_tau_schedule(make_tau_schedule(name, k), 0.05)


def test_phase_stop_rule_follows_the_official_code():
    tau = make_tau_schedule("cosine", 30)
    # the accuracy stop is not allowed in phases 1 and 2, and compares with the best so far
    c = PhaseController(tau, accuracy_drop_threshold=0.75)
    for accuracy in (90.0, 80.0):
        c.start_phase()
        assert not c.end_phase(accuracy).stop
    c.start_phase()
    assert not c.end_phase(89.5).stop  # within 0.75 of the best (90)
    c.start_phase()
    decision = c.end_phase(89.2)  # 0.8 below the best so far
    assert decision.stop and decision.revert and decision.reason == "accuracy_drop"
    assert c.kept_phase(decision) == 3
    assert c.final_tau(decision) == pytest.approx(tau(2))
    # without accuracy drops, tau stops the task at phase 26 (τ_26 = 4.32 %)
    c = PhaseController(tau, accuracy_drop_threshold=0.75)
    while True:
        c.start_phase()
        decision = c.end_phase(95.0)
        if decision.stop:
            break
    assert c.phase == 26 and decision.reason == "tau" and c.kept_phase(decision) == 25
    assert 100 * c.final_tau(decision) == pytest.approx(100 * tau(24))
    # a cap keeps the last phase
    c = PhaseController(tau, accuracy_drop_threshold=0.75, max_phases=3)
    for _ in range(3):
        c.start_phase()
        decision = c.end_phase(95.0)
    assert decision.stop and not decision.revert and c.kept_phase(decision) == 3


def test_mean_activations_are_recorded_after_relu_and_pooling():
    torch.manual_seed(0)
    model = NISPACNN(in_channels=3, input_size=8, channels=(4, 4, 6, 6), fc_size=10, density=0.5)
    x = torch.rand(5, 3, 8, 8)
    acts = mean_activations(model, [x[:2], x[2:]])
    assert [a.shape[0] for a in acts] == [4, 4, 6, 6, 10]
    body = model.body
    with torch.no_grad():
        h1 = body[1](body[0](x))
        h2 = body[4](body[3](body[2](h1)))  # conv2 → ReLU → max-pool
    assert torch.allclose(acts[0], h1.sum(dim=(0, 2, 3)) / 5, atol=1e-5)
    assert torch.allclose(acts[1], h2.sum(dim=(0, 2, 3)) / 5, atol=1e-5)


def test_candidates_are_recomputed_and_unioned_with_stable_units():
    torch.manual_seed(0)
    model = NISPAMLP(6, (5, 5), density=1.0)
    first = model.hidden_layers()[0]
    first.unit_state[4] = STABLE
    acts = [torch.tensor([5.0, 3.0, 1.0, 1.0, 0.0]), torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0])]
    select_candidates_(model, acts, 0.5)
    assert first.unit_state.tolist() == [CANDIDATE, PLASTIC, PLASTIC, PLASTIC, STABLE]
    select_candidates_(model, acts, 0.8)
    assert first.unit_state.tolist() == [CANDIDATE, CANDIDATE, PLASTIC, PLASTIC, STABLE]
    select_candidates_(model, acts, 0.3)  # τ falls: earlier candidates return to plastic
    assert first.unit_state.tolist() == [CANDIDATE, PLASTIC, PLASTIC, PLASTIC, STABLE]


def test_dead_candidates_are_demoted_only_when_asked():
    torch.manual_seed(0)
    model = NISPAMLP(4, (3, 3), density=1.0)
    first, second = model.hidden_layers()
    mask = second.connection_mask.clone()
    mask[0, :] = False
    mask[0, 2] = True  # unit 0 of layer 2 reads only unit 2 of layer 1, which stays plastic
    second.set_connection_mask_(mask)
    acts = [torch.tensor([1.0, 0.0, 0.0]), torch.tensor([1.0, 0.0, 0.0])]
    select_candidates_(model, acts, 0.9, demote_dead=False)
    assert second.unit_state[0] == CANDIDATE
    select_candidates_(model, acts, 0.9, demote_dead=True)
    assert second.unit_state[0] == PLASTIC
    assert first.unit_state[0] == CANDIDATE  # inputs are always stable
