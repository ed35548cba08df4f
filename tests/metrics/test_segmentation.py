"""mIoU from a confusion matrix (21 labels, 255 ignored), per-class IoU, the chance level."""

from __future__ import annotations

import pytest
import torch

from reprolab.metrics.segmentation import (
    chance_confusion,
    confusion_matrix,
    iou_per_class,
    segmentation_metrics,
)


def test_confusion_ignores_void_and_counts_rows_as_ground_truth():
    target = torch.tensor([[0, 0, 1, 255], [2, 2, 1, 1]])
    prediction = torch.tensor([[0, 1, 1, 2], [2, 0, 1, 1]])
    confusion = confusion_matrix(prediction, target, num_classes=3)
    assert confusion.tolist() == [[1, 1, 0], [0, 3, 0], [1, 0, 1]]


def test_miou_by_hand():
    # IoU: background 1 / (2 + 2 - 1) = 1/3, class 1: 3 / (3 + 4 - 3) = 3/4, class 2: 1 / 2
    confusion = torch.zeros(21, 21, dtype=torch.int64)
    confusion[:3, :3] = torch.tensor([[1, 1, 0], [0, 3, 0], [1, 0, 1]])
    metrics = segmentation_metrics(confusion)
    assert metrics["iou/background"] == pytest.approx(100 / 3)
    assert metrics["iou/aeroplane"] == pytest.approx(75.0)
    assert metrics["iou/bicycle"] == pytest.approx(50.0)
    assert metrics["miou"] == pytest.approx(100 * (1 / 3 + 3 / 4 + 1 / 2) / 3)  # absent classes: no IoU
    assert "iou/bird" not in metrics
    assert metrics["pixel_accuracy"] == pytest.approx(100 * 5 / 7)


def test_perfect_and_absent_classes():
    target = torch.randint(0, 21, (50, 40), generator=torch.Generator().manual_seed(0))
    assert segmentation_metrics(confusion_matrix(target, target))["miou"] == pytest.approx(100.0)
    assert torch.isnan(iou_per_class(torch.zeros(3, 3))).all()


def test_chance_is_uniform_prediction():
    target = torch.randint(0, 3, (2000,), generator=torch.Generator().manual_seed(1))
    confusion = torch.zeros(21, 21, dtype=torch.int64)
    confusion[:3, :3] = confusion_matrix(target, target, num_classes=3)
    chance = segmentation_metrics(chance_confusion(confusion))
    assert chance["pixel_accuracy"] == pytest.approx(100 / 21)
    assert chance["miou"] < 5


def test_bad_labels_are_named():
    with pytest.raises(ValueError, match="target labels outside"):
        confusion_matrix(torch.tensor([0]), torch.tensor([30]))
    with pytest.raises(ValueError, match="differ in shape"):
        confusion_matrix(torch.zeros(2, 2), torch.zeros(2, 3))
