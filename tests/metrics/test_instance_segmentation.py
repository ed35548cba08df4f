"""Instance mAP (chainercv's VOC protocol, as IRNet's eval_ins_seg) on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest

from reprolab.metrics.instance_segmentation import (
    Instances,
    average_precision_per_class,
    instance_map,
    instances_from_sbd,
    instances_from_voc,
)


def strip(*spans: tuple[int, int], width: int = 20) -> np.ndarray:
    """(N, 1, width) masks, mask i covering columns spans[i] = [start, stop)."""
    masks = np.zeros((len(spans), 1, width), bool)
    for i, (start, stop) in enumerate(spans):
        masks[i, 0, start:stop] = True
    return masks


def test_perfect_predictions_score_100():
    gt = [Instances(strip((0, 10), (10, 20)), [1, 2]), Instances(strip((3, 9)), [1])]
    pred = [Instances(g.masks, g.labels, np.linspace(1, 0.5, len(g.labels))) for g in gt]
    assert instance_map(pred, gt) == {"map50": 100.0, "map75": 100.0}


def test_hand_computed_ap_at_both_thresholds():
    # class 1, one ground truth per image; predictions A (0.9, IoU 0.6), B (0.8, IoU 0.4), C (0.7, IoU 0.9)
    gt = [Instances(strip((0, 10)), [1]), Instances(strip((0, 10)), [1])]
    pred = [Instances(strip((0, 6)), [1], [0.9]), Instances(strip((0, 4), (0, 9)), [1, 1], [0.8, 0.7])]
    # IoU 0.5: A TP, B FP, C TP -> precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1 -> AP 1/2 + 1/2 * 2/3
    assert average_precision_per_class(pred, gt, 0.5)[1] == pytest.approx(0.5 + 1 / 3)
    # IoU 0.75: only C -> precision 1/3 at recall 1/2 -> AP 1/6
    assert average_precision_per_class(pred, gt, 0.75)[1] == pytest.approx(1 / 6)
    assert instance_map(pred, gt) == pytest.approx({"map50": 250 / 3, "map75": 50 / 3})


def test_a_taken_best_match_is_a_false_positive():
    gt = [Instances(strip((0, 10), (10, 20)), [1, 1])]
    # P2's best match is g0 (IoU 10/14), already taken by P1; g1 (IoU 0.2) is no fallback
    pred = [Instances(strip((0, 10), (0, 14)), [1, 1], [0.9, 0.8])]
    assert average_precision_per_class(pred, gt, 0.5)[1] == pytest.approx(0.5)


def test_missed_classes_score_zero_and_unlabelled_predictions_are_ignored():
    gt = [Instances(strip((0, 10), (10, 20)), [1, 2])]
    pred = [Instances(strip((0, 10), (5, 15)), [1, 3], [0.9, 0.9])]  # class 2 missed, class 3 absent
    ap = average_precision_per_class(pred, gt, 0.5)
    assert ap[1] == 1.0 and ap[2] == 0.0 and np.isnan(ap[3])
    assert instance_map(pred, gt)["map50"] == 50.0


def test_a_semantic_blob_is_not_two_touching_instances():
    """Two touching instances of one class: their union as one prediction finds one at IoU 0.5."""
    gt = [Instances(strip((0, 10), (10, 20)), [1, 1])]
    blob = [Instances(strip((0, 20)), [1], [1.0])]
    assert instance_map(blob, gt) == {"map50": 50.0, "map75": 0.0}


def test_ground_truth_from_voc_and_sbd_layouts():
    objects = np.array([[0, 1, 1, 255, 2, 2], [0, 1, 255, 255, 2, 3]], np.uint8)
    classes = np.array([[0, 4, 4, 255, 4, 4], [0, 4, 255, 255, 4, 2]], np.uint8)
    voc = instances_from_voc(objects, classes)
    assert voc.labels.tolist() == [4, 4, 2] and voc.masks.sum((1, 2)).tolist() == [3, 3, 1]
    classes[0, 4] = 2
    with pytest.raises(ValueError, match=r"x\.png: instance 2 covers classes \[2, 4\]"):
        instances_from_voc(objects, classes, "x.png")
    sbd = instances_from_sbd(np.array([[0, 1, 2], [2, 2, 0]]), np.array([[15], [3]]))
    assert sbd.labels.tolist() == [15, 3] and sbd.masks.sum((1, 2)).tolist() == [1, 3]


def test_bad_input_says_what_is_wrong():
    with pytest.raises(ValueError, match="need scores"):
        average_precision_per_class([Instances(strip((0, 2)), [1])], [Instances(strip((0, 2)), [1])], 0.5)
    with pytest.raises(ValueError, match="one label each"):
        Instances(strip((0, 2)), [1, 2])


def test_agrees_with_torchmetrics_coco_on_a_dense_recall_grid():
    """COCO's interpolated AP on a 10,001-point recall grid equals the VOC all-point AP (to 1e-4)."""
    pytest.importorskip("torchmetrics")
    try:
        import pycocotools  # noqa: F401
        backend = "pycocotools"
    except ImportError:
        pytest.importorskip("faster_coco_eval")
        backend = "faster_coco_eval"
    import torch
    from torchmetrics.detection import MeanAveragePrecision

    rng = np.random.default_rng(0)
    gts, preds = [], []
    for _ in range(6):
        spans = [(int(a), int(a) + int(rng.integers(4, 9))) for a in rng.integers(0, 30, 3)]
        gts.append(Instances(strip(*spans, width=40), rng.integers(1, 3, 3)))
        jitter = [(max(0, s + int(rng.integers(-3, 4))), e + int(rng.integers(-3, 4))) for s, e in spans]
        preds.append(Instances(strip(*jitter, width=40), rng.integers(1, 3, 3), rng.random(3)))
    metric = MeanAveragePrecision(iou_type="segm", backend=backend, iou_thresholds=[0.5],
                                  rec_thresholds=np.linspace(0, 1, 10001).tolist(),
                                  max_detection_thresholds=[1, 10, 100], class_metrics=True)
    metric.update([{"masks": torch.from_numpy(p.masks), "labels": torch.from_numpy(p.labels),
                    "scores": torch.from_numpy(p.scores).float()} for p in preds],
                  [{"masks": torch.from_numpy(g.masks), "labels": torch.from_numpy(g.labels)} for g in gts])
    coco = metric.compute()
    ours = average_precision_per_class(preds, gts, 0.5)
    assert len(coco["classes"]) == 2
    for label, ap in zip(coco["classes"].tolist(), coco["map_per_class"].tolist(), strict=True):
        assert ours[label] == pytest.approx(ap, abs=1e-4)
