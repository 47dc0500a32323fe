"""Bad input is rejected before training with a message naming the problem and the fix.

Checked elsewhere, not repeated here: density outside (0, 1] (``test_models.py``,
``test_sparse_layers.py``), the τ schedule functions themselves
(``test_selection_and_schedules.py``), layers the converter cannot handle such as
BatchNorm and LSTM (``test_models.py``), ``MaskingPlugin`` on a dense model
(``test_nispa_strategy.py``), and writing over a file that is not this run's
checkpoint (``test_checkpoint.py``).

Overlapping classes cannot be a problem: the official code has one output layer shared
by all tasks, which needs each task's classes to be disjoint, but here every task has
its own head (:mod:`avalanche_nispa.models.network`), so two tasks may share class ids.
"""
import math
import warnings

import pytest
import torch
from avalanche.core import SupervisedPlugin
from avalanche.benchmarks.scenarios.deprecated.generic_benchmark_creation import (
    create_multi_dataset_generic_benchmark,
)
from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset
from torch import nn

from avalanche_nispa import NISPA, load_checkpoint, save_checkpoint
from avalanche_nispa.checkpoint import CHECKPOINT_FORMAT_VERSION
from avalanche_nispa.benchmarks import split_digits
from avalanche_nispa.models import NISPACNN, NISPAMLP, SparseMultiTaskNet
from avalanche_nispa.sparse import PLASTIC, is_masked_layer


@pytest.fixture
def nispa(quiet_evaluator):
    """``nispa(model=None, **settings)``: a small NISPA with Adam; ``model`` defaults to
    a seeded one-hidden-layer MLP on the 8x8 digits."""

    def build(model=None, **kwargs):
        if model is None:
            torch.manual_seed(0)
            model = NISPAMLP(64, (32,), density=0.5)
        settings = dict(train_mb_size=32, eval_mb_size=256, phase_epochs=1, max_phases=2,
                        evaluator=quiet_evaluator())
        settings.update(kwargs)
        return NISPA(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=0.01),
                     **settings)

    return build


def tensor_stream(*experiences, features=4):
    """A benchmark from ``(task_label, labels)`` pairs, one experience each."""
    train, test = [], []
    for task, labels in experiences:
        labels = torch.as_tensor(labels, dtype=torch.long)
        x = torch.rand(len(labels), features, generator=torch.Generator().manual_seed(task))
        train.append(_make_taskaware_tensor_classification_dataset(x, labels, task_labels=task))
        test.append(_make_taskaware_tensor_classification_dataset(x, labels, task_labels=task))
    return create_multi_dataset_generic_benchmark(train, test)


# ------------------------------------------------------------ strategy arguments
@pytest.mark.parametrize("argument,value,message", [
    ("phase_epochs", 0, r"phase_epochs \(e\) must be a positive integer, got 0"),
    ("phase_epochs", -2, r"phase_epochs \(e\) must be a positive integer, got -2"),
    ("max_phases", -3, r"max_phases must be None or an integer >= 2 .*got -3"),
    ("max_phases", 1, r"max_phases must be None or an integer >= 2 .*got 1"),
    ("accuracy_drop_threshold", -0.5, r"accuracy_drop_threshold \(a_f, in percentage points\) "
                                      r"must be a finite number >= 0, got -0.5"),
    ("accuracy_drop_threshold", math.nan, r"must be a finite number >= 0, got nan"),
    ("validation_fraction", 1.0, r"validation_fraction must be in \(0, 1\), got 1.0"),
    ("validation_seed", -1, r"validation_seed must be an integer in \[0, 2\*\*32\), got -1"),
    ("tau_param", -2.0, r"tau_param \(k\) must be a positive finite number, got -2.0"),
    ("tau_param", 1.0, r"a task would stop before its second phase .*choose a schedule parameter k"),
    ("tau_schedule", "quadratic", r"tau_schedule must be one of \['cosine', 'exp_decay', 'linear'\]"),
    ("tau_schedule", lambda t: min(1.0, 0.5 + 0.2 * t), r"the tau schedule must not increase"),
    ("min_tau", 1.5, r"min_tau must be in \[0, 1\), got 1.5"),
    ("train_mb_size", 0, r"train_mb_size must be a positive integer, got 0"),
], ids=lambda v: v if isinstance(v, str) and len(v) < 30 else None)
def test_bad_strategy_arguments_are_rejected(argument, value, message, nispa):
    with pytest.raises(ValueError, match=message):
        nispa(**{argument: value})


