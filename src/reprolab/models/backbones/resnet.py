"""torchvision ResNets as feature extractors (no pooling, no classifier), ImageNet weights from a file."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

IMAGENET_INPUT = {"channel_order": "RGB", "scale": 1.0, "mean": (0.485, 0.456, 0.406),
                  "std": (0.229, 0.224, 0.225), "input_size": (3, 224, 224)}


class ResNetFeatures(nn.Module):
    """A torchvision ResNet up to its last stage (no pooling, no classifier)."""

    def __init__(self, name: str, net: nn.Module | None = None):
        super().__init__()
        import torchvision

        net = net if net is not None else getattr(torchvision.models, name)(weights=None)
        self.feature_dim = net.fc.in_features
        self.input_config = IMAGENET_INPUT  # torchvision's ImageNet weights
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


def resnet_features(name: str, weights: str | Path | None = None) -> ResNetFeatures:
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


def tiny_resnet_features() -> ResNetFeatures:
    """ResNet-10 (BasicBlock, one block per stage) with no pretrained weights: the tiny profile's
    stand-in for ResNet-50/101 where a paper's idea lives in the ResNet's BatchNorms (DSBN)."""
    from torchvision.models.resnet import BasicBlock, ResNet

    return ResNetFeatures("resnet10", ResNet(BasicBlock, [1, 1, 1, 1]))
