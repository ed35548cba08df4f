"""Image backbones: feature extractors with ``feature_dim`` and ``input_config``, by name.

``BACKBONES.get(name)(weights=path_or_None)``; ``input_config`` is the convention of the
backbone's pretrained weights (channel order, scale, mean, std, input size), as timm's
``default_cfg``. Weights come from a local file (a fetched weights card); nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from reprolab.catalog import Catalog
from reprolab.models.backbones.resnet import IMAGENET_INPUT, resnet_features

BACKBONES: Catalog = Catalog("backbone")


@BACKBONES.register
def bn_inception(weights: str | Path | None = None) -> nn.Module:
    from reprolab.models.backbones.bn_inception import BNInception, load_bn_inception_weights

    backbone = BNInception()
    if weights is not None:
        load_bn_inception_weights(backbone, weights)
    return backbone


@BACKBONES.register
def resnet18(weights: str | Path | None = None) -> nn.Module:
    return resnet_features("resnet18", weights)


@BACKBONES.register
def resnet34(weights: str | Path | None = None) -> nn.Module:
    return resnet_features("resnet34", weights)


@BACKBONES.register
def resnet50(weights: str | Path | None = None) -> nn.Module:
    return resnet_features("resnet50", weights)


@BACKBONES.register
def resnet101(weights: str | Path | None = None) -> nn.Module:
    return resnet_features("resnet101", weights)


@BACKBONES.register
def resnet38d(weights: str | Path | None = None) -> nn.Module:
    """PSA's ResNet-38 (output stride 8); ``forward`` returns conv4/conv5/conv6 features."""
    from reprolab.models.backbones.resnet38 import resnet38d as build

    return build(weights)


@BACKBONES.register
def resnet50_irn(weights: str | Path | None = None) -> nn.Module:
    """IRNet's ResNet-50 (strides 2,2,2,1: output stride 16); ``forward`` returns stages x1-x5."""
    from reprolab.models.backbones.resnet50_irn import resnet50_irn as build

    return build(weights)


@BACKBONES.register
def vgg16_largefov(weights: str | Path | None = None) -> nn.Module:
    """PSA's VGG-16 DeepLab-LargeFOV trunk (output stride 8)."""
    from reprolab.models.backbones.vgg16_largefov import vgg16_largefov as build

    return build(weights)


def create_backbone(name: str, weights: str | Path | None = None) -> nn.Module:
    return BACKBONES.get(name)(weights=weights)


def list_backbones() -> list[str]:
    return BACKBONES.names()


def backbone_input_config(name: str) -> dict:
    """The input convention of a backbone's pretrained weights, without building it."""
    from reprolab.models.backbones.bn_inception import INPUT_CONFIG as BN_INCEPTION_INPUT

    BACKBONES.get(name)  # an unknown name fails here
    if name == "vgg16_largefov":
        from reprolab.models.backbones.vgg16_largefov import VGG16_CAFFE_INPUT

        return VGG16_CAFFE_INPUT
    if name == "resnet38d":
        from reprolab.models.backbones.resnet38 import RESNET38_INPUT

        return RESNET38_INPUT
    return BN_INCEPTION_INPUT if name == "bn_inception" else IMAGENET_INPUT


__all__ = ["BACKBONES", "IMAGENET_INPUT", "backbone_input_config", "create_backbone", "list_backbones"]
