"""Datasets of the log-ratio task: mined tuples for training, images with roles for evaluation.

As the official code (Beyond-Binary-Supervision-CVPR19, Dense_PairDataset.py /
Naive_PairDataset.py): one item is an anchor and its others from its list of training images by
rising label distance, chosen by dense or binary positions; every image gets its own random crop,
one horizontal flip for the whole tuple.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from reprolab.data.label_spaces import LabelSpace, check_list_order
from reprolab.data.transforms.images import PixelConvention, PoseCrop

ROLE_CODES = {"database": 0, "query": 1, None: 2}  # None: no role column, leave-one-out


def _decode(sample) -> Image.Image:
    return Image.open(io.BytesIO(sample.frames[0])).convert("RGB")


class MinedTupleDataset(Dataset):
    """Item ``(anchor, seed)``: the anchor's mined tuple, images (T, 3, H, W) and label distances."""

    def __init__(self, split, labels: LabelSpace, crop: PoseCrop, pixels: PixelConvention, *,
                 positions: Callable[..., np.ndarray], tuple_flip: bool = True):
        """``positions(num_others, rng=rng)``: which places of the anchor's neighbour list form
        its tuple (the mining rule: reprolab.models.losses.dense_mining)."""
        self.split, self.labels, self.crop, self.pixels = split, labels, crop, pixels
        self.choose, self.tuple_flip = positions, tuple_flip
        try:  # fail now, not mid-epoch, on a tuple the split cannot fill
            self.positions(np.random.default_rng(0))
        except ValueError as error:
            raise ValueError(f"model.mining on {split!r}: {error}") from None

    def __len__(self) -> int:
        return len(self.split)

    def positions(self, rng: np.random.Generator) -> np.ndarray:
        return self.choose(len(self.split) - 1, rng=rng)

    def image(self, index: int, rng: np.random.Generator) -> torch.Tensor:
        sample = self.split[index]
        check_list_order(sample, index, self.split)
        return self.pixels(self.crop(_decode(sample), rng))

    def __getitem__(self, item: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        anchor, seed = item if isinstance(item, tuple) else (item, 0)
        rng = np.random.default_rng([seed, anchor])  # mining and augmentation from the seed only
        anchor_image = self.image(anchor, rng)
        neighbours, distances = self.labels.sorted_neighbours(anchor)
        chosen = self.positions(rng)
        images = [anchor_image] + [self.image(int(i), rng) for i in neighbours[chosen]]
        stacked = torch.stack(images)
        if self.tuple_flip and rng.random() > 0.5:
            stacked = stacked.flip(-1)
        return {"images": stacked, "label_distances": torch.from_numpy(distances[chosen].astype(np.float32))}


class EvalImages(Dataset):
    """Eval images (fixed crop) with their index and role code (ROLE_CODES: database, query, or
    neither when the split has no `role` column and every image queries the others)."""

    def __init__(self, split, crop: PoseCrop, pixels: PixelConvention):
        self.split, self.crop, self.pixels = split, crop, pixels

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, item: int | tuple[int, int]) -> dict[str, Any]:
        index = item[0] if isinstance(item, tuple) else item
        sample = self.split[index]
        check_list_order(sample, index, self.split)
        role = sample.extra.get("role")
        if role not in ROLE_CODES:
            raise ValueError(f"{self.split!r}: sample {sample.id} has role {role!r}; expected query "
                             "or database (prepare the dataset again)")
        return {"image": self.pixels(self.crop(_decode(sample))), "index": index,
                "role": ROLE_CODES[role]}
