"""Embedding model: BN-Inception features, GAP+GMP head, frozen BN, warm-up, weights, transforms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from reprolab.data.transforms.images import input_transform
from reprolab.models.backbones import create_backbone
from reprolab.models.backbones.bn_inception import BNInception, load_bn_inception_weights
from reprolab.models.embedding import EmbeddingModel, build_embedding_model, param_groups
from reprolab.models.losses import ProxyAnchorLoss


class TinyBackbone(nn.Module):
    """Conv + BN with a known feature map, to check pooling and BN handling quickly."""

    feature_dim = 6
    input_config = {"channel_order": "RGB", "scale": 1.0, "mean": (0, 0, 0), "std": (1, 1, 1)}

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


def test_bn_inception_feature_map_and_parameter_count():
    net = BNInception().eval()
    with torch.no_grad():
        out = net(torch.randn(1, 3, 224, 224))
    assert out.shape == (1, 1024, 7, 7)
    # the Cadene port (official net/bn_inception.py) without its 1000-way classifier, counted there
    assert sum(p.numel() for p in net.parameters()) == 10_270_240


def test_head_sums_global_average_and_max_pooling_then_normalises():
    torch.manual_seed(0)
    model = EmbeddingModel(TinyBackbone(), embedding_size=4).eval()
    x = torch.randn(3, 3, 8, 8)
    with torch.no_grad():
        features = model.backbone(x)
        pooled = features.mean((2, 3)) + features.amax((2, 3))
        expected = torch.nn.functional.normalize(model.embedding(pooled), dim=1)
        out = model(x)
    torch.testing.assert_close(out, expected)
    assert torch.allclose(out.norm(dim=1), torch.ones(3))
    unnormalised = EmbeddingModel(TinyBackbone(), 4, pooling="avg", normalize=False).eval()
    assert not torch.allclose(unnormalised(x).norm(dim=1), torch.ones(3))


def test_embedding_layer_init_is_kaiming_fan_out_with_zero_bias():
    torch.manual_seed(0)
    model = EmbeddingModel(BNInception(), embedding_size=512)
    assert model.embedding.weight.shape == (512, 1024)
    assert model.embedding.weight.std().item() == pytest.approx(math.sqrt(2 / 512), rel=0.02)
    assert torch.count_nonzero(model.embedding.bias) == 0


def test_frozen_batch_norm_keeps_statistics_and_affine_in_training():
    torch.manual_seed(0)
    model = EmbeddingModel(TinyBackbone(), 4, freeze_bn=True)
    model.train()
    assert model.training and not model.backbone.bn.training
    before = model.backbone.bn.running_mean.clone()
    model(torch.randn(4, 3, 8, 8) + 3).sum().backward()
    torch.testing.assert_close(model.backbone.bn.running_mean, before)
    assert model.backbone.bn.weight.grad is None and model.backbone.conv.weight.grad is not None
    free = EmbeddingModel(TinyBackbone(), 4).train()
    free(torch.randn(4, 3, 8, 8) + 3)
    assert not torch.allclose(free.backbone.bn.running_mean, before)


def test_warm_up_trains_only_the_embedding_and_then_releases_the_backbone():
    model = EmbeddingModel(TinyBackbone(), 4, freeze_bn=True)
    model.freeze_backbone(True)
    model(torch.randn(2, 3, 8, 8)).sum().backward()
    assert model.backbone.conv.weight.grad is None
    assert model.embedding.weight.grad is not None
    model.freeze_backbone(False)
    assert model.backbone.conv.weight.requires_grad
    assert not model.backbone.bn.weight.requires_grad  # frozen BN stays frozen after warm-up


def test_param_groups_give_proxies_a_hundred_times_the_learning_rate():
    model = EmbeddingModel(TinyBackbone(), 4)
    groups = param_groups(model, ProxyAnchorLoss(3, 4), lr=1e-4)
    by_name = {g["name"]: g for g in groups}
    assert by_name["backbone"]["lr"] == 1e-4 and by_name["embedding"]["lr"] == 1e-4
    assert by_name["loss"]["lr"] == pytest.approx(1e-2)
    total = sum(len(g["params"]) for g in groups)
    assert total == len(list(model.parameters())) + 1


def test_bn_inception_weights_load_from_a_local_cadene_style_file(tmp_path):
    torch.manual_seed(0)
    source = BNInception()
    state = {k: (v[None] if v.ndim == 1 else v) for k, v in source.state_dict().items()
             if not k.endswith("num_batches_tracked")}  # the port stores BN vectors as (1, C)
    state["last_linear.weight"], state["last_linear.bias"] = torch.randn(1000, 1024), torch.randn(1000)
    path = tmp_path / "bn_inception-52deb4733.pth"
    torch.save(state, path)
    model = build_embedding_model("bn_inception", 64, weights=path)
    torch.testing.assert_close(model.backbone.inception_5b_1x1_bn.running_var,
                               source.inception_5b_1x1_bn.running_var)
    del state["inception_4a_1x1.weight"]
    torch.save(state, path)
    with pytest.raises(ValueError, match="missing keys.*inception_4a_1x1.weight"):
        load_bn_inception_weights(BNInception(), path)
    with pytest.raises(FileNotFoundError, match="weights-bninception-imagenet"):
        build_embedding_model("bn_inception", 64, weights=tmp_path / "absent.pth")


def test_resnet_backbones_and_torchvision_weights(tmp_path):
    import torchvision

    torch.manual_seed(0)
    reference = torchvision.models.resnet34(weights=None).eval()
    path = tmp_path / "resnet34.pth"
    torch.save(reference.state_dict(), path)
    backbone = create_backbone("resnet34", weights=path).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        body = nn.Sequential(*list(reference.children())[:-2])
        torch.testing.assert_close(backbone(x), body(x))
    assert backbone.feature_dim == 512
    assert create_backbone("resnet50").feature_dim == 2048
    with pytest.raises(ValueError, match="unknown backbone 'vgg'"):
        create_backbone("vgg")


def test_input_transform_bn_inception_is_bgr_in_0_255_minus_mean():
    image = Image.fromarray(np.full((300, 400, 3), (255, 0, 10), dtype=np.uint8))
    model = build_embedding_model("bn_inception", 8)
    out = input_transform(model.input_config, train=False)(image)
    assert out.shape == (3, 224, 224)
    torch.testing.assert_close(out[:, 0, 0], torch.tensor([10 - 104.0, 0 - 117.0, 255 - 128.0]))
    resnet = input_transform(create_backbone("resnet18").input_config, train=True, crop=256)(image)
    assert resnet.shape == (3, 256, 256)
    torch.testing.assert_close(resnet[:, 5, 5], torch.tensor([(1 - 0.485) / 0.229, (0 - 0.456) / 0.224,
                                                              (10 / 255 - 0.406) / 0.225]))
