"""ResNet-38 (Wu et al., "Wider or Deeper", Model A1) at output stride 8, as PSA's ``resnet38d``.

Neither torchvision nor timm has this network, so it is built here with the module names of
jiwoon-ahn/psa ``network/resnet38d.py`` (``conv1a``, ``b2`` ... ``b7``, ``bn7``; inside a block
``bn_branch2a``, ``conv_branch2a``, ...), so that state dicts move between the two unchanged.
Pre-activation blocks (BN -> ReLU -> conv); b2-b4 downsample by stride 2, b5 (dilation 2) and
b6/b7 (dilation 4, bottlenecks with dropout 0.3 / 0.5) keep stride 8. ``forward`` returns PSA's
``forward_as_dict``: ``conv4`` (the BN-ReLU input of b5, 512 ch), ``conv5`` (of b6, 1024 ch),
``conv6`` (ReLU(BN(b7)), 4096 ch).

As in PSA, every BatchNorm stays in eval mode with frozen affine parameters and ``conv1a`` is
frozen (``frozen`` adds more, e.g. PSA's classifier also freezes ``b2``, ``b2_1``, ``b2_2``).
ImageNet weights: the MXNet ``ilsvrc-cls_rna-a1_cls1000_ep-0001.params`` (card
weights-resnet38-imagenet), read without MXNet by ``load_resnet38_imagenet``.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

# PSA normalises ResNet-38 inputs with the ImageNet mean/std on RGB in [0, 1]
RESNET38_INPUT = {"channel_order": "RGB", "scale": 1.0, "mean": (0.485, 0.456, 0.406),
                  "std": (0.229, 0.224, 0.225), "input_size": (3, 448, 448)}


class ResBlock(nn.Module):
    """Two 3x3 convs, pre-activation; a 1x1 projection shortcut when the shape changes."""

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, stride: int = 1,
                 first_dilation: int | None = None, dilation: int = 1):
        super().__init__()
        self.same_shape = in_channels == out_channels and stride == 1
        first_dilation = dilation if first_dilation is None else first_dilation
        self.bn_branch2a = nn.BatchNorm2d(in_channels)
        self.conv_branch2a = nn.Conv2d(in_channels, mid_channels, 3, stride, padding=first_dilation,
                                       dilation=first_dilation, bias=False)
        self.bn_branch2b1 = nn.BatchNorm2d(mid_channels)
        self.conv_branch2b1 = nn.Conv2d(mid_channels, out_channels, 3, padding=dilation,
                                        dilation=dilation, bias=False)
        if not self.same_shape:
            self.conv_branch1 = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(block output, the BN-ReLU of its input): PSA taps the latter as a feature."""
        pre = F.relu(self.bn_branch2a(x))
        shortcut = x if self.same_shape else self.conv_branch1(pre)
        branch = self.conv_branch2b1(F.relu(self.bn_branch2b1(self.conv_branch2a(pre))))
        return shortcut + branch, pre


