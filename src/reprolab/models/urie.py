"""URIE's enhancer: SK-UNet with Selective Enhancement Modules (Son et al., ECCV 2020).

As the official code (taeyoungson/urie@8d806bc, models/skunet_model.py and skunet_parts.py):

- a small U-Net: ``down1`` Conv 9x9 3->32, ``down2`` / ``down3`` max-pool + SEM (32->64, 64->64),
  ``up1`` / ``up2`` bilinear x2 (align_corners=True) + skip concatenation + SEM (128->32, 64->16),
  ``up3`` Conv 3x3 16->3;
- a Selective Enhancement Module (the official ``SelectiveConv``) runs two bias-free 3x3 convs,
  one on LeakyReLU(BatchNorm(x)) and one on LeakyReLU(InstanceNorm(x)); a selector pools their
  sum to a 4x4 grid, squeezes it (FC, reduction 16, ReLU) and predicts two attention maps
  (softmax over the two branches per channel and grid cell, nearest-upsampled to the feature
  size) that mix the branches: ``out = conv_bn * a_bn + conv_in * a_in``;
- the output is ``input + residual``, in the recognizer's normalised input space (the input is
  already mean/std normalised, as the official loaders do); ``forward`` returns both, as the
  official model does.

Parameter names equal the official ones (``down2.maxpool_conv.1.conv1.weight``, ...), so the
released checkpoint loads with ``load_state_dict(strict=True)`` once its DataParallel prefix is
dropped. 671,859 parameters, as the official model (counted by running it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

GRID = 4  # the selector's spatial attention is a GRID x GRID map per channel


class Selector(nn.Module):
    """Two spatially varying attention maps (softmax over the two branches)."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.spatial_attention = GRID
        pooled = channels * GRID * GRID
        self.avg_pool = nn.AdaptiveAvgPool2d((GRID, GRID))
        self.fc = nn.Sequential(nn.Linear(pooled, pooled // reduction, bias=False), nn.ReLU(inplace=True))
        self.att_conv1 = nn.Linear(pooled // reduction, pooled)
        self.att_conv2 = nn.Linear(pooled // reduction, pooled)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, c, h, w = x.shape
        squeezed = self.fc(self.avg_pool(x).reshape(b, -1))
        logits = torch.stack((self.att_conv1(squeezed).view(b, c, GRID, GRID),
                              self.att_conv2(squeezed).view(b, c, GRID, GRID)))
        attention = logits.softmax(dim=0)
        # scale_factor (not size), as the official code, so that the nearest-neighbour indices
        # match it also for sides that are not multiples of 4
        scale = (h / GRID, w / GRID)
        return (F.interpolate(attention[0], scale_factor=scale, mode="nearest"),
                F.interpolate(attention[1], scale_factor=scale, mode="nearest"))


class SelectiveEnhancement(nn.Module):
    """SEM: a BatchNorm branch and an InstanceNorm branch, mixed by a spatial selector."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, padding: int = 1,
                 bias: bool = False, reduction: int = 16):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, bias=bias)  # BN branch
        self.conv2 = nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, bias=bias)  # IN branch
        self.selector = Selector(out_channels, reduction)
        self.IN = nn.InstanceNorm2d(in_channels)  # affine=False, no running stats (torch defaults)
        self.BN = nn.BatchNorm2d(in_channels)
        self.relu = nn.LeakyReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out_bn = self.conv1(self.relu(self.BN(x)))
        out_in = self.conv2(self.relu(self.IN(x)))
        att_bn, att_in = self.selector(out_bn + out_in)
        return out_bn * att_bn + out_in * att_in


class SKDown(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), SelectiveEnhancement(in_channels, out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool_conv(x)


class SKUp(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
        self.conv = SelectiveEnhancement(in_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        dy, dx = skip.shape[2] - x.shape[2], skip.shape[3] - x.shape[3]  # odd sides: pad to the skip
        x = F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv(torch.cat([skip, x], dim=1))


class SKUNet(nn.Module):
    """URIE's enhancer. ``forward(x) -> (x + residual, residual)`` on normalised images."""

    def __init__(self):
        super().__init__()
        self.down1 = nn.Conv2d(3, 32, kernel_size=9, padding=4)
        self.down2 = SKDown(32, 64)
        self.down3 = SKDown(64, 64)
        self.up1 = SKUp(128, 32)
        self.up2 = SKUp(64, 16)
        self.up3 = nn.Conv2d(16, 3, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x1 = self.down1(x)
        x2 = self.down2(x1)
        x3 = self.down3(x2)
        residual = self.up3(self.up2(self.up1(x3, x2), x1))
        return x + residual, residual


def urie_state_dict(state: dict) -> dict:
    """The official checkpoint's tensors under our names: it was saved from ``nn.DataParallel``
    (keys ``module.down1.weight``, ...); ours are the same without the prefix."""
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}


def load_released_urie(path, *, map_location="cpu") -> SKUNet:
    """SK-UNet with the released ECCV weights (ECCV_MODELS/ECCV_SKUNET_OURS.ckpt.pt of the
    official repository; weights card weights-urie-eccv2020). The file is a plain state dict in
    the legacy torch format, so it loads with ``weights_only=True``: no code is unpickled."""
    model = SKUNet()
    state = torch.load(path, map_location=map_location, weights_only=True)
    model.load_state_dict(urie_state_dict(state), strict=True)
    return model


__all__ = ["SKUNet", "SelectiveEnhancement", "Selector", "load_released_urie", "urie_state_dict"]
