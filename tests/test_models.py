"""The model zoo, per-task heads and the converter."""
import pytest
import torch
from avalanche.benchmarks import nc_benchmark
from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset
from avalanche.models import MTSimpleMLP
from torch import nn

from avalanche_nispa import NISPA, count_parameters
from avalanche_nispa.models import NISPACNN, NISPAMLP, SparseMultiTaskNet, to_nispa
from avalanche_nispa.sparse import MaskedConv2d, MaskedLinear, STABLE


def test_paper_mlp_has_the_paper_shape_and_density():
    torch.manual_seed(0)
    model = NISPAMLP()
    layers = model.hidden_layers()
    assert [(l.in_features, l.out_features) for l in layers] == [(784, 400), (400, 400), (400, 400)]
    for layer in layers:
        assert layer.density() == pytest.approx(0.2, abs=0.01)
        assert torch.all(layer.weight[~layer.connection_mask] == 0)
    counts = count_parameters(model)
    assert counts["total"] == 784 * 400 + 2 * 400 * 400 + 3 * 400
    assert counts["active"] == pytest.approx(0.2 * (784 * 400 + 2 * 400 * 400) + 1200, rel=0.02)


def test_paper_cnn_keeps_the_first_conv_dense():
    torch.manual_seed(0)
    model = NISPACNN(in_channels=3, input_size=32, density=0.1)
    convs = [l for l in model.hidden_layers() if isinstance(l, MaskedConv2d)]
    assert len(convs) == 4 and convs[0].density() == 1.0
    assert all(c.density() == pytest.approx(0.1, abs=0.02) for c in convs[1:])
    fc = model.hidden_layers()[-1]
    assert isinstance(fc, MaskedLinear) and fc.in_features == 128 * 8 * 8 and fc.out_features == 1024
    assert all(torch.all(l.bias == 0) for l in model.hidden_layers())
    assert model.layer_links()[-1].source_group == 64
    out = model.features(torch.rand(2, 3, 32, 32))
    assert out.shape == (2, 1024)


def _experience(task, classes, n=40, features=16, seed=0):
    gen = torch.Generator().manual_seed(seed + task)
    x = torch.rand(n, features, generator=gen)
    y = torch.tensor(classes * (n // len(classes)))
    return x, y


def test_tasks_that_reuse_the_same_labels_get_their_own_heads(quiet_evaluator):
    """Permuted-MNIST style: every task is classes 0..3; each task has its own head and
    the old task's logits do not change when a new task arrives."""
    torch.manual_seed(0)
    perms = [torch.randperm(16) for _ in range(3)]
    base_x = torch.rand(240, 16)
    base_y = (base_x[:, :4].argmax(1))
    trains, tests = [], []
    for t, perm in enumerate(perms):
        trains.append(_make_taskaware_tensor_classification_dataset(base_x[:200, perm], base_y[:200], task_labels=t))
        tests.append(_make_taskaware_tensor_classification_dataset(base_x[200:, perm], base_y[200:], task_labels=t))
    from avalanche.benchmarks.scenarios.deprecated.generic_benchmark_creation import (
        create_multi_dataset_generic_benchmark,
    )
    bm = create_multi_dataset_generic_benchmark(trains, tests)
    assert bm.train_stream[1].classes_in_this_experience == [0, 1, 2, 3]
    model = NISPAMLP(16, (32, 32), density=0.5)
    strategy = NISPA(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=0.01),
                     train_mb_size=20, eval_mb_size=100, phase_epochs=2, max_phases=3, evaluator=quiet_evaluator())
    strategy.train(bm.train_stream[0])
    x0 = base_x[200:, perms[0]]
    model.eval()
    with torch.no_grad():
        before = model(x0, 0).clone()
    strategy.train(bm.train_stream[1:])
    assert sorted(model.heads) == ["0", "1", "2"]
    assert all(h.classes.tolist() == [0, 1, 2, 3] for h in model.heads.values())
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x0, 0), before)


def test_heads_are_created_in_training_and_unknown_tasks_predict_nothing(digits):
    torch.manual_seed(0)
    model = NISPAMLP(64, (16,), density=0.5)
    model.train()
    model.adaptation(digits.train_stream[1])
    assert list(model.heads) == ["1"] and model.heads["1"].classes.tolist() == [2, 3]
    assert bool((model.heads["1"].unit_state == STABLE).all())
    model.eval()
    model.adaptation(digits.test_stream[2])
    assert list(model.heads) == ["1"]  # no head for a task never trained
    x = torch.rand(3, 1, 8, 8)
    assert torch.equal(model(x, 2), torch.zeros(3, 6))
    mixed = model(x, torch.tensor([1, 2, 1]))
    assert torch.equal(mixed[1], torch.zeros(6)) and mixed[0, 2:4].abs().sum() > 0


