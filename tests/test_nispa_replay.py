"""NISPA-Replay: the class-balanced memory, the replay loss, frozen hidden connections
on a class-incremental stream, resume with the memory, and refused input."""
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from avalanche_nispa import NISPA, NISPAReplay, NISPAReplayConfig, load_checkpoint, save_checkpoint
from avalanche_nispa.algorithm.memory import ClassBalancedMemory
from avalanche_nispa.benchmarks import split_digits
from avalanche_nispa.models import NISPAMLP
from avalanche_nispa.plugins.replay import MemoryReplayPlugin
from avalanche_nispa.sparse import PLASTIC, STABLE


@pytest.fixture(scope="module")
def cil_digits():
    return split_digits(seed=0, return_task_id=False)


@pytest.fixture
def replay(quiet_evaluator):
    def build(seed=0, model=None, **settings):
        torch.manual_seed(seed)
        model = model if model is not None else NISPAMLP(64, (48, 48), density=0.3, num_classes=10,
                                                         class_incremental=True)
        values = dict(train_mb_size=32, eval_mb_size=256, phase_epochs=1, max_phases=3,
                      mem_size=40, evaluator=quiet_evaluator())
        values.update(settings)
        return NISPAReplay(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                           **values)

    return build


def test_the_memory_keeps_the_specs_class_balance():
    torch.manual_seed(0)
    memory = ClassBalancedMemory(1000)
    sizes = []
    for task in range(5):
        y = torch.arange(2 * task, 2 * task + 2).repeat_interleave(700)
        x = torch.randn(y.numel(), 3) + y[:, None]
        memory.add(x, y)
        _, targets = memory.tensors()
        sizes.append(sorted(torch.bincount(targets).tolist(), reverse=True)[:2 * task + 2])
    assert sizes == [[500] * 2, [250] * 4, [166] * 6, [125] * 8, [100] * 10]  # 996 after task 3
    inputs, targets = memory.tensors()
    assert torch.allclose(inputs.mean(dim=1).round(), targets.float(), atol=2)  # inputs stay with labels
    assert len(memory) == 1000 and memory.nbytes() == inputs.nbytes + targets.nbytes


def test_the_replay_loss_is_ce_current_plus_lambda_ce_memory_on_a_hand_checked_batch():
    plugin = MemoryReplayPlugin(mem_size=10, replay_weight=5.0)
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0], [3.0, 0.0]])
    labels = torch.tensor([0, 1, 1, 0])
    strategy = SimpleNamespace(mb_output=logits, mb_y=labels, _criterion=torch.nn.CrossEntropyLoss(),
                               loss=None)
    plugin._current = 2  # two current samples, two from the memory
    plugin.before_backward(strategy)

    def ce(row, label):  # -log softmax, by hand
        return -(row[label] - torch.logsumexp(row, dim=0))

    current = (ce(logits[0], 0) + ce(logits[1], 1)) / 2
    memory = (ce(logits[2], 1) + ce(logits[3], 0)) / 2
    assert torch.isclose(strategy.loss, current + 5.0 * memory)
    assert torch.isclose(strategy.loss, F.cross_entropy(logits[:2], labels[:2])
                         + 5.0 * F.cross_entropy(logits[2:], labels[2:]))


def test_frozen_hidden_connections_stay_bit_identical_and_the_output_layer_keeps_learning(
        cil_digits, replay, frozen_invariants):
    strategy = replay()
    strategy.train(cil_digits.train_stream[0])
    head = strategy.model.heads["0"]
    seen = sorted(int(c) for c in cil_digits.train_stream[0].classes_in_this_experience)
    assert (head.unit_state[seen] == STABLE).all()
    assert int((head.unit_state == PLASTIC).sum()) == 10 - len(seen)
    hidden_frozen = {name: v for name, v in frozen_invariants.snapshot(strategy.model).items()
                     if name.startswith("body")}
    assert any(bool(v[0].any()) for v in hidden_frozen.values())
    head_before = head.weight.detach().clone()
    assert not bool(head.frozen_connections.any())  # the output layer is never frozen
    for experience in cil_digits.train_stream[1:3]:
        strategy.train(experience)
    frozen_invariants.assert_unchanged(strategy.model, hidden_frozen)
    assert not torch.equal(head.weight, head_before)
    assert len(strategy.replay_plugin.memory) <= 40
    assert strategy.replay_plugin.memory.classes == sorted(
        c for e in cil_digits.train_stream[:3] for c in e.classes_in_this_experience)


def test_a_resumed_run_with_its_memory_equals_the_uninterrupted_one(cil_digits, replay, tmp_path):
    reference = replay()
    for experience in cil_digits.train_stream[:3]:
        reference.train(experience)
    first = replay()
    for experience in cil_digits.train_stream[:2]:
        first.train(experience)
    save_checkpoint(first, tmp_path / "run.ckpt")
    resumed = replay(seed=7)
    assert load_checkpoint(resumed, tmp_path / "run.ckpt") == 2
    resumed.train(cil_digits.train_stream[2])
    for key, value in reference.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    for a, b in zip(reference.replay_plugin.memory.tensors(), resumed.replay_plugin.memory.tensors()):
        assert torch.equal(a, b)


def test_bad_replay_input_is_refused_before_training(cil_digits, replay, quiet_evaluator):
    with pytest.raises(ValueError, match="mem_size must be a positive integer, got 0"):
        NISPAReplayConfig(mem_size=0)
    with pytest.raises(ValueError, match=r"replay_weight \(λ\) must be a number >= 0, got -1"):
        replay(replay_weight=-1)
    small = replay(mem_size=3)
    with pytest.raises(ValueError, match=r"experience 1: mem_size=3 cannot hold one sample of each "
                                         r"of the 4 classes seen by then; use mem_size >= 4"):
        small.train(list(cil_digits.train_stream[:2]))
    assert small.phase_history == []
    with pytest.raises(ValueError, match="NISPAReplay is class-incremental and needs one shared "
                                         "output layer.*class_incremental=True"):
        replay(model=NISPAMLP(64, (32,), density=0.3))
    with pytest.raises(ValueError, match="task-incremental NISPA does not train: use "
                                         "avalanche_nispa.NISPAReplay"):
        model = NISPAMLP(64, (32,), density=0.3, num_classes=10, class_incremental=True)
        NISPA(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
              evaluator=quiet_evaluator())
    til = split_digits(seed=0)
    strategy = replay()
    with pytest.raises(ValueError, match=r"is task-incremental: its experiences carry 5 different "
                                         r"task labels. NISPAReplay is class-incremental .*use "
                                         r"avalanche_nispa.NISPA"):
        strategy.train(til.train_stream[0])
    assert strategy.phase_history == []
