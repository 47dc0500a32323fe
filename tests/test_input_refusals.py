"""Bad input refused before any training step (issue 12, items 8 and 9), and streams
of Avalanche's newer benchmark API accepted."""
from types import SimpleNamespace

import pytest
import torch
from avalanche.benchmarks.scenarios import class_incremental_benchmark, task_incremental_benchmark

from avalanche_nispa import NISPA
from avalanche_nispa._avalanche import tensor_classification_dataset
from avalanche_nispa.benchmarks import split_digits
from avalanche_nispa.models import NISPAMLP
from avalanche_nispa.strategy.checks import check_experience


@pytest.fixture
def nispa(quiet_evaluator):
    def build(model=None, **settings):
        torch.manual_seed(0)
        model = model if model is not None else NISPAMLP(64, (32, 32), density=0.3)
        values = dict(train_mb_size=32, eval_mb_size=256, phase_epochs=1, max_phases=2,
                      evaluator=quiet_evaluator())
        values.update(settings)
        return NISPA(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=0.01), **values)

    return build


def _untouched(strategy):
    return strategy.phase_history == [] and len(strategy.model.heads) == 0


def test_an_input_that_does_not_fit_the_model_is_refused_before_training(digits, nispa):
    strategy = nispa(model=NISPAMLP(30, (16,), density=0.5))
    with pytest.raises(ValueError, match=r"experience 0: an input of shape \(1, 8, 8\) does not fit "
                                         r"the model .*build the model for this input"):
        strategy.train(digits.train_stream[0])
    assert _untouched(strategy)


def test_class_ids_below_zero_or_beyond_a_fixed_output_width_are_refused(digits, nispa):
    strategy = nispa(model=NISPAMLP(64, (32,), density=0.5, num_classes=1))
    first = sorted(int(c) for c in digits.train_stream[0].classes_in_this_experience)
    with pytest.raises(ValueError, match=rf"experience 0 holds class id {first[-1]}, beyond the "
                                         r"model's output width num_classes=1: build the model "
                                         rf"with num_classes={first[-1] + 1} or more"):
        strategy.train(digits.train_stream[0])
    assert _untouched(strategy)
    negative = SimpleNamespace(current_experience=3, task_labels=[0], dataset=[0] * 50,
                               classes_in_this_experience=[-1, 2])
    with pytest.raises(ValueError, match="experience 3 holds class id -1; class ids must be >= 0"):
        check_experience(nispa(), negative, {})


def test_a_density_that_leaves_units_unconnected_is_refused_at_construction(nispa):
    with pytest.raises(ValueError, match=r"at density 0.0001 a unit of body.1 gets 0.00 incoming "
                                         r"connections on average \(64 inputs\).*density of at "
                                         r"least 0.016"):
        nispa(model=NISPAMLP(64, (32,), density=1e-4))


def test_a_class_incremental_stream_is_refused_before_its_first_experience(nispa):
    class_incremental = split_digits(seed=0, return_task_id=False)
    strategy = nispa()
    with pytest.raises(ValueError, match=r"the stream of experience 0 is class-incremental: all "
                                         r"its 5 experiences carry task label\(s\) \[0\] but bring "
                                         r"different classes.*return_task_id=True"):
        strategy.train(class_incremental.train_stream[0])
    assert _untouched(strategy)


def _new_api_stream(transform=None, n=400):
    torch.manual_seed(0)
    x, y = torch.randn(n, 64), torch.arange(n) % 10
    cut = 3 * n // 4
    train = tensor_classification_dataset(x[:cut], y[:cut], targets=y[:cut].tolist(),
                                          transform=transform)
    test = tensor_classification_dataset(x[cut:], y[cut:], targets=y[cut:].tolist())
    return task_incremental_benchmark(
        class_incremental_benchmark({"train": train, "test": test}, num_experiences=5),
        reset_task_labels=True)


def test_a_stream_of_the_newer_benchmark_api_trains_and_evaluates(nispa):
    benchmark = _new_api_stream()
    strategy = nispa()
    for experience in benchmark.train_stream[:2]:
        strategy.train(experience)
    results = strategy.eval(benchmark.test_stream[:2])
    assert sorted(strategy.model.heads) == ["0", "1"]
    assert {k for k in results if k.startswith("Top1_Acc_Exp")} == {
        "Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp000",
        "Top1_Acc_Exp/eval_phase/test_stream/Task001/Exp001"}


def test_cache_data_with_a_random_augmentation_is_refused(nispa):
    benchmark = _new_api_stream(transform=lambda x: x + 0.1 * torch.randn_like(x))
    with pytest.raises(ValueError, match=r"experience 0: its training transforms are random .*"
                                         r"cache_data=True would freeze one draw"):
        nispa(cache_data=True).train(benchmark.train_stream[0])
    nispa(cache_data=False).train(benchmark.train_stream[0])  # the same stream without caching


def test_the_checks_draw_no_random_numbers(digits, nispa):
    strategy = nispa(cache_data=True)
    before = torch.get_rng_state()
    check_experience(strategy, digits.train_stream[0], {})
    assert torch.equal(torch.get_rng_state(), before)
