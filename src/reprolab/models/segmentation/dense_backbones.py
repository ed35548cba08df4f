"""Dense feature extractors for segmentation: the feature maps of three depths at one output
stride, as PSA's AffinityNet reads them (ResNet-38's conv4 / conv5 / conv6, all at stride 8).

`dense_backbone(name)` -> a module whose `forward(x)` returns `[level3, level4, level5]`, with
`level_channels` (their widths) and `output_stride`. The last level is what the CAM head reads.
"""

from __future__ import annotations

from torch import nn

from reprolab.catalog import Catalog

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


class TappedBackbone(nn.Module):
    """A backbone whose forward returns a dict of named features (reprolab.models.backbones),
    seen as the list of three levels `taps` (resnet38d: conv4 / conv5 / conv6)."""

    def __init__(self, trunk: nn.Module, taps: tuple[str, str, str], level_channels: tuple[int, int, int]):
        super().__init__()
        self.trunk, self.taps, self.level_channels = trunk, taps, level_channels
        self.output_stride = int(trunk.stride)

    def forward(self, x):
        features = self.trunk(x)
        return [features[name] for name in self.taps]


@DENSE_BACKBONES.register
def resnet38(weights=None, frozen=("conv1a", "b2", "b2_1", "b2_2")) -> nn.Module:
    """PSA's ResNet-38 (resnet38_cls / resnet38_aff: conv1a and b2* frozen, BatchNorm frozen)."""
    from reprolab.models.backbones.resnet38 import resnet38d

    trunk = resnet38d(weights, frozen=tuple(frozen))
    return TappedBackbone(trunk, ("conv4", "conv5", "conv6"), (512, 1024, 4096))


def _vgg16(weights, fc6_dilation: int) -> nn.Module:
    from reprolab.models.backbones.vgg16_largefov import vgg16_largefov as build

    return TappedBackbone(build(weights, fc6_dilation=fc6_dilation), ("conv4", "conv5", "conv5fc"), (512, 512, 1024))


@DENSE_BACKBONES.register
def vgg16_largefov(weights=None) -> nn.Module:
    """PSA's VGG-16 trunk as vgg16_cls builds it (fc6 dilation 1); levels conv4 / conv5 / fc7."""
    return _vgg16(weights, 1)


@DENSE_BACKBONES.register
def vgg16_largefov_aff(weights=None) -> nn.Module:
    """As vgg16_aff builds it: fc6 dilation 4."""
    return _vgg16(weights, 4)


@DENSE_BACKBONES.register
def vgg16_largefov_deeplab(weights=None) -> nn.Module:
    """DeepLab-LargeFOV: fc6 dilation 12 (the segmentation network of the "Ours-DeepLab" rows)."""
    return _vgg16(weights, 12)


def dense_backbone(name: str, weights=None) -> nn.Module:
    return DENSE_BACKBONES.get(name)(weights=weights)


def dense_output_stride(name: str) -> int:
    """The output stride of a dense backbone, without building it."""
    DENSE_BACKBONES.get(name)
    if name in ("resnet50_irn", "tiny_irn"):
        return 16  # IRNet's strides (2, 2, 2, 1)
    return TinyDense.output_stride if name == "tiny_dense" else 8


def dense_input_config(name: str) -> dict:
    """How images are normalized for a dense backbone (its pretrained weights' convention)."""
    DENSE_BACKBONES.get(name)
    if name.startswith("vgg16_largefov"):
        from reprolab.models.backbones.vgg16_largefov import VGG16_CAFFE_INPUT

        return VGG16_CAFFE_INPUT
    from reprolab.models.backbones.resnet38 import RESNET38_INPUT

    return RESNET38_INPUT  # ImageNet mean / std, RGB in [0, 1]: resnet38, resnet50_os8, tiny_dense


@DENSE_BACKBONES.register
def resnet50_irn(weights=None) -> nn.Module:
    """IRNet's ResNet-50 (strides 2, 2, 2, 1; reprolab.models.segmentation.irnet_backbones)."""
    from reprolab.models.segmentation.irnet_backbones import resnet50_irn_backbone

    return resnet50_irn_backbone(weights)


@DENSE_BACKBONES.register
def tiny_irn(weights=None) -> nn.Module:
    """IRNet's five strides on a small net (the tiny profile's stand-in for resnet50_irn)."""
    from reprolab.models.segmentation.irnet_backbones import tiny_irn_backbone

    return tiny_irn_backbone(weights)
