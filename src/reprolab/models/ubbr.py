"""UBBR: a class-agnostic, anchor-free box regressor (Lee, Kwak, Cho; ACCV 2018, arXiv 1904.06805).

Given an image and any boxes, UBBR predicts for each box the offsets to the box of its nearest
object, whatever the object's class. It is trained on a detection dataset (COCO without the 20
VOC classes) from rough boxes drawn at random around the ground-truth boxes, with the IoU loss
-log(IoU), and applied iteratively at test time (the refined box is fed back in).

No official code exists: what the paper states is followed; every setting it does not state
(the feature level, the head, the offset parameterisation, the rough-box distribution, the
number of refinement steps) is ours and listed in reproductions/ubbr/NOTES.md.

Boxes are (x1, y1, x2, y2) in input-image pixels, float; `rois` are (K, 5) with the batch index
first, as torchvision.ops.roi_align takes them.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn
from torchvision.ops import box_iou, roi_align

# Faster R-CNN's clamp on log-scale offsets (torchvision BoxCoder): keeps exp() finite early on.
LOG_SCALE_CLAMP = math.log(1000.0 / 16)


# ---- offsets --------------------------------------------------------------------------------
def apply_offsets(boxes: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Boxes moved by R-CNN offsets (dx, dy, dw, dh): centre shifts relative to width/height,
    log-scale size changes (Girshick et al.; the parameterisation is ours, see NOTES.md)."""
    widths = (boxes[:, 2] - boxes[:, 0]).clamp(min=1e-3)
    heights = (boxes[:, 3] - boxes[:, 1]).clamp(min=1e-3)
    cx = boxes[:, 0] + 0.5 * widths + offsets[:, 0] * widths
    cy = boxes[:, 1] + 0.5 * heights + offsets[:, 1] * heights
    w = widths * offsets[:, 2].clamp(max=LOG_SCALE_CLAMP).exp()
    h = heights * offsets[:, 3].clamp(max=LOG_SCALE_CLAMP).exp()
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=1)


