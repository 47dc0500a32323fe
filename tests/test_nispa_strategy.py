"""The NISPA strategy inside Avalanche: zero forgetting, frozen weights, the phase loop,
callbacks, metrics and input checks."""
import io

import pytest
import torch
from avalanche.core import SupervisedPlugin
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin

from avalanche_nispa import NISPA
from avalanche_nispa.data_cache import TensorBatches
from avalanche_nispa.models import NISPAMLP
from avalanche_nispa.plugins import MaskingPlugin, RewiringPlugin, StableSelectionPlugin
from avalanche_nispa.sparse import PLASTIC, STABLE
from avalanche_nispa.algorithm.units import source_states


@pytest.fixture
def make_strategy(quiet_evaluator):
    """``make_strategy(model, optimizer, **settings)``: NISPA with small defaults."""

    def build(model, optimizer, **kwargs):
        settings = dict(train_mb_size=64, eval_mb_size=512, phase_epochs=1, max_phases=3,
                        evaluator=quiet_evaluator())
        settings.update(kwargs)
        return NISPA(model=model, optimizer=optimizer, **settings)

    return build


def stream_tensors(experience):
    xs, ys = zip(*[(x, y) for x, y, _ in experience.dataset])
    return torch.stack(xs), torch.tensor(ys)


OPTIMIZERS = {
    "sgd_momentum_nesterov_wd": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam": lambda p: torch.optim.Adam(p, lr=0.01),
    "adamw_wd": lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.05),
    "two_param_groups_with_scheduler": None,
}


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_frozen_weights_stay_bit_identical_and_past_tasks_are_not_forgotten(digits, optimizer, frozen_invariants, make_strategy):
    torch.manual_seed(0)
    model = NISPAMLP(64, (64, 64), density=0.3)
    plugins = []
    if optimizer == "two_param_groups_with_scheduler":
        body = [p for n, p in model.named_parameters() if n.startswith("body.1.")]
        rest = [p for n, p in model.named_parameters() if not n.startswith("body.1.")]
        assert body and rest
        opt = torch.optim.SGD([{"params": body, "lr": 0.02}, {"params": rest}], lr=0.05,
                              momentum=0.9, weight_decay=1e-3)
        from avalanche.training.plugins import LRSchedulerPlugin
        plugins.append(LRSchedulerPlugin(torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.9),
                                         step_granularity="epoch"))
    else:
        opt = OPTIMIZERS[optimizer](model.parameters())
    strategy = make_strategy(model, opt, plugins=plugins)
    x0, y0 = stream_tensors(digits.test_stream[0])
    strategy.train(digits.train_stream[0])
    frozen = frozen_invariants.snapshot(model)
    assert sum(int(connections.sum()) for connections, _, _, _ in frozen.values()) > 0
    model.eval()
    with torch.no_grad():
        logits_before = model(x0, 0).clone()
    accuracy_before = (logits_before.argmax(1) == y0).float().mean().item()
    assert accuracy_before > 0.9
    for experience in digits.train_stream[1:3]:
        strategy.train(experience)
    frozen_invariants.assert_unchanged(model, frozen)
    model.eval()
    with torch.no_grad():
        logits_after = model(x0, 0)
    assert torch.equal(logits_after[:, :2], logits_before[:, :2])
    results = strategy.eval(digits.test_stream[:1])
    assert results["Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp000"] == pytest.approx(accuracy_before)


def test_masked_weights_are_zero_after_every_step_and_no_plastic_unit_feeds_a_stable_one(digits, frozen_invariants, make_strategy):
    torch.manual_seed(1)
    model = NISPAMLP(64, (48, 48), density=0.25)
    probe = frozen_invariants.StepProbe()
    strategy = make_strategy(model, torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.1),
                             plugins=[probe])
    strategy.train(digits.train_stream[:3])
    assert probe.steps > 0
    links = model.layer_links(2)
    for i, link in enumerate(links):
        stable_targets = link.layer.unit_state == STABLE
        plastic_sources = source_states(links, i) == PLASTIC
        assert not (link.layer.connection_mask & stable_targets[:, None] & plastic_sources[None, :]).any()


