"""IRNet's inter-pixel paths: which pixel pairs are related, and their affinity from a boundary map.

A pixel i is paired with every j = i + d whose offset d lies in the forward half-plane
(d = (0, x) with 0 < x, or (y, x) with y > 0) and |d| < radius, as jiwoon-ahn/irn
``misc/indexing.py`` ``PathIndex`` (radius 10 when training IRNet, 5 in the random walk). The path
of d is every grid point of the box spanned by 0 and d within distance 1 of the segment, both
ends included; the inter-pixel affinity is ``a_ij = 1 - max_{k on the path} B_k`` (paper Eq. 4).
Offsets are ordered as the official code orders them (by path length, then by construction
order), so affinities, labels and displacement targets line up with its tensors.

Sources are the pixels whose every forward neighbour is inside the map: rows [0, H - r'),
columns [r', W - r') with r' = ceil(radius) - 1 (the official "cropped" region); tensors are
(..., offsets, sources) with sources in row-major order.
"""

from __future__ import annotations

import math

import numpy as np
import torch


class PathIndex:
    def __init__(self, radius: int):
        if radius < 2:
            raise ValueError(f"PathIndex radius {radius}: needs at least 2 (offsets with |d| < radius)")
        self.radius = radius
        self.radius_floor = int(math.ceil(radius) - 1)
        offsets = [(0, x) for x in range(1, radius)]
        offsets += [(y, x) for y in range(1, radius) for x in range(-radius + 1, radius) if x * x + y * y < radius ** 2]
        paths = [self._path(dy, dx) for dy, dx in offsets]
        order = sorted(range(len(paths)), key=lambda i: len(paths[i]))  # stable: by length, then built order
        self.offsets = np.array([offsets[i] for i in order], np.int64)     # (D, 2) destination offsets
        self.paths = [paths[i] for i in order]                             # D arrays (L, 2), destination first

    @staticmethod
    def _path(dy: int, dx: int) -> np.ndarray:
        length_sq = dy * dy + dx * dx
        points = [(y, x) for y in range(min(0, dy), max(0, dy) + 1) for x in range(min(0, dx), max(0, dx) + 1)
                  if (dy * x - dx * y) ** 2 / length_sq < 1]
        points.sort(key=lambda p: -abs(p[0]) - abs(p[1]))
        return np.array(points, np.int64)

    def source_shape(self, height: int, width: int) -> tuple[int, int]:
        rows, cols = height - self.radius_floor, width - 2 * self.radius_floor
        if rows <= 0 or cols <= 0:
            raise ValueError(f"a {height}x{width} map is too small for paths of radius {self.radius}")
        return rows, cols

    def shifted(self, x: torch.Tensor, offset) -> torch.Tensor:
        """x[..., source + offset] for every source: (..., rows, cols)."""
        rows, cols = self.source_shape(*x.shape[-2:])
        dy, dx = int(offset[0]), int(offset[1])
        rf = self.radius_floor
        return x[..., dy:dy + rows, rf + dx:rf + dx + cols]


def path_affinity(boundary: torch.Tensor, index: PathIndex) -> torch.Tensor:
    """(B, H, W) boundary probabilities -> (B, D, sources) affinities 1 - max boundary on each path."""
    out = []
    for path in index.paths:
        along = torch.stack([index.shifted(boundary, p) for p in path], 0).amax(0)
        out.append(1 - along.flatten(-2))
    return torch.stack(out, -2)


def affinity_labels(labels: np.ndarray | torch.Tensor, index: PathIndex, ignore_index: int = 255
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inter-pixel relation labels from a (H, W) pseudo-label map (0 background, classes, ignore).

    Returns float (D, sources) masks: background pairs of one label, foreground pairs of one
    label, pairs of different labels; pairs touching an ignored pixel are in none (IRNet's
    ``GetAffinityLabelFromIndices``; the official code tests ``< 21``, the VOC label count).
    """
    labels = torch.as_tensor(np.asarray(labels)).long()
    src = index.shifted(labels, (0, 0)).flatten()
    dst = torch.stack([index.shifted(labels, d).flatten() for d in index.offsets])
    valid = (src != ignore_index) & (dst != ignore_index)
    same = src == dst
    bg_pos = same & valid & (src == 0)
    fg_pos = same & valid & (src > 0)
    neg = ~same & valid
    return bg_pos.float(), fg_pos.float(), neg.float()


def pair_displacement(displacement: torch.Tensor, index: PathIndex) -> torch.Tensor:
    """(B, 2, H, W) displacement -> (B, 2, D, sources): D_source - D_destination for every pair."""
    src = index.shifted(displacement, (0, 0))
    dst = torch.stack([index.shifted(displacement, d) for d in index.offsets], 2)
    return (src.unsqueeze(2) - dst).flatten(-2)


def displacement_target(index: PathIndex, dtype=torch.float32) -> torch.Tensor:
    """(1, 2, D, 1): for a pair of one instance, D_i - D_j = x_j - x_i, the offset itself."""
    return torch.as_tensor(index.offsets.T, dtype=dtype)[None, :, :, None]
