"""An LR scheduler inside NISPA's phases: across the phases of an experience by
default, restarted every phase with lr_schedule="phase" (issue 12, item 20)."""
import pytest
import torch
from avalanche.core import SupervisedPlugin
from avalanche.training.plugins import LRSchedulerPlugin

from avalanche_nispa import NISPA
from avalanche_nispa.models import NISPAMLP


class PhaseStartLR(SupervisedPlugin):
    def __init__(self):
        super().__init__()
        self.lrs = []

    def before_phase(self, strategy, *, phase, tau, **kwargs):
        self.lrs.append(round(strategy.optimizer.param_groups[0]["lr"], 6))


def _run(digits, quiet_evaluator, lr_schedule):
    torch.manual_seed(0)
    model = NISPAMLP(64, (32, 32), density=0.3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    listener = PhaseStartLR()
    scheduler = LRSchedulerPlugin(torch.optim.lr_scheduler.StepLR(optimizer, 1, gamma=0.5),
                                  step_granularity="epoch")
    strategy = NISPA(model=model, optimizer=optimizer, train_mb_size=64, eval_mb_size=512,
                     phase_epochs=2, max_phases=3, lr_schedule=lr_schedule,
                     evaluator=quiet_evaluator(), plugins=[scheduler, listener])
    strategy.train(digits.train_stream[0])
    return listener.lrs


@pytest.mark.parametrize("lr_schedule, expected", [
    ("experience", [0.1, 0.025, 0.00625]),  # two epochs halve it twice per phase
    ("phase", [0.1, 0.1, 0.1]),
])
def test_the_schedule_spans_the_experience_or_restarts_every_phase(digits, quiet_evaluator,
                                                                   lr_schedule, expected):
    assert _run(digits, quiet_evaluator, lr_schedule) == expected


def test_an_unknown_lr_schedule_is_refused():
    from avalanche_nispa import NISPAConfig
    with pytest.raises(ValueError, match="lr_schedule must be 'experience' or 'phase', got 'epoch'"):
        NISPAConfig(lr_schedule="epoch")
