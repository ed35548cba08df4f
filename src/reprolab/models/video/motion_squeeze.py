"""The MotionSqueeze (MS) module: motion features from adjacent-frame correlation (Kwon et al. 2020).

Follows the official ``resnet_TSM.py`` (arunos728/MotionSqueeze@e94684d), placed after layer2,
for a layer2 output x of shape (B*T, C, H, W):

1. channel reduction: 1x1 conv C -> 64 + BN + ReLU;
2. correlation of frame t with frame t+1 (t = 1..T-1): cosine similarity of L2-normalised
   features over a 15 x 15 window of displacements (+-7), then ReLU;
3. kernel soft-argmax: the correlation is multiplied by a Gaussian (sigma 5) centred at its
   argmax displacement, scaled by a temperature (100), soft-maxed over the 225 displacements;
   the expected displacement divided by 7 is the flow (u, v) in [-1, 1];
4. confidence: the maximum raw (post-ReLU) correlation;
5. feature transformation: [u, v, confidence] of the last pair is repeated so there are T maps,
   then four depthwise-separable conv blocks (3 -> 16 -> 32 -> 64 -> C channels), each conv
   followed by BN + ReLU; the result is added to x (no ReLU after the sum, as in the official code).

The correlation is pure PyTorch (``reprolab.models.video.correlation``) and equals the compiled
sampler of the official code.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from reprolab.models.video.correlation import l2_normalize, local_correlation


def kernel_soft_argmax(
    correlation: torch.Tensor, window: int, sigma: float = 5.0, temperature: float = 100.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flow and confidence from a correlation volume.

    Args:
        correlation: (N, window, window, H, W), displacement rows (dy) then columns (dx).

    Returns:
        flow (N, 2, H, W) as (dx, dy) / (window // 2), and confidence (N, 1, H, W), the maximum
        correlation over displacements.
    """
    n, p, _, h, w = correlation.shape
    flat = correlation.reshape(n, p * p, h, w)
    confidence, best = flat.max(dim=1, keepdim=True)
    best_y = (best // p).unsqueeze(2).float()  # (N, 1, 1, H, W)
    best_x = (best % p).unsqueeze(2).float()
    grid = torch.arange(p, dtype=correlation.dtype, device=correlation.device)
    gauss = torch.exp(
        -((grid.view(1, 1, p, 1, 1) - best_x) ** 2 + (grid.view(1, p, 1, 1, 1) - best_y) ** 2)
        / (2 * sigma**2)
    )
    prob = F.softmax((gauss * correlation).reshape(n, p * p, h, w) * temperature, dim=1)
    prob = prob.view(n, p, p, h, w)
    radius = p // 2
    offsets = torch.arange(-radius, radius + 1, dtype=correlation.dtype, device=correlation.device)
    flow_x = (prob.sum(dim=1) * offsets.view(1, p, 1, 1)).sum(dim=1, keepdim=True) / radius
    flow_y = (prob.sum(dim=2) * offsets.view(1, p, 1, 1)).sum(dim=1, keepdim=True) / radius
    return torch.cat([flow_x, flow_y], dim=1), confidence


def _separable_block(c_in: int, c_out: int, kernel_size: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_in, kernel_size, padding=kernel_size // 2, groups=c_in, bias=False),
        nn.BatchNorm2d(c_in),
        nn.ReLU(),
        nn.Conv2d(c_in, c_out, kernel_size=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
    )


class MotionSqueeze(nn.Module):
    """x + transform(flow, confidence) on (B*T, C, H, W) frames; C is the layer2 width."""

    def __init__(self, in_channels: int, num_segments: int = 8, reduced_channels: int = 64,
                 window: int = 15, sigma: float = 5.0, temperature: float = 100.0) -> None:
        super().__init__()
        if window % 2 == 0:
            raise ValueError(f"MotionSqueeze window must be odd, got {window}")
        if num_segments < 2:
            raise ValueError("MotionSqueeze needs at least 2 frames per clip (num_segments >= 2)")
        self.num_segments = num_segments
        self.window = window
        self.sigma = sigma
        self.temperature = temperature  # the official training scripts pass 100 at every step
        self.reduce = nn.Sequential(
            nn.Conv2d(in_channels, reduced_channels, kernel_size=1, bias=False),
            nn.BatchNorm2d(reduced_channels),
            nn.ReLU(inplace=True),
        )
        self.transform = nn.Sequential(
            _separable_block(3, 16, 7),
            _separable_block(16, 32, 3),
            _separable_block(32, 64, 3),
            _separable_block(64, in_channels, 3),
        )
        for m in self.modules():  # the official ResNet init
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def motion(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Flow (B*(T-1), 2, H, W) and confidence (B*(T-1), 1, H, W) between frames t and t+1."""
        feats = self.reduce(x)
        nt, c, h, w = feats.shape
        t = self.num_segments
        if nt % t:
            raise ValueError(f"batch of {nt} frames is not a multiple of num_segments={t}")
        feats = l2_normalize(feats).view(nt // t, t, c, h, w)
        current = feats[:, :-1].reshape(-1, c, h, w)
        following = feats[:, 1:].reshape(-1, c, h, w)
        correlation = F.relu(local_correlation(current, following, (self.window, self.window)))
        return kernel_soft_argmax(correlation, self.window, self.sigma, self.temperature)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flow, confidence = self.motion(x)
        nt, _, h, w = x.shape
        t = self.num_segments
        maps = torch.cat([flow, confidence], dim=1).view(nt // t, t - 1, 3, h, w)
        maps = torch.cat([maps, maps[:, -1:]], dim=1).view(nt, 3, h, w)  # repeat the last pair
        return x + self.transform(maps)
