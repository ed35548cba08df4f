"""Instance segmentation mAP at mask IoU 0.5 and 0.75, the protocol IRNet reports (in percent).

IRNet's ``step/eval_ins_seg.py`` (jiwoon-ahn/irn@a2ece00) scores instance masks with chainercv's
``eval_instance_segmentation_voc`` on VOC SegmentationObject: per class, predictions of all
images sorted by score; within an image each prediction (by descending score) takes the ground
truth of highest mask IoU, a true positive if that IoU reaches the threshold and the ground truth
was not taken yet (a taken best match is a false positive: no fallback to the second best);
AP = area under the precision envelope (VOC 2010+ all-point, not the 11-point 07 metric);
mAP = mean over the classes that have ground truth (a class never predicted scores 0; predictions
of a class without ground truth are not scored: chainercv's NaN and nanmean).

Why our own code rather than a library: chainercv is unmaintained (last release 2019, Chainer
discontinued) and does not install on current NumPy; torchmetrics' ``MeanAveragePrecision``
(maintained, already a dependency; segm needs pycocotools or faster-coco-eval) computes COCO's
protocol instead (101-point interpolation, area ranges, at most 100 detections per image), which
gives different numbers on the same masks. ``tests/metrics/test_instance_segmentation.py``
cross-checks against torchmetrics with a dense recall grid where the two protocols coincide,
when a COCO backend is importable.

Ground truth comes from VOC-style images (``instances_from_voc``: SegmentationObject +
SegmentationClass PNG indices, void 255 and background 0 dropped, as chainercv's
``VOCInstanceSegmentationDataset``) or SBD ``inst/*.mat`` (``GTinst.Segmentation`` +
``Categories``: ``instances_from_sbd``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

VOID = 255


@dataclass(frozen=True)
class Instances:
    """The instances of one image: boolean masks (N, H, W), class labels (N,), scores (N,) or None."""

    masks: np.ndarray
    labels: np.ndarray
    scores: np.ndarray | None = None

    def __post_init__(self):
        masks, labels = np.asarray(self.masks, bool), np.asarray(self.labels, np.int64).reshape(-1)
        if masks.ndim != 3 or len(masks) != len(labels):
            raise ValueError(f"instances: masks must be (N, H, W) with one label each; got masks "
                             f"{masks.shape} and {len(labels)} labels")
        object.__setattr__(self, "masks", masks)
        object.__setattr__(self, "labels", labels)
        if self.scores is not None:
            scores = np.asarray(self.scores, np.float64).reshape(-1)
            if len(scores) != len(labels):
                raise ValueError(f"instances: {len(scores)} scores for {len(labels)} masks")
            object.__setattr__(self, "scores", scores)


def instances_from_voc(objects: np.ndarray, classes: np.ndarray, where: str = "image") -> Instances:
    """Ground-truth instances of a VOC image from its SegmentationObject and SegmentationClass indices."""
    objects, classes = np.asarray(objects), np.asarray(classes)
    if objects.shape != classes.shape:
        raise ValueError(f"{where}: SegmentationObject {objects.shape} and SegmentationClass "
                         f"{classes.shape} differ in size")
    masks, labels = [], []
    for instance in np.unique(objects):
        if instance in (0, VOID):
            continue
        mask = objects == instance
        found = np.unique(classes[mask])
        found = found[(found != 0) & (found != VOID)]
        if len(found) != 1:
            raise ValueError(f"{where}: instance {instance} covers classes {found.tolist()} in "
                             "SegmentationClass; an instance must have exactly one class")
        masks.append(mask)
        labels.append(int(found[0]))
    return Instances(np.array(masks, bool).reshape(len(masks), *objects.shape), np.array(labels, np.int64))


def instances_from_sbd(segmentation: np.ndarray, categories: np.ndarray) -> Instances:
    """Ground truth from an SBD ``GTinst`` struct: instance k (1-based) has class ``categories[k-1]``."""
    segmentation, categories = np.asarray(segmentation), np.asarray(categories).reshape(-1)
    ids = [i for i in np.unique(segmentation) if i not in (0, VOID)]
    if ids and max(ids) > len(categories):
        raise ValueError(f"SBD GTinst: instance {max(ids)} but only {len(categories)} categories")
    masks = np.array([segmentation == i for i in ids], bool).reshape(len(ids), *segmentation.shape)
    return Instances(masks, np.array([int(categories[i - 1]) for i in ids], np.int64))


def mask_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every mask in a (N, H, W) with every mask in b (K, H, W)."""
    a, b = a.reshape(len(a), -1).astype(np.float64), b.reshape(len(b), -1).astype(np.float64)
    inter = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


