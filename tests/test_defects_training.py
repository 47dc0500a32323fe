"""Issue 12: defects found by using the library as a new user would (training side).

Each test fails on the code before its fix (see the commit that adds it)."""
from __future__ import annotations

import io
import itertools
import math

import numpy as np

import pytest
import torch
from avalanche.benchmarks.scenarios.deprecated.generic_benchmark_creation import (
    create_multi_dataset_generic_benchmark,
)
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.logging import TextLogger
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin

from avalanche_nispa import NISPA, NISPAConfig
from avalanche_nispa._avalanche import tensor_classification_dataset
from avalanche_nispa.algorithm.selection import mean_activations, minimal_covering_units
from avalanche_nispa.benchmarks import split_digits
from avalanche_nispa.models import NISPAMLP
from avalanche_nispa.plugins import MaskingPlugin, RewiringPlugin, StableSelectionPlugin
from avalanche_nispa.plugins.base import NISPAPlugin
from avalanche_nispa.sparse import PLASTIC, is_masked_layer


@pytest.fixture(scope="module")
def digits():
    return split_digits(seed=0)


def _evaluator():
    return EvaluationPlugin(accuracy_metrics(experience=True), loggers=[TextLogger(io.StringIO())])


def _test_inputs(experience):
    xs, ys = zip(*[(x, y) for x, y, _ in experience.dataset])
    return torch.stack(xs), torch.as_tensor(ys)


@torch.no_grad()
def _task_logits(model, x, task):
    model.eval()
    classes = model.heads[str(task)].classes
    return model(x, task)[:, classes].clone()


def _frozen(model):
    return {name: (layer.frozen_connections.clone(), layer.weight[layer.frozen_connections].clone())
            for name, layer in model.named_modules() if is_masked_layer(layer)}


# ------------------------------------------------- 1. plugin order with other strategies
_KINDS = ("masking", "selection", "rewiring")


def _plugin(kind):
    if kind == "masking":
        return MaskingPlugin()
    if kind == "selection":
        return StableSelectionPlugin(0.9)
    return RewiringPlugin(generator=torch.Generator().manual_seed(0))


def _naive_run(digits, order):
    torch.manual_seed(0)
    model = NISPAMLP(64, (32, 32), density=0.5)
    strategy = Naive(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=0.01),
                     train_mb_size=32, train_epochs=3, eval_mb_size=256,
                     plugins=[_plugin(kind) for kind in order], evaluator=_evaluator())
    x0, y0 = _test_inputs(digits.test_stream[0])
    strategy.train(digits.train_stream[0])
    after_task0 = _task_logits(model, x0, 0)
    frozen = _frozen(model)
    strategy.train(digits.train_stream[1])
    return model, frozen, after_task0, _task_logits(model, x0, 0), y0


@pytest.fixture(scope="module")
def canonical_run(digits):
    return _naive_run(digits, ("selection", "rewiring", "masking"))


@pytest.mark.parametrize("order", list(itertools.permutations(_KINDS)), ids="-".join)
def test_nispa_plugins_with_naive_work_in_every_order(digits, canonical_run, order):
    """Selection, then rewiring, then masking's re-init run at the end of an experience
    whatever the order of the plugin list: task 0 is learned, its frozen weights and its
    logits survive task 1, and every order gives the canonical order's model."""
    model, frozen, after_task0, after_task1, y0 = _naive_run(digits, order)
    accuracy = float((after_task0.argmax(1) == y0).float().mean())
    assert accuracy > 0.9, f"task 0 not kept at the end of its experience ({accuracy:.2f})"
    assert torch.equal(after_task0, after_task1)
    layers = dict(model.named_modules())
    for name, (mask, values) in frozen.items():
        assert bool(layers[name].frozen_connections[mask].all())
        assert torch.equal(layers[name].weight[mask], values)
    assert torch.equal(after_task1, canonical_run[3])


# ------------------------------------------------ 5. stop_training() during phase 1
class _StopInPhaseOne(NISPAPlugin):
    """Asks for a stop after the first epoch of phase 1; counts epochs per phase."""

    def __init__(self):
        super().__init__()
        self.phase = 0
        self.epochs = {}

    def before_phase(self, strategy, *, phase, tau, **kwargs):
        self.phase = phase

    def after_training_epoch(self, strategy, **kwargs):
        self.epochs[self.phase] = self.epochs.get(self.phase, 0) + 1
        if self.phase == 1 and self.epochs[1] == 1:
            strategy.stop_training()


def test_stop_training_in_phase_one_trains_one_epoch_of_phase_two(digits):
    """Phase 2 is needed (the kept model must be trained after one selection) but is
    cut to a single epoch."""
    torch.manual_seed(0)
    model = NISPAMLP(64, (32,), density=0.5)
    stopper = _StopInPhaseOne()
    strategy = NISPA(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=0.01),
                     train_mb_size=32, eval_mb_size=256, phase_epochs=3, plugins=[stopper],
                     evaluator=_evaluator())
    strategy.train(digits.train_stream[0])
    history = strategy.phase_history[0]
    assert stopper.epochs == {1: 1, 2: 1}
    assert history["stop_reason"] == "stop_training"
    assert history["phases"] == 2 and history["kept_phase"] == 2 and history["epochs"] == 2


