"""Frozen weights stay bit-identical, and absent weights zero, after every optimizer
step, for the optimizer set-ups ``test_nispa_strategy.py`` does not already cover:
coupled L2 weight decay in Adam, RMSprop and NAdam, an iteration-level LR scheduler,
parameter groups that really split the network body (new heads must still find a
group), and optimizer state that persists across experiences (plugins on ``Naive``).
"""
import pytest
import torch
from avalanche.training import Naive
from avalanche.training.plugins import LRSchedulerPlugin

from avalanche_nispa import NISPA
from avalanche_nispa.models import NISPACNN, NISPAMLP
from avalanche_nispa.plugins import MaskingPlugin, RewiringPlugin, StableSelectionPlugin


def mlp():
    return NISPAMLP(64, (48, 48), density=0.3)


def three_groups(model):
    """First hidden layer, second hidden layer, anything else: the groups split the body."""
    named = list(model.named_parameters())
    return [
        {"params": [p for n, p in named if n.startswith("body.1.")], "lr": 0.02},
        {"params": [p for n, p in named if n.startswith("body.3.")], "weight_decay": 0.0},
        {"params": [p for n, p in named if not n.startswith(("body.1.", "body.3."))]},
    ]


SETUPS = {
    "adam_l2_amsgrad": (mlp, lambda m: torch.optim.Adam(m.parameters(), lr=0.01, weight_decay=1e-2,
                                                        amsgrad=True), None),
    "rmsprop_momentum_wd": (mlp, lambda m: torch.optim.RMSprop(m.parameters(), lr=0.003, momentum=0.9,
                                                               weight_decay=1e-3), None),
    "nadam_decoupled_wd": (mlp, lambda m: torch.optim.NAdam(m.parameters(), lr=0.01, weight_decay=0.05,
                                                            decoupled_weight_decay=True), None),
    "sgd_iteration_cosine_schedule": (
        mlp, lambda m: torch.optim.SGD(m.parameters(), lr=0.1),
        lambda opt: LRSchedulerPlugin(torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=7),
                                      step_granularity="iteration"),
    ),
    "adamw_three_groups_splitting_the_body": (
        mlp, lambda m: torch.optim.AdamW(three_groups(m), lr=0.01, weight_decay=0.1), None,
    ),
    "sgd_two_groups_splitting_a_cnn": (
        lambda: NISPACNN(in_channels=1, input_size=8, channels=(4, 4, 6, 6), fc_size=24, density=0.5),
        lambda m: torch.optim.SGD(
            [{"params": [p for n, p in m.named_parameters() if n.startswith("body.0.")], "lr": 0.01},
             {"params": [p for n, p in m.named_parameters() if not n.startswith("body.0.")]}],
            lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
        None,
    ),
}


@pytest.mark.parametrize("setup", sorted(SETUPS))
def test_frozen_entries_survive_every_step_of_these_optimizers(digits, setup, frozen_invariants,
                                                               quiet_evaluator):
    build_model, build_optimizer, build_scheduler = SETUPS[setup]
    torch.manual_seed(0)
    model = build_model()
    optimizer = build_optimizer(model)
    probe = frozen_invariants.StepProbe()
    plugins = [probe] + ([build_scheduler(optimizer)] if build_scheduler else [])
    strategy = NISPA(model=model, optimizer=optimizer, train_mb_size=64, eval_mb_size=512,
                     phase_epochs=1, max_phases=3, evaluator=quiet_evaluator(), plugins=plugins)
    x0 = torch.stack([x for x, _, _ in digits.test_stream[0].dataset])
    strategy.train(digits.train_stream[0])
    frozen = frozen_invariants.snapshot(model)
    assert sum(int(c.sum()) for c, _, _, _ in frozen.values()) > 0
    model.eval()
    with torch.no_grad():
        logits = model(x0, 0)[:, :2].clone()
    strategy.train(digits.train_stream[1:3])
    assert probe.steps > 0
    frozen_invariants.assert_unchanged(model, frozen)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x0, 0)[:, :2], logits)
    # a new head joins the group of the layer feeding it, whatever the user's groups
    feeding = model.hidden_layers()[-1].weight
    for group in optimizer.param_groups:
        if any(p is feeding for p in group["params"]):
            assert all(any(p is q for q in group["params"]) for p in model.heads.parameters())


def test_frozen_entries_survive_optimizer_state_that_persists_across_experiences(digits, frozen_invariants,
                                                                                 quiet_evaluator):
    """With Naive nothing resets Adam's moments: the entries frozen after experience 0
    keep non-zero moments and coupled L2 decay, and must still not move."""
    torch.manual_seed(1)
    model = mlp()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=1e-2)
    probe = frozen_invariants.StepProbe()
    strategy = Naive(model=model, optimizer=optimizer, train_mb_size=64, train_epochs=2,
                     eval_mb_size=512, evaluator=quiet_evaluator(),
                     plugins=[StableSelectionPlugin(0.9), RewiringPlugin(), MaskingPlugin(), probe,
                              LRSchedulerPlugin(torch.optim.lr_scheduler.StepLR(optimizer, 1, 0.5),
                                                reset_scheduler=False, reset_lr=False)])
    strategy.train(digits.train_stream[0])
    frozen = frozen_invariants.snapshot(model)
    layer = model.hidden_layers()[0]
    moments = optimizer.state[layer.weight]["exp_avg"]
    assert bool(moments[layer.frozen_connections].ne(0).any())  # state left on frozen entries
    strategy.train(digits.train_stream[1])
    assert probe.steps > 0
    frozen_invariants.assert_unchanged(model, frozen)