def test_a_batch_of_several_tasks_gets_each_rows_head_bit_for_bit(digits):
    """The per-row forward (a tensor of task labels, as Avalanche passes them) reads no
    label on the host: every row equals the single-task forward of its task exactly,
    rows of a task with no head are zeros, and the body's gradient is unchanged."""
    torch.manual_seed(0)
    model = NISPAMLP(64, (16,), density=0.5)
    model.train()
    for experience in digits.train_stream[:3]:
        model.adaptation(experience)
    x = torch.rand(6, 1, 8, 8)
    labels = torch.tensor([0, 2, 1, 0, 4, 2])
    model.eval()
    mixed = model(x, labels)
    for row, task in enumerate(labels.tolist()):
        assert torch.equal(mixed[row], model(x, task)[row])
    assert not mixed[4].any()
    model.train()
    single = model(x, torch.zeros(6, dtype=torch.long))
    assert torch.equal(single, model(x, 0))
    grads = []
    for output in (model(x, 0), single):
        model.zero_grad()
        output[:, :2].logsumexp(dim=1).sum().backward()
        grads.append(model.hidden_layers()[0].weight.grad.clone())
    assert torch.equal(*grads)
    assert not model.heads["1"].weight.grad.any()


def test_state_dict_round_trip_recreates_heads(digits):
    torch.manual_seed(0)
    model = NISPAMLP(64, (16,), density=0.5)
    model.train()
    model.adaptation(digits.train_stream[0])
    model.adaptation(digits.train_stream[3])
    fresh = NISPAMLP(64, (16,), density=0.5)
    fresh.load_state_dict(model.state_dict())
    x = torch.rand(4, 1, 8, 8)
    model.eval(), fresh.eval()
    for task in (0, 3):
        assert torch.equal(fresh(x, task), model(x, task))


def test_converter_handles_avalanche_mt_simple_mlp_and_trains(digits, quiet_evaluator):
    torch.manual_seed(0)
    dense = MTSimpleMLP(input_size=64, hidden_size=32)
    model = to_nispa(dense, density=0.4)
    assert isinstance(model, SparseMultiTaskNet)
    assert isinstance(model.body[0], nn.Flatten) and isinstance(model.body[1], MaskedLinear)
    assert model.head_in_features == 32
    kept = model.body[1].connection_mask
    assert torch.equal(model.body[1].weight[kept], dense.features[0].weight[kept])
    strategy = NISPA(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=0.01),
                     train_mb_size=64, eval_mb_size=256, phase_epochs=1, max_phases=2, evaluator=quiet_evaluator())
    strategy.train(digits.train_stream[0])
    assert strategy.phase_history[0]["phases"] == 2


def test_converter_handles_a_sequential_cnn_with_dense_first_layer():
    torch.manual_seed(0)
    dense = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(), nn.Flatten(),
        nn.Linear(6 * 4 * 4, 20), nn.ReLU(), nn.Linear(20, 10),
    )
    model = to_nispa(dense, density=0.5, dense_first_layer=True)
    layers = model.hidden_layers()
    assert [type(l) for l in layers] == [MaskedConv2d, MaskedConv2d, MaskedLinear]
    assert layers[0].density() == 1.0 and layers[1].density() < 1.0
    assert model.layer_links()[2].source_group == 16


@pytest.mark.parametrize("bad,match", [
    (nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2)), "BatchNorm1d"),
    (nn.Sequential(nn.LSTM(4, 4), nn.Linear(4, 2)), "Recurrent"),
    (nn.Sequential(nn.ReLU()), "no Linear layer"),
    (nn.Sequential(nn.Linear(4, 2)), "at least one Linear or Conv2d"),
    (nn.Sequential(nn.Linear(4, 4), nn.Sigmoid(), nn.Linear(4, 2)), "Sigmoid"),
])
def test_converter_rejects_what_it_cannot_handle(bad, match):
    with pytest.raises(ValueError, match=match):
        to_nispa(bad, density=0.5)


def test_density_is_validated_by_every_model_entry_point():
    for build in (lambda: NISPAMLP(density=0.0), lambda: NISPACNN(density=1.5),
                  lambda: to_nispa(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)), density=-1)):
        with pytest.raises(ValueError, match=r"density must be in \(0, 1\]"):
            build()
