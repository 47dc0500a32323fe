"""Checkpoints: a run interrupted after experience k and resumed in brand-new objects
equals the uninterrupted run bit for bit; files load with ``weights_only=True``;
writes are atomic and never replace a file that is not this run's checkpoint."""
import copy
import io
import os

import pytest
import torch
from avalanche.core import SupervisedPlugin
from avalanche.evaluation.metrics import (
    accuracy_matrix_metrics,
    accuracy_metrics,
    forgetting_metrics,
    loss_metrics,
)
from avalanche.training.plugins import LRSchedulerPlugin

from avalanche_nispa import NISPA, CheckpointPlugin, load_checkpoint, save_checkpoint
from avalanche_nispa.checkpoint import CHECKPOINT_FORMAT_VERSION, read_checkpoint
from avalanche_nispa.models import NISPACNN, NISPAMLP

N_EXPERIENCES = 4


@pytest.fixture
def evaluator(quiet_evaluator):
    """A new quiet evaluator on every call, with everything a resumed run must restore:
    accuracy, loss, forgetting and the accuracy matrix."""
    return lambda: quiet_evaluator(
        accuracy_metrics(experience=True, stream=True), loss_metrics(stream=True),
        forgetting_metrics(experience=True, stream=True), accuracy_matrix_metrics(),
    )


@pytest.fixture
def mlp_adam(evaluator):
    """``mlp_adam(seed, plugins=(), **settings)``: a small MLP trained with Adam."""

    def build(seed, plugins=(), **settings):
        torch.manual_seed(seed)
        model = NISPAMLP(64, (32, 32), density=0.3)
        return NISPA(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=0.01),
                     train_mb_size=64, eval_mb_size=512, phase_epochs=1, max_phases=3,
                     evaluator=evaluator(), plugins=list(plugins), **settings)

    return build


@pytest.fixture
def cnn_sgd_scheduled(evaluator):
    """``cnn_sgd_scheduled(seed, plugins=())``: two parameter groups, Nesterov momentum,
    weight decay and an LR scheduler whose state carries across experiences; periodic
    evaluation inside training."""

    def build(seed, plugins=()):
        torch.manual_seed(seed)
        model = NISPACNN(in_channels=1, input_size=8, channels=(4, 4, 6, 6), fc_size=24,
                         density=0.5)
        first = [p for n, p in model.named_parameters() if n.startswith("body.0.")]
        rest = [p for n, p in model.named_parameters() if not n.startswith("body.0.")]
        optimizer = torch.optim.SGD([{"params": first, "lr": 0.02}, {"params": rest}], lr=0.05,
                                    momentum=0.9, nesterov=True, weight_decay=1e-4)
        scheduler = LRSchedulerPlugin(torch.optim.lr_scheduler.StepLR(optimizer, 3, gamma=0.9),
                                      step_granularity="iteration", reset_scheduler=False,
                                      reset_lr=False)
        return NISPA(model=model, optimizer=optimizer, train_mb_size=32, eval_mb_size=256,
                     phase_epochs=2, max_phases=3, mode="original", selection_data="validation",
                     eval_every=0, evaluator=evaluator(), plugins=[scheduler, *plugins])

    return build


