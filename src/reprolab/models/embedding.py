"""The embedding network of the metric-learning papers: backbone, pooling, linear embedding.

As the official Proxy-Anchor code builds it (code/net/bn_inception.py, code/net/resnet.py):
the backbone's last feature map is pooled by global average pooling *plus* global max pooling
(summed; the paper mentions only the average), a ``Linear(features, d)`` with kaiming-normal
(fan-out) weights and zero bias maps it to the embedding, and the embedding is L2-normalised.
The log-ratio paper's pose model uses average pooling only and no normalisation
(``pooling="avg", normalize=False``).

Options from the official training script:
- ``freeze_bn``: every BatchNorm stays in eval mode (running statistics frozen, also under
  ``model.train()``) and its affine parameters get no gradient (``--bn-freeze 1``).
- :meth:`EmbeddingModel.freeze_backbone`: the warm-up of ``--warm N`` epochs, when only the
  embedding layer (and the loss's proxies) are trained.

Pretrained weights are read from a local file (``weights=``); nothing is downloaded here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reprolab.models.backbones.bn_inception import INPUT_CONFIG as BN_INCEPTION_INPUT
from reprolab.models.backbones.bn_inception import BNInception, load_bn_inception_weights

IMAGENET_INPUT = {"channel_order": "RGB", "scale": 1.0, "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}
BACKBONES = ("bn_inception", "resnet18", "resnet34", "resnet50", "resnet101")
POOLINGS = ("avg+max", "avg", "max")


class ResNetFeatures(nn.Module):
    """A torchvision ResNet up to its last stage (no pooling, no classifier)."""

    def __init__(self, name: str):
        super().__init__()
        import torchvision

        net = getattr(torchvision.models, name)(weights=None)
        self.feature_dim = net.fc.in_features
        self.input_config = IMAGENET_INPUT
        self.body = nn.Sequential(
            net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3, net.layer4
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def load_imagenet(self, path: Path) -> None:
        """Load a torchvision ImageNet checkpoint (``resnet50-*.pth``); its ``fc`` is dropped."""
        state = torch.load(path, map_location="cpu", weights_only=True)
        # torchvision names (conv1, layer1.0.conv1, ...) map onto body.<index>.
        names = ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"]
        renamed = {}
        for key, value in state.items():
            head, _, rest = key.partition(".")
            if head == "fc":
                continue
            if head not in names:
                raise ValueError(f"{path}: unexpected key {key!r} for a torchvision ResNet")
            renamed[f"body.{names.index(head)}.{rest}"] = value
        missing, unexpected = self.load_state_dict(renamed, strict=False)
        if missing or unexpected:
            raise ValueError(f"{path} does not match this ResNet: missing {missing[:5]}, unexpected {unexpected[:5]}")


def backbone_input_config(name: str) -> dict[str, Any]:
    """The input convention of a backbone's pretrained weights (channel order, scale, mean, std)."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; expected one of {', '.join(BACKBONES)}")
    return BN_INCEPTION_INPUT if name == "bn_inception" else IMAGENET_INPUT


def build_backbone(name: str, weights: str | Path | None = None) -> nn.Module:
    """A feature extractor with ``feature_dim`` and ``input_config``; weights from a local file."""
    if name == "bn_inception":
        backbone: nn.Module = BNInception()
        if weights is not None:
            load_bn_inception_weights(backbone, weights)
        return backbone
    if name in BACKBONES:
        backbone = ResNetFeatures(name)
        if weights is not None:
            path = Path(weights)
            if not path.is_file():
                raise FileNotFoundError(
                    f"{name} weights not found at {path}; fetch them with "
                    f"`reprolab data fetch weights-{name}-imagenet` or place the torchvision checkpoint there"
                )
            backbone.load_imagenet(path)
        return backbone
    raise ValueError(f"unknown backbone {name!r}; expected one of {', '.join(BACKBONES)}")


