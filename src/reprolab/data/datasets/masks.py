"""Images with masks (PASCAL VOC style): decoded, augmented as psa's voc12/data.py, batched.

A sample of a prepared VOC split has the JPEG (`frames[0]`), the palette PNG `mask` (0 background,
1-20 classes, 255 void; absent in test) and `image_labels` (class names). A derived split of a
WSSS chain adds per-image arrays (reprolab.pipeline.wsss_steps): `cam` (the CAMs of the image's
classes), `crf_low` / `crf_high` (dCRF'd scores at low / high alpha) and `pseudo_label` (PNG).

Augmentation draws from the sample seed only (reprolab.engine.sampling).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset

from reprolab.models.segmentation.affinity import affinity_label_map

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
               "train", "tvmonitor")


def encode_array(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def decode_array(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data)) as stored:
        return {k: stored[k] for k in stored.files}


def encode_label_png(label: np.ndarray) -> bytes:
    from reprolab.data.prepare.voc2012 import mask_png

    return mask_png(label)


def decode_png(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.array(image)


def image_label_vector(names: str, where: str = "") -> torch.Tensor:
    vector = torch.zeros(len(VOC_CLASSES))
    for name in names.split():
        if name not in VOC_CLASSES:
            raise ValueError(f"{where}: unknown image label {name!r} (VOC classes: {', '.join(VOC_CLASSES)})")
        vector[VOC_CLASSES.index(name)] = 1
    return vector


IMAGENET_INPUT = {"channel_order": "RGB", "scale": 1.0, "mean": IMAGENET_MEAN, "std": IMAGENET_STD}


def normalize(rgb: torch.Tensor, config: dict | None = None) -> torch.Tensor:
    """uint8 [3, H, W] -> float in the backbone's convention (psa's `model.normalize`): channel
    order, scale (1: [0, 1], 255: Caffe's 0-255), mean, std; default ImageNet RGB mean/std."""
    config = config or IMAGENET_INPUT
    pixels = rgb.float() / 255 * float(config.get("scale", 1.0))
    if config.get("channel_order", "RGB") == "BGR":
        pixels = pixels.flip(0)
    mean = torch.tensor(config["mean"], dtype=pixels.dtype).view(3, 1, 1)
    std = torch.tensor(config["std"], dtype=pixels.dtype).view(3, 1, 1)
    return (pixels - mean) / std


def crop_box(height: int, width: int, crop: int, generator: torch.Generator):
    """psa imutils.RandomCrop: (image top, left, container top, left, rows, cols): a random window
    of the image where it is larger than the crop, a random place in the zero container where smaller."""
    def axis(size):
        space = size - crop
        if space > 0:
            return int(torch.randint(space + 1, (1,), generator=generator)), 0
        return 0, int(torch.randint(-space + 1, (1,), generator=generator))
    img_top, cont_top = axis(height)
    img_left, cont_left = axis(width)
    return img_top, img_left, cont_top, cont_left, min(crop, height), min(crop, width)


def paste_crop(array: torch.Tensor, box, crop: int) -> torch.Tensor:
    """[C, H, W] -> [C, crop, crop] zero container with the window of `box`."""
    img_top, img_left, cont_top, cont_left, rows, cols = box
    out = torch.zeros(array.shape[0], crop, crop, dtype=array.dtype)
    out[:, cont_top:cont_top + rows, cont_left:cont_left + cols] = \
        array[:, img_top:img_top + rows, img_left:img_left + cols]
    return out


def color_jitter(rgb: torch.Tensor, jitter: Sequence[float], generator: torch.Generator) -> torch.Tensor:
    """torchvision ColorJitter(brightness, contrast, saturation, hue) on a uint8 [3, H, W] image,
    its factors and order drawn from `generator`."""
    from torchvision.transforms import functional as TF

    if not any(jitter):
        return rgb
    b, c, s, h = jitter
    order = torch.randperm(4, generator=generator).tolist()
    factors = [float(torch.empty(1).uniform_(max(0, 1 - v), 1 + v, generator=generator)) for v in (b, c, s)]
    hue = float(torch.empty(1).uniform_(-h, h, generator=generator))
    ops = [lambda x: TF.adjust_brightness(x, factors[0]), lambda x: TF.adjust_contrast(x, factors[1]),
           lambda x: TF.adjust_saturation(x, factors[2]), lambda x: TF.adjust_hue(x, hue)]
    for index in order:
        rgb = ops[index](rgb)
    return rgb


class VocImages(Dataset):
    """Samples of a VOC-style split for one purpose (`mode`):

    - "classify": psa train_cls.py: random long side in `resize_long`, flip, colour jitter,
      normalize, random `crop` (zero padded): image, image labels;
    - "affinity": psa train_aff.py: colour jitter, random `crop` of image and dCRF scores
      (black / no-score padding), flip; scores average-pooled by `stride`: image and the
      affinity label map (reprolab.models.segmentation.affinity.affinity_label_map);
    - "segment": random long side in `resize_long`, flip, crop; image and `label_key` mask (255 padding);
    - "eval": the whole image, its RGB, labels, ground-truth mask (255 where none) and payloads.
    """

    def __init__(self, split, mode: str, *, crop: int = 448, resize_long: Sequence[int] | None = None,
                 jitter: Sequence[float] = (0.3, 0.3, 0.3, 0.1), stride: int = 8,
                 label_key: str = "pseudo_label", payloads: Sequence[str] = (), input_config: dict | None = None):
        if mode not in ("classify", "affinity", "segment", "eval"):
            raise ValueError(f"VocImages: unknown mode {mode!r}")
        self.split, self.mode, self.crop, self.resize_long = split, mode, crop, resize_long
        self.jitter, self.stride, self.label_key, self.payloads = tuple(jitter), stride, label_key, tuple(payloads)
        self.names = split.column("image_labels")
        self.input_config = input_config

    def __len__(self) -> int:
        return len(self.split)

    def labels(self, index: int) -> torch.Tensor:
        return image_label_vector(self.names[index], where=f"{self.split.dataset}/{self.split.split} sample {index}")

    def _payload(self, sample, key: str) -> Any:
        if key not in sample.extra:
            raise KeyError(f"{self.split.dataset}/{self.split.split}: sample {sample.id} has no {key!r} "
                           "(is this the derived split of the stage that writes it?)")
        return sample.extra[key]

    def __getitem__(self, item):
        index, seed = item if isinstance(item, tuple) else (item, 0)
        sample = self.split[index]
        rgb = torch.from_numpy(decode_png(sample.frames[0]) if sample.frames[0][:4] == b"\x89PNG"
                               else np.array(Image.open(io.BytesIO(sample.frames[0])).convert("RGB"))).permute(2, 0, 1)
        generator = torch.Generator().manual_seed(int(seed))
        out: dict[str, Any] = {"index": index, "labels": self.labels(index)}
        if self.mode == "eval":
            mask = sample.extra.get("mask")
            target = (torch.from_numpy(decode_png(mask).astype(np.int64)) if mask is not None
                      else torch.full(rgb.shape[1:], 255, dtype=torch.int64))
            out.update(image=normalize(rgb, self.input_config), rgb=rgb.permute(1, 2, 0).contiguous(), mask=target)
            for key in self.payloads:
                out.update(self._decode(key, self._payload(sample, key)))
            return out
        if self.mode in ("classify", "segment"):
            label = None
            if self.mode == "segment":
                label = torch.from_numpy(decode_png(self._payload(sample, self.label_key)).astype(np.int64))[None]
            if self.resize_long:
                low, high = self.resize_long
                target = int(torch.randint(low, high + 1, (1,), generator=generator))
                h, w = rgb.shape[1:]
                scale = target / max(h, w)
                size = (max(1, round(h * scale)), max(1, round(w * scale)))
                rgb = F.interpolate(rgb[None].float(), size, mode="bicubic", align_corners=False)[0].clamp(0, 255).round().to(torch.uint8)
                if label is not None:
                    label = F.interpolate(label[None].float(), size, mode="nearest")[0].long()
            if bool(torch.randint(2, (1,), generator=generator)):
                rgb = rgb.flip(-1)
                label = label.flip(-1) if label is not None else None
            rgb = color_jitter(rgb, self.jitter, generator)
            box = crop_box(rgb.shape[1], rgb.shape[2], self.crop, generator)
            out["image"] = paste_crop(normalize(rgb, self.input_config), box, self.crop)
            if label is not None:
                out["target"] = paste_crop(label - 255, box, self.crop)[0] + 255  # padding: 255
            return out
        # affinity: jitter, crop image and scores together, flip, pool the scores
        rgb = color_jitter(rgb, self.jitter, generator)
        low = torch.from_numpy(decode_array(self._payload(sample, "crf_low"))["scores"]).float()
        high = torch.from_numpy(decode_array(self._payload(sample, "crf_high"))["scores"]).float()
        box = crop_box(rgb.shape[1], rgb.shape[2], self.crop, generator)
        stacked = torch.cat([rgb.float(), low, high])
        stacked = paste_crop(stacked, box, self.crop)
        if bool(torch.randint(2, (1,), generator=generator)):
            stacked = stacked.flip(-1)
        image, scores = stacked[:3], F.avg_pool2d(stacked[None, 3:], self.stride)[0]
        out["image"] = normalize(image, self.input_config)
        out["aff_label"] = affinity_label_map(scores[:low.shape[0]], scores[low.shape[0]:])
        return out

    def _decode(self, key: str, data: bytes) -> dict[str, torch.Tensor]:
        if key == "cam":
            stored = decode_array(data)
            return {"cam_classes": torch.from_numpy(stored["classes"].astype(np.int64)),
                    "cam": torch.from_numpy(stored["scores"])}
        if key == "pseudo_label":
            return {key: torch.from_numpy(decode_png(data).astype(np.int64))}
        return {key: torch.from_numpy(decode_array(data)["scores"])}


def full_cam(classes: torch.Tensor, scores: torch.Tensor, num_classes: int = 20) -> torch.Tensor:
    """[20, H, W] CAMs from the stored maps of the present classes (zero elsewhere)."""
    cam = torch.zeros(num_classes, *scores.shape[-2:], dtype=scores.dtype)
    if classes.numel():
        cam[classes] = scores
    return cam
