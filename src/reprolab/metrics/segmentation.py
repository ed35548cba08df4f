"""Semantic segmentation: mIoU from a confusion matrix (PASCAL VOC: 21 labels, 255 ignored).

This is what psa/irn evaluate with (irn: chainercv's `calc_semantic_segmentation_confusion`;
psa users: SEAM's evaluation.py): one confusion matrix over every pixel of the split, then per
class IoU = TP / (TP + FP + FN); mIoU is the mean over classes that occur in the ground truth or
the predictions (a class absent from both has no IoU, as chainercv's nan-mean).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

VOC_LABELS = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
              "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
              "sheep", "sofa", "train", "tvmonitor")
IGNORE_INDEX = 255


def confusion_matrix(prediction: torch.Tensor, target: torch.Tensor, num_classes: int = 21,
                     ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """[num_classes, num_classes] int64 counts, rows = ground truth, columns = prediction."""
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ in shape")
    target = target.reshape(-1).long()
    prediction = prediction.reshape(-1).long()
    keep = target != ignore_index
    target, prediction = target[keep], prediction[keep]
    if target.numel() and (int(target.max()) >= num_classes or int(target.min()) < 0):
        raise ValueError(f"target labels outside 0..{num_classes - 1} (and {ignore_index}): "
                         f"{sorted(set(target.unique().tolist()))[:8]}")
    if prediction.numel() and (int(prediction.max()) >= num_classes or int(prediction.min()) < 0):
        raise ValueError(f"predicted labels outside 0..{num_classes - 1}")
    counts = torch.bincount(target * num_classes + prediction, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def iou_per_class(confusion: torch.Tensor) -> torch.Tensor:
    """IoU of each class (float64), NaN where the class is in neither ground truth nor prediction."""
    confusion = confusion.double()
    tp = confusion.diagonal()
    union = confusion.sum(0) + confusion.sum(1) - tp
    return torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))


def segmentation_metrics(confusion: torch.Tensor, labels: Sequence[str] = VOC_LABELS) -> dict[str, float]:
    """`miou` and `iou/<label>` (percent) for every label seen in ground truth or prediction."""
    if confusion.shape != (len(labels), len(labels)):
        raise ValueError(f"confusion matrix {tuple(confusion.shape)} for {len(labels)} labels")
    iou = iou_per_class(confusion)
    seen = ~torch.isnan(iou)
    metrics = {"miou": 100.0 * float(iou[seen].mean()) if bool(seen.any()) else 0.0,
               "pixel_accuracy": 100.0 * float(confusion.diagonal().sum()) / max(1, int(confusion.sum()))}
    for name, value, present in zip(labels, iou.tolist(), seen.tolist(), strict=True):
        if present:
            metrics[f"iou/{name}"] = 100.0 * value
    return metrics


def chance_confusion(confusion: torch.Tensor) -> torch.Tensor:
    """The expected confusion of a predictor that draws every pixel's label uniformly at random:
    each ground-truth row spread evenly over the columns (the chance level of mIoU)."""
    rows = confusion.double().sum(1, keepdim=True)
    return rows.expand_as(confusion) / confusion.shape[1]


__all__ = ["IGNORE_INDEX", "VOC_LABELS", "chance_confusion", "confusion_matrix", "iou_per_class",
           "segmentation_metrics"]
