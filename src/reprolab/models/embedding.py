"""The embedding network of the metric-learning papers: backbone, pooling, linear embedding.

As the official Proxy-Anchor code builds it (code/net/bn_inception.py, code/net/resnet.py):
the backbone's last feature map is pooled by global average pooling *plus* global max pooling
(summed; the paper mentions only the average), a ``Linear(features, d)`` with kaiming-normal
(fan-out) weights and zero bias maps it to the embedding, and the embedding is L2-normalised.
The log-ratio paper's pose model uses average pooling only and no normalisation
(``pooling="avg", normalize=False``).

Options from the official training script:
- ``freeze_bn``: every BatchNorm stays in eval mode (running statistics frozen, also under
  ``model.train()``) and its affine parameters get no gradient (``--bn-freeze 1``).
- :meth:`EmbeddingModel.freeze_backbone`: the warm-up of ``--warm N`` epochs, when only the
  embedding layer (and the loss's proxies) are trained.

Pretrained weights are read from a local file (``weights=``); nothing is downloaded here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reprolab.models.backbones import create_backbone

POOLINGS = ("avg+max", "avg", "max")


class EmbeddingModel(nn.Module):
    """Backbone -> global pooling -> Linear(feature_dim, embedding_size) -> optional L2 norm."""

    def __init__(
        self,
        backbone: nn.Module,
        embedding_size: int,
        pooling: str = "avg+max",
        normalize: bool = True,
        freeze_bn: bool = False,
    ):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; expected one of {', '.join(POOLINGS)}")
        self.backbone = backbone
        self.pooling = pooling
        self.normalize = normalize
        self.freeze_bn = freeze_bn
        self.embedding = nn.Linear(backbone.feature_dim, embedding_size)
        nn.init.kaiming_normal_(self.embedding.weight, mode="fan_out")
        nn.init.zeros_(self.embedding.bias)
        if freeze_bn:
            for module in self.batch_norms():
                module.weight.requires_grad_(False)
                module.bias.requires_grad_(False)
            self.train(self.training)

    @property
    def embedding_size(self) -> int:
        return self.embedding.out_features

    @property
    def input_config(self) -> dict[str, Any]:
        return self.backbone.input_config

    def batch_norms(self) -> list[nn.modules.batchnorm._BatchNorm]:
        return [m for m in self.backbone.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    def train(self, mode: bool = True) -> EmbeddingModel:
        super().train(mode)
        if self.freeze_bn:  # frozen BN keeps its ImageNet statistics in training too
            for module in self.batch_norms():
                module.eval()
        return self

    def freeze_backbone(self, frozen: bool = True) -> None:
        """Warm-up: stop (or restart) gradients to the backbone; frozen BN affines stay frozen."""
        frozen_bn = {id(p) for m in self.batch_norms() for p in (m.weight, m.bias)} if self.freeze_bn else set()
        for param in self.backbone.parameters():
            if id(param) not in frozen_bn:
                param.requires_grad_(not frozen)

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        if self.pooling == "avg":
            return features.mean(dim=(2, 3))
        if self.pooling == "max":
            return features.amax(dim=(2, 3))
        return features.mean(dim=(2, 3)) + features.amax(dim=(2, 3))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.embedding(self.pool(self.backbone(images)))
        return F.normalize(x, dim=1) if self.normalize else x

    def head_parameters(self) -> list[nn.Parameter]:
        return list(self.embedding.parameters())


class EmbeddingWithLoss(nn.Module):
    """The embedding network and its loss in one module, so that the engine's optimizer, gradient
    clipping and checkpoints cover the loss's parameters (proxies) too, as the official code does.

    ``loss_lr_mult``: the learning-rate multiplier of the loss's parameter group (default: the
    loss's own ``lr_multiplier``, 100 for Proxy Anchor). ``steps_done`` counts optimisation steps,
    so a warm-up survives a resume (it is saved with the weights).
    """

    def __init__(self, net: EmbeddingModel, criterion: nn.Module, loss_lr_mult: float | None = None):
        super().__init__()
        self.net = net
        self.criterion = criterion
        self.loss_lr_mult = float(loss_lr_mult if loss_lr_mult is not None
                                  else getattr(criterion, "lr_multiplier", 1.0))
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


def build_embedding_model(
    backbone: str = "bn_inception",
    embedding_size: int = 512,
    pooling: str = "avg+max",
    normalize: bool = True,
    freeze_bn: bool = False,
    weights: str | Path | None = None,
) -> EmbeddingModel:
    """The embedding model of a recipe's ``model:`` block (weights: a local file path or None)."""
    return EmbeddingModel(create_backbone(backbone, weights), embedding_size, pooling, normalize,
                          freeze_bn)


def param_groups(model: EmbeddingModel, criterion: nn.Module, lr: float) -> list[dict[str, Any]]:
    """Optimizer groups of the official train.py: backbone at lr, embedding at lr, loss params
    (proxies) at lr x ``criterion.lr_multiplier`` (100 for Proxy Anchor, 1 for Proxy-NCA)."""
    head = {id(p) for p in model.head_parameters()}
    groups = [
        {"params": [p for p in model.parameters() if id(p) not in head], "lr": lr, "name": "backbone"},
        {"params": model.head_parameters(), "lr": lr, "name": "embedding"},
    ]
    loss_params = list(criterion.parameters())
    if loss_params:
        multiplier = float(getattr(criterion, "lr_multiplier", 1.0))
        groups.append({"params": loss_params, "lr": lr * multiplier, "name": "loss"})
    return groups
