"""Issue 12: defects found by using the library as a new user would (models side).

Each test fails on the code before its fix (see the commit that adds it)."""
from __future__ import annotations

import io

import pytest
import torch
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.logging import TextLogger
from avalanche.training.plugins import EvaluationPlugin
from torch import nn

from avalanche_nispa import NISPA
from avalanche_nispa.benchmarks import split_digits
from avalanche_nispa.models import to_nispa


@pytest.fixture(scope="module")
def digits():
    return split_digits(seed=0)


def _evaluator():
    return EvaluationPlugin(accuracy_metrics(experience=True), loggers=[TextLogger(io.StringIO())])


class _Residual(nn.Module):
    """A normalisation-free residual block: its forward is not a chain of its children."""

    def __init__(self, width):
        super().__init__()
        self.linear = nn.Linear(width, width)

    def forward(self, x):
        return x + torch.relu(self.linear(x))


# ------------------------------------------- 6. dropout, identity, blocks between layers
_MODELS = {
    "conv-pool-flatten-dropout-linear": lambda: nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Dropout(0.25), nn.Linear(6 * 4 * 4, 10)),
    "conv-identity-flatten-dropout-linear-linear": lambda: nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.Identity(), nn.Flatten(), nn.Dropout(0.1),
        nn.Linear(6 * 8 * 8, 16), nn.ReLU(), nn.Linear(16, 10)),
    "linear-dropout-relu-identity-linear": lambda: nn.Sequential(
        nn.Flatten(), nn.Linear(64, 24), nn.Dropout(0.2), nn.ReLU(), nn.Identity(),
        nn.Linear(24, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 10)),
    "nested-sequential-blocks": lambda: nn.Sequential(
        nn.Flatten(), nn.Sequential(nn.Linear(64, 24), nn.ReLU(), nn.Dropout(0.1)),
        nn.Sequential(nn.Linear(24, 16), nn.ReLU()), nn.Linear(16, 10)),
}


@pytest.mark.parametrize("name", list(_MODELS))
def test_converted_models_with_dropout_and_identity_train_through_phases(digits, name):
    torch.manual_seed(0)
    model = to_nispa(_MODELS[name](), density=0.5)
    strategy = NISPA(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=0.01),
                     train_mb_size=32, eval_mb_size=256, phase_epochs=1, max_phases=2,
                     evaluator=_evaluator())
    strategy.train(digits.train_stream[:2])
    assert [h["phases"] for h in strategy.phase_history] == [2, 2]
    for layer in model.hidden_layers():
        assert layer.unit_state.shape == (layer.out_units,)


def test_a_block_whose_forward_is_not_a_chain_is_refused():
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), _Residual(16),
                          nn.Linear(16, 10))
    with pytest.raises(ValueError, match=r"layer 3 \(_Residual\).*nn\.Sequential"):
        to_nispa(model, density=0.5)


# ----------------------------------------------------- 7. the first conv dense by default
def test_to_nispa_keeps_the_first_conv_dense_like_nispacnn_and_the_first_linear_sparse():
    torch.manual_seed(0)
    cnn = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1),
                        nn.ReLU(), nn.Flatten(), nn.Linear(8 * 8 * 8, 10))
    first, second = to_nispa(cnn, density=0.3).hidden_layers()
    assert first.density() == 1.0 and second.density() < 0.6
    assert to_nispa(cnn, density=0.3, dense_first_layer=False).hidden_layers()[0].density() < 0.6
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    assert to_nispa(mlp, density=0.3).hidden_layers()[0].density() < 0.6  # as NISPAMLP
    assert to_nispa(mlp, density=0.3, dense_first_layer=True).hidden_layers()[0].density() == 1.0
