"""Dense feature extractors for segmentation: the feature maps of three depths at one output
stride, as PSA's AffinityNet reads them (ResNet-38's conv4 / conv5 / conv6, all at stride 8).

`dense_backbone(name)` -> a module whose `forward(x)` returns `[level3, level4, level5]`, with
`level_channels` (their widths) and `output_stride`. The last level is what the CAM head reads.
"""

from __future__ import annotations

from torch import nn

from reprolab.catalog import Catalog
from reprolab.errors import NotBuiltError

DENSE_BACKBONES: Catalog = Catalog("dense backbone")


class TinyDense(nn.Module):
    """A small convolutional net for the tiny profile: stride 4 (a 64-pixel fixture image gives a
    16x16 map, on which a radius-5 affinity still has pairs; at stride 8 it would have none)."""

    output_stride = 4
    level_channels = (32, 48, 64)

    def __init__(self):
        super().__init__()

        def block(cin, cout, stride, dilation=1):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False),
                                 nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

        self.stem = nn.Sequential(block(3, 24, 2), block(24, 32, 2))
        self.level3 = block(32, 32, 1)
        self.level4 = block(32, 48, 1, dilation=2)
        self.level5 = block(48, 64, 1, dilation=2)

    def forward(self, x):
        x = self.stem(x)
        l3 = self.level3(x)
        l4 = self.level4(l3)
        return [l3, l4, self.level5(l4)]


class TorchvisionResNetOS8(nn.Module):
    """torchvision ResNet-50 dilated to output stride 8 (layer3 dilation 2, layer4 dilation 4, as
    DeepLab does): a stand-in with the same interface until ResNet-38 is in place."""

    output_stride = 8
    level_channels = (512, 1024, 2048)

    def __init__(self, weights=None):
        super().__init__()
        import torch
        from torchvision.models import resnet50

        net = resnet50(weights=None, replace_stride_with_dilation=[False, True, True])
        if weights is not None:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            net.load_state_dict(state.get("state_dict", state), strict=False)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1)
        self.layer2, self.layer3, self.layer4 = net.layer2, net.layer3, net.layer4

    def forward(self, x):
        l2 = self.layer2(self.stem(x))
        l3 = self.layer3(l2)
        return [l2, l3, self.layer4(l3)]


@DENSE_BACKBONES.register
def tiny_dense(weights=None) -> nn.Module:
    return TinyDense()


@DENSE_BACKBONES.register
def resnet50_os8(weights=None) -> nn.Module:
    return TorchvisionResNetOS8(weights)


@DENSE_BACKBONES.register
def resnet38(weights=None) -> nn.Module:
    """PSA's ResNet-38 (wider ResNet, stride 8): its levels conv4 (512), conv5 (1024), conv6 (4096)."""
    try:
        from reprolab.models.backbones import resnet38 as module  # the wsss-parts branch adds it
    except ImportError:
        raise NotBuiltError(
            "dense backbone resnet38: the ResNet-38 backbone (reprolab.models.backbones.resnet38, "
            "with its MXNet-converted ImageNet weights) is not in this checkout yet; the tiny profile "
            "runs on tiny_dense, and resnet50_os8 has the same interface") from None
    return module.resnet38_dense(weights)  # pragma: no cover - built on the other branch


@DENSE_BACKBONES.register
def vgg16_largefov(weights=None) -> nn.Module:
    try:
        from reprolab.models.backbones import vgg16_largefov as module
    except ImportError:
        raise NotBuiltError(
            "dense backbone vgg16_largefov: the VGG-16 DeepLab-LargeFOV backbone "
            "(reprolab.models.backbones.vgg16_largefov) is not in this checkout yet") from None
    return module.vgg16_largefov_dense(weights)  # pragma: no cover


def dense_backbone(name: str, weights=None) -> nn.Module:
    return DENSE_BACKBONES.get(name)(weights=weights)
