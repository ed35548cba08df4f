"""Clip transforms of the TSN/TSM code base that SELFY and MotionSqueeze train with.

Frames travel as one uint8 tensor of shape (T, C, H, W); every frame of a clip gets the same
crop and flip. Randomness comes from an explicit `random.Random`, so a clip's augmentation is a
function of its sample seed (see reprolab.engine.sampling). What the official `ops/transforms.py`
does, and how it maps here:

- GroupScale((240, 320)): `resize(frames, (240, 320))`, the exact size, aspect ratio ignored;
  GroupScale(256) (Kinetics): `resize(frames, 256)`, the short side.
- GroupMultiScaleCrop(224, [1, .875, .75, .66], max_distort=1, fix_crop, more_fix_crop): a crop
  side from the scales times the short side (snapped to the output size when within 3 px), a
  width/height pair at most `max_distort` scale steps apart, one of 13 fixed offsets, then a
  bilinear resize to 224x224: `multiscale_crop_box` + `crop_resize`.
- GroupRandomHorizontalFlip(selective_flip=True): p=0.5, never for classes whose meaning a mirror
  image changes; which classes those are is decided from the class names (`mirror_sensitive`).
- GroupCenterCrop(224) for validation; GroupFullResSample (left/centre/right crops) for the
  Kinetics 3-crop test.
- ToTorchFormatTensor + GroupNormalize: x/255, then ImageNet mean and std (RGB).

Resizing uses torchvision's bilinear kernel with antialiasing, the tensor counterpart of PIL's
bilinear filter the official code calls (the two differ by rounding, well under one grey level).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

import torch
from torchvision.transforms.v2 import functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MULTISCALE_SCALES = (1.0, 0.875, 0.75, 0.66)


# --------------------------------------------------------------------------- geometry


def resize(frames: torch.Tensor, size: int | Sequence[int]) -> torch.Tensor:
    """An int resizes the short side (aspect kept); (h, w) resizes to exactly that size."""
    if isinstance(size, int):
        height, width = frames.shape[-2:]
        if min(height, width) == size:
            return frames
        if height <= width:
            target = [size, int(size * width / height)]
        else:
            target = [int(size * height / width), size]
    else:
        target = [int(size[0]), int(size[1])]
        if list(frames.shape[-2:]) == target:
            return frames
    return F.resize(frames, target, interpolation=F.InterpolationMode.BILINEAR, antialias=True)


def fixed_offsets(image_w: int, image_h: int, crop_w: int, crop_h: int, more_fix_crop: bool = True) -> list[tuple[int, int]]:
    """The (left, top) offsets GroupMultiScaleCrop chooses from: 5, or 13 with more_fix_crop."""
    w_step = (image_w - crop_w) // 4
    h_step = (image_h - crop_h) // 4
    offsets = [(0, 0), (4 * w_step, 0), (0, 4 * h_step), (4 * w_step, 4 * h_step), (2 * w_step, 2 * h_step)]
    if more_fix_crop:
        offsets += [
            (0, 2 * h_step), (4 * w_step, 2 * h_step), (2 * w_step, 4 * h_step), (2 * w_step, 0),
            (1 * w_step, 1 * h_step), (3 * w_step, 1 * h_step), (1 * w_step, 3 * h_step), (3 * w_step, 3 * h_step),
        ]
    return offsets


def multiscale_crop_box(rng: random.Random, image_h: int, image_w: int, output_size: Sequence[int],
                        scales: Sequence[float] = MULTISCALE_SCALES, max_distort: int = 1,
                        more_fix_crop: bool = True) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a GroupMultiScaleCrop crop, drawn as the official code does."""
    out_h, out_w = output_size
    base = min(image_w, image_h)
    sizes = [int(base * s) for s in scales]
    crop_hs = [out_h if abs(s - out_h) < 3 else s for s in sizes]
    crop_ws = [out_w if abs(s - out_w) < 3 else s for s in sizes]
    pairs = [(w, h) for i, h in enumerate(crop_hs) for j, w in enumerate(crop_ws) if abs(i - j) <= max_distort]
    crop_w, crop_h = rng.choice(pairs)
    left, top = rng.choice(fixed_offsets(image_w, image_h, crop_w, crop_h, more_fix_crop))
    return top, left, crop_h, crop_w


