"""The DSBN layer, the ResNet converter and domain switching."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from reprolab.models.backbones import create_backbone
from reprolab.models.dsbn import (
    DomainSpecificBatchNorm2d,
    MixedDomainBatchError,
    convert_to_dsbn,
    dsbn_layers,
    set_domain,
    use_domain,
)
from reprolab.models.mstn import DomainAdaptationNet


def _randomised_resnet50_state() -> dict[str, torch.Tensor]:
    """A ResNet-50 state dict whose BN parameters and statistics are all distinct (as ImageNet
    weights are), so a branch copied from the wrong layer would show."""
    generator = torch.Generator().manual_seed(0)
    state = torchvision.models.resnet50(weights=None).state_dict()
    for key, value in state.items():
        if value.is_floating_point():
            state[key] = torch.rand(value.shape, generator=generator) + 0.5
        elif key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7)
    return state


def test_converter_copies_every_bn_into_every_branch():
    state = _randomised_resnet50_state()
    net = torchvision.models.resnet50(weights=None)
    net.load_state_dict(state)
    bn_names = [name for name, m in net.named_modules() if isinstance(m, nn.BatchNorm2d)]
    convert_to_dsbn(net, num_domains=3)
    converted = dict(net.named_modules())
    assert len(bn_names) == 53
    assert all(name.split(".")[-2] == "bns" for name, m in net.named_modules() if isinstance(m, nn.BatchNorm2d))
    new_state = net.state_dict()
    for name in bn_names:
        assert isinstance(converted[name], DomainSpecificBatchNorm2d)
        for d in range(3):
            for field in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
                assert torch.equal(new_state[f"{name}.bns.{d}.{field}"], state[f"{name}.{field}"]), (name, d, field)
    # every other weight is shared and unchanged (conv, fc)
    for key, value in state.items():
        if key in new_state:
            assert torch.equal(new_state[key], value)
    assert "layer1.0.downsample.1.bns.2.running_var" in new_state  # the official key names


def test_converted_branches_start_identical_then_diverge():
    torch.manual_seed(0)
    net = DomainAdaptationNet(create_backbone("resnet10_tiny"), 512, 4, num_domains=2)
    net.eval()
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(net(x, 0), net(x, 1))  # identical branches
    net.train()
    net(torch.randn(4, 3, 32, 32) * 3 + 2, 1)  # a target-domain batch: only branch 1's stats move
    net.eval()
    assert not torch.allclose(net(x, 0), net(x, 1))
    layer = net.domain_layers()[0]
    assert torch.equal(layer.bns[0].running_mean, torch.zeros(64))
    assert not torch.equal(layer.bns[1].running_mean, torch.zeros(64))
    with pytest.raises(ValueError, match="give the batch's domain"):
        net(x)


def test_domain_switching_and_errors():
    layer = DomainSpecificBatchNorm2d(3, 2).eval()
    with torch.no_grad():
        layer.bns[1].bias.fill_(5.0)
    x = torch.randn(2, 3, 4, 4)
    with pytest.raises(ValueError, match="no domain chosen"):
        layer(x)
    assert torch.allclose(layer(x, 1) - layer(x, 0), torch.full_like(x, 5.0))
    with use_domain(layer, 1):
        assert torch.equal(layer(x), layer(x, 1))
    assert layer.domain is None
    set_domain(layer, 0)
    assert torch.equal(layer(x), layer(x, 0))
    assert torch.equal(layer(x, torch.tensor([1, 1])), layer(x, 1))
    with pytest.raises(MixedDomainBatchError, match=r"mixes domains \[0, 1\]"):
        layer(x, torch.tensor([0, 1]))
    with pytest.raises(IndexError, match="2 domains"):
        layer(x, 2)
    with pytest.raises(ValueError, match="4D"):
        layer(torch.randn(2, 3))
    assert dsbn_layers(nn.Sequential(layer)) == [layer]