# ------------------------------------------------------ 4. max_phases leaves capacity
def test_a_capped_schedule_reaches_its_floor_by_the_last_allowed_phase():
    fitted = NISPAConfig(max_phases=3).schedule
    paper = NISPAConfig().schedule
    assert fitted(1) == paper(1)
    assert fitted(2) == pytest.approx(paper(13))  # τ_13 = 60.4 %
    assert fitted(3) == pytest.approx(paper(25)) and fitted(3) > 0.05
    assert NISPAConfig(max_phases=3, schedule_fits_max_phases=False).schedule(2) == paper(2)
    assert NISPAConfig(max_phases=40).schedule(7) == paper(7)  # already fits: unchanged


def _plastic_after_capped_task(digits, fits):
    torch.manual_seed(0)
    model = NISPAMLP(64, (32, 32), density=0.5)
    strategy = NISPA(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=0.01),
                     train_mb_size=32, eval_mb_size=256, phase_epochs=1, max_phases=3,
                     schedule_fits_max_phases=fits, accuracy_drop_threshold=100.0,
                     evaluator=_evaluator())
    strategy.train(digits.train_stream[0])
    history = strategy.phase_history[0]
    assert history["stop_reason"] == "max_phases"
    plastic = sum(int((layer.unit_state == PLASTIC).sum()) for layer in model.hidden_layers())
    return history["final_tau"], plastic


def test_a_task_capped_by_max_phases_leaves_capacity(digits):
    final_tau, plastic = _plastic_after_capped_task(digits, True)
    assert final_tau == pytest.approx(NISPAConfig().schedule(13))
    paper_tau, paper_plastic = _plastic_after_capped_task(digits, False)
    assert paper_tau == pytest.approx(NISPAConfig().schedule(2))
    assert plastic >= paper_plastic + 8, (plastic, paper_plastic)


# ------------------------------------------------- 2. non-finite validation / selection data
def _stream_with_nan_in_validation(size=80, features=4):
    """One experience whose only non-finite sample falls in NISPA's validation split."""
    x = torch.rand(size, features, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1] * (size // 2))
    validation = np.random.RandomState(1).permutation(size)[:int(size * 0.1)]
    x[int(validation[0]), 1] = math.nan
    data = tensor_classification_dataset(x, labels, task_labels=0)
    return create_multi_dataset_generic_benchmark([data], [data]).train_stream


@pytest.mark.parametrize("mode", ["clean", "original"])
def test_nan_in_the_validation_data_raises_and_selects_nothing(mode):
    torch.manual_seed(0)
    model = NISPAMLP(4, (8, 8), density=0.5)
    strategy = NISPA(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=0.01),
                     train_mb_size=16, eval_mb_size=4, phase_epochs=1, max_phases=3,
                     mode=mode, evaluator=_evaluator())
    with pytest.raises(FloatingPointError, match=r"experience 0.*validation batch 0.*NaN or inf"):
        strategy.train(_stream_with_nan_in_validation()[0])
    for layer in model.hidden_layers():
        assert bool((layer.unit_state == PLASTIC).all())
        assert not bool(layer.frozen_connections.any())


def test_the_selection_pass_refuses_non_finite_inputs_naming_the_batch():
    torch.manual_seed(0)
    model = NISPAMLP(4, (8,), density=0.5)
    batches = [torch.rand(3, 4), torch.rand(3, 4), torch.rand(3, 4)]
    batches[2][1, 0] = math.inf
    with pytest.raises(FloatingPointError, match=r"experience 3: selection batch 2 .*NaN or inf"):
        mean_activations(model, batches, where="experience 3")
    with pytest.raises(ValueError, match="non-finite"):
        minimal_covering_units(torch.tensor([1.0, math.nan, 2.0]), 0.5)


# ------------------------------------- 3. a diverging new task cannot touch old tasks
class _Diverge(NISPAPlugin):
    """Sets one live weight of a plastic unit to inf at the third step of task 1."""

    def __init__(self):
        super().__init__()
        self.steps = 0

    def after_update(self, strategy, **kwargs):
        if strategy.experience.current_experience != 1:
            return
        self.steps += 1
        if self.steps == 3:
            layer = strategy.model.hidden_layers()[0]
            unit = int((layer.unit_state == PLASTIC).nonzero()[0])
            source = int(layer.connection_mask[unit].nonzero()[0])
            with torch.no_grad():
                layer.weight[unit, source] = math.inf


@pytest.mark.parametrize("kind", ["nispa", "naive"])
def test_diverging_plastic_weights_raise_naming_the_lr_and_old_tasks_are_untouched(digits, kind):
    torch.manual_seed(0)
    model = NISPAMLP(64, (32, 32), density=0.5)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    if kind == "nispa":
        strategy = NISPA(model=model, optimizer=optimizer, train_mb_size=32, eval_mb_size=256,
                         phase_epochs=1, max_phases=3, plugins=[_Diverge()],
                         evaluator=_evaluator())
    else:
        plugins = [StableSelectionPlugin(0.9), RewiringPlugin(), MaskingPlugin(), _Diverge()]
        strategy = Naive(model=model, optimizer=optimizer, train_mb_size=32, train_epochs=2,
                         eval_mb_size=256, plugins=plugins, evaluator=_evaluator())
    x0, _ = _test_inputs(digits.test_stream[0])
    strategy.train(digits.train_stream[0])
    before = _task_logits(model, x0, 0)
    frozen = _frozen(model)
    with pytest.raises(FloatingPointError, match=r"learning rate 0\.01"):
        strategy.train(digits.train_stream[1])
    after = _task_logits(model, x0, 0)
    assert bool(torch.isfinite(after).all())
    assert torch.equal(before, after)
    layers = dict(model.named_modules())
    for name, (mask, values) in frozen.items():
        assert torch.equal(layers[name].weight[mask], values)
