"""Log-ratio loss and the dense triplet loss (Kim et al., "Deep Metric Learning Beyond Binary
Supervision", CVPR 2019).

Both act on one mined tuple per anchor: row 0 is the anchor and rows 1..m are its paired samples,
sorted by label distance to the anchor (nearest first), as :mod:`.dense_mining` builds them. Every
pair (i, j) with i < j gives one triplet (a, i, j), and all triplets are weighted uniformly:

    log-ratio:      ( log D(f_a, f_i) / D(f_a, f_j)  -  log D(y_a, y_i) / D(y_a, y_j) )^2
    dense triplet:  [ D(f_a, f_i)^2 - D(f_a, f_j)^2 + margin ]_+          (margin 0.03)

As in the official code (LogRatioLoss.py, Dense_TripletLoss.py, utils.L2dist): D is the plain,
non-squared Euclidean distance for the log-ratio loss (squared for the triplet), computed as
sqrt(sum (x - y)^2 + 1e-4 / dim); logs add 1e-6 to both embedding and label distances. The
log-ratio run does not L2-normalise the embeddings (no --is-norm); the triplet runs do.
"""

from __future__ import annotations

import torch
from torch import nn

LOG_EPS = 1e-6


def _as_batch(embeddings: torch.Tensor, label_distances: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Accept one tuple ((1+m, dim), (m,)) or a batch of them ((n, 1+m, dim), (n, m))."""
    if embeddings.ndim == 2:
        embeddings, label_distances = embeddings.unsqueeze(0), label_distances.unsqueeze(0)
    if embeddings.ndim != 3 or label_distances.ndim != 2:
        raise ValueError(
            "expected embeddings (1+m, dim) with label distances (m,), or a batch (n, 1+m, dim) "
            f"with (n, m); got {tuple(embeddings.shape)} and {tuple(label_distances.shape)}"
        )
    n, size, _ = embeddings.shape
    if size < 3 or label_distances.shape != (n, size - 1):
        raise ValueError(
            f"a tuple needs an anchor and at least 2 paired samples with one label distance each; "
            f"got embeddings {tuple(embeddings.shape)} and label distances {tuple(label_distances.shape)}"
        )
    return embeddings, label_distances.to(embeddings.dtype)


def anchor_distances(embeddings: torch.Tensor, squared: bool = False) -> torch.Tensor:
    """Euclidean distance from row 0 (the anchor) to rows 1.., with the official 1e-4/dim term."""
    anchor, paired = embeddings[:, :1], embeddings[:, 1:]
    eps = 1e-4 / embeddings.shape[-1]
    squared_distance = (anchor - paired).pow(2).sum(-1) + eps
    return squared_distance if squared else squared_distance.sqrt()


def _upper_pairs(m: int, device: torch.device) -> torch.Tensor:
    """Boolean (m, m) mask of the pairs i < j."""
    return torch.ones(m, m, dtype=torch.bool, device=device).triu(diagonal=1)


class LogRatioLoss(nn.Module):
    """Mean over all triplets (a, i, j), i < j, of the squared log-ratio difference."""

    def forward(self, embeddings: torch.Tensor, label_distances: torch.Tensor) -> torch.Tensor:
        embeddings, label_distances = _as_batch(embeddings, label_distances)
        log_d = torch.log(anchor_distances(embeddings) + LOG_EPS)
        log_y = torch.log(label_distances + LOG_EPS)
        # [n, i, j] = log D(a,i) - log D(a,j) - (log y_i - log y_j)
        diff = (log_d[:, :, None] - log_d[:, None, :]) - (log_y[:, :, None] - log_y[:, None, :])
        pairs = _upper_pairs(log_d.shape[1], log_d.device)
        return diff.pow(2)[:, pairs].mean()


class DenseTripletLoss(nn.Module):
    """Triplet loss over the densely mined triplets: the nearer-in-label sample must be closer."""

    def __init__(self, margin: float = 0.03):
        super().__init__()
        self.margin = margin

    def forward(self, embeddings: torch.Tensor, label_distances: torch.Tensor) -> torch.Tensor:
        embeddings, _ = _as_batch(embeddings, label_distances)
        d2 = anchor_distances(embeddings, squared=True)
        violation = (d2[:, :, None] - d2[:, None, :] + self.margin).clamp(min=0)
        pairs = _upper_pairs(d2.shape[1], d2.device)
        return violation[:, pairs].mean()