def test_a_stop_reverts_to_the_previous_phase_weights_and_masks(digits, monkeypatch, quiet_evaluator):
    """Script the validation accuracies so that phase 4 drops by more than a_f: the
    model, masks and unit states kept must be exactly those at the end of phase 3."""
    torch.manual_seed(2)
    model = NISPAMLP(64, (32, 32), density=0.3)
    scripted = iter([80.0, 85.0, 85.5, 80.0])
    states = []

    class Recorder(NISPA):
        def validate(self, record_activations=False):
            states.append({k: v.clone() for k, v in self.model.state_dict().items()})
            return next(scripted), None

        def _after_training_exp(self, **kwargs):
            self.kept = {k: v.clone() for k, v in self.model.state_dict().items()}
            super()._after_training_exp(**kwargs)

    strategy = Recorder(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=0.01),
                        train_mb_size=64, eval_mb_size=512, phase_epochs=1,
                        accuracy_drop_threshold=0.75, evaluator=quiet_evaluator())
    strategy.train(digits.train_stream[0])
    history = strategy.phase_history[-1]
    assert history["phases"] == 4 and history["kept_phase"] == 3
    assert history["stop_reason"] == "accuracy_drop"
    assert history["final_tau"] == pytest.approx(strategy.config.schedule(2))
    assert set(strategy.kept) == set(states[2])
    for key, value in states[2].items():
        assert torch.equal(strategy.kept[key], value), key
    # phase 4 was trained from a rewired copy: its weights differ from what was kept
    assert not torch.equal(states[3]["body.1.weight"], states[2]["body.1.weight"])
    assert not torch.equal(states[3]["body.1.connection_mask"], states[2]["body.1.connection_mask"]) or \
        not torch.equal(states[3]["body.3.connection_mask"], states[2]["body.3.connection_mask"])


class Tracer(SupervisedPlugin):
    def __init__(self):
        super().__init__()
        self.events = []

    def __getattribute__(self, name):
        if name.startswith(("before_", "after_")):
            def record(strategy, **kwargs):
                self.events.append(name)
            return record
        return super().__getattribute__(name)


def test_avalanche_callbacks_and_periodic_eval_keep_working(digits, make_strategy):
    torch.manual_seed(3)
    model = NISPAMLP(64, (32, 32), density=0.3)
    tracer = Tracer()
    strategy = make_strategy(model, torch.optim.Adam(model.parameters(), lr=0.01), plugins=[tracer],
                             phase_epochs=2, eval_every=1)
    strategy.train(digits.train_stream[0], eval_streams=[digits.test_stream[0]])
    events = tracer.events
    phases = strategy.phase_history[-1]["phases"]
    assert events.count("before_training_exp") == 1 and events.count("after_training_exp") == 1
    assert events.count("before_training_epoch") == events.count("after_training_epoch") == 2 * phases
    assert events.count("before_phase") == events.count("after_phase") == phases
    assert events.count("before_eval") >= 2 * phases  # eval_every=1: once per epoch, plus the initial one
    order = [e for e in events if e in ("before_training_exp", "before_training_epoch", "before_forward",
                                        "before_backward", "before_update", "after_update",
                                        "after_training_epoch", "after_training_exp")]
    assert order[0] == "before_training_exp" and order[-1] == "after_training_exp"
    first_step = order[order.index("before_forward"):order.index("before_forward") + 4]
    assert first_step == ["before_forward", "before_backward", "before_update", "after_update"]


def test_unit_states_and_phases_reach_avalanche_loggers(digits, make_strategy, quiet_evaluator):
    torch.manual_seed(4)
    model = NISPAMLP(64, (32, 32), density=0.3)
    log = io.StringIO()
    strategy = make_strategy(model, torch.optim.Adam(model.parameters(), lr=0.01),
                             evaluator=quiet_evaluator(log=log))
    strategy.train(digits.train_stream[0])
    strategy.eval(digits.test_stream[:1])  # TextLogger prints pending values at eval time
    text = log.getvalue()
    assert "NISPA_stable/train_phase/train_stream/body.1" in text
    assert "NISPA_phases/train_phase/train_stream = " in text
    metrics = strategy.evaluator.get_last_metrics()
    stable = metrics["NISPA_stable/train_phase/train_stream/body.1"]
    assert stable == int((model.body[1].unit_state == STABLE).sum()) > 0
    history = strategy.phase_history[0]
    assert {"experience", "task", "phases", "kept_phase", "final_tau", "epochs", "stop_reason"} <= set(history)


def test_modes_set_the_logit_masking(digits, make_strategy):
    torch.manual_seed(5)
    model = NISPAMLP(64, (32,), density=0.5)
    make_strategy(model, torch.optim.Adam(model.parameters()), mode="original")
    assert float(model.masked_logit_value) == 0.0
    make_strategy(model, torch.optim.Adam(model.parameters()), mode="clean")
    assert float(model.masked_logit_value) == -1e9
    strategy = make_strategy(model, torch.optim.Adam(model.parameters()), mode="original")
    strategy.train(digits.train_stream[1])
    model.eval()
    x, _ = stream_tensors(digits.test_stream[1])
    with torch.no_grad():
        logits = model(x, 1)
    assert torch.all(logits[:, [0, 1]] == 0)  # ×0 masking: non-task logits are 0, as in the official code


