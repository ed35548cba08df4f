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
``list_models()`` names what exists.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from os import PathLike

import torch.nn as nn

from reprolab.models.backbones.resnet_tsm import build_tsm_resnet
from reprolab.models.motion_squeeze import MotionSqueeze
from reprolab.models.stss import SELFYBlock
from reprolab.models.tsn import TSN, param_groups

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str, builder: Callable[..., nn.Module]) -> None:
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is already registered")
    _REGISTRY[name] = builder


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def create_model(name: str, **kwargs) -> nn.Module:
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    return _REGISTRY[name](**kwargs)


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
    return TSN(backbone, num_classes, num_segments, dropout)


for _depth in ("resnet18", "resnet50"):
    register_model(f"tsn_{_depth}", partial(_video_model, _depth, None, shift=False))
    register_model(f"tsm_{_depth}", partial(_video_model, _depth, None))
    register_model(f"selfy_tsm_{_depth}", partial(_video_model, _depth, "selfy"))
    register_model(f"ms_tsm_{_depth}", partial(_video_model, _depth, "ms"))

__all__ = ["TSN", "create_model", "list_models", "param_groups", "register_model"]
