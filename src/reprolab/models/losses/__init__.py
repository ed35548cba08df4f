"""Metric-learning losses: Proxy Anchor, log-ratio with dense triplet mining, and baselines.

``build_loss(name, ...)`` is the one factory recipes use (``model.loss`` in a recipe); each name
is a function registered in ``LOSSES`` below:

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

from reprolab.catalog import Catalog
from reprolab.models.losses.baselines import BASELINES, MinedLoss, build_baseline
from reprolab.models.losses.binary_triplet import BinaryTripletLoss
from reprolab.models.losses.dense_mining import MinedTuple, TupleMiner, neighbour_lists
from reprolab.models.losses.log_ratio import DenseTripletLoss, LogRatioLoss
from reprolab.models.losses.proxy_anchor import PROXY_LR_MULTIPLIER, ProxyAnchorLoss

CLASS_LABEL_LOSSES = ("proxy_anchor", *BASELINES)
TUPLE_LOSSES = ("log_ratio", "dense_triplet", "binary_triplet")

__all__ = [
    "BASELINES",
    "LOSSES",
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
    "list_losses",
    "neighbour_lists",
]


LOSSES: Catalog = Catalog("loss")


def _no_options(name: str, options: dict[str, Any]) -> None:
    if options:
        raise ValueError(f"loss {name!r} uses the official comparison settings; unexpected options {sorted(options)}")


@LOSSES.register
def proxy_anchor(num_classes: int | None = None, embedding_size: int | None = None, **options: Any) -> nn.Module:
    if num_classes is None or embedding_size is None:
        raise ValueError("loss 'proxy_anchor' needs num_classes and embedding_size")
    return ProxyAnchorLoss(num_classes, embedding_size, **options)


@LOSSES.register
def proxy_nca(num_classes: int | None = None, embedding_size: int | None = None, **options: Any) -> nn.Module:
    _no_options("proxy_nca", options)
    return build_baseline("proxy_nca", num_classes, embedding_size)


@LOSSES.register
def multi_similarity(num_classes: int | None = None, embedding_size: int | None = None, **options: Any) -> nn.Module:
    _no_options("multi_similarity", options)
    return build_baseline("multi_similarity")


@LOSSES.register
def triplet(num_classes: int | None = None, embedding_size: int | None = None, **options: Any) -> nn.Module:
    _no_options("triplet", options)
    return build_baseline("triplet")


@LOSSES.register
def contrastive(num_classes: int | None = None, embedding_size: int | None = None, **options: Any) -> nn.Module:
    _no_options("contrastive", options)
    return build_baseline("contrastive")


@LOSSES.register
def log_ratio(num_classes: int | None = None, embedding_size: int | None = None, **options: Any) -> nn.Module:
    return LogRatioLoss(**options)


@LOSSES.register
def dense_triplet(num_classes: int | None = None, embedding_size: int | None = None, **options: Any) -> nn.Module:
    return DenseTripletLoss(**options)


@LOSSES.register
def binary_triplet(num_classes: int | None = None, embedding_size: int | None = None, **options: Any) -> nn.Module:
    return BinaryTripletLoss(**options)


def build_loss(
    name: str, num_classes: int | None = None, embedding_size: int | None = None, **options: Any
) -> nn.Module:
    """Build a loss by name; ``options`` are that loss's own keyword arguments (e.g. margin)."""
    return LOSSES.get(name)(num_classes=num_classes, embedding_size=embedding_size, **options)


def list_losses() -> list[str]:
    return LOSSES.names()