def same(a, b):
    """Exact equality of nested results: tensors bit for bit and of the same dtype."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def assert_same_run(reference, resumed):
    ref_state, state = reference.model.state_dict(), resumed.model.state_dict()
    assert ref_state.keys() == state.keys()
    for key in ref_state:  # weights, connection masks, frozen masks, unit states, heads
        assert ref_state[key].dtype == state[key].dtype and torch.equal(ref_state[key], state[key]), key
    assert same(reference.optimizer.state_dict(), resumed.optimizer.state_dict())
    assert reference.phase_history == resumed.phase_history
    for name in ("train_iterations", "train_exp_counter", "total_iterations"):
        assert getattr(reference.clock, name) == getattr(resumed.clock, name), name
    assert reference.model.max_class_label == resumed.model.max_class_label


def scheduler_state(strategy):
    (plugin,) = [p for p in strategy.plugins if isinstance(p, LRSchedulerPlugin)]
    return plugin.scheduler.state_dict()


def continue_from(strategy, path, digits, expected_start):
    """Load ``path`` into ``strategy`` and train the rest of the stream, evaluating
    after each experience as the uninterrupted run did; the last results."""
    start = load_checkpoint(strategy, path, metrics="state")
    assert start == expected_start
    for experience in digits.train_stream[start:N_EXPERIENCES]:
        strategy.train(experience)
        results = strategy.eval(digits.test_stream)
    return results


def per_task_accuracies(results):
    return {k: v for k, v in results.items() if k.startswith("Top1_Acc_Exp/")}


def test_a_run_resumed_after_experience_k_equals_the_uninterrupted_run(digits, tmp_path, mlp_adam):
    path = tmp_path / "run.ckpt"
    reference = mlp_adam(seed=0)
    for experience in digits.train_stream[:N_EXPERIENCES]:
        reference.train(experience)
        results = reference.eval(digits.test_stream)
        if experience.current_experience == 1:
            save_checkpoint(reference, path)
            history_at_save = copy.deepcopy(reference.evaluator.get_all_metrics())
    rng_at_end = torch.get_rng_state()

    # brand-new objects, built from another seed: everything must come from the file
    resumed = mlp_adam(seed=123)
    resumed_results = continue_from(resumed, path, digits, expected_start=2)

    assert_same_run(reference, resumed)
    accuracies = per_task_accuracies(resumed_results)
    assert len(accuracies) == 5 and accuracies == per_task_accuracies(results)
    assert same(resumed_results, results)  # loss, forgetting, accuracy matrix too
    assert same(resumed.evaluator.get_all_metrics(), reference.evaluator.get_all_metrics())
    assert torch.equal(torch.get_rng_state(), rng_at_end)

    # the default restores the evaluator's numeric history, without unpickling anything
    fresh = mlp_adam(seed=7)
    load_checkpoint(fresh, path)
    assert same(fresh.evaluator.get_all_metrics(), history_at_save)


@pytest.mark.parametrize("settings", [
    dict(growth_rule="rigl", unfreeze_below=0.5, unfreeze_bound=0.25),
    dict(growth_rule="ch3l3", unfreeze_below=0.5, unfreeze_importance="random"),
], ids=["rigl_unfreezing", "ch3l3_random_release"])
def test_growth_rules_and_unfreezing_resume_bit_for_bit(digits, tmp_path, mlp_adam, settings):
    """Issue 15's options: the unfreezing plugin's importance and release history go
    through the checkpoint, and the resumed run equals the uninterrupted one."""
    path = tmp_path / "run.ckpt"
    reference = mlp_adam(seed=0, **settings)
    for experience in digits.train_stream[:N_EXPERIENCES]:
        reference.train(experience)
        results = reference.eval(digits.test_stream)
        if experience.current_experience == 1:
            save_checkpoint(reference, path)
    resumed = mlp_adam(seed=5, **settings)
    resumed_results = continue_from(resumed, path, digits, expected_start=2)
    assert_same_run(reference, resumed)
    assert same(resumed_results, results)
    plugin, other = reference.unfreezing_plugin, resumed.unfreezing_plugin
    assert plugin.history == other.history
    assert any(sum(h["released"]) for h in plugin.history), "the run must release units"
    assert same(plugin.importance, other.importance)
    assert [vars(r) for r in reference.rewiring_plugin.history] == \
        [vars(r) for r in resumed.rewiring_plugin.history]


def test_checkpoint_plugin_resumes_a_killed_run_bit_for_bit(digits, tmp_path, cnn_sgd_scheduled, kill):
    """Scheduler state, two parameter groups, periodic eval, conv layers; the run is
    killed in the middle of experience 2 and resumed from the plugin's checkpoint."""
    path = tmp_path / "run.ckpt"
    reference = cnn_sgd_scheduled(seed=0)
    for experience in digits.train_stream[:N_EXPERIENCES]:
        reference.train(experience)
        results = reference.eval(digits.test_stream)

    killed = cnn_sgd_scheduled(seed=0, plugins=[CheckpointPlugin(path), kill.During(2, 3)])
    with pytest.raises(kill.Interrupted):
        for experience in digits.train_stream[:N_EXPERIENCES]:
            killed.train(experience)
            killed.eval(digits.test_stream)
    del killed

    resumed = cnn_sgd_scheduled(seed=99, plugins=[CheckpointPlugin(path)])
    resumed_results = continue_from(resumed, path, digits, expected_start=2)

    assert_same_run(reference, resumed)
    assert same(scheduler_state(resumed), scheduler_state(reference))
    assert per_task_accuracies(resumed_results) == per_task_accuracies(results)
    assert same(resumed_results, results)
    assert read_checkpoint(path)["next_experience"] == N_EXPERIENCES


def test_the_checkpoint_is_plain_data_that_loads_with_weights_only(digits, tmp_path, mlp_adam):
    strategy = mlp_adam(seed=0)
    strategy.train(digits.train_stream[0])
    path = save_checkpoint(strategy, tmp_path / "sub" / "run.ckpt")
    header = torch.load(path, weights_only=True)  # the file: a header and a checksummed body
    assert header["format_version"] == CHECKPOINT_FORMAT_VERSION and header["next_experience"] == 1
    assert header["body"].dtype == torch.uint8
    data = torch.load(io.BytesIO(header["body"].numpy().tobytes()), weights_only=True)
    assert data["format_version"] == CHECKPOINT_FORMAT_VERSION and data["next_experience"] == 1
    model = data["model"]
    for key in ("body.1.connection_mask", "body.1.frozen_connections", "body.1.frozen_bias",
                "body.1.unit_state", "heads.0.weight", "heads.0.classes", "masked_logit_value"):
        assert isinstance(model[key], torch.Tensor), key
    assert set(data["rng"]) == {"torch", "cuda", "numpy", "python"}
    assert data["clock"]["train_exp_counter"] == 1
    assert data["phase_history"] == strategy.phase_history
    assert isinstance(data["evaluator_pickle"], torch.Tensor)  # opaque unless asked for
    assert read_checkpoint(path)["save_id"] == data["save_id"]


