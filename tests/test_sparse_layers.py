"""Masked layers: masks, frozen entries and their invariants."""
import pytest
import torch
from torch import nn

from avalanche_nispa.sparse import (
    MaskedConv2d,
    MaskedLinear,
    random_connection_mask,
    sparsify_,
)


def test_bernoulli_and_exact_masks_have_the_requested_density():
    gen = torch.Generator().manual_seed(0)
    bern = random_connection_mask(400, 784, 0.2, generator=gen)
    exact = random_connection_mask(400, 784, 0.2, method="exact", generator=gen)
    assert abs(bern.float().mean().item() - 0.2) < 0.005
    assert int(exact.sum()) == round(0.2 * 400 * 784)
    with pytest.raises(ValueError, match=r"density must be in \(0, 1\]"):
        random_connection_mask(3, 3, 1.5)
    with pytest.raises(ValueError, match="density"):
        random_connection_mask(3, 3, 0.0)


def test_masked_weights_are_zero_and_optimizer_steps_keep_them_zero():
    torch.manual_seed(0)
    layer = MaskedLinear(20, 10)
    sparsify_(layer, 0.3)
    absent = ~layer.connection_mask
    assert torch.all(layer.weight[absent] == 0)
    opt = torch.optim.AdamW(layer.parameters(), lr=0.1, weight_decay=0.1)
    for _ in range(5):
        opt.zero_grad()
        layer(torch.randn(8, 20)).pow(2).sum().backward()
        layer.mask_gradients_()
        opt.step()
        layer.enforce_masks_()
        assert torch.all(layer.weight[absent] == 0)
    # gradients of absent weights are zeroed, so no optimizer state builds up there
    assert torch.all(opt.state[layer.weight]["exp_avg"][absent] == 0)


@pytest.mark.parametrize("optimizer", ["sgd_momentum_wd", "adam_wd", "adamw"])
def test_frozen_entries_are_bit_identical_under_any_optimizer(optimizer):
    torch.manual_seed(1)
    layer = MaskedLinear(12, 6)
    sparsify_(layer, 0.5)
    frozen = torch.zeros_like(layer.connection_mask)
    frozen[:3] = True
    frozen_bias = torch.tensor([True, True, True, False, False, False])
    # give the optimizer some momentum before freezing, like a persistent optimizer would
    make = {
        "sgd_momentum_wd": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
        "adam_wd": lambda p: torch.optim.Adam(p, lr=0.05, weight_decay=0.01),
        "adamw": lambda p: torch.optim.AdamW(p, lr=0.05, weight_decay=0.1),
    }[optimizer]
    opt = make(layer.parameters())
    for _ in range(3):
        opt.zero_grad()
        layer(torch.randn(4, 12)).sum().backward()
        opt.step()
        layer.enforce_masks_()
    layer.freeze_(frozen, frozen_bias)
    weight_before = layer.weight.detach().clone()
    bias_before = layer.bias.detach().clone()
    for _ in range(10):
        opt.zero_grad()
        layer(torch.randn(4, 12)).pow(2).sum().backward()
        layer.mask_gradients_()
        opt.step()
        layer.enforce_masks_()
    live_frozen = frozen & layer.connection_mask
    assert torch.equal(layer.weight[live_frozen], weight_before[live_frozen])
    assert torch.equal(layer.bias[frozen_bias], bias_before[frozen_bias])
    trainable = layer.connection_mask & ~frozen
    assert not torch.equal(layer.weight[trainable], weight_before[trainable])


def test_conv_connection_is_a_whole_kernel():
    torch.manual_seed(0)
    conv = MaskedConv2d(4, 6, 3, padding=1)
    sparsify_(conv, 0.5)
    assert conv.connection_mask.shape == (6, 4)
    assert conv.connection_size == 9
    kernels_nonzero = conv.weight.detach().abs().sum(dim=(2, 3)) != 0
    assert torch.equal(kernels_nonzero, conv.connection_mask)


def test_cannot_remove_frozen_connections_and_state_dict_round_trip():
    torch.manual_seed(0)
    layer = MaskedLinear(5, 4)
    sparsify_(layer, 0.6)
    layer.freeze_(layer.connection_mask.clone(), torch.ones(4, dtype=torch.bool))
    with pytest.raises(ValueError, match="frozen"):
        layer.set_connection_mask_(torch.zeros(4, 5, dtype=torch.bool))
    copy = MaskedLinear(5, 4)
    copy.load_state_dict(layer.state_dict())
    assert torch.equal(copy.connection_mask, layer.connection_mask)
    assert torch.equal(copy.frozen_connections, layer.frozen_connections)
    with torch.no_grad():
        copy.weight.add_(1.0)
        copy.bias.add_(1.0)
    copy.enforce_masks_()  # frozen values come from the loaded weights
    assert torch.equal(copy.weight, layer.weight)
    assert torch.equal(copy.bias, layer.bias)


def test_from_dense_keeps_weights_and_rejects_grouped_conv():
    dense = nn.Linear(3, 2)
    masked = MaskedLinear.from_dense(dense)
    assert torch.equal(masked.weight, dense.weight)
    with pytest.raises(ValueError, match="groups=1"):
        MaskedConv2d.from_dense(nn.Conv2d(4, 4, 3, groups=2))
