"""ResNet with a residual temporal shift in every block (TSM, Lin et al. 2019).

This is the backbone of the official SELFY and MotionSqueeze code (``ops/resnet_TSM.py``,
``ops/tsm_util.py``): frames of a clip are stacked in the batch as (B*T, C, H, W); every residual
block shifts 1/8 of its input channels one step back in time and 1/8 one step forward (zero
padded at the clip ends) on the residual branch, before ``conv1``; the identity path is taken
before the shift. The blocks are torchvision's, so the parameter names are torchvision's and an
ImageNet torchvision checkpoint loads by name (``load_imagenet_weights``).

Departure from torchvision for small CPU models: ``width_multiplier`` scales every stage width
(1.0 is the standard ResNet; 0.25 gives stages of 16/32/64/128 channels). Such a model cannot load
ImageNet weights.
"""

from __future__ import annotations

from os import PathLike

import torch
import torch.nn as nn
from torchvision.models.resnet import BasicBlock, Bottleneck, conv1x1


def temporal_shift(x: torch.Tensor, num_segments: int, fold_div: int = 8) -> torch.Tensor:
    """Shift 1/fold_div of the channels one frame back in time and 1/fold_div one frame forward.

    x is (B*T, C, H, W) with the T frames of a clip consecutive. Output channel block
    ``[0, C//8)`` at frame t holds frame t+1 (zeros at the last frame), block ``[C//8, 2*C//8)``
    holds frame t-1 (zeros at the first frame), the rest is unchanged ("zero" TSM).
    """
    nt, c, h, w = x.shape
    if nt % num_segments:
        raise ValueError(f"batch of {nt} frames is not a multiple of num_segments={num_segments}")
    x = x.view(nt // num_segments, num_segments, c, h, w)
    fold = c // fold_div
    zeros = x.new_zeros(x.shape[0], 1, fold, h, w)
    from_next = torch.cat([x[:, 1:, :fold], zeros], dim=1)
    from_previous = torch.cat([zeros, x[:, :-1, fold : 2 * fold]], dim=1)
    return torch.cat([from_next, from_previous, x[:, :, 2 * fold :]], dim=2).view(nt, c, h, w)


class TSMBasicBlock(BasicBlock):
    """torchvision BasicBlock with a residual temporal shift before conv1."""

    num_segments: int = 8
    shift: bool = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = temporal_shift(x, self.num_segments) if self.shift else x
        out = self.relu(self.bn1(self.conv1(out)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class TSMBottleneck(Bottleneck):
    """torchvision Bottleneck with a residual temporal shift before conv1."""

    num_segments: int = 8
    shift: bool = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = temporal_shift(x, self.num_segments) if self.shift else x
        out = self.relu(self.bn1(self.conv1(out)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


ARCHS: dict[str, tuple[type[nn.Module], tuple[int, int, int, int]]] = {
    "resnet18": (TSMBasicBlock, (2, 2, 2, 2)),
    "resnet34": (TSMBasicBlock, (3, 4, 6, 3)),
    "resnet50": (TSMBottleneck, (3, 4, 6, 3)),
    "resnet101": (TSMBottleneck, (3, 4, 23, 3)),
}


class TSMResNet(nn.Module):
    """TSM ResNet trunk: (B*T, 3, H, W) frames -> (B*T, num_features) pooled features.

    ``motion`` is the slot after ``layer2`` (res3) where SELFY and MotionSqueeze sit in the
    official code; it maps the layer2 output to a tensor of the same shape (identity if unset).
    """

    def __init__(
        self,
        arch: str = "resnet50",
        num_segments: int = 8,
        *,
        width_multiplier: float = 1.0,
        shift: bool = True,
        zero_init_residual: bool = True,
    ) -> None:
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"unknown ResNet depth {arch!r}; choose one of {sorted(ARCHS)}")
        block, layers = ARCHS[arch]
        widths = [64 * width_multiplier * 2**i for i in range(4)]
        if any(w != int(w) or w < 8 for w in widths):
            raise ValueError(
                f"width_multiplier={width_multiplier} gives stage widths {widths}; each must be "
                "a whole number >= 8 (e.g. 1.0, 0.5, 0.25)"
            )
        widths = [int(w) for w in widths]
        self.arch = arch
        self.num_segments = num_segments
        self.width_multiplier = width_multiplier
        self.inplanes = widths[0]
        self.conv1 = nn.Conv2d(3, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, widths[0], layers[0], stride=1)
        self.layer2 = self._make_layer(block, widths[1], layers[1], stride=2)
        self.motion: nn.Module = nn.Identity()
        self.layer3 = self._make_layer(block, widths[2], layers[2], stride=2)
        self.layer4 = self._make_layer(block, widths[3], layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.layer2_channels = widths[1] * block.expansion
        self.num_features = widths[3] * block.expansion

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            if isinstance(m, TSMBasicBlock | TSMBottleneck):
                m.num_segments = num_segments
                m.shift = shift
        if zero_init_residual:  # the SELFY code's default; the MotionSqueeze code's is False
            for m in self.modules():
                if isinstance(m, TSMBottleneck):
                    nn.init.zeros_(m.bn3.weight)
                elif isinstance(m, TSMBasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def _make_layer(self, block: type[nn.Module], planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        x = self.motion(x)
        x = self.layer4(self.layer3(x))
        return torch.flatten(self.avgpool(x), 1)


def load_imagenet_weights(backbone: TSMResNet, path: str | PathLike[str]) -> None:
    """Copy a torchvision ImageNet ResNet checkpoint (a local file, never downloaded) into backbone.

    Every trunk parameter must be in the file with the right shape (the classifier ``fc.*`` is
    ignored, as the official code ignores it); the ``motion`` module keeps its own init.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"pretrained weights file {path} not found: fetch it first "
            f"(e.g. `reprolab data fetch weights-{backbone.arch}-imagenet`) and pass its path"
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    state = {k.removeprefix("module."): v for k, v in state.items() if not k.startswith("fc.")}
    own = {k: v for k, v in backbone.state_dict().items() if not k.startswith("motion.")}
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    wrong = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or wrong:
        raise ValueError(
            f"{path} is not a torchvision {backbone.arch} ImageNet checkpoint for this model "
            f"(width_multiplier={backbone.width_multiplier}): missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}, shape mismatches {wrong[:5]}"
        )
    backbone.load_state_dict(state, strict=False)


def build_tsm_resnet(
    arch: str,
    num_segments: int,
    *,
    pretrained: str | PathLike[str] | None = None,
    **kwargs,
) -> TSMResNet:
    """A TSMResNet, with ImageNet weights from the file ``pretrained`` if given."""
    backbone = TSMResNet(arch, num_segments, **kwargs)
    if pretrained is not None:
        load_imagenet_weights(backbone, pretrained)
    return backbone


__all__ = [
    "TSMBasicBlock",
    "TSMBottleneck",
    "TSMResNet",
    "build_tsm_resnet",
    "load_imagenet_weights",
    "temporal_shift",
]
