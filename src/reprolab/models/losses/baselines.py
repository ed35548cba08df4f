"""The baselines the Proxy Anchor paper compares with, from pytorch-metric-learning.

The settings are those of the official ``code/losses.py`` wrappers (Proxy-Anchor-CVPR2020):
Proxy-NCA with softmax scale 32; Multi-Similarity (alpha 2, beta 50, base 0.5) with its miner
(epsilon 0.1); triplet with margin 0.1 on semi-hard triplets; contrastive with negative margin 0.5.
"""

from __future__ import annotations

import torch
from torch import nn

BASELINES = ("proxy_nca", "multi_similarity", "triplet", "contrastive")


class MinedLoss(nn.Module):
    """A pytorch-metric-learning loss applied to the tuples its miner selects in the batch."""

    def __init__(self, loss: nn.Module, miner: nn.Module | None = None):
        super().__init__()
        self.loss = loss
        self.miner = miner

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        tuples = self.miner(embeddings, labels) if self.miner is not None else None
        return self.loss(embeddings, labels, tuples)


def build_baseline(name: str, num_classes: int | None = None, embedding_size: int | None = None) -> MinedLoss:
    """One of :data:`BASELINES`, configured as the official comparison code configures it.

    Proxy-NCA has learnable proxies (``loss.parameters()``); the official code trains them at the
    base learning rate (multiplier 1), unlike Proxy Anchor's 100.
    """
    from pytorch_metric_learning import losses, miners  # heavy import, only when asked for

    if name == "proxy_nca":
        if num_classes is None or embedding_size is None:
            raise ValueError("loss 'proxy_nca' needs num_classes and embedding_size")
        module = MinedLoss(losses.ProxyNCALoss(num_classes, embedding_size, softmax_scale=32))
        module.lr_multiplier = 1.0
        return module
    if name == "multi_similarity":
        return MinedLoss(losses.MultiSimilarityLoss(alpha=2, beta=50, base=0.5),
                         miners.MultiSimilarityMiner(epsilon=0.1))
    if name == "triplet":
        return MinedLoss(losses.TripletMarginLoss(margin=0.1),
                         miners.TripletMarginMiner(margin=0.1, type_of_triplets="semihard"))
    if name == "contrastive":
        return MinedLoss(losses.ContrastiveLoss(neg_margin=0.5))
    raise ValueError(f"unknown baseline loss {name!r}; expected one of {', '.join(BASELINES)}")