class EmbeddingModel(nn.Module):
    """Backbone -> global pooling -> Linear(feature_dim, embedding_size) -> optional L2 norm."""

    def __init__(
        self,
        backbone: nn.Module,
        embedding_size: int,
        pooling: str = "avg+max",
        normalize: bool = True,
        freeze_bn: bool = False,
    ):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; expected one of {', '.join(POOLINGS)}")
        self.backbone = backbone
        self.pooling = pooling
        self.normalize = normalize
        self.freeze_bn = freeze_bn
        self.embedding = nn.Linear(backbone.feature_dim, embedding_size)
        nn.init.kaiming_normal_(self.embedding.weight, mode="fan_out")
        nn.init.zeros_(self.embedding.bias)
        if freeze_bn:
            for module in self.batch_norms():
                module.weight.requires_grad_(False)
                module.bias.requires_grad_(False)
            self.train(self.training)

    @property
    def embedding_size(self) -> int:
        return self.embedding.out_features

    @property
    def input_config(self) -> dict[str, Any]:
        return self.backbone.input_config

    def batch_norms(self) -> list[nn.modules.batchnorm._BatchNorm]:
        return [m for m in self.backbone.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    def train(self, mode: bool = True) -> EmbeddingModel:
        super().train(mode)
        if self.freeze_bn:  # frozen BN keeps its ImageNet statistics in training too
            for module in self.batch_norms():
                module.eval()
        return self

    def freeze_backbone(self, frozen: bool = True) -> None:
        """Warm-up: stop (or restart) gradients to the backbone; frozen BN affines stay frozen."""
        frozen_bn = {id(p) for m in self.batch_norms() for p in (m.weight, m.bias)} if self.freeze_bn else set()
        for param in self.backbone.parameters():
            if id(param) not in frozen_bn:
                param.requires_grad_(not frozen)

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        if self.pooling == "avg":
            return features.mean(dim=(2, 3))
        if self.pooling == "max":
            return features.amax(dim=(2, 3))
        return features.mean(dim=(2, 3)) + features.amax(dim=(2, 3))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.embedding(self.pool(self.backbone(images)))
        return F.normalize(x, dim=1) if self.normalize else x

    def head_parameters(self) -> list[nn.Parameter]:
        return list(self.embedding.parameters())


def build_embedding_model(
    backbone: str = "bn_inception",
    embedding_size: int = 512,
    pooling: str = "avg+max",
    normalize: bool = True,
    freeze_bn: bool = False,
    weights: str | Path | None = None,
) -> EmbeddingModel:
    """The embedding model of a recipe's ``model:`` block (weights: a local file path or None)."""
    return EmbeddingModel(build_backbone(backbone, weights), embedding_size, pooling, normalize, freeze_bn)


def param_groups(model: EmbeddingModel, criterion: nn.Module, lr: float) -> list[dict[str, Any]]:
    """Optimizer groups of the official train.py: backbone at lr, embedding at lr, loss params
    (proxies) at lr x ``criterion.lr_multiplier`` (100 for Proxy Anchor, 1 for Proxy-NCA)."""
    head = {id(p) for p in model.head_parameters()}
    groups = [
        {"params": [p for p in model.parameters() if id(p) not in head], "lr": lr, "name": "backbone"},
        {"params": model.head_parameters(), "lr": lr, "name": "embedding"},
    ]
    loss_params = list(criterion.parameters())
    if loss_params:
        multiplier = float(getattr(criterion, "lr_multiplier", 1.0))
        groups.append({"params": loss_params, "lr": lr * multiplier, "name": "loss"})
    return groups


class RGBToBGR(nn.Module):
    """Reverse the channel axis of a (..., 3, H, W) image (the Caffe weights expect BGR)."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return image.flip(-3)


def input_transform(input_config: dict[str, Any], train: bool, crop: int = 224, resize: int = 256):
    """The official image transform: RandomResizedCrop + flip (train) or Resize + CenterCrop (eval),
    then the backbone's convention (BN-Inception: BGR in [0, 255] minus the mean; ResNet: ImageNet
    mean/std). The 256x256 (dagger) rows use ``crop=256, resize=292`` (code/dataset/utils.py)."""
    from torchvision.transforms import v2

    geometry = (
        [v2.RandomResizedCrop(crop, antialias=True), v2.RandomHorizontalFlip()]
        if train
        else [v2.Resize(resize, antialias=True), v2.CenterCrop(crop)]
    )
    scale = float(input_config["scale"])
    mean = [m / scale for m in input_config["mean"]]
    std = [s / scale for s in input_config["std"]]
    steps = [v2.ToImage(), *geometry, v2.ToDtype(torch.float32, scale=True)]
    if input_config["channel_order"] == "BGR":
        steps.append(RGBToBGR())
    # (x - mean/scale) / (std/scale) == (scale * x - mean) / std
    steps.append(v2.Normalize(mean=mean, std=std))
    return v2.Compose(steps)
