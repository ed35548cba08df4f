"""Images of prepared splits for retrieval: decoded, transformed, with their labels and a query flag."""

from __future__ import annotations

import io
from typing import Any

import torch
from PIL import Image
from torch.utils.data import Dataset


class ImageRetrievalDataset(Dataset):
    """Decoded, transformed images of a prepared split with their labels (and a query flag)."""

    def __init__(self, parts: list[tuple[Any, bool]], transform, label_map: dict[int, int] | None = None):
        self.parts = parts  # [(PreparedSplit, is_query), ...] concatenated in order
        self.transform = transform
        self.label_map = label_map
        self.offsets = [0]
        for split, _ in parts:
            self.offsets.append(self.offsets[-1] + len(split))

    def __len__(self) -> int:
        return self.offsets[-1]

    def __getitem__(self, item: int | tuple[int, int]) -> dict[str, Any]:
        index, seed = item if isinstance(item, tuple) else (item, 0)
        part = max(i for i, start in enumerate(self.offsets[:-1]) if index >= start)
        split, is_query = self.parts[part]
        sample = split[index - self.offsets[part]]
        image = Image.open(io.BytesIO(sample.frames[0])).convert("RGB")
        with torch.random.fork_rng(devices=[]):  # augmentation drawn from the sample seed only
            torch.manual_seed(seed)
            pixels = self.transform(image)
        label = self.label_map[sample.label] if self.label_map is not None else sample.label
        return {"image": pixels, "label": label, "is_query": int(is_query)}
