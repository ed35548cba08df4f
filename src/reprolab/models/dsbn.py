"""Domain-specific batch normalization (DSBN, Chang et al., CVPR 2019, arXiv 1906.03950).

Every BatchNorm of a network gets one branch per domain, each with its own affine parameters
(gamma, beta) and running statistics; every other weight is shared. A forward pass normalises
with one domain's branch, chosen per call, as the official `DomainSpecificBatchNorm2d`
(wgchang/DSBN@e0cd4bf:model/dsbn.py, which picks `bns[domain_label[0]]`). The branches are an
`nn.ModuleList` named `bns`, so state-dict keys read as the official ones (`bn1.bns.0.weight`).

- `DomainSpecificBatchNorm2d(num_features, num_domains)`: the layer;
- `convert_to_dsbn(module, num_domains)`: replace every `nn.BatchNorm2d` of a torchvision or timm
  network in place, copying its (ImageNet) parameters and statistics into every branch, as the
  official `_update_initial_weights_dsbn` does with the pretrained state dict;
- `set_domain(module, domain)` / `use_domain(module, domain)`: choose the branch of every layer.

A batch holds one domain. A per-sample domain tensor with several values is rejected: the
official layer silently normalised the whole batch with the first sample's domain (issue #10).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


class MixedDomainBatchError(ValueError):
    """A batch holds samples of several domains; DSBN normalises one domain at a time."""


class DomainSpecificBatchNorm2d(nn.Module):
    """`num_domains` BatchNorm2d branches; `forward(x, domain)` normalises with one of them."""

    def __init__(self, num_features: int, num_domains: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True):
        super().__init__()
        if num_domains < 1:
            raise ValueError(f"DomainSpecificBatchNorm2d: num_domains must be >= 1, got {num_domains}")
        self.num_features = num_features
        self.num_domains = num_domains
        self.bns = nn.ModuleList(
            nn.BatchNorm2d(num_features, eps, momentum, affine, track_running_stats) for _ in range(num_domains))
        self.domain: int | None = None  # set by set_domain / use_domain, or given per call

    def _domain_index(self, domain: int | torch.Tensor | None) -> int:
        if domain is None:
            domain = self.domain
        if domain is None:
            raise ValueError("DomainSpecificBatchNorm2d: no domain chosen; call model(x, domain=d), "
                             "reprolab.models.dsbn.set_domain(model, d) or use_domain(model, d)")
        if isinstance(domain, torch.Tensor):
            values = torch.unique(domain.reshape(-1))
            if values.numel() != 1:
                raise MixedDomainBatchError(
                    f"a batch mixes domains {values.tolist()}: domain-specific batch norm normalises "
                    "one domain per forward pass; forward each domain's samples separately")
            domain = int(values.item())
        domain = int(domain)
        if not 0 <= domain < self.num_domains:
            raise IndexError(f"domain {domain} out of range: this layer has {self.num_domains} domains "
                             f"(0..{self.num_domains - 1}; sources first, then targets)")
        return domain

    def forward(self, x: torch.Tensor, domain: int | torch.Tensor | None = None) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"expected 4D input (got {x.dim()}D input)")
        return self.bns[self._domain_index(domain)](x)

    def extra_repr(self) -> str:
        return f"{self.num_features}, num_domains={self.num_domains}"


def _branches_from(bn: nn.BatchNorm2d, num_domains: int) -> DomainSpecificBatchNorm2d:
    dsbn = DomainSpecificBatchNorm2d(bn.num_features, num_domains, bn.eps, bn.momentum, bn.affine,
                                     bn.track_running_stats)
    dsbn = dsbn.to(device=bn.weight.device if bn.affine else None)
    state = bn.state_dict()
    for branch in dsbn.bns:
        branch.load_state_dict({k: v.clone() for k, v in state.items()})
        branch.train(bn.training)
    dsbn.train(bn.training)
    return dsbn


def convert_to_dsbn(module: nn.Module, num_domains: int) -> nn.Module:
    """Replace every `nn.BatchNorm2d` in `module` (in place) by a DomainSpecificBatchNorm2d whose
    branches all start as copies of it; returns `module` (or the new layer when `module` is a BN)."""
    if isinstance(module, nn.BatchNorm2d):
        return _branches_from(module, num_domains)
    for name, child in list(module.named_children()):
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, _branches_from(child, num_domains))
        else:
            convert_to_dsbn(child, num_domains)
    return module


def dsbn_layers(module: nn.Module) -> list[DomainSpecificBatchNorm2d]:
    return [m for m in module.modules() if isinstance(m, DomainSpecificBatchNorm2d)]


def set_domain(module: nn.Module, domain: int | None) -> None:
    """Make every DSBN layer of `module` use branch `domain` (None: none chosen)."""
    for layer in dsbn_layers(module):
        layer.domain = None if domain is None else layer._domain_index(domain)


@contextmanager
def use_domain(module: nn.Module, domain: int) -> Iterator[nn.Module]:
    """`with use_domain(net, 1): net(x)`: branch `domain` inside the block, the previous after."""
    layers = dsbn_layers(module)
    before = [layer.domain for layer in layers]
    set_domain(module, domain)
    try:
        yield module
    finally:
        for layer, previous in zip(layers, before, strict=True):
            layer.domain = previous


__all__ = ["DomainSpecificBatchNorm2d", "MixedDomainBatchError", "convert_to_dsbn", "dsbn_layers",
           "set_domain", "use_domain"]