def average_precision_per_class(predictions: Sequence[Instances], ground_truths: Sequence[Instances],
                                iou_threshold: float) -> dict[int, float]:
    """class -> AP (fraction): 0 for a class with ground truth and no predictions, NaN for one with
    predictions and no ground truth (chainercv's convention)."""
    if len(predictions) != len(ground_truths):
        raise ValueError(f"{len(predictions)} predicted images for {len(ground_truths)} ground-truth images")
    n_pos: dict[int, int] = defaultdict(int)
    scores: dict[int, list[float]] = defaultdict(list)
    matches: dict[int, list[int]] = defaultdict(list)
    for index, (pred, gt) in enumerate(zip(predictions, ground_truths, strict=True)):
        if pred.scores is None:
            raise ValueError(f"image {index}: predicted instances need scores")
        if len(pred.masks) and len(gt.masks) and pred.masks.shape[1:] != gt.masks.shape[1:]:
            raise ValueError(f"image {index}: predicted masks {pred.masks.shape[1:]} and ground truth "
                             f"{gt.masks.shape[1:]} differ in size")
        for label in np.unique(np.concatenate([pred.labels, gt.labels])):
            keep = pred.labels == label
            order = np.argsort(-pred.scores[keep], kind="stable")
            pred_masks, pred_scores = pred.masks[keep][order], pred.scores[keep][order]
            gt_masks = gt.masks[gt.labels == label]
            n_pos[int(label)] += len(gt_masks)
            scores[int(label)].extend(pred_scores.tolist())
            if not len(pred_masks):
                continue
            if not len(gt_masks):
                matches[int(label)].extend([0] * len(pred_masks))
                continue
            iou = mask_iou(pred_masks, gt_masks)
            best = iou.argmax(1)
            best[iou.max(1) < iou_threshold] = -1
            taken = np.zeros(len(gt_masks), bool)
            for g in best:
                matches[int(label)].append(int(g >= 0 and not taken[g]))
                if g >= 0:
                    taken[g] = True
    ap = {}
    for label in sorted(set(n_pos) | set(scores)):
        if n_pos[label] == 0:  # predictions of a class absent from the ground truth: not scored
            ap[label] = float("nan")
            continue
        order = np.argsort(-np.asarray(scores[label]), kind="stable")
        hit = np.asarray(matches[label])[order]
        tp, fp = np.cumsum(hit == 1), np.cumsum(hit == 0)
        precision, recall = tp / (tp + fp), tp / n_pos[label]
        mpre = np.concatenate(([0.0], precision, [0.0]))
        mrec = np.concatenate(([0.0], recall, [1.0]))
        mpre = np.maximum.accumulate(mpre[::-1])[::-1]
        steps = np.where(mrec[1:] != mrec[:-1])[0]
        ap[label] = float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))
    return ap


def instance_map(predictions: Sequence[Instances], ground_truths: Sequence[Instances],
                 thresholds: Sequence[float] = (0.5, 0.75)) -> dict[str, float]:
    """``{"map50": ..., "map75": ...}`` in percent (the mean over scorable classes; NaN if none)."""
    out = {}
    for threshold in thresholds:
        ap = [v for v in average_precision_per_class(predictions, ground_truths, threshold).values()
              if not np.isnan(v)]
        out[f"map{round(threshold * 100)}"] = 100.0 * float(np.mean(ap)) if ap else float("nan")
    return out
