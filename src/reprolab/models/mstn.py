"""The pieces of MSTN (moving semantic transfer) as the DSBN code trains it, and the classifier.

Official code: wgchang/DSBN@e0cd4bf (trainval_multi.py, finetune_multi.py, model/centroids.py,
discriminator/discriminator.py, utils/train_utils.py). With `--in-features 0` (the default) the
feature fed to the discriminator and to the centroids is the logit vector itself.

- `adaptation_factor(p)`: lambda = 2 / (1 + exp(-gamma p)) - 1, p clipped to [0, 1];
- `grad_reverse`: identity forward, -1 x gradient backward. The official code freezes the
  discriminator, adds -lambda x adversarial loss for the network, then trains the discriminator on
  detached features with +lambda x the same loss: the same gradients as one pass through a
  gradient-reversal layer (see reproductions/dsbn/NOTES.md);
- `DomainDiscriminator`: OfficeDiscriminator (Linear in -> 1024 -> 1024 -> 1, ReLU + Dropout);
- `MovingCentroids`: per-class centroids, new = decay x batch mean + (1 - decay) x old for the
  classes in the batch, the old centroid for the others (decay 0.3);
- `ensemble_pseudo_labels`: argmax of (1 - lambda) teacher + lambda student logits (stage 2);
- `DomainAdaptationNet`: backbone (optionally DSBN) -> global average pooling -> `fc`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from reprolab.models.dsbn import convert_to_dsbn, dsbn_layers, set_domain


def adaptation_factor(p: float, gamma: float = 10.0) -> float:
    """utils/train_utils.py:adaptation_factor."""
    p = max(min(p, 1.0), 0.0)
    return min(2.0 / (1.0 + math.exp(-gamma * p)) - 1.0, 1.0)


class _GradientReversal(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -grad


def grad_reverse(x: torch.Tensor) -> torch.Tensor:
    return _GradientReversal.apply(x)


class DomainDiscriminator(nn.Module):
    """discriminator/discriminator.py:OfficeDiscriminator, with its initialisation."""

    def __init__(self, in_features: int, hidden: int = 1024):
        super().__init__()
        self.discriminator = nn.Sequential(
            nn.Linear(in_features, hidden), nn.ReLU(), nn.Dropout(),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(),
            nn.Linear(hidden, 1))
        for layer in self.discriminator:
            if isinstance(layer, nn.Linear):  # init_weights: N(0, 0.01) clamped to +-0.02
                layer.weight.data.normal_(0, 0.01).clamp_(min=-0.02, max=0.02)
                layer.bias.data.zero_()
        last = self.discriminator[6]
        last.weight.data.normal_(0, 0.3).clamp_(min=-0.6, max=0.6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.discriminator(x)


def domain_adversarial_loss(discriminator: nn.Module, source: torch.Tensor, target: torch.Tensor,
                            factor: float = 0.1) -> torch.Tensor:
    """factor x (BCE(D(source), 0) + BCE(D(target), 1)) / 2, through gradient reversal: the
    discriminator minimises it and the network maximises it (trainval_multi.py, lines 390-410)."""
    d_source = discriminator(grad_reverse(source))
    d_target = discriminator(grad_reverse(target))
    return factor * (F.binary_cross_entropy_with_logits(d_source, torch.zeros_like(d_source)) / 2
                     + F.binary_cross_entropy_with_logits(d_target, torch.ones_like(d_target)) / 2)


class MovingCentroids(nn.Module):
    """model/centroids.py:Centroids. `forward` returns the moved centroids (differentiable through
    the features); `store` keeps them for the next step, as the official loop does after its step."""

    def __init__(self, feature_dim: int, num_classes: int, decay: float = 0.3):
        super().__init__()
        self.decay = decay
        self.num_classes = num_classes
        self.register_buffer("centroids", torch.zeros(num_classes, feature_dim))

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        one_hot = F.one_hot(labels, self.num_classes).to(features.dtype)   # B x C
        counts = one_hot.sum(0)                                             # C
        means = (one_hot.t() @ features) / counts.clamp(min=1).unsqueeze(1)
        present = (counts > 0).unsqueeze(1)
        old = self.centroids.to(features.dtype)
        return torch.where(present, self.decay * means + (1 - self.decay) * old, old)

    @torch.no_grad()
    def store(self, centroids: torch.Tensor) -> None:
        self.centroids.copy_(centroids.detach())


def semantic_loss(source_centroids: torch.Tensor, target_centroids: torch.Tensor) -> torch.Tensor:
    """utils/train_utils.py:semantic_loss_calc: mean squared difference."""
    return ((source_centroids - target_centroids) ** 2).mean()


def ensemble_logits(teacher: torch.Tensor, student: torch.Tensor, lam: float) -> torch.Tensor:
    """finetune_multi.py `default_ensemble`: (1 - lambda) teacher + lambda student logits."""
    return teacher * (1 - lam) + student * lam


def ensemble_pseudo_labels(teacher: torch.Tensor, student: torch.Tensor, lam: float,
                           threshold: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(pseudo labels, kept mask): argmax of the ensembled logits; a sample is kept when its top
    softmax score reaches `threshold` (--pseudo-target-threshold, default 0: all kept)."""
    score, label = F.softmax(ensemble_logits(teacher, student, lam), dim=1).max(dim=1)
    return label, score >= threshold


class DomainAdaptationNet(nn.Module):
    """Backbone -> global average pooling -> `fc` (the official DSBNResNet with in_features 0).

    With `dsbn`, every BatchNorm2d of the backbone has one branch per domain (sources first, then
    targets) and `forward(x, domain)` chooses the branch; without it `domain` is ignored (the
    shared-BN "MSTN reproduced" baseline)."""

    def __init__(self, backbone: nn.Module, feature_dim: int, num_classes: int, num_domains: int,
                 dsbn: bool = True):
        super().__init__()
        self.backbone = convert_to_dsbn(backbone, num_domains) if dsbn else backbone
        self.dsbn = dsbn
        self.num_domains = num_domains
        self.fc = nn.Linear(feature_dim, num_classes)
        self.fc.weight.data.normal_(0, 0.01)  # the official Linear initialisation
        self.fc.bias.data.zero_()

    def forward(self, x: torch.Tensor, domain: int | torch.Tensor | None = None) -> torch.Tensor:
        if self.dsbn:
            if domain is None:
                raise ValueError("DomainAdaptationNet with DSBN: give the batch's domain, model(x, domain=d)")
            set_domain(self.backbone, domain)
        return self.fc(self.backbone(x).mean(dim=(2, 3)))

    def head_parameters(self) -> list[nn.Parameter]:
        return list(self.fc.parameters())

    def domain_layers(self):
        return dsbn_layers(self.backbone)
