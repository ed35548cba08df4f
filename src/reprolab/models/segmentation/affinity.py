"""PSA's AffinityNet (jiwoon-ahn/psa network/resnet38_aff.py, train_aff.py, voc12/data.py).

Head: 1x1 convs of the three backbone levels to 64 / 128 / 256 channels (ELU), concatenated and
mixed by a 1x1 conv to 448 channels (ELU). The affinity of two positions within the radius is
exp(-mean_c |f_i - f_j|). Pairs: every position `from` (not within radius-1 of the left, right and
bottom border) with every offset (dy, dx) of `search_offsets(radius)`: the half disc that makes
each unordered pair appear once.

Labels from dCRF'd CAMs of low and high alpha: argmax of the low-alpha scores where it is a
class, 0 (background) where the high-alpha argmax is background, 255 (ignore) where the low-alpha
argmax is background but the high-alpha one is not (unsure) and where no score is positive (crop
padding). Loss: bg_loss/4 + fg_loss/4 + neg_loss/2, each term a mean over its own pairs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PSA_RADIUS = 5


def search_offsets(radius: int) -> list[tuple[int, int]]:
    offsets = [(0, x) for x in range(1, radius)]
    for y in range(1, radius):
        offsets += [(y, x) for x in range(-radius + 1, radius) if x * x + y * y < radius * radius]
    return offsets


def pair_indices(radius: int, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(from [P], to [len(offsets) * P]) flat indices, as pyutils.get_indices_of_pairs."""
    r = radius - 1
    if height <= r or width <= 2 * r:
        raise ValueError(f"a {height}x{width} feature map has no pairs at radius {radius} "
                         f"(needs height > {r} and width > {2 * r})")
    full = torch.arange(height * width).view(height, width)
    h, w = height - r, width - 2 * r
    source = full[:-r, r:-r].reshape(-1)
    targets = [full[dy:dy + h, r + dx:r + dx + w].reshape(-1) for dy, dx in search_offsets(radius)]
    return source, torch.cat(targets)


class AffinityHead(nn.Module):
    def __init__(self, level_channels: tuple[int, int, int]):
        super().__init__()
        self.f8_3 = nn.Conv2d(level_channels[0], 64, 1, bias=False)
        self.f8_4 = nn.Conv2d(level_channels[1], 128, 1, bias=False)
        self.f8_5 = nn.Conv2d(level_channels[2], 256, 1, bias=False)
        self.f9 = nn.Conv2d(448, 448, 1, bias=False)
        for conv in (self.f8_3, self.f8_4, self.f8_5):
            nn.init.kaiming_normal_(conv.weight)
        nn.init.xavier_uniform_(self.f9.weight, gain=4)

    def forward(self, levels: list[torch.Tensor]) -> torch.Tensor:
        mixed = torch.cat([F.elu(self.f8_3(levels[0])), F.elu(self.f8_4(levels[1])),
                           F.elu(self.f8_5(levels[2]))], dim=1)
        return F.elu(self.f9(mixed))


def pair_affinities(features: torch.Tensor, radius: int = PSA_RADIUS) -> torch.Tensor:
    """[B, offsets, P] affinities exp(-mean_c |f_from - f_to|) of features [B, C, H, W]."""
    source, target = pair_indices(radius, features.shape[2], features.shape[3])
    flat = features.flatten(2)
    f_from = flat.index_select(2, source.to(flat.device)).unsqueeze(2)
    f_to = flat.index_select(2, target.to(flat.device)).view(flat.shape[0], flat.shape[1], -1, f_from.shape[3])
    return torch.exp(-torch.mean(torch.abs(f_to - f_from), dim=1))


class AffinityNet(nn.Module):
    def __init__(self, backbone: nn.Module, radius: int = PSA_RADIUS):
        super().__init__()
        self.backbone = backbone
        self.head = AffinityHead(backbone.level_channels)
        self.radius = radius
        self.from_scratch = [self.head.f8_3, self.head.f8_4, self.head.f8_5, self.head.f9]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pair_affinities(self.features(x), self.radius)


def affinity_label_map(low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """[h, w] uint8 labels from low- and high-alpha scores [K, h, w] (index 0 = background, then
    the image's classes in one order; what matters is equality)."""
    no_score = torch.maximum(low.amax(0), high.amax(0)) < 1e-5
    low_label, high_label = low.argmax(0), high.argmax(0)
    label = low_label.clone()
    label[low_label == 0] = 255
    label[high_label == 0] = 0
    label[no_score] = 255
    return label


def pair_labels(label: torch.Tensor, radius: int = PSA_RADIUS):
    """(bg_pos, fg_pos, neg) float [offsets, P] of a label map [h, w] (ExtractAffinityLabelInRadius)."""
    source, target = pair_indices(radius, label.shape[0], label.shape[1])
    flat = label.reshape(-1)
    l_from = flat[source].unsqueeze(0)
    l_to = flat[target].view(-1, source.numel())
    valid = (l_to < 255) & (l_from < 255)
    positive = l_from == l_to
    bg = (positive & (l_from == 0)).float()
    fg = (positive & (l_from != 0) & valid).float()
    neg = (~positive & valid).float()
    return bg, fg, neg


def affinity_loss(aff: torch.Tensor, bg: torch.Tensor, fg: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """train_aff.py's loss: background and foreground positives a quarter each, negatives half."""
    bg_loss = torch.sum(-bg * torch.log(aff + 1e-5)) / (bg.sum() + 1e-5)
    fg_loss = torch.sum(-fg * torch.log(aff + 1e-5)) / (fg.sum() + 1e-5)
    neg_loss = torch.sum(-neg * torch.log(1.0 + 1e-5 - aff)) / (neg.sum() + 1e-5)
    return bg_loss / 4 + fg_loss / 4 + neg_loss / 2
