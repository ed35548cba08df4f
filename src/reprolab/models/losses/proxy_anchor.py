"""Proxy Anchor loss (Kim et al., CVPR 2020, Eq. 4).

Each class has one learnable proxy. Every proxy acts as an anchor and pulls the embeddings of its
class (positive term, averaged over proxies with positives in the batch) and pushes every other
embedding away (negative term, averaged over all proxies):

    l = 1/|P+| sum_{p in P+} log(1 + sum_{x in X+_p} exp(-alpha (s(x, p) - delta)))
      + 1/|P|  sum_{p in P}  log(1 + sum_{x in X-_p} exp( alpha (s(x, p) + delta)))

with s the cosine similarity. log(1 + sum exp) is computed stably as a log-sum-exp with an extra
zero logit; the official code evaluates it with plain exp/log, which gives the same values where
it does not overflow.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# The official train.py gives the proxies 100x the base learning rate (param group of the loss).
PROXY_LR_MULTIPLIER = 100.0


def _log1p_sum_exp(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """log(1 + sum_i exp(logits_i)) over dim 0, counting only entries where mask is true."""
    masked = logits.masked_fill(~mask, float("-inf"))
    zero = torch.zeros_like(masked[:1])
    return torch.logsumexp(torch.cat([zero, masked], dim=0), dim=0)


class ProxyAnchorLoss(nn.Module):
    """Proxy Anchor loss with one proxy per class.

    Args:
        num_classes: number of training classes (one proxy each).
        embedding_size: dimension of the embeddings and proxies.
        margin: delta of the paper (0.1 in every experiment).
        alpha: scaling factor of the paper (32 in every experiment).

    Attributes:
        proxies: (num_classes, embedding_size) parameter, initialised as the official code does:
            ``randn`` then ``kaiming_normal_(mode="fan_out")`` (std sqrt(2 / num_classes)).
        lr_multiplier: learning-rate multiplier for the proxies' parameter group (100, train.py).
    """

    lr_multiplier = PROXY_LR_MULTIPLIER

    def __init__(self, num_classes: int, embedding_size: int, margin: float = 0.1, alpha: float = 32.0):
        super().__init__()
        if num_classes < 1 or embedding_size < 1:
            raise ValueError(
                f"ProxyAnchorLoss needs num_classes >= 1 and embedding_size >= 1, "
                f"got {num_classes} and {embedding_size}"
            )
        self.num_classes = num_classes
        self.embedding_size = embedding_size
        self.margin = margin
        self.alpha = alpha
        self.proxies = nn.Parameter(torch.randn(num_classes, embedding_size))
        nn.init.kaiming_normal_(self.proxies, mode="fan_out")

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if embeddings.ndim != 2 or embeddings.shape[1] != self.embedding_size:
            raise ValueError(
                f"expected embeddings of shape (batch, {self.embedding_size}), got {tuple(embeddings.shape)}"
            )
        labels = labels.long()
        if labels.numel() and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(
                f"labels must lie in [0, {self.num_classes}); got range "
                f"[{int(labels.min())}, {int(labels.max())}]"
            )
        proxies = self.proxies.to(embeddings.dtype)
        cos = F.normalize(embeddings, dim=1) @ F.normalize(proxies, dim=1).T  # (batch, classes)
        positive = F.one_hot(labels, self.num_classes).bool()

        pos_term = _log1p_sum_exp(-self.alpha * (cos - self.margin), positive)
        neg_term = _log1p_sum_exp(self.alpha * (cos + self.margin), ~positive)
        num_with_positives = positive.any(dim=0).sum().clamp(min=1)
        return pos_term.sum() / num_with_positives + neg_term.sum() / self.num_classes

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, embedding_size={self.embedding_size}, "
            f"margin={self.margin}, alpha={self.alpha}"
        )