def paired_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of a[i] with b[i] (differentiable; empty or inverted boxes have zero area)."""
    lt = torch.maximum(a[:, :2], b[:, :2])
    rb = torch.minimum(a[:, 2:], b[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=1)
    area_a = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(dim=1)
    area_b = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(dim=1)
    return inter / (area_a + area_b - inter).clamp(min=1e-6)


def iou_loss(predicted: torch.Tensor, target: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """-log(IoU + eps), averaged: the paper's IoU loss; the small constant keeps the log finite
    for boxes that stopped overlapping (its value is ours)."""
    return -(paired_iou(predicted, target) + eps).log().mean()


# ---- rough boxes around the ground truth ----------------------------------------------------
def rough_boxes(gt: torch.Tensor, per_box: int, *, min_iou: float, generator: torch.Generator,
                max_shift: float = 0.5, max_scale: float = 2.0, image_size: tuple[int, int] | None = None,
                tries: int = 64) -> torch.Tensor:
    """`per_box` random boxes around each ground-truth box with IoU >= `min_iou` with it:
    (len(gt) * per_box, 4), rows of box i at [i * per_box, (i + 1) * per_box).

    Centres shift by up to `max_shift` of the width / height, sides scale log-uniformly within
    [1/max_scale, max_scale]; draws under the threshold are rejected (a box that fails `tries`
    rounds falls back to the ground truth itself). The paper draws boxes "above an IoU
    threshold"; the distribution and its constants are ours (NOTES.md).
    """
    if len(gt) == 0:
        return gt.new_zeros((0, 4))
    gt = gt.float()
    out = gt.repeat_interleave(per_box, dim=0).clone()
    target = out.clone()
    pending = torch.ones(len(out), dtype=torch.bool)
    w = (target[:, 2] - target[:, 0]).clamp(min=1.0)
    h = (target[:, 3] - target[:, 1]).clamp(min=1.0)
    for _ in range(tries):
        idx = pending.nonzero().squeeze(1)
        if len(idx) == 0:
            break
        u = torch.rand((len(idx), 4), generator=generator) * 2 - 1
        cx = (target[idx, 0] + target[idx, 2]) / 2 + u[:, 0] * max_shift * w[idx]
        cy = (target[idx, 1] + target[idx, 3]) / 2 + u[:, 1] * max_shift * h[idx]
        nw = w[idx] * max_scale ** u[:, 2]
        nh = h[idx] * max_scale ** u[:, 3]
        cand = torch.stack([cx - nw / 2, cy - nh / 2, cx + nw / 2, cy + nh / 2], dim=1)
        if image_size is not None:
            height, width = image_size
            cand[:, 0::2] = cand[:, 0::2].clamp(0, width)
            cand[:, 1::2] = cand[:, 1::2].clamp(0, height)
        ok = paired_iou(cand, target[idx]) >= min_iou
        out[idx[ok]] = cand[ok]
        pending[idx[ok]] = False
    return out


# ---- the network ----------------------------------------------------------------------------
class TinyConvFeatures(nn.Module):
    """A small stride-4 convolutional feature map for the tiny profile (CPU, 64-px fixtures)."""

    def __init__(self, width: int = 32):
        super().__init__()
        self.stride = 4
        self.feature_dim = width * 2
        self.body = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, width * 2, 3, stride=2, padding=1), nn.BatchNorm2d(width * 2), nn.ReLU(inplace=True),
            nn.Conv2d(width * 2, width * 2, 3, padding=1), nn.BatchNorm2d(width * 2), nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class UBBR(nn.Module):
    """Image features -> RoIAlign of each box -> head -> 4 offsets per box (one class: any object).

    `trunk` maps images to a feature map of stride `stride`; `head` maps (K, C, roi, roi) pooled
    features to (K, D); `offsets` is the final linear layer, initialised at zero so that an
    untrained model returns its input boxes.
    """

    def __init__(self, trunk: nn.Module, head: nn.Module, head_dim: int, *, stride: int,
                 roi_size: int = 7, sampling_ratio: int = 2):
        super().__init__()
        self.trunk, self.head = trunk, head
        self.stride, self.roi_size, self.sampling_ratio = stride, roi_size, sampling_ratio
        self.offsets = nn.Linear(head_dim, 4)
        nn.init.zeros_(self.offsets.weight)
        nn.init.zeros_(self.offsets.bias)

    def forward(self, images: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        """Offsets (K, 4) of `rois` (K, 5: batch index, x1, y1, x2, y2)."""
        features = self.trunk(images)
        pooled = roi_align(features, rois.to(features.dtype), output_size=self.roi_size,
                           spatial_scale=1.0 / self.stride, sampling_ratio=self.sampling_ratio,
                           aligned=True)
        return self.offsets(self.head(pooled))

    def refine_once(self, images: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        return apply_offsets(rois[:, 1:], self(images, rois))

    @torch.no_grad()
    def refine(self, images: torch.Tensor, rois: torch.Tensor, steps: int = 1,
               image_size: tuple[int, int] | None = None) -> torch.Tensor:
        """Boxes (K, 4) after `steps` rounds of refinement, each fed the previous round's boxes;
        clipped to the image when `image_size` (height, width) is given. The features are
        computed once."""
        features = self.trunk(images)
        boxes = rois[:, 1:].float()
        for _ in range(steps):
            current = torch.cat([rois[:, :1].to(boxes.dtype), boxes], dim=1)
            pooled = roi_align(features, current.to(features.dtype), output_size=self.roi_size,
                               spatial_scale=1.0 / self.stride, sampling_ratio=self.sampling_ratio,
                               aligned=True)
            boxes = apply_offsets(boxes, self.offsets(self.head(pooled)).float())
            if image_size is not None:
                boxes[:, 0::2] = boxes[:, 0::2].clamp(0, image_size[1])
                boxes[:, 1::2] = boxes[:, 1::2].clamp(0, image_size[0])
        return boxes


def build_ubbr(backbone: str = "resnet101", weights: str | Path | None = None, *, roi_size: int = 14,
               hidden: int = 256) -> UBBR:
    """UBBR on a named backbone.

    - `resnet50` / `resnet101`: the C4 design (ours: the paper names ResNet-101 and RoIAlign, not
      the level): conv1..layer3 (stride 16) as the trunk, RoIAlign `roi_size` x `roi_size`, then
      layer4 and global average pooling as the head (2048-d), as torchvision's / Detectron's
      ResNet-C4 box head. `weights`: a torchvision ImageNet checkpoint.
    - `tiny_convnet`: TinyConvFeatures (stride 4) and a two-layer MLP head of `hidden` units.
    """
    if backbone in ("resnet50", "resnet101"):
        from reprolab.models.backbones import create_backbone

        body = create_backbone(backbone, weights=weights).body
        trunk = nn.Sequential(*list(body.children())[:7])          # conv1 .. layer3
        head = nn.Sequential(body[7], nn.AdaptiveAvgPool2d(1), nn.Flatten())  # layer4 + GAP
        return UBBR(trunk, head, 2048, stride=16, roi_size=roi_size)
    if backbone == "tiny_convnet":
        if weights is not None:
            raise ValueError("tiny_convnet has no pretrained weights; set model.weights: null")
        trunk = TinyConvFeatures()
        head = nn.Sequential(nn.Flatten(), nn.Linear(trunk.feature_dim * roi_size * roi_size, hidden),
                             nn.ReLU(inplace=True), nn.Linear(hidden, hidden), nn.ReLU(inplace=True))
        return UBBR(trunk, head, hidden, stride=trunk.stride, roi_size=roi_size)
    raise ValueError(f"UBBR backbone {backbone!r} is not built; choose resnet101, resnet50 or tiny_convnet")


def best_overlap(boxes: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Each box's highest IoU with any ground-truth box (0 where there is none)."""
    if len(gt) == 0 or len(boxes) == 0:
        return boxes.new_zeros(len(boxes))
    return box_iou(boxes, gt).max(dim=1).values


__all__ = ["UBBR", "TinyConvFeatures", "apply_offsets", "best_overlap", "build_ubbr", "iou_loss",
           "paired_iou", "rough_boxes"]
