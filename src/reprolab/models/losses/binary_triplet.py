"""Binary-label triplet baseline of "Deep Metric Learning Beyond Binary Supervision" (CVPR 2019).

Continuous labels are binarised per anchor: its 30 nearest neighbours in label space are positives
and all other samples negatives (mined by :class:`.dense_mining.TupleMiner` in ``binary`` mode).
Each batch is one anchor, ``num_positives`` (5) positives and negatives for the rest; every
(positive, negative) pair forms a triplet. As the official Naive_TripletLoss.py: squared Euclidean
distances (+1e-4/dim), margin 0.2, mean over all triplets, on L2-normalised embeddings (the README
command sets --is-norm).
"""

from __future__ import annotations

import torch
from torch import nn


class BinaryTripletLoss(nn.Module):
    def __init__(self, margin: float = 0.2, num_positives: int = 5):
        super().__init__()
        self.margin = margin
        self.num_positives = num_positives

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        """``embeddings``: (1 + num_positives + negatives, dim), anchor first, then positives."""
        if embeddings.ndim != 2 or embeddings.shape[0] < self.num_positives + 2:
            raise ValueError(
                f"expected (anchor + {self.num_positives} positives + >= 1 negative, dim) embeddings, "
                f"got {tuple(embeddings.shape)}"
            )
        eps = 1e-4 / embeddings.shape[1]
        d2 = (embeddings[1:] - embeddings[:1]).pow(2).sum(1) + eps
        positive, negative = d2[: self.num_positives], d2[self.num_positives :]
        return (positive[:, None] - negative[None, :] + self.margin).clamp(min=0).mean()
