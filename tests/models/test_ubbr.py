"""UBBR's pieces: offsets, IoU and its loss, rough boxes, the network and iterative refinement."""

from __future__ import annotations

import math

import pytest
import torch

from reprolab.models.ubbr import apply_offsets, build_ubbr, iou_loss, paired_iou, rough_boxes


def test_offsets_move_and_scale_boxes():
    box = torch.tensor([[10.0, 20.0, 30.0, 60.0]])  # centre (20, 40), 20 x 40
    assert torch.equal(apply_offsets(box, torch.zeros(1, 4)), box)
    moved = apply_offsets(box, torch.tensor([[0.5, -0.25, math.log(2), 0.0]]))
    assert torch.allclose(moved, torch.tensor([[10.0, 10.0, 50.0, 50.0]]))  # centre (30, 30), 40 x 40


def test_paired_iou_and_the_loss():
    a = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 1.0, 1.0]])
    b = torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 0.0, 15.0, 10.0], [5.0, 5.0, 6.0, 6.0]])
    assert torch.allclose(paired_iou(a, b), torch.tensor([1.0, 50 / 150, 0.0]))
    assert iou_loss(a[:1], b[:1]).item() == pytest.approx(-math.log(1 + 1e-4), abs=1e-6)
    assert iou_loss(a[2:], b[2:]).item() == pytest.approx(-math.log(1e-4), rel=1e-4)  # finite when disjoint
    offsets = torch.zeros(1, 4, requires_grad=True)
    iou_loss(apply_offsets(a[1:2], offsets), b[1:2]).backward()
    assert offsets.grad[0, 0] < 0  # moving right (towards b) lowers the loss


def test_rough_boxes_overlap_their_box_by_the_threshold_and_follow_the_seed():
    gt = torch.tensor([[10.0, 10.0, 40.0, 50.0], [60.0, 5.0, 90.0, 25.0]])
    boxes = rough_boxes(gt, 50, min_iou=0.5, generator=torch.Generator().manual_seed(3), image_size=(64, 100))
    assert boxes.shape == (100, 4)
    iou = paired_iou(boxes, gt.repeat_interleave(50, 0))
    assert (iou >= 0.5).all() and (iou < 0.999).float().mean() > 0.9  # rough, not the ground truth
    assert (boxes[:, 0::2] <= 100).all() and (boxes[:, 1::2] <= 64).all() and (boxes >= 0).all()
    again = rough_boxes(gt, 50, min_iou=0.5, generator=torch.Generator().manual_seed(3), image_size=(64, 100))
    assert torch.equal(boxes, again)


def test_an_untrained_regressor_returns_its_boxes_and_refinement_iterates():
    torch.manual_seed(0)
    model = build_ubbr("tiny_convnet", roi_size=7, hidden=32).eval()
    images = torch.randn(2, 3, 64, 64)
    rois = torch.tensor([[0, 4.0, 4.0, 30.0, 30.0], [1, 10.0, 12.0, 50.0, 40.0]])
    assert model(images, rois).shape == (2, 4)
    assert torch.allclose(model.refine(images, rois, steps=3), rois[:, 1:])  # zero-initialised offsets
    with torch.no_grad():
        model.offsets.bias.copy_(torch.tensor([0.1, 0.0, 0.0, 0.0]))
    once, twice = model.refine(images, rois, steps=1), model.refine(images, rois, steps=2)
    width = rois[:, 3] - rois[:, 1]
    assert torch.allclose(once[:, 0] - rois[:, 1], 0.1 * width)
    assert torch.allclose(twice[:, 0] - rois[:, 1], 0.2 * width)  # fed its own output back


def test_the_resnet_c4_regressor_pools_layer3_and_runs_layer4_per_box():
    model = build_ubbr("resnet50", roi_size=14)
    assert model.stride == 16 and model.head[0][0].conv1.in_channels == 1024  # layer4 after RoIAlign
    out = model(torch.randn(1, 3, 64, 64), torch.tensor([[0, 0.0, 0.0, 32.0, 32.0]]))
    assert out.shape == (1, 4)
    with pytest.raises(ValueError, match="not built"):
        build_ubbr("vgg16")
