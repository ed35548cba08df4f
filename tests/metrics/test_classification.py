import pytest
import torch

from reprolab.metrics.classification import (
    classification_metrics,
    mean_class_accuracy,
    topk_accuracy,
)


def test_topk_accuracy_in_percent():
    scores = torch.tensor([[0.9, 0.05, 0.03, 0.02], [0.1, 0.2, 0.6, 0.1], [0.5, 0.3, 0.15, 0.05]])
    targets = torch.tensor([0, 1, 2])
    assert topk_accuracy(scores, targets, 1) == pytest.approx(100 / 3)
    assert topk_accuracy(scores, targets, 2) == pytest.approx(200 / 3)  # sample 2: label 2 is 3rd
    assert topk_accuracy(scores, targets, 3) == pytest.approx(100.0)
    assert topk_accuracy(scores, targets, 5) == pytest.approx(100.0)  # k capped at the class count


def test_mean_class_accuracy_weights_classes_equally_and_skips_absent_ones():
    # class 0: 3 of 4 right, class 1: 0 of 1 right, class 2 never appears in the labels
    predictions = torch.tensor([0, 0, 0, 2, 0])
    targets = torch.tensor([0, 0, 0, 0, 1])
    scores = torch.nn.functional.one_hot(predictions, 3).float()
    assert mean_class_accuracy(scores, targets) == pytest.approx(100 * (0.75 + 0.0) / 2)
    assert topk_accuracy(scores, targets, 1) == pytest.approx(60.0)


def test_classification_metrics_names_and_shape_checks():
    scores = torch.randn(10, 6)
    targets = torch.randint(0, 6, (10,))
    metrics = classification_metrics(scores, targets)
    assert set(metrics) == {"top1", "top5", "mean_class_acc"}
    with pytest.raises(ValueError, match="expected scores"):
        classification_metrics(scores, targets[:5])
    with pytest.raises(ValueError, match="6 classes, expected 7"):
        classification_metrics(scores, targets, num_classes=7)
