"""IRNet (Ahn, Cho, Kwak, CVPR 2019): class-boundary and displacement heads on a frozen ResNet-50.

As jiwoon-ahn/irn@a2ece00 ``net/resnet50_irn.py``: the backbone (IRNet's ResNet-50, output
stride 16) is detached at every stage, so only the heads train. Both heads read the five stages
x1-x5 through 1x1 conv + GroupNorm + ReLU branches (bilinear upsampling to stride 4 / 8 where
needed, then cropped to the stride-4 size):

- boundary: 5 x 32 channels -> concat (160) -> 1x1 conv (with bias) -> one logit per stride-4
  pixel (``sigmoid`` gives the class-boundary probability B);
- displacement: x1-x3 -> 64 / 128 / 256, x4-x5 -> 256 each (x2 upsampled); x3-x5 merged (768 ->
  256, upsampled x2) and merged with x1, x2 (448 -> 256 -> 2 channels): the (dy, dx) displacement
  to the instance centroid at stride 4, minus the ``MeanShift`` running mean at inference (the
  mean displacement over the inference set, stored after training as the official code does).

``irnet_loss`` is step/train_irn.py's objective with the inter-pixel relation labels of
``path_index.affinity_labels``: affinity terms -log(a) on background/foreground positive
pairs (each averaged, then halved and summed) and -log(1 - a) on negative pairs; L1
displacement terms |(D_i - D_j) - (x_j - x_i)| on foreground pairs and |D_i - D_j| on background
pairs (each over 2 x the pair count); total = (pos + neg) / 2 + (dp_fg + dp_bg) / 2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from reprolab.models.backbones.resnet50_irn import DETACH_ALL, ResNet50IRN
from reprolab.models.segmentation.path_index import (
    PathIndex,
    displacement_target,
    pair_displacement,
    path_affinity,
)


def _branch(cin: int, cout: int, groups: int, upsample: int = 1) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, 1, bias=False), nn.GroupNorm(groups, cout)]
    if upsample > 1:
        layers.append(nn.Upsample(scale_factor=upsample, mode="bilinear", align_corners=False))
    return nn.Sequential(*layers, nn.ReLU(inplace=True))


class MeanShift(nn.Module):
    """Subtracts the stored mean displacement at inference (identity in training)."""

    def __init__(self, channels: int = 2):
        super().__init__()
        self.register_buffer("running_mean", torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.training else x - self.running_mean.view(1, -1, 1, 1)


class IRNet(nn.Module):
    def __init__(self, backbone: nn.Module | None = None,
                 stage_channels: tuple[int, int, int, int, int] = (64, 256, 512, 1024, 2048)):
        """``stage_channels``: the widths of x1-x5 (ResNet-50's; a smaller trunk in the tiny profile)."""
        super().__init__()
        self.backbone = backbone if backbone is not None else ResNet50IRN(detach_after=DETACH_ALL)
        c1, c2, c3, c4, c5 = stage_channels
        self.fc_edge1 = _branch(c1, 32, 4)
        self.fc_edge2 = _branch(c2, 32, 4)
        self.fc_edge3 = _branch(c3, 32, 4, 2)
        self.fc_edge4 = _branch(c4, 32, 4, 4)
        self.fc_edge5 = _branch(c5, 32, 4, 4)
        self.fc_edge6 = nn.Conv2d(160, 1, 1, bias=True)
        self.fc_dp1 = _branch(c1, 64, 8)
        self.fc_dp2 = _branch(c2, 128, 16)
        self.fc_dp3 = _branch(c3, 256, 16)
        self.fc_dp4 = _branch(c4, 256, 16, 2)
        self.fc_dp5 = _branch(c5, 256, 16, 2)
        self.fc_dp6 = _branch(768, 256, 16, 2)
        self.mean_shift = MeanShift(2)
        self.fc_dp7 = nn.Sequential(nn.Conv2d(448, 256, 1, bias=False), nn.GroupNorm(16, 256),
                                    nn.ReLU(inplace=True), nn.Conv2d(256, 2, 1, bias=False), self.mean_shift)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (B, 3, H, W) -> boundary logits (B, 1, h, w), displacement (B, 2, h, w), h = ceil(H / 4)."""
        f = self.backbone(x)
        x1, x2, x3, x4, x5 = (f[k].detach() for k in ("x1", "x2", "x3", "x4", "x5"))
        h, w = x2.shape[-2:]
        edges = [self.fc_edge1(x1), self.fc_edge2(x2)] + [
            branch(feat)[..., :h, :w] for branch, feat in ((self.fc_edge3, x3), (self.fc_edge4, x4), (self.fc_edge5, x5))]
        edge = self.fc_edge6(torch.cat(edges, 1))
        dp3 = self.fc_dp3(x3)
        h3, w3 = dp3.shape[-2:]
        merged = torch.cat([dp3, self.fc_dp4(x4)[..., :h3, :w3], self.fc_dp5(x5)[..., :h3, :w3]], 1)
        up3 = self.fc_dp6(merged)[..., :h, :w]
        dp = self.fc_dp7(torch.cat([self.fc_dp1(x1), self.fc_dp2(x2), up3], 1))
        return edge, dp

    def head_parameters(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(boundary head, displacement head): the official optimizer gives the second 10x the lr."""
        edge = [p for n, p in self.named_parameters() if n.startswith("fc_edge")]
        dp = [p for n, p in self.named_parameters() if n.startswith("fc_dp")]
        return edge, dp

    def train(self, mode: bool = True) -> IRNet:
        super().train(mode)
        self.backbone.eval()  # the official Net.train keeps the backbone in eval mode
        return self


def irnet_loss(edge_logits: torch.Tensor, displacement: torch.Tensor, bg_pos: torch.Tensor,
               fg_pos: torch.Tensor, neg: torch.Tensor, index: PathIndex) -> dict[str, torch.Tensor]:
    """The four terms and the total of step/train_irn.py; labels are (B, D, sources) masks."""
    aff = path_affinity(torch.sigmoid(edge_logits[:, 0]), index)
    pos_term = -torch.log(aff + 1e-5)
    neg_term = -torch.log(1.0 + 1e-5 - aff)
    pair = pair_displacement(displacement, index)
    dp_fg = (pair - displacement_target(index, pair.dtype).to(pair.device)).abs()
    dp_bg = pair.abs()
    bg_pos_loss = (bg_pos * pos_term).sum() / (bg_pos.sum() + 1e-5)
    fg_pos_loss = (fg_pos * pos_term).sum() / (fg_pos.sum() + 1e-5)
    pos_loss = bg_pos_loss / 2 + fg_pos_loss / 2
    neg_loss = (neg * neg_term).sum() / (neg.sum() + 1e-5)
    dp_fg_loss = (dp_fg * fg_pos.unsqueeze(1)).sum() / (2 * fg_pos.sum() + 1e-5)
    dp_bg_loss = (dp_bg * bg_pos.unsqueeze(1)).sum() / (2 * bg_pos.sum() + 1e-5)
    total = (pos_loss + neg_loss) / 2 + (dp_fg_loss + dp_bg_loss) / 2
    return {"pos_aff": pos_loss, "neg_aff": neg_loss, "dp_fg": dp_fg_loss, "dp_bg": dp_bg_loss, "total": total}


def inference_maps(model: IRNet, image: torch.Tensor, pad_to: int | None = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """The official EdgeDisplacement: image (3, H, W), zero-padded right/bottom to ``pad_to``
    (its crop size, 512), with its flip -> boundary (1, h, w) = sigmoid of the mean of both
    logits, displacement (2, h, w) of the unflipped image; h = ceil(H / 4). Eval mode."""
    h, w = (image.shape[-2] - 1) // 4 + 1, (image.shape[-1] - 1) // 4 + 1
    pair = torch.stack([image, image.flip(-1)])
    if pad_to is not None:
        pair = F.pad(pair, [0, max(0, pad_to - image.shape[-1]), 0, max(0, pad_to - image.shape[-2])])
    edge, dp = model(pair)
    edge = torch.sigmoid(edge[0, :, :h, :w] / 2 + edge[1, :, :h, :w].flip(-1) / 2)
    return edge, dp[0, :, :h, :w]
