"""Output heads as the official code initialises them, and an original-mode loss that
does not depend on how often the stream is evaluated (issue 14 §5)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from avalanche_nispa import NISPA
from avalanche_nispa.models import NISPACNN, NISPAMLP


def _experience(task: int, classes) -> SimpleNamespace:
    return SimpleNamespace(task_labels=[task], classes_in_this_experience=list(classes),
                           current_experience=task)


def _live(head) -> torch.Tensor:
    return head.weight[head.connection_mask]


def test_cnn_first_head_is_drawn_over_its_fan_in_as_the_official_convnet():
    torch.manual_seed(0)
    model = NISPACNN(in_channels=1, input_size=8, channels=(4, 4, 8, 8), fc_size=2048,
                     density=0.5)
    model.train()
    model.adaptation(_experience(0, [0, 1]))
    model.adaptation(_experience(1, [2, 3]))
    first, second = model.heads["0"], model.heads["1"]
    # official: kaiming_normal_ (fan-in 2048, gain √2) -> std 0.031; not fan-out's 0.447 / 1.0
    assert _live(first).std().item() == pytest.approx(math.sqrt(2 / 2048), rel=0.15)
    assert _live(second).std().item() > 10 * math.sqrt(2 / 2048)  # later heads: fan-out
    assert torch.all(first.bias == 0) and torch.all(second.bias == 0)


@pytest.mark.parametrize("mode, later_bias_zero", [("original", True), ("clean", False)])
def test_later_heads_start_with_zero_biases_in_the_original_mode(
        mode, later_bias_zero, quiet_evaluator):
    torch.manual_seed(0)
    model = NISPAMLP(64, (32,), density=0.5)
    NISPA(model=model, optimizer=torch.optim.Adam(model.parameters()), mode=mode,
          evaluator=quiet_evaluator())
    model.train()
    model.adaptation(_experience(0, [0, 1]))
    model.adaptation(_experience(1, [2, 3]))
    assert not torch.all(model.heads["0"].bias == 0)  # the first: PyTorch's uniform
    assert bool(torch.all(model.heads["1"].bias == 0)) is later_bias_zero


def _train(digits, quiet_evaluator, evaluate_every_epoch: bool) -> dict:
    torch.manual_seed(3)
    model = NISPAMLP(64, (32, 32), density=0.3)
    strategy = NISPA(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=0.01),
                     mode="original", train_mb_size=64, eval_mb_size=512, phase_epochs=1,
                     max_phases=2, evaluator=quiet_evaluator(),
                     eval_every=1 if evaluate_every_epoch else -1)
    for experience in list(digits.train_stream)[:2]:
        strategy.train(experience, eval_streams=[digits.test_stream] if evaluate_every_epoch
                       else None)
    assert model.num_classes == 10  # the official layer's width: every class of the stream
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_original_mode_training_does_not_depend_on_the_evaluation_schedule(
        digits, quiet_evaluator):
    quiet = _train(digits, quiet_evaluator, evaluate_every_epoch=False)
    evaluated = _train(digits, quiet_evaluator, evaluate_every_epoch=True)
    assert quiet.keys() == evaluated.keys()
    for key in quiet:
        assert torch.equal(quiet[key], evaluated[key]), key


def _head_after(classes, head_fan_out: str) -> torch.Tensor:
    torch.manual_seed(5)
    model = NISPAMLP(64, (300,), density=1.0, head_fan_out=head_fan_out)
    model.train()
    model.adaptation(_experience(0, classes))
    return model.heads["0"].weight.detach().clone()


def test_head_fan_out_head_draws_equal_class_counts_equally_whatever_their_ids():
    # per-task fan-out: a 2-class head has std √(2/2) = 1 for {0, 1} and for {8, 9} alike
    low, high = _head_after([0, 1], "head"), _head_after([8, 9], "head")
    assert torch.equal(low, high)
    assert low.std().item() == pytest.approx(1.0, rel=0.1)
    # the default draws over the output width: {8, 9} -> width 10, std √(2/10)
    wide = _head_after([8, 9], "output_width")
    assert wide.std().item() == pytest.approx(math.sqrt(2 / 10), rel=0.1)
    assert _head_after([0, 1], "output_width").std().item() == pytest.approx(1.0, rel=0.1)


def test_an_unknown_head_fan_out_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match="head_fan_out must be 'output_width' or 'head'"):
        NISPAMLP(64, (8,), head_fan_out="fan_in")


def test_a_checkpoint_of_another_head_fan_out_is_refused_and_one_without_it_loads():
    from pathlib import Path

    from avalanche_nispa.checkpoint.compat import check_fingerprint, model_fingerprint
    saved = model_fingerprint(NISPAMLP(64, (8,)))
    with pytest.raises(ValueError, match="head_fan_out was 'output_width'"):
        check_fingerprint(saved, model_fingerprint(NISPAMLP(64, (8,), head_fan_out="head")),
                          Path("run.pt"))
    older = {k: v for k, v in saved.items() if k not in ("head_fan_out", "head_weight_init")}
    check_fingerprint(older, model_fingerprint(NISPAMLP(64, (8,))), Path("run.pt"))
    with pytest.raises(ValueError, match="head_fan_out was 'output_width'"):
        check_fingerprint(older, model_fingerprint(NISPAMLP(64, (8,), head_fan_out="head")),
                          Path("run.pt"))