class BottleneckBlock(nn.Module):
    """1x1 (out/4) -> 3x3 (out/2, dilated) -> 1x1 (out), pre-activation, dropout before the last two."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, dilation: int = 1,
                 dropout: float = 0.0):
        super().__init__()
        self.bn_branch2a = nn.BatchNorm2d(in_channels)
        self.conv_branch2a = nn.Conv2d(in_channels, out_channels // 4, 1, stride, bias=False)
        self.bn_branch2b1 = nn.BatchNorm2d(out_channels // 4)
        self.dropout_2b1 = nn.Dropout2d(dropout)
        self.conv_branch2b1 = nn.Conv2d(out_channels // 4, out_channels // 2, 3, padding=dilation,
                                        dilation=dilation, bias=False)
        self.bn_branch2b2 = nn.BatchNorm2d(out_channels // 2)
        self.dropout_2b2 = nn.Dropout2d(dropout)
        self.conv_branch2b2 = nn.Conv2d(out_channels // 2, out_channels, 1, bias=False)
        self.conv_branch1 = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pre = F.relu(self.bn_branch2a(x))
        branch = self.conv_branch2a(pre)
        branch = self.conv_branch2b1(self.dropout_2b1(F.relu(self.bn_branch2b1(branch))))
        branch = self.conv_branch2b2(self.dropout_2b2(F.relu(self.bn_branch2b2(branch))))
        return self.conv_branch1(pre) + branch, pre


class ResNet38d(nn.Module):
    feature_dim = 4096
    stride = 8
    input_config = RESNET38_INPUT

    def __init__(self, frozen: tuple[str, ...] = ("conv1a",)):
        super().__init__()
        self.conv1a = nn.Conv2d(3, 64, 3, padding=1, bias=False)
        self.b2 = ResBlock(64, 128, 128, stride=2)
        self.b2_1 = ResBlock(128, 128, 128)
        self.b2_2 = ResBlock(128, 128, 128)
        self.b3 = ResBlock(128, 256, 256, stride=2)
        self.b3_1 = ResBlock(256, 256, 256)
        self.b3_2 = ResBlock(256, 256, 256)
        self.b4 = ResBlock(256, 512, 512, stride=2)
        for i in range(1, 6):
            setattr(self, f"b4_{i}", ResBlock(512, 512, 512))
        self.b5 = ResBlock(512, 512, 1024, first_dilation=1, dilation=2)
        self.b5_1 = ResBlock(1024, 512, 1024, dilation=2)
        self.b5_2 = ResBlock(1024, 512, 1024, dilation=2)
        self.b6 = BottleneckBlock(1024, 2048, dilation=4, dropout=0.3)
        self.b7 = BottleneckBlock(2048, 4096, dilation=4, dropout=0.5)
        self.bn7 = nn.BatchNorm2d(4096)
        self.frozen = tuple(frozen)
        for name in self.frozen:
            for p in getattr(self, name).parameters():
                p.requires_grad = False
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.requires_grad = m.bias.requires_grad = False

    BLOCKS = ("b2", "b2_1", "b2_2", "b3", "b3_1", "b3_2", "b4", "b4_1", "b4_2", "b4_3", "b4_4", "b4_5",
              "b5", "b5_1", "b5_2", "b6", "b7")

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.conv1a(x)
        taps = {}
        for name in self.BLOCKS:
            x, pre = getattr(self, name)(x)
            if name == "b5":
                taps["conv4"] = pre
            elif name == "b6":
                taps["conv5"] = pre
        taps["conv6"] = F.relu(self.bn7(x))
        return taps

    def train(self, mode: bool = True) -> ResNet38d:
        super().train(mode)
        for m in self.modules():  # PSA never updates BatchNorm statistics
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self


_BN = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_var": "running_var"}
_BLOCK = re.compile(r"^(res|bn)(\d)(a|b(\d+))_(branch\w+?)_(weight|gamma|beta|moving_mean|moving_var)$")


def resnet38_name(mxnet_name: str) -> str | None:
    """The PSA/ours name of an ademxapp Model A1 tensor; None for the ImageNet classifier."""
    name = mxnet_name.split(":", 1)[1] if mxnet_name[:4] in ("arg:", "aux:") else mxnet_name
    if name == "conv1a_weight":
        return "conv1a.weight"
    if name.startswith("linear1000_"):
        return None
    if name.startswith("bn7_") and name[4:] in _BN:
        return f"bn7.{_BN[name[4:]]}"
    match = _BLOCK.match(name)
    if match is None:
        raise ValueError(f"{mxnet_name!r} is not a ResNet-38 (Model A1) parameter name")
    kind, level, _, index, branch, field = match.groups()
    block = f"b{level}" if index is None else f"b{level}_{index}"
    if kind == "res":
        if field != "weight":
            raise ValueError(f"{mxnet_name!r}: ResNet-38 convolutions have weights only")
        return f"{block}.conv_{branch}.weight"
    return f"{block}.bn_{branch}.{_BN[field]}"


def resnet38_state_from_mxnet(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of an ademxapp MXNet checkpoint under our (= PSA's) names, classifier dropped."""
    from reprolab.models.mxnet_params import read_ndarray_file

    state = {}
    for key, array in read_ndarray_file(path).items():
        try:
            name = resnet38_name(key)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None
        if name is not None:
            state[name] = torch.from_numpy(array.copy())
    return state


def load_resnet38_imagenet(model: ResNet38d, path: str | Path) -> None:
    """Load ``ilsvrc-cls_rna-a1_cls1000_ep-0001.params`` (MXNet) into ``model``; every tensor must fit."""
    path = Path(path)
    state = resnet38_state_from_mxnet(path)
    own = model.state_dict()
    wrong = [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in state.items()
             if k in own and own[k].shape != v.shape]
    missing = sorted(k for k in own if k not in state and not k.endswith("num_batches_tracked"))
    unexpected = sorted(k for k in state if k not in own)
    if wrong or missing or unexpected:
        raise ValueError(
            f"{path} does not fit ResNet-38: shape mismatches {wrong[:3]}, missing {missing[:3]}, "
            f"unexpected {unexpected[:3]} (expected the ademxapp Model A1 ImageNet checkpoint; "
            f"fetch it with `reprolab data fetch weights-resnet38-imagenet`)")
    model.load_state_dict(state, strict=False)


def resnet38d(weights: str | Path | None = None, frozen: tuple[str, ...] = ("conv1a",)) -> ResNet38d:
    model = ResNet38d(frozen)
    if weights is not None:
        if not Path(weights).is_file():
            raise FileNotFoundError(
                f"ResNet-38 weights not found at {weights}; fetch them with "
                f"`reprolab data fetch weights-resnet38-imagenet` (a manual download, see the card)")
        load_resnet38_imagenet(model, weights)
    return model
