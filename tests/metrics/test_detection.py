"""Box metrics on hand-made cases whose values are known."""

from __future__ import annotations

import pytest
import torch

from reprolab.metrics.detection import (
    Detections,
    GroundTruth,
    corloc,
    proposal_recall,
    voc07_ap,
    voc07_map,
)


def gt(boxes, classes, difficult=None):
    return GroundTruth(torch.tensor(boxes, dtype=torch.float32), torch.tensor(classes),
                       torch.tensor(difficult or [0] * len(classes)))


def det(boxes, classes, scores):
    return Detections(torch.tensor(boxes, dtype=torch.float32).view(-1, 4), torch.tensor(classes, dtype=torch.long),
                      torch.tensor(scores, dtype=torch.float32))


TRUTHS = [gt([[0, 0, 10, 10]], [0]), gt([[0, 0, 10, 10], [20, 20, 30, 30]], [0, 1])]


def test_corloc_counts_the_top_box_of_each_class_per_image():
    dets = [det([[0, 0, 10, 10], [50, 50, 60, 60]], [0, 0], [0.4, 0.9]),    # top box of class 0 misses
            det([[1, 1, 10, 10], [20, 20, 30, 30]], [0, 1], [0.9, 0.8])]    # both hit
    out = corloc(dets, TRUTHS, num_classes=2)
    assert out["corloc/0"] == 50.0 and out["corloc/1"] == 100.0 and out["corloc"] == 75.0


def test_voc07_map_perfect_half_and_difficult():
    perfect = [det([[0, 0, 10, 10]], [0], [0.9]), det([[0, 0, 10, 10], [20, 20, 30, 30]], [0, 1], [0.8, 0.7])]
    assert voc07_map(perfect, TRUTHS, 2)["map"] == pytest.approx(100.0)
    # class 0: a false positive ranked first, then both objects: precision 1/2 then 2/3 at recalls 0.5, 1
    ranked = [det([[0, 0, 10, 10], [40, 40, 50, 50]], [0, 0], [0.8, 0.95]), det([[0, 0, 10, 10]], [0], [0.7])]
    ap = voc07_map(ranked, TRUTHS, 2)
    assert ap["ap/0"] == pytest.approx(100 * 2 / 3) and ap["ap/1"] == 0.0  # class 1 never detected
    assert ap["map"] == pytest.approx(100 / 3)
    # a detection of a difficult object is ignored (neither true nor false positive)
    hard = [gt([[0, 0, 10, 10], [20, 20, 30, 30]], [0, 0], [0, 1])]
    assert voc07_map([det([[20, 20, 30, 30], [0, 0, 10, 10]], [0, 0], [0.9, 0.8])], hard, 1)["map"] == pytest.approx(100.0)
    assert voc07_ap(torch.tensor([0.5, 1.0]), torch.tensor([1.0, 0.5])) == pytest.approx((6 * 1.0 + 5 * 0.5) / 11)


def test_proposal_recall_and_average_recall():
    props = [torch.tensor([[0.0, 0.0, 10.0, 10.0]]), torch.tensor([[0.0, 0.0, 10.0, 12.0], [100.0, 100, 110, 110]])]
    out = proposal_recall(props, TRUTHS)
    # objects: IoU 1.0, 10/12 = 0.833, 0.0 (the third object is missed)
    assert out["recall@0.5"] == pytest.approx(200 / 3) and out["recall@0.7"] == pytest.approx(200 / 3)
    hits = [1 + (t <= 10 / 12) for t in [0.5 + 0.05 * i for i in range(10)]]
    assert out["ar"] == pytest.approx(100 * sum(hits) / 30)
