"""The SELFY block: spatio-temporal self-similarity (STSS) as a motion feature (Kwon et al. 2021).

Follows the official ``ops/selfy.py`` tensor walk (arunos728/SELFY@d6e1e00), for a layer2 output
x of shape (B*T, C, H, W):

1. transformation: 3x3 stride-2 conv C -> hidden + BN + ReLU; L2-normalised features; cosine
   similarity of each query position (frame t) with a (U, V) spatial window in frames
   t - L//2 .. t + L//2 (frames off the clip are zeros, so their similarity is 0)
   -> (B*T*h*w, 1, L, U, V) volumes;
2. extraction: four Conv3d (1,3,3) + BN + ReLU over (L, U, V), channels 1 -> 4 -> 16 -> 64 -> 64,
   reducing U x V 9 -> 9 -> 5 -> 3 -> 1;
3. integration: three Conv3d (1,3,3) 64 -> 64 over (T, h, w) with weights shared across L, a
   Conv3d (1,3,3) fusing the L offsets (L*64 -> 64), then a 1x1 ConvTranspose3d back to C channels
   and to (H, W) + BN whose scale starts at zero;
4. output relu(x + block(x)), so at initialisation the block returns relu(x).

The correlation is pure PyTorch (``reprolab.models.video.correlation``) and equals the compiled
sampler of the official code. One generalisation: the restore step computes its output padding
from the input size, so odd layer2 maps (e.g. 7x7 for 56x56 crops) work; for even maps it is the
official (0, 1, 1).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from reprolab.models.video.correlation import l2_normalize, local_correlation


def _conv3d_bn_relu(c_in: int, c_out: int, stride: tuple[int, int, int], padding: tuple[int, int, int]) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(c_in, c_out, kernel_size=(1, 3, 3), stride=stride, padding=padding, bias=False),
        nn.BatchNorm3d(c_out),
        nn.ReLU(inplace=True),
    )


class STSSTransformation(nn.Module):
    """(B*T, C, H, W) -> STSS tensor (B, T, h, w, L, U, V) on the stride-2 map (h, w)."""

    def __init__(self, in_channels: int, hidden_channels: int, num_segments: int,
                 window: tuple[int, int, int] = (5, 9, 9)) -> None:
        super().__init__()
        if any(k % 2 == 0 for k in window):
            raise ValueError(f"SELFY window (L, U, V) must be odd, got {window}")
        self.num_segments = num_segments
        self.window = tuple(window)
        self.reduce = nn.Sequential(
            nn.Conv2d(in_channels, hidden_channels, kernel_size=3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(hidden_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = l2_normalize(self.reduce(x))
        bt, c, h, w = x.shape
        t = self.num_segments
        if bt % t:
            raise ValueError(f"batch of {bt} frames is not a multiple of num_segments={t}")
        b = bt // t
        l_size, u_size, v_size = self.window
        r = l_size // 2
        padded = F.pad(x.view(b, t, c, h, w), (0, 0, 0, 0, 0, 0, r, r))  # zero frames
        neighbours = padded.unfold(1, l_size, 1).permute(0, 1, 5, 2, 3, 4)  # (B, T, L, C, h, w)
        stss = local_correlation(x, neighbours.reshape(bt, l_size, c, h, w), (u_size, v_size))
        return stss.view(b, t, l_size, u_size, v_size, h, w).permute(0, 1, 5, 6, 2, 3, 4)


class STSSExtraction(nn.Module):
    """STSS (B, T, h, w, L, U, V) -> per-offset motion features (B*L, C_ext, T, h, w)."""

    def __init__(self, window: tuple[int, int, int] = (5, 9, 9),
                 channels: tuple[int, int, int, int] = (4, 16, 64, 64)) -> None:
        super().__init__()
        size = window[1]
        for stride, pad in ((1, 1), (2, 1), (2, 1), (1, 0)):
            size = (size + 2 * pad - 3) // stride + 1
        if window[1] != window[2] or size != 1:
            raise ValueError(
                f"the official extraction convs reduce a square U x V window to 1 x 1 only for "
                f"U = V in (9, 11, 17, ...); got window {window}"
            )
        c0, c1, c2, c3 = channels
        self.convs = nn.Sequential(
            _conv3d_bn_relu(1, c0, (1, 1, 1), (0, 1, 1)),
            _conv3d_bn_relu(c0, c1, (1, 2, 2), (0, 1, 1)),
            _conv3d_bn_relu(c1, c2, (1, 2, 2), (0, 1, 1)),
            _conv3d_bn_relu(c2, c3, (1, 1, 1), (0, 0, 0)),
        )

    def forward(self, stss: torch.Tensor) -> torch.Tensor:
        b, t, h, w, l_size, u_size, v_size = stss.shape
        x = self.convs(stss.reshape(b * t * h * w, 1, l_size, u_size, v_size))  # (BThw, C, L, 1, 1)
        x = x.view(b, t, h, w, -1, l_size).permute(0, 5, 4, 1, 2, 3)  # (B, L, C, T, h, w)
        return x.reshape(b * l_size, -1, t, h, w)


class STSSIntegration(nn.Module):
    """(B*L, C_ext, T, h, w) -> (B*T, out_channels, H, W) residual, back on the input grid."""

    def __init__(self, in_channels: int, out_channels: int, num_offsets: int,
                 channels: tuple[int, int, int, int] = (64, 64, 64, 64)) -> None:
        super().__init__()
        self.num_offsets = num_offsets
        c0, c1, c2, c3 = channels
        self.convs = nn.Sequential(
            _conv3d_bn_relu(in_channels, c0, (1, 1, 1), (0, 1, 1)),
            _conv3d_bn_relu(c0, c1, (1, 1, 1), (0, 1, 1)),
            _conv3d_bn_relu(c1, c2, (1, 1, 1), (0, 1, 1)),
        )
        self.fuse = _conv3d_bn_relu(c2 * num_offsets, c3, (1, 1, 1), (0, 1, 1))
        self.restore = nn.ConvTranspose3d(c3, out_channels, kernel_size=1, stride=(1, 2, 2),
                                          output_padding=(0, 1, 1), bias=False)
        self.restore_bn = nn.BatchNorm3d(out_channels)

    def forward(self, x: torch.Tensor, output_hw: tuple[int, int]) -> torch.Tensor:
        x = self.convs(x)
        bl, c, t, h, w = x.shape
        x = self.fuse(x.view(bl // self.num_offsets, self.num_offsets * c, t, h, w))  # (l c) order
        x = self.restore_bn(self.restore(x, output_size=(t, *output_hw)))  # (B, C, T, H, W)
        return x.transpose(1, 2).reshape(-1, x.shape[1], *output_hw)


class SELFYBlock(nn.Module):
    """relu(x + integration(extraction(transformation(x)))) on (B*T, C, H, W) frames."""

    def __init__(self, in_channels: int, hidden_channels: int = 128, num_segments: int = 8,
                 window: tuple[int, int, int] = (5, 9, 9),
                 extraction_channels: tuple[int, int, int, int] = (4, 16, 64, 64),
                 integration_channels: tuple[int, int, int, int] = (64, 64, 64, 64)) -> None:
        super().__init__()
        self.transformation = STSSTransformation(in_channels, hidden_channels, num_segments, window)
        self.extraction = STSSExtraction(window, extraction_channels)
        self.integration = STSSIntegration(extraction_channels[-1], in_channels, window[0],
                                           integration_channels)
        # The official ResNet init (ops/resnet_TSM.py) applied to the block's layers.
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Conv3d | nn.ConvTranspose3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.zeros_(self.integration.restore_bn.weight)  # the block starts as relu(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.integration(self.extraction(self.transformation(x)), output_hw=x.shape[-2:])
        return F.relu(out + x)
