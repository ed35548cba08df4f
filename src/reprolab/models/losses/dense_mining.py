"""Tuple mining for continuous labels (dense) and its binary-label baseline.

The official code (Beyond-Binary-Supervision-CVPR19, Dense_PairDataset.py / Naive_PairDataset.py)
builds one mini-batch per anchor from the anchor's neighbour list, all other training samples
sorted by label distance to the anchor (nearest first, the anchor itself left out):

- dense: the anchor, its ``num_nn`` (5) nearest neighbours, and ``tuple_size - num_nn - 1`` others
  drawn without replacement from the rest of the list, kept in label-distance order, so that in
  the batch "i < j" means D(y_a, y_i) <= D(y_a, y_j). Every anchor is one batch; an epoch visits
  every anchor once in a random order and draws new random samples.
- binary: the ``num_positive_neighbours`` (30) nearest are positives and the rest negatives; the
  batch is the anchor, ``num_positives`` (5) random positives and random negatives for the rest.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch


def neighbour_lists(label_distances: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """From an (n, n) matrix of label distances, every sample's others sorted by label distance.

    Returns ``(neighbours, distances)``, both (n, n - 1): row a lists the indices of all samples
    but a, nearest first (ties kept in index order), and their label distances to a. These are
    the official ``list_nn.pkl`` / ``dist_nn.pkl`` for a training set.
    """
    dist = np.asarray(label_distances, dtype=np.float64)
    n = dist.shape[0]
    if dist.ndim != 2 or dist.shape != (n, n) or n < 2:
        raise ValueError(f"expected a square (n, n) label-distance matrix with n >= 2, got {dist.shape}")
    masked = dist.copy()
    np.fill_diagonal(masked, np.inf)  # the anchor is never its own neighbour
    order = np.argsort(masked, axis=1, kind="stable")[:, : n - 1]
    return order, np.take_along_axis(dist, order, axis=1)


def dense_positions(num_others: int, num_nn: int, tuple_size: int, rng: np.random.Generator) -> np.ndarray:
    """Positions in a neighbour list: the first ``num_nn`` plus sorted random ones from the rest."""
    num_random = tuple_size - num_nn - 1
    if num_random < 0 or num_others < num_nn + num_random:
        raise ValueError(
            f"a dense tuple of {tuple_size} (anchor + {num_nn} nearest + random) needs at least "
            f"{tuple_size - 1} other samples; the set has {num_others}"
        )
    random = np.sort(rng.choice(num_others - num_nn, size=num_random, replace=False)) + num_nn
    return np.concatenate([np.arange(num_nn), random])


def binary_positions(
    num_others: int, num_positive_neighbours: int, num_positives: int, tuple_size: int, rng: np.random.Generator
) -> np.ndarray:
    """Positions in a neighbour list: ``num_positives`` random positives, then random negatives."""
    num_negatives = tuple_size - num_positives - 1
    if num_positives > num_positive_neighbours or num_negatives < 1 or (
        num_others - num_positive_neighbours < num_negatives
    ):
        raise ValueError(
            f"a binary tuple of {tuple_size} with {num_positives} of the {num_positive_neighbours} "
            f"nearest as positives needs more than {num_positive_neighbours + num_negatives} other "
            f"samples; the set has {num_others}"
        )
    positives = rng.choice(num_positive_neighbours, size=num_positives, replace=False)
    negatives = rng.choice(num_others - num_positive_neighbours, size=num_negatives, replace=False)
    return np.concatenate([positives, negatives + num_positive_neighbours])


@dataclass
class MinedTuple:
    """One training batch: sample indices (anchor first) and their label distances to the anchor."""

    indices: torch.Tensor  # (tuple_size,) int64, indices[0] is the anchor
    label_distances: torch.Tensor  # (tuple_size - 1,) float32, for indices[1:]


class TupleMiner:
    """Yields one :class:`MinedTuple` per anchor, in a new random order with new samples each epoch.

    Args:
        neighbours, distances: the output of :func:`neighbour_lists` (or the official pickles).
        mode: ``"dense"`` (log-ratio and dense triplet) or ``"binary"`` (binary triplet baseline).
        tuple_size: batch size of the official runs (150 in the README).
        num_nn: nearest neighbours always included (dense; 5 in the README).
        num_positive_neighbours, num_positives: binary baseline (30 and 5, hard-coded officially).
        seed: seed of the random draws; epoch ``e`` uses ``seed + e``.
    """

    def __init__(
        self,
        neighbours: np.ndarray,
        distances: np.ndarray,
        mode: str = "dense",
        tuple_size: int = 150,
        num_nn: int = 5,
        num_positive_neighbours: int = 30,
        num_positives: int = 5,
        seed: int = 0,
    ):
        if mode not in ("dense", "binary"):
            raise ValueError(f"unknown mining mode {mode!r}; expected 'dense' or 'binary'")
        self.neighbours = np.asarray(neighbours)
        self.distances = np.asarray(distances, dtype=np.float32)
        if self.neighbours.shape != self.distances.shape or self.neighbours.ndim != 2:
            raise ValueError(
                f"neighbours {self.neighbours.shape} and distances {self.distances.shape} must be "
                "matching (n, n - 1) arrays"
            )
        self.mode = mode
        self.tuple_size = tuple_size
        self.num_nn = num_nn
        self.num_positive_neighbours = num_positive_neighbours
        self.num_positives = num_positives
        self.seed = seed
        self.epoch = 0
        self._positions(np.random.default_rng(0))  # fail now, not mid-epoch, on a bad size

    def __len__(self) -> int:
        return self.neighbours.shape[0]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _positions(self, rng: np.random.Generator) -> np.ndarray:
        num_others = self.neighbours.shape[1]
        if self.mode == "dense":
            return dense_positions(num_others, self.num_nn, self.tuple_size, rng)
        return binary_positions(
            num_others, self.num_positive_neighbours, self.num_positives, self.tuple_size, rng
        )

    def tuple_for(self, anchor: int, rng: np.random.Generator) -> MinedTuple:
        positions = self._positions(rng)
        others = self.neighbours[anchor, positions]
        return MinedTuple(
            indices=torch.from_numpy(np.concatenate([[anchor], others]).astype(np.int64)),
            label_distances=torch.from_numpy(self.distances[anchor, positions].copy()),
        )

    def __iter__(self) -> Iterator[MinedTuple]:
        rng = np.random.default_rng(self.seed + self.epoch)
        for anchor in rng.permutation(len(self)):
            yield self.tuple_for(int(anchor), rng)