def crop_resize(frames: torch.Tensor, box: tuple[int, int, int, int], output_size: Sequence[int]) -> torch.Tensor:
    top, left, height, width = box
    cropped = frames[..., top : top + height, left : left + width]
    if (height, width) == tuple(output_size):
        return cropped
    return F.resize(cropped, list(output_size), interpolation=F.InterpolationMode.BILINEAR, antialias=True)


def center_crop(frames: torch.Tensor, size: int) -> torch.Tensor:
    """torchvision CenterCrop: offsets rounded as `int(round((H - size) / 2))`."""
    return F.center_crop(frames, [size, size])


def three_crops(frames: torch.Tensor, size: int) -> list[torch.Tensor]:
    """GroupFullResSample without flips: left, right and centre squares at mid-height."""
    height, width = frames.shape[-2:]
    w_step, h_step = (width - size) // 4, (height - size) // 4
    offsets = [(0, 2 * h_step), (4 * w_step, 2 * h_step), (2 * w_step, 2 * h_step)]
    return [frames[..., top : top + size, left : left + size] for left, top in offsets]


def normalize(frames: torch.Tensor, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> torch.Tensor:
    """uint8 (..., C, H, W) -> float32, x/255 then per-channel (x - mean) / std."""
    out = frames.to(torch.float32).div_(255.0)
    shape = (-1, 1, 1)
    return out.sub_(torch.tensor(mean).view(shape)).div_(torch.tensor(std).view(shape))


# --------------------------------------------------------------------------- selective flip

_SIDE = re.compile(r"\b(left|right)\b", re.IGNORECASE)


def _mirrored(name: str) -> str:
    return _SIDE.sub(lambda m: {"left": "right", "right": "left"}[m.group(1).lower()], name)


def mirror_sensitive(class_names: Sequence[str]) -> frozenset[int]:
    """Ids of classes a horizontal flip turns into another class of the list.

    A class is mirror-sensitive when swapping the words "left" and "right" in its name gives the
    name of a different class ("Pushing something from left to right" <-> "... right to left").
    On the Something-Something V1 list this selects exactly the official hard-coded ids
    [86, 87, 93, 94, 166, 167]; "pulling it right out" and "upright" are not directions and are
    not selected, because their mirrored names are not classes.
    """
    normalised = {name.strip().lower(): index for index, name in enumerate(class_names)}
    sensitive = set()
    for index, name in enumerate(class_names):
        mirrored = _mirrored(name.strip()).lower()
        if mirrored != name.strip().lower() and mirrored in normalised:
            sensitive.add(index)
    return frozenset(sensitive)


# --------------------------------------------------------------------------- clip pipelines


class TrainClipTransform:
    """GroupScale -> GroupMultiScaleCrop -> (selective) flip -> normalise, on a (T, C, H, W) clip."""

    def __init__(self, resize_to: int | Sequence[int], crop: int, scales: Sequence[float] = MULTISCALE_SCALES,
                 max_distort: int = 1, flip: bool = True):
        self.resize_to = resize_to if isinstance(resize_to, int) else tuple(resize_to)
        self.crop = (int(crop), int(crop))
        self.scales = tuple(float(s) for s in scales)
        self.max_distort = int(max_distort)
        self.flip = flip

    def __call__(self, frames: torch.Tensor, rng: random.Random, flip_allowed: bool = True) -> torch.Tensor:
        frames = resize(frames, self.resize_to)
        box = multiscale_crop_box(rng, frames.shape[-2], frames.shape[-1], self.crop, self.scales, self.max_distort)
        frames = crop_resize(frames, box, self.crop)
        # The official flip draws its coin even for classes it will not flip.
        if self.flip and rng.random() < 0.5 and flip_allowed:
            frames = frames.flip(-1)
        return normalize(frames)


class EvalClipTransform:
    """GroupScale -> centre crop (1 crop) or left/centre/right crops (3); normalised.

    Returns (crops, T, C, H, W).
    """

    def __init__(self, resize_to: int | Sequence[int], crop: int, crops: int = 1):
        if crops not in (1, 3):
            raise ValueError(f"eval.crops: {crops}; the official test code uses 1 (centre) or 3 crops")
        self.resize_to = resize_to if isinstance(resize_to, int) else tuple(resize_to)
        self.crop = int(crop)
        self.crops = crops

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        frames = resize(frames, self.resize_to)
        views = [center_crop(frames, self.crop)] if self.crops == 1 else three_crops(frames, self.crop)
        return normalize(torch.stack(views))
