"""IRNet: only the heads train, the loss terms on hand-made fields, instances from a toy scene."""

from __future__ import annotations

import numpy as np
import torch

from reprolab.metrics.instance_segmentation import mask_iou
from reprolab.models.segmentation.irnet import IRNet, inference_maps, irnet_loss
from reprolab.models.segmentation.irnet_inference import (
    SparseTransition,
    instance_labels,
    random_walk,
    semantic_labels,
)
from reprolab.models.segmentation.path_index import PathIndex, affinity_labels


def test_only_the_heads_train():
    torch.manual_seed(0)
    model = IRNet().train()
    edge, dp = model(torch.randn(2, 3, 64, 48))
    assert edge.shape == (2, 1, 16, 12) and dp.shape == (2, 2, 16, 12)
    (edge.sum() + dp.sum()).backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    heads = model.head_parameters()
    assert all(p.grad is not None for group in heads for p in group)
    trainable = {id(p) for p in model.parameters() if p.requires_grad} - {id(p) for p in model.backbone.parameters()}
    assert trainable == {id(p) for group in heads for p in group}
    assert not model.backbone.training  # the official train() keeps the backbone in eval mode
    model.eval()
    boundary, displacement = inference_maps(model, torch.randn(3, 50, 38), pad_to=64)
    assert boundary.shape == (1, 13, 10) and displacement.shape == (2, 13, 10)
    assert 0 <= boundary.min() and boundary.max() <= 1


def test_loss_terms_vanish_on_the_fields_they_ask_for():
    """One instance of class 2 on background: D = centroid - x inside, 0 outside -> no
    displacement loss; boundary probability ~0 everywhere -> no positive-pair loss."""
    index = PathIndex(5)
    labels = np.zeros((20, 24), np.int64)
    labels[5:15, 6:18] = 2
    labels[0, :] = 255
    bg, fg, neg = (t[None] for t in affinity_labels(labels, index))
    ys, xs = np.mgrid[0:20, 0:24].astype(np.float32)
    inside = labels == 2
    dp = np.where(inside, np.stack([9.5 - ys, 11.5 - xs]), 0.0)
    no_boundary = torch.full((1, 1, 20, 24), -30.0)
    loss = irnet_loss(no_boundary, torch.from_numpy(dp)[None].float(), bg, fg, neg, index)
    assert loss["dp_fg"] < 1e-6 and loss["dp_bg"] < 1e-6 and loss["pos_aff"] < 1e-4
    assert loss["neg_aff"] > 10  # negative pairs see affinity 1: -log(1e-5)
    full_boundary = torch.full((1, 1, 20, 24), 30.0)
    flipped = irnet_loss(full_boundary, torch.zeros(1, 2, 20, 24), bg, fg, neg, index)
    assert flipped["neg_aff"] < 1e-4 and flipped["pos_aff"] > 10 and flipped["dp_fg"] > 1
    assert torch.isclose(loss["total"], (loss["pos_aff"] + loss["neg_aff"]) / 2 + (loss["dp_fg"] + loss["dp_bg"]) / 2)


def test_sparse_walk_equals_the_dense_power_on_a_larger_map():
    g = torch.Generator().manual_seed(1)
    boundary = torch.rand(1, 23, 31, generator=g, dtype=torch.float64) ** 4
    scores = torch.rand(3, 23, 31, generator=g, dtype=torch.float64)
    transition = SparseTransition(boundary, radius=5, beta=10)
    dense = transition.dense()
    assert torch.allclose(dense.sum(0), torch.ones(23 * 31, dtype=torch.float64))  # column-stochastic
    nonzero_per_column = (dense > 0).sum(0)
    assert nonzero_per_column.max() <= 2 * len(PathIndex(5).offsets) + 1  # sparse: <= 69 per pixel
    power = dense
    for _ in range(8):
        power = power @ power
    expected = ((scores * (1 - boundary)).reshape(3, -1) @ power).reshape(3, 1, 23, 31)
    torch.testing.assert_close(random_walk(scores, boundary), expected, rtol=1e-6, atol=1e-12)


def toy_scene():
    """Two touching 8x6 squares of one class on a stride-4 grid of 16x16 (a 64x64 image)."""
    h = w = 16
    squares = [(slice(4, 12), slice(2, 8)), (slice(4, 12), slice(8, 14))]
    boundary = torch.zeros(1, h, w, dtype=torch.float64)
    boundary[0, 3, 1:15] = boundary[0, 12, 1:15] = 1.0
    boundary[0, 3:13, 1] = boundary[0, 3:13, 14] = 1.0
    boundary[0, 4:12, 8] = 1.0                                   # between the two instances
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    displacement = np.zeros((2, h, w))
    cam = torch.zeros(1, h, w, dtype=torch.float64)
    for rows, cols in squares:
        cy, cx = (rows.start + rows.stop - 1) / 2, (cols.start + cols.stop - 1) / 2
        displacement[0][rows, cols] = cy - ys[rows, cols]
        displacement[1][rows, cols] = cx - xs[rows, cols]
        cam[0, int(cy) - 1:int(cy) + 2, int(cx) - 1:int(cx) + 2] = 1.0   # the discriminative part
    truth = np.zeros((2, 64, 64), bool)
    for k, (rows, cols) in enumerate(squares):
        truth[k, rows.start * 4:rows.stop * 4, cols.start * 4:cols.stop * 4] = True
    return cam, boundary, displacement, truth


def test_touching_instances_come_apart_and_the_walk_fills_them():
    cam, boundary, displacement, truth = toy_scene()
    semantic = semantic_labels(cam, np.array([3]), boundary, (64, 64))
    union = truth.any(0)
    # measured 0.956 inside, 0.945 outside (deterministic): the x4 bilinear upsampling blurs the edges
    assert (semantic[union] == 3).mean() > 0.9 and (semantic[~union] == 0).mean() > 0.9
    found = instance_labels(cam, np.array([3]), boundary, displacement, (64, 64))
    kept = found["score"] > 0
    masks = found["mask"][kept]
    assert len(masks) == 2 and set(found["class"][kept].tolist()) == {3}
    iou = mask_iou(masks, truth)
    assert iou.max(1).min() > 0.7 and sorted(iou.argmax(1).tolist()) == [0, 1]
