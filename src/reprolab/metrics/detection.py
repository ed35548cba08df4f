"""Box metrics: paired IoU, CorLoc, PASCAL VOC 2007 average precision and proposal recall.

Boxes are (x1, y1, x2, y2) float tensors in one pixel convention throughout (the caller converts
VOC's 1-based inclusive corners once). Values are percentages, as the papers print them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torchvision.ops import box_iou

IOU_THRESHOLDS_AR = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))  # 0.5:0.05:0.95


@dataclass(frozen=True)
class GroundTruth:
    """The objects of one image: boxes (G, 4), class indices (G,), difficult flags (G,)."""

    boxes: torch.Tensor
    classes: torch.Tensor
    difficult: torch.Tensor


@dataclass(frozen=True)
class Detections:
    """Scored boxes of one image: boxes (N, 4), class indices (N,), scores (N,)."""

    boxes: torch.Tensor
    classes: torch.Tensor
    scores: torch.Tensor


def mean_paired_iou(boxes: torch.Tensor, targets: torch.Tensor) -> float:
    """Mean IoU of boxes[i] with targets[i], in percent (nan for no boxes)."""
    from reprolab.models.ubbr import paired_iou

    if len(boxes) == 0:
        return float("nan")
    return 100.0 * float(paired_iou(boxes.float(), targets.float()).mean())


def corloc(detections: Sequence[Detections], truths: Sequence[GroundTruth], num_classes: int,
           iou: float = 0.5) -> dict[str, float]:
    """CorLoc: for each class, the share of the images containing it whose top-scored box of the
    class overlaps one of its ground-truth boxes by IoU >= `iou` (difficult objects count, as in
    the WSOD literature's trainval CorLoc); `corloc` is the mean over the classes present.
    Returns `corloc` and `corloc/<class index>`."""
    hits = torch.zeros(num_classes)
    totals = torch.zeros(num_classes)
    for det, gt in zip(detections, truths, strict=True):
        for c in gt.classes.unique().tolist():
            totals[c] += 1
            mine = det.classes == c
            if not mine.any():
                continue
            top = det.boxes[mine][det.scores[mine].argmax()].unsqueeze(0)
            if box_iou(top.float(), gt.boxes[gt.classes == c].float()).max() >= iou:
                hits[c] += 1
    present = totals > 0
    if not present.any():
        raise ValueError("CorLoc: no ground-truth object in the evaluated images")
    per_class = 100.0 * hits[present] / totals[present]
    out = {"corloc": float(per_class.mean())}
    out.update({f"corloc/{c}": float(100.0 * hits[c] / totals[c]) for c in present.nonzero().flatten().tolist()})
    return out


def voc07_ap(recall: torch.Tensor, precision: torch.Tensor) -> float:
    """The VOC 2007 11-point interpolated AP (devkit VOCevaldet, `use_07_metric=True`)."""
    ap = 0.0
    for t in torch.linspace(0, 1, 11):
        above = precision[recall >= t]
        ap += float(above.max()) / 11 if len(above) else 0.0
    return ap


def voc07_map(detections: Sequence[Detections], truths: Sequence[GroundTruth], num_classes: int,
              iou: float = 0.5) -> dict[str, float]:
    """Mean AP over classes with at least one non-difficult object, VOC 2007 protocol: detections
    of a class sorted by score over all images, greedily matched to unmatched ground truth with
    IoU >= `iou`; a match to a difficult object is neither true nor false positive."""
    aps: dict[int, float] = {}
    for c in range(num_classes):
        positives = sum(int(((gt.classes == c) & (gt.difficult == 0)).sum()) for gt in truths)
        if positives == 0:
            continue
        entries = [(float(s), i, det.boxes[k]) for i, det in enumerate(detections)
                   for k, s in zip((det.classes == c).nonzero().flatten().tolist(),
                                   det.scores[det.classes == c].tolist(), strict=True)]
        entries.sort(key=lambda e: -e[0])
        used = {i: torch.zeros(int((gt.classes == c).sum()), dtype=torch.bool) for i, gt in enumerate(truths)}
        tp, fp = [], []
        for _, i, box in entries:
            gt = truths[i]
            mine = gt.classes == c
            if not mine.any():
                tp.append(0.0), fp.append(1.0)
                continue
            overlaps = box_iou(box.unsqueeze(0).float(), gt.boxes[mine].float())[0]
            best, j = overlaps.max(dim=0)
            if best < iou:
                tp.append(0.0), fp.append(1.0)
            elif gt.difficult[mine][j]:
                continue
            elif not used[i][j]:
                used[i][j] = True
                tp.append(1.0), fp.append(0.0)
            else:
                tp.append(0.0), fp.append(1.0)
        tps, fps = torch.tensor(tp).cumsum(0), torch.tensor(fp).cumsum(0)
        recall = tps / positives
        precision = tps / (tps + fps).clamp(min=1e-12)
        aps[c] = 100.0 * voc07_ap(recall, precision) if len(tp) else 0.0
    if not aps:
        raise ValueError("mAP: no non-difficult ground-truth object in the evaluated images")
    out = {"map": sum(aps.values()) / len(aps)}
    out.update({f"ap/{c}": value for c, value in aps.items()})
    return out


def proposal_recall(proposals: Sequence[torch.Tensor], truths: Sequence[GroundTruth],
                    thresholds: Sequence[float] = (0.5, 0.7)) -> dict[str, float]:
    """Recall of the ground-truth boxes by per-image proposals (each object's best IoU with any
    proposal, no one-to-one matching, as Hosang et al.), at `thresholds`, and the average recall
    `ar` over IoU 0.5:0.05:0.95."""
    best = []
    for boxes, gt in zip(proposals, truths, strict=True):
        if len(gt.boxes) == 0:
            continue
        if len(boxes) == 0:
            best.append(torch.zeros(len(gt.boxes)))
        else:
            best.append(box_iou(gt.boxes.float(), boxes.float()).max(dim=1).values)
    if not best:
        raise ValueError("proposal recall: no ground-truth object in the evaluated images")
    overlaps = torch.cat(best)
    out = {f"recall@{t:g}": 100.0 * float((overlaps >= t).float().mean()) for t in thresholds}
    out["ar"] = 100.0 * float(torch.stack([(overlaps >= t).float().mean() for t in IOU_THRESHOLDS_AR]).mean())
    return out


def detections_by_image(rows: Mapping[str, Detections], ids: Sequence[str]) -> list[Detections]:
    """Detections in the order of `ids`; an image without any is an empty Detections."""
    empty = Detections(torch.zeros((0, 4)), torch.zeros(0, dtype=torch.long), torch.zeros(0))
    return [rows.get(i, empty) for i in ids]


__all__ = ["Detections", "GroundTruth", "IOU_THRESHOLDS_AR", "corloc", "detections_by_image",
           "mean_paired_iou", "proposal_recall", "voc07_ap", "voc07_map"]
