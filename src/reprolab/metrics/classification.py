"""Classification metrics, in percent: top-k accuracy and mean per-class accuracy (torchmetrics).

- `top1`, `top5`: fraction of samples whose label is among the k highest scores (the SELFY,
  MotionSqueeze and TSM tables).
- `mean_class_acc`: the recall of each class, averaged over the classes present in the labels
  (FineGym's metric). Classes absent from the evaluated labels are left out of the mean, so a
  small or partial evaluation is not penalised for classes it could not contain.

All values are percentages (0-100), the scale of the published tables, so that a result and its
published row compare directly.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchmetrics.functional.classification import multiclass_accuracy

METRIC_NAMES = ("top1", "top5", "mean_class_acc")


def topk_accuracy(scores: torch.Tensor, targets: torch.Tensor, k: int) -> float:
    num_classes = scores.shape[1]
    k = min(k, num_classes)
    value = multiclass_accuracy(scores, targets, num_classes=num_classes, top_k=k, average="micro")
    return 100.0 * float(value)


def mean_class_accuracy(scores: torch.Tensor, targets: torch.Tensor) -> float:
    num_classes = scores.shape[1]
    per_class = multiclass_accuracy(scores, targets, num_classes=num_classes, average="none")
    present = torch.bincount(targets, minlength=num_classes) > 0
    return 100.0 * float(per_class[present].mean())


def classification_metrics(scores: torch.Tensor, targets: torch.Tensor, *, num_classes: int | None = None,
                           topk: Sequence[int] = (1, 5), mean_class: bool = True) -> dict[str, float]:
    """Metrics of (N, C) scores (logits or probabilities) against (N,) integer labels."""
    if scores.dim() != 2 or targets.dim() != 1 or scores.shape[0] != targets.shape[0]:
        raise ValueError(f"expected scores (N, C) and targets (N,), got {tuple(scores.shape)} and "
                         f"{tuple(targets.shape)}")
    if num_classes is not None and scores.shape[1] != num_classes:
        raise ValueError(f"scores have {scores.shape[1]} classes, expected {num_classes}")
    scores = scores.float()
    targets = targets.long()
    metrics = {f"top{k}": topk_accuracy(scores, targets, k) for k in topk}
    if mean_class:
        metrics["mean_class_acc"] = mean_class_accuracy(scores, targets)
    return metrics