def test_a_model_without_masked_layers_is_rejected(nispa):
    with pytest.raises(ValueError, match="the network body has no masked layer .*build it with "
                                         r"avalanche_nispa.models.to_nispa\(\)"):
        SparseMultiTaskNet(nn.Sequential(nn.Flatten(), nn.Linear(4, 4)), 4, density=0.5)
    dense = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    with pytest.raises(TypeError, match="NISPA needs a sparse multi-task network, got Sequential; "
                                        "use avalanche_nispa.models.NISPAMLP"):
        nispa(model=dense)


# -------------------------------------------------------------- the experiences
def test_a_benchmark_without_task_labels_is_rejected_before_training(digits, nispa):
    class_incremental = split_digits(seed=0, return_task_id=False)  # every task label is 0
    strategy = nispa()
    with pytest.raises(ValueError, match=r"the stream of experience 0 is class-incremental: .*"
                                         r"build the benchmark with task labels \(e.g. "
                                         r"SplitMNIST\(..., return_task_id=True\)"):
        strategy.train(class_incremental.train_stream)
    assert strategy.clock.train_iterations == 0

    class NoTaskLabels:
        current_experience = 0
        dataset = digits.train_stream[0].dataset

    message = (r"experience 0 has no task labels; NISPA is task-incremental. Build the benchmark "
               r"with task labels")
    with pytest.raises(ValueError, match=message):
        nispa().train(NoTaskLabels())


def test_a_returning_task_with_new_classes_is_rejected_before_training(nispa):
    stream = tensor_stream((0, [0, 1] * 20), (1, [2, 3] * 20), (0, [0, 4] * 20)).train_stream
    strategy = nispa(model=NISPAMLP(4, (8,), density=0.5))
    message = (r"experience 2: task label 0 comes back with new classes \[4\]; a task's head is "
               r"frozen .*give this experience a new task label")
    with pytest.raises(ValueError, match=message):
        strategy.train(stream)
    assert strategy.clock.train_iterations == 0


def test_tasks_may_share_class_ids_because_each_task_has_its_own_head(nispa):
    stream = tensor_stream((0, [0, 1] * 20), (1, [1, 2] * 20)).train_stream
    torch.manual_seed(0)
    model = NISPAMLP(4, (8,), density=0.5)
    strategy = nispa(model=model)
    strategy.train(stream[0])
    x = torch.rand(6, 4)
    model.eval()
    with torch.no_grad():
        before = model(x, 0)[:, :2].clone()
    strategy.train(stream[1])
    assert model.heads["0"].classes.tolist() == [0, 1] and model.heads["1"].classes.tolist() == [1, 2]
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x, 0)[:, :2], before)


def test_an_empty_experience_is_rejected_before_training(nispa):
    empty = torch.zeros(0, dtype=torch.long)
    stream = tensor_stream((0, [0, 1] * 20), (1, empty)).train_stream
    strategy = nispa(model=NISPAMLP(4, (8,), density=0.5))
    with pytest.raises(ValueError, match="experience 1 is empty: it has no training samples; "
                                         "drop it from the stream"):
        strategy.train(stream)
    assert strategy.clock.train_iterations == 0


def test_a_validation_split_that_leaves_no_data_is_rejected(nispa):
    stream = tensor_stream((0, [0, 1] * 20), (1, [2, 3, 2, 3, 2])).train_stream
    strategy = nispa(model=NISPAMLP(4, (8,), density=0.5))
    message = (r"experience 1 has 5 training samples: validation_fraction=0.1 leaves 5 for "
               r"training and 0 for validation; both need at least one. Use more data or another "
               r"validation_fraction")
    with pytest.raises(ValueError, match=message):
        strategy.train(stream)
    assert strategy.clock.train_iterations == 0