def test_plugins_work_on_their_own_with_naive(digits, quiet_evaluator):
    """Selection + rewiring + masking on top of Avalanche's Naive: a one-phase NISPA.
    Once a task's stable units are frozen and cut off from plastic inputs, its outputs
    never change again."""
    torch.manual_seed(6)
    model = NISPAMLP(64, (48, 48), density=0.3)
    strategy = Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                     train_mb_size=64, train_epochs=2, eval_mb_size=256, evaluator=quiet_evaluator(),
                     plugins=[StableSelectionPlugin(0.9), RewiringPlugin(), MaskingPlugin()])
    x0, _ = stream_tensors(digits.test_stream[0])
    strategy.train(digits.train_stream[0])
    model.eval()
    with torch.no_grad():
        before = model(x0, 0).clone()
    assert any(int((l.unit_state == STABLE).sum()) > 0 for l in model.hidden_layers())
    strategy.train(digits.train_stream[1])
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x0, 0)[:, :2], before[:, :2])


def test_masking_plugin_alone_rejects_dense_models(digits, quiet_evaluator):
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    strategy = Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                     train_mb_size=64, evaluator=quiet_evaluator(), plugins=[MaskingPlugin()])
    with pytest.raises(ValueError, match="no masked layer"):
        strategy.train(digits.train_stream[0])


def test_unit_state_metrics_reach_generic_loggers_and_the_csv_logger(digits, tmp_path, make_strategy):
    from avalanche.logging import BaseLogger

    from avalanche_nispa.logging import UnitStateCSVLogger

    class Capture(BaseLogger):  # what TensorboardLogger / WandBLogger receive
        def __init__(self):
            super().__init__()
            self.names = []

        def log_single_metric(self, name, value, x_plot):
            self.names.append(name)

    capture = Capture()
    csv_logger = UnitStateCSVLogger(tmp_path)
    torch.manual_seed(7)
    model = NISPAMLP(64, (32, 32), density=0.3)
    evaluator = EvaluationPlugin(accuracy_metrics(experience=True), loggers=[capture, csv_logger])
    make_strategy(model, torch.optim.Adam(model.parameters(), lr=0.01), evaluator=evaluator).train(
        digits.train_stream[0])
    assert "NISPA_plastic/train_phase/train_stream/body.3" in capture.names
    rows = (tmp_path / "nispa_state.csv").read_text().splitlines()
    assert rows[0] == "metric,experience,layer,value,x"
    stable = [r for r in rows if r.startswith("NISPA_stable,0,body.1,")]
    assert len(stable) == 1 and int(stable[0].split(",")[3]) == int((model.body[1].unit_state == STABLE).sum())


def test_cached_experience_data_gives_every_training_sample_once_per_epoch(digits, make_strategy):
    torch.manual_seed(8)
    model = NISPAMLP(64, (32,), density=0.5)
    strategy = make_strategy(model, torch.optim.Adam(model.parameters(), lr=0.01), cache_data=True)
    seen, loaders, cached = [], [], []

    class Batches(SupervisedPlugin):
        def before_training_epoch(self, strategy, **kwargs):
            seen.append([])
            loaders.append(strategy.dataloader)
            cached.append(strategy.selection_inputs)  # the training split's cached inputs

        def before_forward(self, strategy, **kwargs):
            seen[-1].append(strategy.mb_x.flatten(1).clone())

    strategy.plugins.insert(0, Batches())
    strategy.train(digits.train_stream[0])
    # every epoch is served from the cached tensors, not from Avalanche's data loader
    assert len(seen) >= 2
    assert all(isinstance(loader, TensorBatches) for loader in loaders)
    assert all(isinstance(inputs, torch.Tensor) and inputs is cached[0] for inputs in cached)
    held_out = torch.stack([x for x, _, _ in strategy.validation_dataset]).flatten(1)
    epochs = [torch.cat(batches) for batches in seen]
    n_train = len(digits.train_stream[0].dataset) - held_out.shape[0]
    assert all(e.shape[0] == n_train for e in epochs)
    first = sorted(map(tuple, epochs[0].tolist()))
    assert first == sorted(map(tuple, cached[0].flatten(1).tolist()))  # exactly the cached samples
    assert all(sorted(map(tuple, e.tolist())) == first for e in epochs[1:])  # same samples
    assert not torch.equal(epochs[0], epochs[1])  # in a new order every epoch
    validation_rows = set(map(tuple, held_out.tolist()))
    assert not validation_rows & set(first)  # never the held-out ones
