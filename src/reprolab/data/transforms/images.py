"""Image transforms of the metric-learning papers: the official crops and pixel conventions.

- ``input_transform``: Proxy Anchor's RandomResizedCrop + flip (train) or Resize + CenterCrop
  (eval), then the backbone's pixel convention (its weights' ``input_config``).
- ``PoseCrop``, ``PixelConvention``: the log-ratio code's RandTranslation / CenterTranslation and
  its (scale * x[channel_order] - mean) / std convention.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn


class RGBToBGR(nn.Module):
    """Reverse the channel axis of a (..., 3, H, W) image (the Caffe weights expect BGR)."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return image.flip(-3)


def input_transform(input_config: dict[str, Any], train: bool, crop: int = 224, resize: int = 256):
    """The official image transform: RandomResizedCrop + flip (train) or Resize + CenterCrop (eval),
    then the backbone's convention (BN-Inception: BGR in [0, 255] minus the mean; ResNet: ImageNet
    mean/std). The 256x256 (dagger) rows use ``crop=256, resize=292`` (code/dataset/utils.py)."""
    from torchvision.transforms import v2

    geometry = (
        [v2.RandomResizedCrop(crop, antialias=True), v2.RandomHorizontalFlip()]
        if train
        else [v2.Resize(resize, antialias=True), v2.CenterCrop(crop)]
    )
    scale = float(input_config["scale"])
    mean = [m / scale for m in input_config["mean"]]
    std = [s / scale for s in input_config["std"]]
    steps = [v2.ToImage(), *geometry, v2.ToDtype(torch.float32, scale=True)]
    if input_config["channel_order"] == "BGR":
        steps.append(RGBToBGR())
    # (x - mean/scale) / (std/scale) == (scale * x - mean) / std
    steps.append(v2.Normalize(mean=mean, std=std))
    return v2.Compose(steps)


class PoseCrop:
    """The official RandTranslation(canvas, crop) (train) and CenterTranslation (eval).

    A crop-sized window at the fixed offset ``(canvas - crop) // 2 + 1`` (33 for 288/224, the
    official hard-coded value), grown or shrunk by up to ceil(scale_jitter x crop) pixels per side
    and shifted by up to ceil(translate_jitter x crop), then resized to crop x crop (Scale(224)).
    An image that is not canvas-sized is first resized to the canvas (the authors' crops are).
    """

    def __init__(self, canvas: int, crop: int, scale_jitter: float = 0.0, translate_jitter: float = 0.0):
        if not 0 < crop < canvas:
            raise ValueError(f"data geometry: crop {crop} must be smaller than canvas {canvas}")
        self.canvas, self.crop = canvas, crop
        self.offset = (canvas - crop) // 2 + 1
        self.scale_max = math.ceil(scale_jitter * crop)
        self.shift_max = math.ceil(translate_jitter * crop)

    def __call__(self, image: Image.Image, rng: np.random.Generator | None = None) -> Image.Image:
        if image.size != (self.canvas, self.canvas):
            image = image.resize((self.canvas, self.canvas), Image.BILINEAR)
        lo, hi = self.offset, self.offset + self.crop
        box = [lo, lo, hi, hi]
        if rng is not None:
            grow = math.ceil(rng.uniform(-self.scale_max, self.scale_max))
            box = [lo - grow, lo - grow, hi + grow, hi + grow]
            for axis in (0, 1):
                low = max(1 - box[axis], -self.shift_max)
                high = min(self.canvas - box[axis + 2], self.shift_max)
                shift = math.ceil(rng.uniform(low, high))
                box[axis] += shift
                box[axis + 2] += shift
        window = image.crop(tuple(box))
        if window.size != (self.crop, self.crop):
            window = window.resize((self.crop, self.crop), Image.BILINEAR)
        return window


class PixelConvention:
    """PIL RGB -> float tensor in the recipe's convention: (scale * x[channel_order] - mean) / std."""

    def __init__(self, channel_order: str = "RGB", scale: float = 255.0,
                 mean: tuple[float, ...] = (0.0, 0.0, 0.0), std: tuple[float, ...] = (1.0, 1.0, 1.0)):
        self.bgr = channel_order.upper() == "BGR"
        self.scale = float(scale)
        self.mean = torch.tensor([float(m) for m in mean]).view(3, 1, 1)
        self.std = torch.tensor([float(s) for s in std]).view(3, 1, 1)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        pixels = torch.from_numpy(np.asarray(image, dtype=np.float32).copy()).permute(2, 0, 1) / 255.0
        if self.bgr:
            pixels = pixels.flip(0)
        return (pixels * self.scale - self.mean) / self.std
