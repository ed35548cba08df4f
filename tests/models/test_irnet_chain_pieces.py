"""The IRNet chain's own pieces: relation labels from CAMs (cam_to_ir_label), the five-stage
backbones under the CAM network and IRNet, make_cam's stride-4 CAMs, DeepLab v2's ASPP head."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("pydensecrf")


def _scene():
    """A 48x64 grey image with a bright 16x16 square; the CAM is a peak on the square's centre."""
    image = np.full((48, 64, 3), 90, np.uint8)
    image[16:32, 24:40] = (220, 40, 40)
    yy, xx = np.mgrid[0:48, 0:64]
    cam = np.exp(-((yy - 24) ** 2 + (xx - 32) ** 2) / (2 * 6.0 ** 2))[None]
    return image, cam / cam.max()


def test_relation_labels_snap_to_the_object_where_its_colour_edge_is_clear():
    from reprolab.models.segmentation.irnet_labels import ir_label

    image, cam = _scene()
    label = ir_label(image, cam, np.array([7]))
    assert label.dtype == np.uint8 and label.shape == (48, 64)
    assert (label[17:31, 25:39] == 7).all()         # the square: confident at both thresholds
    assert label[2, 2] == 0 and label[45, 60] == 0   # far background
    assert int((label == 7).sum()) <= 18 * 18


def test_relation_labels_mark_the_unsure_band_between_the_thresholds(monkeypatch):
    """cam_to_ir_label's combination, the CRF left out (identity): foreground where the CAM beats
    0.30, background where it is below 0.05 and 255 on the ring between them."""
    from reprolab.models.segmentation import irnet_labels

    monkeypatch.setattr(irnet_labels, "crf_from_labels", lambda image, labels, n_labels: labels)
    image, cam = _scene()
    label = irnet_labels.ir_label(image, cam, np.array([7]))
    np.testing.assert_array_equal(label == 7, cam[0] > 0.30)
    np.testing.assert_array_equal(label == 0, cam[0] <= 0.05)
    np.testing.assert_array_equal(label == 255, (cam[0] > 0.05) & (cam[0] <= 0.30))


def test_relation_labels_of_an_image_without_classes_are_background():
    from reprolab.models.segmentation.irnet_labels import ir_label

    image, _ = _scene()
    assert (ir_label(image, np.zeros((0, 48, 64)), np.array([], np.int64)) == 0).all()


def test_tiny_irn_serves_the_cam_network_and_irnet_with_irnets_strides():
    from reprolab.models.segmentation.cam import CamNet
    from reprolab.models.segmentation.dense_backbones import dense_backbone, dense_output_stride
    from reprolab.models.segmentation.irnet import IRNet
    from reprolab.pipeline.irnet_steps import strided_cams

    torch.manual_seed(0)
    backbone = dense_backbone("tiny_irn")
    assert dense_output_stride("tiny_irn") == backbone.output_stride == 16
    cam_net = CamNet(backbone).eval()
    image = torch.randn(3, 70, 90)
    small, full = strided_cams(cam_net, image, torch.eye(20)[3], (1.0, 0.5), True)
    assert small.shape == (20, 18, 23) and full.shape == (20, 70, 90)
    assert float(small[3].max()) == pytest.approx(1.0, abs=2e-3) and float(small.abs().sum() - small[3].abs().sum()) == 0
    backbone.stages = True
    irnet = IRNet(backbone, backbone.stage_channels).eval()
    edge, dp = irnet(torch.randn(2, 3, 72, 88))
    assert edge.shape == (2, 1, 18, 22) and dp.shape == (2, 2, 18, 22)
    # same parameter names as the CAM network's trunk, so weights can move between the two
    assert {n for n, _ in irnet.backbone.named_parameters()} == {n for n, _ in cam_net.backbone.named_parameters()}


def test_deeplab_v2_sums_its_aspp_branches_at_the_input_size():
    from reprolab.models.segmentation.dense_backbones import dense_backbone
    from reprolab.tasks.deeplab_v2 import DeepLabV2

    torch.manual_seed(0)
    net = DeepLabV2(dense_backbone("tiny_dense"), (1, 2, 3, 4)).eval()
    x = torch.randn(1, 3, 40, 56)
    out = net(x)
    assert out.shape == (1, 21, 40, 56)
    features = net.backbone(x)[-1]
    logits = sum(branch(features) for branch in net.aspp)
    by_hand = torch.nn.functional.interpolate(logits, (40, 56), mode="bilinear", align_corners=False)
    torch.testing.assert_close(out, by_hand)
    assert len(net.aspp) == 4 and [b.dilation[0] for b in net.aspp] == [1, 2, 3, 4]
