"""Metric-learning losses: Proxy Anchor, log-ratio with dense triplet mining, and baselines.

``build_loss(name, ...)`` is the one factory recipes use (``model.loss`` in a recipe):

==================  =========================================  ===============================
name                loss                                       inputs
==================  =========================================  ===============================
proxy_anchor        :class:`ProxyAnchorLoss` (alpha 32, delta 0.1)  embeddings, class labels
proxy_nca           pytorch-metric-learning ProxyNCALoss        embeddings, class labels
multi_similarity    pytorch-metric-learning MS loss + miner     embeddings, class labels
triplet             pml TripletMarginLoss, semi-hard miner      embeddings, class labels
contrastive         pml ContrastiveLoss                         embeddings, class labels
log_ratio           :class:`LogRatioLoss`                       mined tuple, label distances
dense_triplet       :class:`DenseTripletLoss` (margin 0.03)     mined tuple, label distances
binary_triplet      :class:`BinaryTripletLoss` (margin 0.2)     mined tuple (anchor, pos, neg)
==================  =========================================  ===============================

A loss with learnable parameters (proxies) carries ``lr_multiplier``: the factor on the base
learning rate its parameter group gets (100 for Proxy Anchor, 1 for Proxy-NCA).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from reprolab.models.losses.baselines import BASELINES, MinedLoss, build_baseline
from reprolab.models.losses.binary_triplet import BinaryTripletLoss
from reprolab.models.losses.dense_mining import MinedTuple, TupleMiner, neighbour_lists
from reprolab.models.losses.log_ratio import DenseTripletLoss, LogRatioLoss
from reprolab.models.losses.proxy_anchor import PROXY_LR_MULTIPLIER, ProxyAnchorLoss

CLASS_LABEL_LOSSES = ("proxy_anchor", *BASELINES)
TUPLE_LOSSES = ("log_ratio", "dense_triplet", "binary_triplet")
LOSSES = (*CLASS_LABEL_LOSSES, *TUPLE_LOSSES)

__all__ = [
    "BASELINES",
    "CLASS_LABEL_LOSSES",
    "LOSSES",
    "PROXY_LR_MULTIPLIER",
    "TUPLE_LOSSES",
    "BinaryTripletLoss",
    "DenseTripletLoss",
    "LogRatioLoss",
    "MinedLoss",
    "MinedTuple",
    "ProxyAnchorLoss",
    "TupleMiner",
    "build_loss",
    "neighbour_lists",
]


def build_loss(
    name: str, num_classes: int | None = None, embedding_size: int | None = None, **options: Any
) -> nn.Module:
    """Build a loss by name; ``options`` are that loss's own keyword arguments (e.g. margin)."""
    if name == "proxy_anchor":
        if num_classes is None or embedding_size is None:
            raise ValueError("loss 'proxy_anchor' needs num_classes and embedding_size")
        return ProxyAnchorLoss(num_classes, embedding_size, **options)
    if name in BASELINES:
        if options:
            raise ValueError(
                f"loss {name!r} uses the official comparison settings; unexpected options {sorted(options)}"
            )
        return build_baseline(name, num_classes, embedding_size)
    if name == "log_ratio":
        return LogRatioLoss(**options)
    if name == "dense_triplet":
        return DenseTripletLoss(**options)
    if name == "binary_triplet":
        return BinaryTripletLoss(**options)
    raise ValueError(f"unknown loss {name!r}; expected one of {', '.join(LOSSES)}")
