"""Images with boxes for box regression (UBBR): letterboxed images, ground truth and input boxes.

Every image is resized so that its longer side is `size` and padded at the bottom/right to a
`size` x `size` square (one tensor shape per batch); boxes are scaled by the same factor, so IoU,
AP and recall are unchanged. Boxes are (x1, y1, x2, y2) floats, 0-based pixel edges: a VOC
object with 1-based inclusive corners (xmin, ymin, xmax, ymax) is (xmin - 1, ymin - 1, xmax, ymax);
a COCO [x, y, w, h] is (x, y, x + w, y + h).

- RoughBoxTrainDataset: a COCO-format split; each item draws `per_image` ground-truth boxes
  (with replacement) and a rough box around each (reprolab.models.ubbr.rough_boxes), from the
  sample's seed only (reprolab.engine.sampling), and flips the image half of the time.
- BoxEvalDataset: VOC-format splits; each item holds the image, its objects (padded to
  `max_objects`) and the boxes to refine (padded to `max_boxes`), which an `input_boxes`
  function gives per sample (rough boxes around the objects, a detector's boxes, dense boxes).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from typing import Any

import torch
from PIL import Image
from torch.utils.data import Dataset

from reprolab.models.backbones import IMAGENET_INPUT

MEAN = torch.tensor(IMAGENET_INPUT["mean"]).view(3, 1, 1)
STD = torch.tensor(IMAGENET_INPUT["std"]).view(3, 1, 1)


def letterbox(data: bytes, size: int) -> tuple[torch.Tensor, float, tuple[int, int]]:
    """(normalised image (3, size, size), scale applied, (height, width) before padding)."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    scale = size / max(image.width, image.height)
    width, height = max(1, round(image.width * scale)), max(1, round(image.height * scale))
    image = image.resize((width, height), Image.BILINEAR)
    pixels = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).view(height, width, 3)
    out = torch.zeros(3, size, size)
    out[:, :height, :width] = pixels.permute(2, 0, 1).float() / 255.0
    out[:, :height, :width] = (out[:, :height, :width] - MEAN) / STD
    return out, scale, (height, width)


def coco_boxes(objects: str) -> torch.Tensor:
    """Non-crowd boxes of a COCO manifest's `objects` column, (N, 4) xyxy."""
    boxes = [[x, y, x + w, y + h] for o in json.loads(objects or "[]") if not o.get("iscrowd", 0)
             for x, y, w, h in [o["bbox"]] if w > 0 and h > 0]
    return torch.tensor(boxes, dtype=torch.float32).view(-1, 4)


def voc_objects(objects: str, classes: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(boxes (G, 4) xyxy 0-based edges, class indices (G,), difficult (G,)) of a VOC `objects` column."""
    items = json.loads(objects or "[]")
    boxes = [[o["bbox"][0] - 1, o["bbox"][1] - 1, o["bbox"][2], o["bbox"][3]] for o in items]
    return (torch.tensor(boxes, dtype=torch.float32).view(-1, 4),
            torch.tensor([classes.index(o["name"]) for o in items], dtype=torch.long),
            torch.tensor([int(o.get("difficult", 0)) for o in items], dtype=torch.long))


class RoughBoxTrainDataset(Dataset):
    def __init__(self, split, *, size: int, per_image: int, min_iou: float, max_shift: float,
                 max_scale: float, hflip: bool = True):
        self.split, self.size, self.per_image = split, size, per_image
        self.min_iou, self.max_shift, self.max_scale, self.hflip = min_iou, max_shift, max_scale, hflip

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, item: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        from reprolab.models.ubbr import rough_boxes

        index, seed = item if isinstance(item, tuple) else (item, 0)
        sample = self.split[index]
        image, scale, (height, width) = letterbox(sample.frames[0], self.size)
        gt = coco_boxes(sample.extra["objects"]) * scale
        generator = torch.Generator().manual_seed(int(seed))
        if torch.rand((), generator=generator) < 0.5 and self.hflip:
            image[:, :height, :width] = image[:, :height, :width].flip(-1)
            gt = torch.stack([width - gt[:, 2], gt[:, 1], width - gt[:, 0], gt[:, 3]], dim=1)
        chosen = gt[torch.randint(len(gt), (self.per_image,), generator=generator)]
        rough = rough_boxes(chosen, 1, min_iou=self.min_iou, generator=generator, max_shift=self.max_shift,
                            max_scale=self.max_scale, image_size=(height, width))
        return {"image": image, "rough": rough, "gt": chosen}


InputBoxes = Callable[[int, Any, torch.Tensor, float, tuple[int, int]], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


class BoxEvalDataset(Dataset):
    """VOC-format splits concatenated; see the module docstring. `input_boxes(index, sample,
    gt_boxes, scale, (height, width))` returns (boxes (N, 4) in letterboxed pixels, class
    indices (N,) or -1, scores (N,)) for the sample at global `index`."""

    def __init__(self, parts: Sequence[Any], classes: Sequence[str], input_boxes: InputBoxes, *,
                 size: int, max_objects: int, max_boxes: int):
        self.parts, self.classes, self.input_boxes = list(parts), list(classes), input_boxes
        self.size, self.max_objects, self.max_boxes = size, max_objects, max_boxes
        self.offsets = [0]
        for split in self.parts:
            self.offsets.append(self.offsets[-1] + len(split))

    def __len__(self) -> int:
        return self.offsets[-1]

    def locate(self, index: int) -> tuple[Any, int]:
        part = max(i for i, start in enumerate(self.offsets[:-1]) if index >= start)
        return self.parts[part], index - self.offsets[part]

    @property
    def ids(self) -> list[str]:
        return [i for split in self.parts for i in split.ids]

    def count_objects(self) -> int:
        return sum(len(json.loads(o or "[]")) for split in self.parts for o in split.column("objects"))

    def __getitem__(self, item: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        index = item[0] if isinstance(item, tuple) else item
        split, local = self.locate(index)
        sample = split[local]
        image, scale, hw = letterbox(sample.frames[0], self.size)
        gt, gt_class, difficult = voc_objects(sample.extra["objects"], self.classes)
        gt = gt * scale
        if len(gt) > self.max_objects:
            raise ValueError(f"{split.dataset} {split.split} image {sample.id}: {len(gt)} objects, more "
                             f"than eval.max_objects={self.max_objects}; raise it")
        boxes, box_class, scores = self.input_boxes(index, sample, gt, scale, hw)
        if len(boxes) > self.max_boxes:  # the highest-scored ones
            keep = scores.argsort(descending=True)[: self.max_boxes]
            boxes, box_class, scores = boxes[keep], box_class[keep], scores[keep]
        n, g = len(boxes), len(gt)
        out = {"image": image, "hw": torch.tensor(hw, dtype=torch.float32),
               "boxes": torch.zeros(self.max_boxes, 4), "box_class": torch.full((self.max_boxes,), -1),
               "box_score": torch.zeros(self.max_boxes), "box_valid": torch.zeros(self.max_boxes, dtype=torch.bool),
               "gt": torch.zeros(self.max_objects, 4), "gt_class": torch.full((self.max_objects,), -1),
               "gt_difficult": torch.zeros(self.max_objects, dtype=torch.long)}
        out["boxes"][:n], out["box_class"][:n], out["box_score"][:n] = boxes, box_class.long(), scores.float()
        out["box_valid"][:n] = True
        out["gt"][:g], out["gt_class"][:g], out["gt_difficult"][:g] = gt, gt_class, difficult
        return out


__all__ = ["BoxEvalDataset", "RoughBoxTrainDataset", "coco_boxes", "letterbox", "voc_objects"]