# ------------------------------------------------------------------ at run time
def test_a_nan_loss_stops_training_with_a_clear_error(nispa):
    nan_inputs = _make_taskaware_tensor_classification_dataset(
        torch.full((40, 4), math.nan), torch.tensor([0, 1] * 20), task_labels=0)
    bad = create_multi_dataset_generic_benchmark([nan_inputs], [nan_inputs]).train_stream
    message = (r"the loss became nan at iteration 0 of experience 0; training stops. Lower the "
               r"learning rate or check the inputs for NaN/inf")
    with pytest.raises(FloatingPointError, match=message):
        nispa(model=NISPAMLP(4, (8,), density=0.5)).train(bad[0])


class _NaNLossAt(SupervisedPlugin):
    def __init__(self, iteration):
        super().__init__()
        self.iteration = iteration

    def before_backward(self, strategy, **kwargs):
        if strategy.clock.train_exp_iterations == self.iteration:
            strategy.loss = strategy.loss * math.nan


def test_a_nan_loss_later_in_the_epoch_is_named_at_the_epochs_end(digits, nispa):
    """The loss is checked once per epoch (no step waits for the device to say whether
    its loss was finite): the error names the first bad iteration."""
    strategy = nispa(plugins=[_NaNLossAt(3)])
    with pytest.raises(FloatingPointError, match=r"the loss became nan at iteration 3 of "
                                                 r"experience 0; training stops"):
        strategy.train(digits.train_stream[0])
    assert strategy.clock.train_exp_iterations == len(strategy.dataloader) > 4


def test_exhausted_capacity_warns_once_and_training_goes_on(digits, nispa):
    """A two-unit hidden layer: the first selection makes both units candidates, so no
    plastic unit is left for any later task."""
    torch.manual_seed(0)
    model = NISPAMLP(64, (2,), density=1.0)
    strategy = nispa(model=model, max_phases=2)
    x0 = torch.stack([x for x, _, _ in digits.test_stream[0].dataset])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        strategy.train(digits.train_stream[0])
        model.eval()
        with torch.no_grad():
            before = model(x0, 0)[:, :2].clone()
        strategy.train(digits.train_stream[1:4])
    full = [w for w in caught if "has no plastic unit left" in str(w.message)]
    assert len(full) == 1
    text = str(full[0].message)
    assert text.startswith("hidden layer 0 has no plastic unit left: its capacity is exhausted")
    assert "Training goes on" in text
    assert full[0].category is RuntimeWarning
    assert not bool((model.hidden_layers()[0].unit_state == PLASTIC).any())
    assert sorted(model.heads) == ["0", "1", "2", "3"] and len(strategy.phase_history) == 4
    for layer in model.modules():
        if is_masked_layer(layer):
            assert torch.isfinite(layer.weight).all()
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x0, 0)[:, :2], before)  # the old task is intact
    results = strategy.eval(digits.test_stream[3:4])
    # the last task still learns, on the frozen stable units
    assert results["Top1_Acc_Exp/eval_phase/test_stream/Task003/Exp003"] > 0.5


# ----------------------------------------------------------------- checkpoints
@pytest.fixture
def saved(tmp_path, digits, nispa):
    strategy = nispa()
    strategy.train(digits.train_stream[0])
    path = tmp_path / "run.ckpt"
    save_checkpoint(strategy, path)
    return path


def test_a_checkpoint_of_another_model_is_rejected(saved, nispa):
    torch.manual_seed(0)
    wider = NISPAMLP(64, (48,), density=0.5)
    with pytest.raises(ValueError, match=r"was saved from another model: the saved body has body.1 "
                                         r"MaskedLinear \(32, 64\) in_features=64, out_features=32, "
                                         r"bias=True where this model has body.1 MaskedLinear "
                                         r"\(48, 64\) in_features=64, out_features=48, bias=True: "
                                         r"build the model exactly as in the saved run"):
        load_checkpoint(nispa(model=wider), saved)
    sparser = NISPAMLP(64, (32,), density=0.25)
    with pytest.raises(ValueError, match=r"density was 0.5, this model has 0.25: build the model"):
        load_checkpoint(nispa(model=sparser), saved)
    cnn = NISPACNN(in_channels=1, input_size=8, channels=(2, 2, 2, 2), fc_size=4, density=1.0)
    message = (r"was saved from a avalanche_nispa.models.zoo.NISPAMLP, but the strategy's model "
               r"is a avalanche_nispa.models.zoo.NISPACNN")
    with pytest.raises(ValueError, match=message):
        load_checkpoint(nispa(model=cnn), saved)