@pytest.mark.parametrize("failure", ["torch.save raises", "interrupted in torch.save", "rename fails"])
def test_a_crash_while_writing_keeps_the_previous_checkpoint(digits, tmp_path, monkeypatch, failure, mlp_adam):
    path = tmp_path / "run.ckpt"
    strategy = mlp_adam(seed=0)
    strategy.train(digits.train_stream[0])
    save_checkpoint(strategy, path)
    previous = path.read_bytes()
    strategy.train(digits.train_stream[1])

    error = KeyboardInterrupt if failure == "interrupted in torch.save" else OSError("disk full")
    if failure == "rename fails":
        def broken_replace(source, target):
            raise error
        monkeypatch.setattr(os, "replace", broken_replace)
    else:
        def torn_save(obj, handle, *args, **kwargs):
            handle.write(b"PK\x03\x04 half a checkpoint")
            raise error
        monkeypatch.setattr(torch, "save", torn_save)
    with pytest.raises(type(error) if isinstance(error, Exception) else error):
        save_checkpoint(strategy, path)
    monkeypatch.undo()

    assert path.read_bytes() == previous
    assert sorted(os.listdir(tmp_path)) == ["run.ckpt"]  # no temporary file left behind
    assert load_checkpoint(mlp_adam(seed=1), path) == 1


def test_save_refuses_to_overwrite_a_file_that_is_not_a_checkpoint(tmp_path, mlp_adam):
    path = tmp_path / "results.txt"
    path.write_text("my results")
    strategy = mlp_adam(seed=0)
    message = (r"exists and is not a NISPA checkpoint; refusing to overwrite it. Choose another "
               r"path, or pass overwrite=True")
    with pytest.raises(FileExistsError, match=message):
        save_checkpoint(strategy, path)
    assert path.read_text() == "my results"
    save_checkpoint(strategy, path, overwrite=True)
    assert read_checkpoint(path)["next_experience"] == 0


def test_a_run_replaces_its_own_checkpoint_but_not_another_runs(digits, tmp_path, mlp_adam):
    path = tmp_path / "run.ckpt"
    first = mlp_adam(seed=0)
    save_checkpoint(first, path)
    first.train(digits.train_stream[0])
    save_checkpoint(first, path)  # its own checkpoint: replaced
    assert read_checkpoint(path)["next_experience"] == 1

    second = mlp_adam(seed=0)
    with pytest.raises(FileExistsError, match=r"holds the checkpoint of another NISPA run \(saved "
                                              r"after 1 experiences\)\. Load it first"):
        save_checkpoint(second, path)
    blocked = mlp_adam(seed=0, plugins=[CheckpointPlugin(path)])
    with pytest.raises(FileExistsError, match="another NISPA run"):
        blocked.train(digits.train_stream[0])
    assert blocked.clock.train_iterations == 0  # refused before training, not after

    assert load_checkpoint(second, path) == 1  # a resumed run owns the checkpoint
    save_checkpoint(second, path)


def test_missing_checkpoint_starts_from_the_first_experience_only_when_allowed(tmp_path, mlp_adam):
    strategy = mlp_adam(seed=0)
    assert load_checkpoint(strategy, tmp_path / "none.ckpt", missing_ok=True) == 0
    with pytest.raises(FileNotFoundError):
        load_checkpoint(strategy, tmp_path / "none.ckpt")


def test_checkpoint_plugin_saves_every_k_experiences_even_inside_one_train_call(digits, tmp_path, mlp_adam):
    path = tmp_path / "run.ckpt"
    seen = []

    class Probe(SupervisedPlugin):
        def before_training_exp(self, strategy, **kwargs):
            if path.exists():
                seen.append((strategy.clock.train_exp_counter,
                             read_checkpoint(path)["next_experience"]))

    strategy = mlp_adam(seed=0, plugins=[CheckpointPlugin(path, every=2), Probe()])
    strategy.train(digits.train_stream[:3])
    assert seen == [(2, 2)]  # written at the boundary after experience 2, before experience 3
    assert read_checkpoint(path)["next_experience"] == 2
    with pytest.raises(ValueError, match="every must be a positive integer"):
        CheckpointPlugin(path, every=0)


def test_temporary_files_left_by_a_killed_save_are_cleaned_up(tmp_path, mlp_adam):
    stale = tmp_path / f".run.ckpt.{'0123456789abcdef' * 2}.tmp"
    stale.write_bytes(b"torn")
    unrelated = tmp_path / ".run.ckpt.mine.tmp"
    unrelated.write_text("not ours")
    save_checkpoint(mlp_adam(seed=0), tmp_path / "run.ckpt")
    assert sorted(os.listdir(tmp_path)) == [".run.ckpt.mine.tmp", "run.ckpt"]
