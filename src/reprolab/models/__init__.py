"""Model factory: ``create_model(name, **kwargs)``, in the spirit of timm.

Video classifiers (SELFY, MotionSqueeze and their TSM/TSN baselines)::

    model = create_model("selfy_tsm_resnet50", num_classes=174, num_segments=8,
                         pretrained="path/to/resnet50-19c8e357.pth")
    logits = model(clips)            # clips (B, T, 3, H, W) -> logits (B, num_classes)
    optimizer = torch.optim.SGD(param_groups(model, lr=0.01, weight_decay=5e-4),
                                lr=0.01, momentum=0.9, nesterov=True)

Video models take keyword arguments ``num_classes`` (required), ``num_segments`` (8),
``pretrained`` (None for random init, else the path of a torchvision ImageNet ResNet checkpoint;
nothing is downloaded), ``dropout`` (0.5), ``width_multiplier`` (1.0; e.g. 0.25 for the tiny
CPU profile: stage widths 16/32/64/128, no ImageNet weights), ``zero_init_residual`` and, for
SELFY, ``window`` ((5, 9, 9)); for MotionSqueeze, ``window`` (15), ``temperature`` (100).
``list_models()`` names what exists; each name is a function below. Every model carries
``pretrained_cfg``: the input convention of its initial weights (channel order, scale, mean,
std, input size), as timm's ``default_cfg`` does.
"""

from __future__ import annotations

from os import PathLike

import torch.nn as nn

from reprolab.catalog import Catalog
from reprolab.models.backbones import IMAGENET_INPUT
from reprolab.models.backbones.resnet_tsm import build_tsm_resnet
from reprolab.models.video.motion_squeeze import MotionSqueeze
from reprolab.models.video.stss import SELFYBlock
from reprolab.models.video.tsn import TSN, param_groups

MODELS: Catalog = Catalog("model")
register_model = MODELS.register


def list_models() -> list[str]:
    return MODELS.names()


def create_model(name: str, **kwargs) -> nn.Module:
    return MODELS.get(name)(**kwargs)


def _video_model(
    arch: str,
    motion: str | None,
    *,
    num_classes: int,
    num_segments: int = 8,
    pretrained: str | PathLike[str] | None = None,
    dropout: float = 0.5,
    width_multiplier: float = 1.0,
    shift: bool = True,
    zero_init_residual: bool | None = None,
    **motion_kwargs,
) -> TSN:
    if isinstance(pretrained, str) and pretrained.lower() in ("none", "scratch", ""):
        pretrained = None  # recipes write `pretrained: none`
    elif isinstance(pretrained, str) and pretrained.lower() == "imagenet":
        raise ValueError(
            f"pretrained='imagenet' is a recipe setting, not a file: pass the path of the fetched "
            f"checkpoint (dataset card weights-{arch}-imagenet) as pretrained=<path>"
        )
    if zero_init_residual is None:  # each official codebase's own default
        zero_init_residual = motion != "ms"
    backbone = build_tsm_resnet(
        arch, num_segments, pretrained=pretrained, width_multiplier=width_multiplier,
        shift=shift, zero_init_residual=zero_init_residual,
    )
    if motion == "selfy":
        # The official block: hidden width = layer2 planes (128 at full width).
        backbone.motion = SELFYBlock(
            backbone.layer2_channels, int(128 * width_multiplier), num_segments, **motion_kwargs
        )
    elif motion == "ms":
        backbone.motion = MotionSqueeze(backbone.layer2_channels, num_segments, **motion_kwargs)
    elif motion_kwargs:
        raise TypeError(f"unexpected arguments for a {arch} model: {sorted(motion_kwargs)}")
    model = TSN(backbone, num_classes, num_segments, dropout)
    model.pretrained_cfg = dict(IMAGENET_INPUT)  # torchvision ImageNet weights
    return model


@register_model
def tsn_resnet18(**kwargs) -> TSN:
    return _video_model("resnet18", None, shift=False, **kwargs)


@register_model
def tsn_resnet50(**kwargs) -> TSN:
    return _video_model("resnet50", None, shift=False, **kwargs)


@register_model
def tsm_resnet18(**kwargs) -> TSN:
    return _video_model("resnet18", None, **kwargs)


@register_model
def tsm_resnet50(**kwargs) -> TSN:
    return _video_model("resnet50", None, **kwargs)


@register_model
def selfy_tsm_resnet18(**kwargs) -> TSN:
    return _video_model("resnet18", "selfy", **kwargs)


@register_model
def selfy_tsm_resnet50(**kwargs) -> TSN:
    return _video_model("resnet50", "selfy", **kwargs)


@register_model
def ms_tsm_resnet18(**kwargs) -> TSN:
    return _video_model("resnet18", "ms", **kwargs)


@register_model
def ms_tsm_resnet50(**kwargs) -> TSN:
    return _video_model("resnet50", "ms", **kwargs)


@register_model
def urie_skunet(**kwargs) -> nn.Module:
    """URIE's SK-UNet enhancer (reprolab.models.urie); ``forward(x) -> (enhanced, residual)``."""
    from reprolab.models.urie import SKUNet

    return SKUNet(**kwargs)


__all__ = ["MODELS", "TSN", "create_model", "list_models", "param_groups", "register_model"]
