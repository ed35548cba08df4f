"""PSA's pieces: affinity pairs and labels, the affinity loss, the random walk (sparse == dense),
the dense CRF, the CAM head, and the official optimizer quirk."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reprolab.models.segmentation.affinity import (
    affinity_label_map,
    affinity_loss,
    pair_indices,
    pair_labels,
    search_offsets,
)
from reprolab.models.segmentation.random_walk import (
    dense_affinity_matrix,
    propagate,
    random_walk_dense,
    random_walk_sparse,
    transition_matrix,
)


def test_offsets_are_the_half_disc():
    offsets = search_offsets(5)
    assert len(offsets) == 34  # each unordered pair within radius 5 once
    full = {(dy, dx) for dy in range(-4, 5) for dx in range(-4, 5) if 0 < dy * dy + dx * dx < 25}
    assert set(offsets) | {(-dy, -dx) for dy, dx in offsets} == full
    assert not set(offsets) & {(-dy, -dx) for dy, dx in offsets}


def test_pair_indices_point_at_the_offsets():
    source, target = pair_indices(5, 7, 12)
    assert source.numel() == (7 - 4) * (12 - 8)
    rows, cols = source // 12, source % 12
    for k, (dy, dx) in enumerate(search_offsets(5)):
        chunk = target[k * source.numel():(k + 1) * source.numel()]
        assert torch.equal(chunk // 12, rows + dy) and torch.equal(chunk % 12, cols + dx)
    with pytest.raises(ValueError, match="no pairs"):
        pair_indices(5, 8, 8)


def test_affinity_labels_from_low_and_high_alpha():
    # 1 x 4 map, K = 2 (background, one class): confident fg, unsure, confident bg, no score
    low = torch.tensor([[[0.1, 0.8, 0.9, 0.0]], [[0.9, 0.2, 0.1, 0.0]]])
    high = torch.tensor([[[0.0, 0.1, 0.7, 0.0]], [[1.0, 0.9, 0.3, 0.0]]])
    assert affinity_label_map(low, high).tolist() == [[1, 255, 0, 255]]


def test_pair_labels_split_positives_and_negatives():
    label = torch.zeros(6, 10, dtype=torch.int64)
    label[:, 5:] = 1
    label[0, 0] = 255
    bg, fg, neg = pair_labels(label)
    assert ((bg + fg + neg) <= 1).all()
    source, target = pair_indices(5, 6, 10)
    flat = label.reshape(-1)
    l_from, l_to = flat[source].unsqueeze(0), flat[target].view(-1, source.numel())
    assert torch.equal(neg.bool(), (l_from != l_to) & (l_from < 255) & (l_to < 255))
    assert torch.equal(fg.bool(), (l_from == l_to) & (l_from == 1))
    assert torch.equal(bg.bool(), (l_from == l_to) & (l_from == 0))


def test_affinity_loss_weights_the_terms_as_train_aff():
    aff = torch.tensor([[0.9, 0.5, 0.2, 0.7]])
    bg, fg, neg = (torch.tensor([[1.0, 0, 0, 0]]), torch.tensor([[0, 1.0, 0, 0]]), torch.tensor([[0, 0, 1.0, 1.0]]))
    expected = (-np.log(0.9 + 1e-5) / (1 + 1e-5)) / 4 + (-np.log(0.5 + 1e-5) / (1 + 1e-5)) / 4 + \
        ((-np.log(1 + 1e-5 - 0.2) - np.log(1 + 1e-5 - 0.7)) / (2 + 1e-5)) / 2
    assert affinity_loss(aff, bg, fg, neg).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("size", [(6, 10), (9, 13)])
def test_sparse_walk_equals_dense(size):
    height, width = size
    g = torch.Generator().manual_seed(height)
    source, target = pair_indices(5, height, width)
    aff = torch.rand(target.numel() // source.numel(), source.numel(), generator=g, dtype=torch.float64)
    cam = torch.rand(21, height * width, generator=g, dtype=torch.float64)
    dense = random_walk_dense(cam, transition_matrix(dense_affinity_matrix(aff, 5, height, width)))
    sparse = random_walk_sparse(cam, aff, 5, height, width)
    torch.testing.assert_close(sparse, dense, rtol=1e-6, atol=0)


def test_walk_spreads_a_cam_inside_its_region_only():
    # two regions with affinity 1 inside and ~0 across: the CAM covering most of the left region
    # fills the rest of it (its strip with no activation), and nothing leaks into the right one
    height, width = 6, 20
    region = (torch.arange(width) >= 10).repeat(height, 1).reshape(-1)
    source, target = pair_indices(5, height, width)
    same = region[source].unsqueeze(0) == region[target].view(-1, source.numel())
    aff = torch.where(same, 1.0, 1e-3).double()
    cam = torch.zeros(20, height * 4, width * 4, dtype=torch.float64)
    cam[0, :, :32] = 0.6
    assert (cam[:, :, 32:40].amax(0) == 0).all()  # the strip starts as background
    labels = propagate(cam, aff, 5, 4, alpha=16, logt=4).argmax(0)
    assert (labels[:, 32:38] == 1).float().mean() > 0.9
    assert (labels[:, 42:] == 0).all()


def test_dense_crf_follows_edges():
    from reprolab.models.segmentation.crf import dense_crf

    image = np.zeros((20, 30, 3), np.uint8)
    image[:, 15:] = 200
    truth = np.zeros((20, 30), np.int64)
    truth[:, 15:] = 1
    rng = np.random.RandomState(0)
    right = np.where(truth == 1, 0.7, 0.3)
    flipped = rng.rand(20, 30) < 0.15  # noisy unaries: 15% of the pixels point the wrong way
    right = np.where(flipped, 1 - right, right)
    probs = np.stack([1 - right, right]).astype(np.float32)
    assert (probs.argmax(0) != truth).mean() > 0.1
    out = dense_crf(image, probs)
    assert out.shape == (2, 20, 30)
    np.testing.assert_allclose(out.sum(0), 1, rtol=1e-4)
    assert (out.argmax(0) != truth).mean() < 0.02
    with pytest.raises(ValueError, match="uint8"):
        dense_crf(image.astype(np.float32), probs)


def test_official_optimizer_puts_weight_decay_in_momentum():
    from reprolab.tasks.segmentation import CamClassification

    def groups(flag: bool):
        task = CamClassification({
            "recipe": "t", "profile": "tiny", "benchmark_spec": {"dataset": "voc2012"},
            "model": {"backbone": "tiny_dense", "freeze_bn": False, "official_optimizer": flag},
            "optim": {"lr": 0.1, "weight_decay": 5e-4, "momentum": 0.9, "batch_size": 2, "epochs": 1}})
        return task.param_groups(task.build_model())

    official = groups(True)
    assert {g["momentum"] for g in official} == {5e-4}
    # tiny_dense's convolutions and fc8 have no bias; its BatchNorm joins the pretrained group
    assert {g["name"]: (g["lr_mult"], g["wd_mult"]) for g in official} == {"pretrained": (1, 1), "scratch": (10, 1)}
    assert all("momentum" not in g for g in groups(False))


def test_dense_backbones_state_their_stride_and_levels():
    from reprolab.models.segmentation.dense_backbones import (
        DENSE_BACKBONES,
        dense_backbone,
        dense_output_stride,
    )

    for name in ("tiny_dense", "resnet50_os8", "vgg16_largefov", "vgg16_largefov_aff", "vgg16_largefov_deeplab"):
        backbone = dense_backbone(name).eval()
        with torch.no_grad():
            levels = backbone(torch.zeros(1, 3, 64, 96))
        assert [level.shape[1] for level in levels] == list(backbone.level_channels), name
        stride = dense_output_stride(name)
        assert backbone.output_stride == stride and all(level.shape[-2:] == (64 // stride, 96 // stride) for level in levels), name
    assert "resnet38" in DENSE_BACKBONES  # its parity: tests/parity/test_psa_parity.py
