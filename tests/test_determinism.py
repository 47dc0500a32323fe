"""Determinism: with the same seed, two runs give identical masks, unit states,
weights, phase decisions, rewiring and accuracies.

Everything random in NISPA (head initialisation, mask draws, growth, minibatch order)
draws from the global torch RNG, so ``torch.manual_seed`` fixes a run. Bit-identity
holds on the same machine, torch build and number of threads: PyTorch's CPU
convolutions may pick another reduction order for another thread count.
"""
import pytest
import torch

from avalanche_nispa import NISPA
from avalanche_nispa.models import NISPACNN, NISPAMLP


def mlp_run(evaluator):
    model = NISPAMLP(64, (32, 32), density=0.3)
    return NISPA(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=0.01),
                 train_mb_size=64, eval_mb_size=512, phase_epochs=1, max_phases=3,
                 growth_init="uniform", rewire_algo="flow_random", evaluator=evaluator)


def cnn_run(evaluator):
    model = NISPACNN(in_channels=1, input_size=8, channels=(4, 4, 6, 6), fc_size=24, density=0.5)
    return NISPA(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
                 train_mb_size=32, eval_mb_size=256, phase_epochs=2, max_phases=3,
                 mode="original", selection_data="validation", evaluator=evaluator)


def run(build, digits, evaluator, seed):
    torch.manual_seed(seed)
    strategy = build(evaluator())
    results = []
    for experience in digits.train_stream[:3]:
        strategy.train(experience)
        results.append(strategy.eval(digits.test_stream))
    return strategy, results


@pytest.mark.parametrize("build", [mlp_run, cnn_run], ids=["mlp_adam", "cnn_sgd"])
def test_two_runs_with_the_same_seed_are_identical(digits, quiet_evaluator, build):
    first, first_results = run(build, digits, quiet_evaluator, seed=0)
    second, second_results = run(build, digits, quiet_evaluator, seed=0)
    state, other = first.model.state_dict(), second.model.state_dict()
    assert state.keys() == other.keys()
    for key in state:  # weights, connection masks, frozen masks, unit states of every layer
        assert torch.equal(state[key], other[key]), key
    assert first_results == second_results  # per-task accuracies after every experience
    assert first.phase_history == second.phase_history
    assert [vars(r) for r in first.rewiring_plugin.history] == \
        [vars(r) for r in second.rewiring_plugin.history]

    third, _ = run(build, digits, quiet_evaluator, seed=1)  # the comparison above is not vacuous
    assert not all(torch.equal(state[k], third.model.state_dict()[k])
                   for k in state if k.endswith("connection_mask"))
