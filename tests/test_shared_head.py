"""NISPA with the official code's single output layer (``shared_head=True``): the rows of
classes not trained yet receive regrown connections, each task reads only its own rows,
trained rows are frozen bit for bit, and a stream that cannot share one layer is refused."""
import pytest
import torch

from avalanche_nispa import NISPA, NISPAReplay, load_checkpoint, save_checkpoint
from avalanche_nispa.benchmarks import split_digits
from avalanche_nispa.models import NISPAMLP
from avalanche_nispa.models.network import SHARED_HEAD
from avalanche_nispa.sparse import PLASTIC, STABLE
from avalanche_nispa.algorithm.units import source_states


def _nispa(evaluator, seed=0, **settings):
    torch.manual_seed(seed)
    model = NISPAMLP(64, (48, 48), density=0.3, num_classes=10, shared_head=True)
    values = dict(train_mb_size=32, eval_mb_size=256, phase_epochs=1, max_phases=3,
                  evaluator=evaluator)
    values.update(settings)
    return NISPA(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=0.01), **values)


def _rows_live(head, classes):
    return int(head.connection_mask[list(classes)].sum())


def test_unseen_class_rows_gain_regrown_connections_and_trained_rows_are_frozen(
        digits, quiet_evaluator, frozen_invariants):
    strategy = _nispa(quiet_evaluator())
    model = strategy.model
    head = model.heads[SHARED_HEAD]
    later = range(2, 10)
    before = _rows_live(head, later)
    strategy.train(digits.train_stream[0])
    assert _rows_live(head, later) > before  # the official regrowth into unseen classes
    assert (head.unit_state[:2] == STABLE).all() and (head.unit_state[2:] == PLASTIC).all()
    assert bool(head.frozen_bias[:2].all()) and not bool(head.frozen_bias[2:].any())
    snapshot = frozen_invariants.snapshot(model)
    x0 = torch.stack([x for x, _, _ in digits.test_stream[0].dataset])
    model.eval()
    with torch.no_grad():
        logits0 = model(x0, 0).clone()
    for experience in digits.train_stream[1:3]:
        strategy.train(experience)
    frozen_invariants.assert_unchanged(model, snapshot)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x0, 0), logits0)  # zero forgetting, bit for bit
    # no plastic unit feeds a stable output row
    links = model.layer_links(2)
    sources = source_states(links, len(links) - 1)
    stable_rows = head.unit_state == STABLE
    assert not bool(head.connection_mask[stable_rows][:, sources == PLASTIC].any())


def test_each_task_reads_only_its_own_rows(digits, quiet_evaluator):
    strategy = _nispa(quiet_evaluator())
    for experience in digits.train_stream[:2]:
        strategy.train(experience)
    model = strategy.model
    model.eval()
    x = torch.stack([x for x, _, _ in digits.test_stream[1].dataset])[:8]
    with torch.no_grad():
        own = model(x, 1)
        full = model.heads[SHARED_HEAD](model.features(x))
        per_row = model(x, torch.ones(8, dtype=torch.long))
        untrained = model(x, 3)
    assert torch.equal(own[:, 2:4], full[:, 2:4])
    others = [c for c in range(10) if c not in (2, 3)]
    assert bool((own[:, others] == model.masked_logit_value).all())
    assert torch.equal(per_row, own)
    assert bool((untrained == 0).all())
    assert model.trained_classes() == {0: {0, 1}, 1: {2, 3}}


def test_a_resumed_run_equals_the_uninterrupted_one(digits, quiet_evaluator, tmp_path):
    reference = _nispa(quiet_evaluator())
    for experience in digits.train_stream[:3]:
        reference.train(experience)
    first = _nispa(quiet_evaluator())
    for experience in digits.train_stream[:2]:
        first.train(experience)
    save_checkpoint(first, tmp_path / "run.ckpt")
    resumed = _nispa(quiet_evaluator(), seed=5)
    assert load_checkpoint(resumed, tmp_path / "run.ckpt") == 2
    assert resumed.model.trained_classes() == {0: {0, 1}, 1: {2, 3}}
    resumed.train(digits.train_stream[2])
    for key, value in reference.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key


def test_what_cannot_share_one_output_layer_is_refused_before_training(quiet_evaluator):
    with pytest.raises(ValueError, match="shared_head=True needs num_classes"):
        NISPAMLP(64, (16,), density=0.5, shared_head=True)
    # two task labels with the same classes (as Permuted MNIST): refused before training
    strategy = _nispa(quiet_evaluator())
    before = {k: v.clone() for k, v in strategy.model.state_dict().items()}
    with pytest.raises(ValueError, match=r"task label 1 brings classes \[0, 1\], which task 0"):
        strategy.train(_same_classes_twice().train_stream)
    assert all(torch.equal(v, strategy.model.state_dict()[k]) for k, v in before.items())
    torch.manual_seed(0)
    model = NISPAMLP(64, (16,), density=0.5, num_classes=10, shared_head=True)
    with pytest.raises(ValueError, match="class_incremental=True"):
        NISPAReplay(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                    mem_size=20, evaluator=quiet_evaluator())


def _same_classes_twice():
    """Two experiences, task labels 0 and 1, both of the digits' classes 0 and 1."""
    from avalanche.benchmarks import nc_benchmark
    from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset

    first = split_digits(seed=0).train_stream[0]
    xs, ys = zip(*[(x, y) for x, y, _ in first.dataset])
    data = _make_taskaware_tensor_classification_dataset(torch.stack(xs), torch.tensor(ys))
    return nc_benchmark([data, data], [data, data], 2, task_labels=True, shuffle=False,
                        one_dataset_per_exp=True, class_ids_from_zero_in_each_exp=True)