def test_a_checkpoint_of_another_format_version_is_rejected(saved, tmp_path, nispa):
    data = torch.load(saved, weights_only=True)
    fixes = {99: "upgrade avalanche-nispa", 0: "load it with the avalanche-nispa release that wrote it"}
    for version, fix in fixes.items():
        data["format_version"] = version
        other = tmp_path / f"v{version}.ckpt"
        torch.save(data, other)
        message = (fr"is a NISPA checkpoint of format version {version}, but this avalanche-nispa "
                   fr"\(.*\) reads format version {CHECKPOINT_FORMAT_VERSION}: {fix}")
        with pytest.raises(ValueError, match=message):
            load_checkpoint(nispa(), other)


def test_a_file_that_is_not_a_checkpoint_is_rejected(tmp_path, nispa):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    message = (r"notes.txt is not a NISPA checkpoint: torch.load\(weights_only=True\) cannot read "
               r"it")
    with pytest.raises(ValueError, match=message):
        load_checkpoint(nispa(), text)
    weights = tmp_path / "weights.pt"
    torch.save(NISPAMLP(64, (32,), density=0.5).state_dict(), weights)
    with pytest.raises(ValueError, match=r"weights.pt is not a NISPA checkpoint \(no "
                                         r"'avalanche-nispa/checkpoint' marker\)"):
        load_checkpoint(nispa(), weights)


def test_a_checkpoint_with_other_settings_is_rejected_unless_not_strict(saved, nispa, quiet_evaluator):
    message = (r"was saved with other settings: phase_epochs was 1, this strategy has 2; "
               r"max_phases was 2, this strategy has 3\. Build the strategy with the saved "
               r"settings, or pass strict=False")
    with pytest.raises(ValueError, match=message):
        load_checkpoint(nispa(phase_epochs=2, max_phases=3), saved)
    with pytest.warns(RuntimeWarning, match="phase_epochs was 1, this strategy has 2.*Loading anyway"):
        assert load_checkpoint(nispa(phase_epochs=2), saved, strict=False) == 1
    torch.manual_seed(0)
    model = NISPAMLP(64, (32,), density=0.5)
    strategy = NISPA(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                     train_mb_size=32, eval_mb_size=256, phase_epochs=1, max_phases=2,
                     evaluator=quiet_evaluator())
    message = (r"the optimizer was a torch.optim.adam.Adam, this one is a torch.optim.sgd.SGD")
    with pytest.raises(ValueError, match=message):
        load_checkpoint(strategy, saved)
    torch.manual_seed(0)
    model = NISPAMLP(64, (32,), density=0.5)
    groups = [{"params": list(model.body[1].parameters())}, {"params": [], "lr": 0.1}]
    strategy = NISPA(model=model, optimizer=torch.optim.Adam(groups, lr=0.01), train_mb_size=32,
                     eval_mb_size=256, phase_epochs=1, max_phases=2, evaluator=quiet_evaluator())
    message = (r"holds an optimizer with 1 parameter group\(s\), the strategy's optimizer has 2: "
               r"build the optimizer with the same parameter groups as in the saved run")
    with pytest.raises(ValueError, match=message):
        load_checkpoint(strategy, saved)


def test_a_checkpoint_is_loaded_into_a_fresh_strategy_only(saved, digits, nispa):
    strategy = nispa()
    strategy.train(digits.train_stream[3])
    message = (r"the model already has heads for tasks \['3'\] that .* does not have; load a "
               r"checkpoint into a freshly built model and strategy")
    with pytest.raises(ValueError, match=message):
        load_checkpoint(strategy, saved)
